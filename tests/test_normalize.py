"""Tests for data_prep.normalize: TMM (vs rnanorm / hand values), INT, filters, BED, CLI."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from rnanorm import TMM
from scipy import stats

from core.errors import InputError
from data_prep.annotation import read_annotation
from data_prep.matrix_io import gene_coordinates, read_matrix, write_expression_bed
from data_prep.normalize import (
    OUTPUT_NAMES,
    expression_filter,
    inverse_normal_transform,
    normalize_expression,
)
from data_prep.tmm import tmm_factors

# ---------------------------------------------------------------------------------- helpers

GTF_GENES = [
    # gene_id, name, chrom, start1, end1, strand
    ("ENSG00000000001.5", "GENEA", "chr2", 1001, 2000, "+"),
    ("ENSG00000000002.3", "GENEB", "chr1", 5001, 9000, "-"),
    ("ENSG00000000003.1", "GENEC", "chr1", 101, 500, "+"),
    ("ENSG00000000004.2", "GENED", "chr10", 301, 700, "+"),
    ("ENSG00000000005.7", "GENEE", "chrX", 51, 60, "-"),
    ("ENSG00000000006.1", "GENEF", "chr1", 20001, 20500, "+"),
]


def write_gtf(path: Path, genes=GTF_GENES) -> Path:
    lines = ["##description: test"]
    for gid, name, chrom, s, e, strand in genes:
        attrs = f'gene_id "{gid}"; gene_type "protein_coding"; gene_name "{name}";'
        lines.append("\t".join([chrom, "TEST", "gene", str(s), str(e), ".", strand, ".", attrs]))
        # a transcript line that must be ignored
        lines.append(
            "\t".join([chrom, "TEST", "transcript", str(s), str(e), ".", strand, ".", attrs])
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def simulate_matrices(n_genes=6, n_samples=30, seed=0):
    """Counts (negative binomial) and a TPM-like matrix, genes x samples, with GTF gene ids."""
    rng = np.random.default_rng(seed)
    ids = [g[0] for g in GTF_GENES[:n_genes]]
    samples = [f"GTEX-{i:04d}" for i in range(n_samples)]
    depth = rng.uniform(0.5, 2.0, size=n_samples)
    mean = rng.uniform(5, 500, size=(n_genes, 1)) * depth
    counts = rng.negative_binomial(5, 5 / (5 + mean)).astype(float)
    tpm = counts / counts.sum(axis=0) * 1e6 / 1000
    return (
        pd.DataFrame(tpm, index=ids, columns=samples),
        pd.DataFrame(counts, index=ids, columns=samples),
    )


def write_gct(df: pd.DataFrame, path: Path) -> Path:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as fh:
        fh.write("#1.2\n")
        fh.write(f"{df.shape[0]}\t{df.shape[1]}\n")
        body = df.copy()
        body.insert(0, "Description", [f"desc{i}" for i in range(len(df))])
        body.index.name = "Name"
        body.to_csv(fh, sep="\t", float_format="%.10g")
    return path


def write_tsv(df: pd.DataFrame, path: Path) -> Path:
    body = df.copy()
    body.index.name = "gene_id"
    body.to_csv(path, sep="\t", float_format="%.10g")
    return path


def read_bed(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", compression="gzip")


def run_cli(argv):
    from variformer import cli

    return cli.main(argv)


@pytest.fixture
def only_normalize(monkeypatch):
    """Let cli.main build its parser even while other subcommand modules are unfinished."""
    from variformer import cli

    monkeypatch.setattr(cli, "COMMANDS", {"normalize": cli.COMMANDS["normalize"]})


# ---------------------------------------------------------------------------------- TMM


def test_tmm_hand_computed_toy():
    # genes x samples. Proportions: S1 .02 .03 .05 .2 .7; S2 = 2 x S1; S3 = S1/2 on genes 1-4
    # with gene 5 an outlier; S4 = 2 x S1 on genes 1-4. Reference: upper-quartile/lib =
    # .2, .2, .1, .4 (mean .225) -> S1. For S3 the log ratios are -1 (genes 1-4, ranks 2.5) and
    # log2(.85/.7) (rank 5); trimming keeps ranks in [2, 4] -> genes 1-4 -> factor 2^-1.
    # Likewise S4 -> 2^1. Geometric mean of (1, 1, .5, 2) is 1, so no rescaling.
    counts = np.array(
        [
            [200, 400, 200, 200],
            [300, 600, 300, 300],
            [500, 1000, 500, 500],
            [2000, 4000, 2000, 2000],
            [7000, 14000, 17000, 2000],
        ],
        dtype=float,
    )
    np.testing.assert_allclose(tmm_factors(counts), [1.0, 1.0, 0.5, 2.0], rtol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_tmm_matches_rnanorm_seeded(seed):
    rng = np.random.default_rng(seed)
    # >= 3 samples: with 2 both are equally close to the mean upper quartile and the
    # reference is a floating-point coin flip in any implementation
    n_genes, n_samples = int(rng.integers(20, 400)), int(rng.integers(3, 12))
    depth = rng.uniform(0.3, 3.0, size=n_samples)
    mean = rng.lognormal(3, 2, size=(n_genes, 1)) * depth
    counts = rng.negative_binomial(3, 3 / (3 + mean)).astype(float)
    counts[rng.random(counts.shape) < 0.1] = 0  # dropouts
    counts[0] = 0  # an all-zero gene, which edgeR ignores
    expected = TMM().fit(counts.T).get_norm_factors(counts.T)
    np.testing.assert_allclose(tmm_factors(counts), expected, rtol=1e-10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        np.int64,
        st.tuples(st.integers(8, 40), st.integers(2, 6)),
        elements=st.integers(0, 2000),
    )
)
def test_tmm_matches_rnanorm_property(counts):
    counts = counts.astype(float)
    assume(np.all(counts.sum(axis=0) > 0))
    nz = counts[(counts > 0).any(axis=1)]
    f75 = np.percentile(nz, 75, axis=0) / nz.sum(axis=0)
    # rnanorm divides by the geometric mean of the upper quartiles, so it needs them all > 0
    # (edgeR >= 3.38 also switches reference rule when most are 0)
    assume(np.all(f75 > 0))
    # the reference sample must be unambiguous (ties are decided by rounding)
    dist = np.sort(np.abs(f75 - f75.mean()))
    assume(dist[1] - dist[0] > 1e-9 * f75.mean())
    with np.errstate(all="ignore"):
        expected = TMM().fit(counts.T).get_norm_factors(counts.T)
    # rnanorm returns NaN where a sample shares no expressed gene with the reference (edgeR
    # returns 1 there; see test_tmm_degenerate_cases_follow_edger)
    assume(np.all(np.isfinite(expected)))
    got = tmm_factors(counts)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert np.isclose(np.exp(np.mean(np.log(got))), 1.0)


def test_tmm_degenerate_cases_follow_edger():
    # a sample sharing no expressed gene with the reference has no finite log ratio: edgeR
    # returns factor 1 (before rescaling) rather than NaN
    counts = np.array([[5.0, 2.0, 0.0], [5.0, 10.0, 0.0], [0.0, 0.0, 6.0], [0.0, 0.0, 1.0]])
    f = tmm_factors(counts)
    assert np.all(np.isfinite(f))
    # upper quartile / library size: 5/10, 4/12, 2.25/7 (mean .385) -> reference is sample 2.
    # Sample 3 shares no expressed gene with it -> 1. Sample 1 has log ratios
    # log2((5/10)/(2/12)) and log2((5/10)/(10/12)); with n = 2 nothing is trimmed
    # (lo = 1, hi = 2) and the weights are 1/v, v = (N-y)/N/y + (Nr-r)/Nr/r.
    lr = np.log2([0.5 / (2 / 12), 0.5 / (10 / 12)])
    v = np.array([0.5 / 5 + (10 / 12) / 2, 0.5 / 5 + (2 / 12) / 10])
    raw = np.array([2 ** (np.sum(lr / v) / np.sum(1 / v)), 1.0, 1.0])
    np.testing.assert_allclose(f, raw / np.exp(np.mean(np.log(raw))), rtol=1e-12)
    # one sample: factor 1
    np.testing.assert_allclose(tmm_factors(np.array([[3.0], [4.0]])), [1.0])


def test_tmm_rejects_bad_counts():
    with pytest.raises(InputError, match="non-negative"):
        tmm_factors(np.array([[1.0, -1.0], [3.0, 4.0]]))
    with pytest.raises(InputError, match="no reads"):
        tmm_factors(np.array([[1.0, 0.0], [3.0, 0.0]]))


# ---------------------------------------------------------------------------------- INT


def test_int_hand_computed_with_ties():
    x = np.array([[3.0, 1.0, 2.0, 2.0], [10.0, 20.0, 30.0, 40.0]])
    # ranks row 0: 4, 1, 2.5, 2.5 -> /5 = .8, .2, .5, .5; row 1: 1..4 -> .2, .4, .6, .8
    q8 = 0.8416212335729143  # norm.ppf(0.8)
    q6 = 0.2533471031357997  # norm.ppf(0.6)
    expected = np.array([[q8, -q8, 0.0, 0.0], [-q8, -q6, q6, q8]])
    np.testing.assert_allclose(inverse_normal_transform(x), expected, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 30)),
        elements=st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 1)),
    )
)
def test_int_monotone_and_formula(x):
    z = inverse_normal_transform(x)
    assert z.shape == x.shape
    n = x.shape[1]
    for row_x, row_z in zip(x, z):
        np.testing.assert_allclose(row_z, stats.norm.ppf(stats.rankdata(row_x) / (n + 1)))
        order = np.argsort(row_x, kind="stable")
        assert np.all(np.diff(row_z[order]) >= -1e-12)  # non-decreasing in the input
        # equal inputs get equal scores
        same = row_x[:, None] == row_x[None, :]
        assert np.all(np.isclose(row_z[:, None], row_z[None, :])[same])
        if len(np.unique(row_x)) == n:
            # without ties: strictly increasing and symmetric around 0
            assert np.all(np.diff(row_z[order]) > 0)
            np.testing.assert_allclose(np.sort(row_z), -np.sort(row_z)[::-1], atol=1e-9)


def test_int_accepts_dataframe():
    df = pd.DataFrame([[1.0, 2.0, 3.0]], index=["g"], columns=["a", "b", "c"])
    np.testing.assert_allclose(inverse_normal_transform(df), stats.norm.ppf([[0.25, 0.5, 0.75]]))


# ---------------------------------------------------------------------------------- filters


def test_filters_keep_and_drop_the_right_genes():
    n = 10  # 20% of 10 samples -> at least 2 samples must pass each threshold
    samples = [f"s{i}" for i in range(n)]
    tpm = pd.DataFrame(1.0, index=list("ABCDE"), columns=samples)
    counts = pd.DataFrame(50.0, index=list("ABCDE"), columns=samples)
    # A: exactly 2 samples at the thresholds, in different samples for TPM and counts -> kept
    tpm.loc["A"] = 0.0
    tpm.loc["A", ["s0", "s1"]] = 0.1
    counts.loc["A"] = 0.0
    counts.loc["A", ["s8", "s9"]] = 6.0
    # B: TPM just below 0.1 everywhere -> dropped
    tpm.loc["B"] = 0.0999
    # C: 5 reads everywhere -> dropped
    counts.loc["C"] = 5.0
    # D: TPM passes in only 1 sample -> dropped
    tpm.loc["D"] = 0.0
    tpm.loc["D", "s3"] = 100.0
    # E: plain expressed gene -> kept
    mask = expression_filter(tpm, counts)
    assert mask.tolist() == [True, False, False, False, True]
    res = normalize_expression(tpm, counts)
    assert res.kept == ["A", "E"]
    assert list(res.normalized.index) == ["A", "E"] and list(res.normalized.columns) == samples
    # thresholds are options: with 5 reads allowed C comes back
    assert normalize_expression(tpm, counts, min_counts=5).kept == ["A", "C", "E"]
    # with 30% required A (2/10) is gone
    assert normalize_expression(tpm, counts, min_fraction=0.3).kept == ["E"]


def test_normalize_matches_direct_pipeline():
    tpm, counts = simulate_matrices(n_samples=25, seed=3)
    tpm.iloc[2, :21] = 0.0  # 4 of 25 < 20%: gene 3 fails the TPM filter but still counts toward TMM
    res = normalize_expression(tpm, counts)
    assert res.kept == [g for i, g in enumerate(tpm.index) if i != 2]
    # independent reference: rnanorm TMM-CPM on all genes, then per-gene INT of kept rows
    cpm = TMM().fit(counts.T.to_numpy()).transform(counts.T.to_numpy()).T
    expected = stats.norm.ppf(stats.rankdata(cpm[[0, 1, 3, 4, 5]], axis=1) / 26)
    np.testing.assert_allclose(res.normalized.to_numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(res.log2tpm.to_numpy(), np.log2(tpm.iloc[[0, 1, 3, 4, 5]] + 2))
    # count columns in another order are aligned to the TPM order
    shuffled = counts[counts.columns[::-1]].iloc[::-1]
    pd.testing.assert_frame_equal(normalize_expression(tpm, shuffled).normalized, res.normalized)


def test_normalize_rejects_mismatched_inputs():
    tpm, counts = simulate_matrices()
    with pytest.raises(InputError, match="samples differ"):
        normalize_expression(tpm, counts.drop(columns=counts.columns[0]))
    with pytest.raises(InputError, match="genes differ"):
        normalize_expression(tpm, counts.drop(index=counts.index[0]))
    bad = counts.copy()
    bad.iloc[1, 1] = -3
    with pytest.raises(InputError, match="negative"):
        normalize_expression(tpm, bad)
    with pytest.raises(InputError, match="no gene passes"):
        normalize_expression(tpm * 0, counts)


# ---------------------------------------------------------------------------------- BED


def test_gene_coordinates_matching(tmp_path):
    ann = read_annotation(write_gtf(tmp_path / "genes.gtf"))
    coords = gene_coordinates(
        ["ENSG00000000001.5", "ENSG00000000002.9", "GENEC", "ENSG00000000005", "NOPE"], ann
    )
    # exact versioned id, other version (base id), symbol, unversioned id; NOPE is absent
    assert list(coords.index) == [
        "ENSG00000000001.5",
        "ENSG00000000002.9",
        "GENEC",
        "ENSG00000000005",
    ]
    # tss0: + strand start1 - 1; - strand end1 - 1
    assert coords["tss0"].tolist() == [1000, 8999, 100, 59]
    assert coords["chrom"].tolist() == ["chr2", "chr1", "chr1", "chrX"]


def test_bed_round_trips_through_tabix(tmp_path):
    ann = read_annotation(write_gtf(tmp_path / "genes.gtf"))
    rng = np.random.default_rng(1)
    ids = [g[0] for g in GTF_GENES] + ["ENSG99999999999.1"]
    df = pd.DataFrame(rng.normal(size=(len(ids), 4)), index=ids, columns=["a", "b", "c", "d"])
    out = tmp_path / "x.bed.gz"
    with pytest.warns(UserWarning, match="1 of 7 genes"):
        dropped = write_expression_bed(df, ann, out)
    assert dropped == ["ENSG99999999999.1"]
    assert Path(f"{out}.tbi").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left

    bed = read_bed(out)
    assert list(bed.columns) == ["#chr", "start", "end", "gene_id", "a", "b", "c", "d"]
    # sorted by chromosome (natural order) then start
    assert bed["#chr"].tolist() == ["chr1", "chr1", "chr1", "chr2", "chr10", "chrX"]
    assert bed["start"].tolist() == [100, 8999, 20000, 1000, 300, 59]
    assert (bed["end"] == bed["start"] + 1).all()

    with pysam.TabixFile(str(out)) as tbx:
        assert tbx.header[-1].startswith("#chr\tstart\tend\tgene_id")
        # BED is 0-based half-open: [8999, 9000) holds GENEB, [8998, 8999) holds nothing
        rows = [r.split("\t") for r in tbx.fetch("chr1", 8999, 9000)]
        assert [r[3] for r in rows] == ["ENSG00000000002.3"]
        assert list(tbx.fetch("chr1", 8998, 8999)) == []
        for gid in df.index[:-1]:
            chrom, tss0 = gene_coordinates([gid], ann).iloc[0]
            (row,) = [r.split("\t") for r in tbx.fetch(chrom, tss0, tss0 + 1)]
            assert row[3] == gid
            np.testing.assert_allclose(np.array(row[4:], float), df.loc[gid].to_numpy(), rtol=1e-5)


# ---------------------------------------------------------------------------------- reading + CLI


def test_gct_and_tsv_read_the_same(tmp_path):
    tpm, _ = simulate_matrices()
    a = read_matrix(write_gct(tpm, tmp_path / "t.gct.gz"))
    b = read_matrix(write_tsv(tpm, tmp_path / "t.tsv"))
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_allclose(a.to_numpy(), tpm.to_numpy(), rtol=1e-9)
    sub = read_matrix(tmp_path / "t.tsv", samples=["GTEX-0003", "GTEX-0001"])
    assert list(sub.columns) == ["GTEX-0003", "GTEX-0001"]


def test_cli_gct_and_tsv_inputs_give_the_same_beds(tmp_path, only_normalize, capsys):
    gtf = write_gtf(tmp_path / "genes.gtf")
    tpm, counts = simulate_matrices(n_samples=40, seed=7)
    rc = run_cli(
        ["normalize", "--tpm", str(write_gct(tpm, tmp_path / "tpm.gct.gz")),
         "--counts", str(write_gct(counts, tmp_path / "counts.gct")),
         "--annotation", str(gtf), "--out", str(tmp_path / "gct" / "blood")]
    )  # fmt: skip
    assert rc == 0
    rc = run_cli(
        ["normalize", "--tpm", str(write_tsv(tpm, tmp_path / "tpm.tsv")),
         "--counts", str(write_tsv(counts, tmp_path / "counts.tsv")),
         "--annotation", str(gtf), "--out", str(tmp_path / "tsv" / "blood")]
    )  # fmt: skip
    assert rc == 0
    assert OUTPUT_NAMES == ("normalized_expression.bed.gz", "log2tpm.bed.gz")
    for name in OUTPUT_NAMES:
        a = read_bed(tmp_path / "gct" / "blood" / name)
        b = read_bed(tmp_path / "tsv" / "blood" / name)
        pd.testing.assert_frame_equal(a, b)
        assert Path(tmp_path / "gct" / "blood" / f"{name}.tbi").is_file()
    # the BED values are the library's result, ordered by position
    res = normalize_expression(tpm, counts)
    bed = read_bed(tmp_path / "gct" / "blood" / "normalized_expression.bed.gz").set_index("gene_id")
    expected = res.normalized.loc[bed.index]
    np.testing.assert_allclose(bed[tpm.columns].to_numpy(), expected.to_numpy(), atol=1e-5)
    log2 = read_bed(tmp_path / "gct" / "blood" / "log2tpm.bed.gz").set_index("gene_id")
    np.testing.assert_allclose(
        log2[tpm.columns].to_numpy(), np.log2(tpm.loc[bed.index] + 2).to_numpy(), rtol=1e-5
    )


def test_cli_samples_subset_and_order(tmp_path, only_normalize):
    gtf = write_gtf(tmp_path / "genes.gtf")
    tpm, counts = simulate_matrices(n_samples=20, seed=2)
    keep = ["GTEX-0010", "GTEX-0002", "GTEX-0015", "GTEX-0007", "GTEX-0001"]
    (tmp_path / "s.txt").write_text("\n".join(keep) + "\n")
    rc = run_cli(
        ["normalize", "--tpm", str(write_tsv(tpm, tmp_path / "tpm.tsv")),
         "--counts", str(write_tsv(counts, tmp_path / "counts.tsv")),
         "--annotation", str(gtf), "--out", str(tmp_path / "o"), "--samples", str(tmp_path / "s.txt")]
    )  # fmt: skip
    assert rc == 0
    bed = read_bed(tmp_path / "o" / "normalized_expression.bed.gz").set_index("gene_id")
    assert list(bed.columns[3:]) == keep
    res = normalize_expression(tpm[keep], counts[keep])
    np.testing.assert_allclose(
        bed[keep].to_numpy(), res.normalized.loc[bed.index].to_numpy(), atol=1e-5
    )


def _bad_input_cases(tmp_path):
    tpm, counts = simulate_matrices()
    gtf = write_gtf(tmp_path / "genes.gtf")
    good_tpm = write_tsv(tpm, tmp_path / "tpm.tsv")
    good_counts = write_tsv(counts, tmp_path / "counts.tsv")
    fewer = write_tsv(counts.drop(columns=counts.columns[0]), tmp_path / "fewer_samples.tsv")
    other_genes = write_tsv(counts.rename(index={counts.index[0]: "ENSGXXX"}), tmp_path / "og.tsv")
    text = counts.astype(object)
    text.iloc[2, 3] = "abc"
    nonnum = write_tsv(text, tmp_path / "nonnum.tsv")
    neg = counts.copy()
    neg.iloc[1, 4] = -1.0
    negative = write_tsv(neg, tmp_path / "neg.tsv")
    real_tpm = write_tsv(counts / counts.sum(axis=0) * 1e6, tmp_path / "real_tpm.tsv")
    (tmp_path / "samples.txt").write_text("GTEX-0000\nNOT-A-SAMPLE\n")
    existing = tmp_path / "exists"
    existing.mkdir()
    (existing / "log2tpm.bed.gz").write_text("old")

    def args(tpm_path=good_tpm, counts_path=good_counts, out=tmp_path / "out", extra=()):
        return ["normalize", "--tpm", str(tpm_path), "--counts", str(counts_path),
                "--annotation", str(gtf), "--out", str(out), *extra]  # fmt: skip

    return {
        "samples differ": args(counts_path=fewer),
        "genes differ": args(counts_path=other_genes),
        "non-numeric": args(counts_path=nonnum),
        "negative": args(counts_path=negative),
        "not found": args(tpm_path=tmp_path / "missing.gct"),
        "NOT-A-SAMPLE": args(extra=("--samples", str(tmp_path / "samples.txt"))),
        "--force": args(out=existing),
        # TPM (sums to 1e6 per sample, fractional) given as counts, counts as TPM
        "swapped": args(tpm_path=good_counts, counts_path=real_tpm),
    }


@pytest.mark.parametrize(
    "case",
    [
        "samples differ",
        "genes differ",
        "non-numeric",
        "negative",
        "not found",
        "NOT-A-SAMPLE",
        "--force",
        "swapped",
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, only_normalize, capsys, case):
    argv = _bad_input_cases(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    rc = run_cli(argv)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("variformer normalize: error:")
    assert case in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temp left
    if case == "--force":
        assert (tmp_path / "exists" / "log2tpm.bed.gz").read_text() == "old"


def test_cli_force_overwrites(tmp_path, only_normalize):
    gtf = write_gtf(tmp_path / "genes.gtf")
    tpm, counts = simulate_matrices()
    argv = ["normalize", "--tpm", str(write_tsv(tpm, tmp_path / "t.tsv")),
            "--counts", str(write_tsv(counts, tmp_path / "c.tsv")),
            "--annotation", str(gtf), "--out", str(tmp_path / "o")]  # fmt: skip
    assert run_cli(argv) == 0
    assert run_cli(argv) == 2
    assert run_cli([*argv, "--force"]) == 0
    assert read_bed(tmp_path / "o" / "normalized_expression.bed.gz").shape[0] == 6


def test_normalize_files_library_and_cli_report_unannotated_genes(tmp_path, only_normalize, capsys):
    """The file-to-file workflow is a library call; the command only prints its summary."""
    from data_prep.normalize import normalize_files

    gtf = write_gtf(tmp_path / "genes.gtf", genes=GTF_GENES[1:])  # the first gene is unannotated
    tpm, counts = simulate_matrices()
    t, c = write_tsv(tpm, tmp_path / "t.tsv"), write_tsv(counts, tmp_path / "c.tsv")
    kept = normalize_expression(tpm, counts).kept
    assert GTF_GENES[0][0] in kept
    with pytest.warns(UserWarning, match=f"1 of {len(kept)} genes are not in the annotation"):
        s = normalize_files(t, c, gtf, tmp_path / "lib")
    assert s.out == tmp_path / "lib" and s.normalized == tmp_path / "lib" / OUTPUT_NAMES[0]
    assert (s.n_genes, s.n_samples, s.n_kept) == (6, 30, len(kept))
    assert s.not_in_annotation == [GTF_GENES[0][0]] and s.n_written == len(kept) - 1
    for path in (s.normalized, s.log2tpm):
        assert sorted(read_bed(path)["gene_id"]) == sorted(set(kept) - {GTF_GENES[0][0]})
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == sorted(
        [*OUTPUT_NAMES, *(f"{n}.tbi" for n in OUTPUT_NAMES)]
    )
    capsys.readouterr()
    argv = ["normalize", "--tpm", str(t), "--counts", str(c), "--annotation", str(gtf),
            "--out", str(tmp_path / "cli")]  # fmt: skip
    assert run_cli(argv) == 0
    out, err = capsys.readouterr()
    assert err.startswith("variformer normalize: warning: 1 of") and len(err.splitlines()) == 1
    assert f"{len(kept) - 1} written to {tmp_path / 'cli' / OUTPUT_NAMES[0]}" in out
    for name in OUTPUT_NAMES:
        pd.testing.assert_frame_equal(
            read_bed(tmp_path / "cli" / name), read_bed(tmp_path / "lib" / name)
        )
