"""``variformer score-variants`` and the ISM of indels, against a naive two-forward truth.

The truth is built here, independently of the code under test: each edited window is
``bcftools consensus`` of a VCF holding the allele (for a person: their cohort records plus
the allele), cut around the TSS by bcftools' own chain file (tests/haplotype_cohort.py), then
one plain forward of the model per window.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from core.errors import InputError
from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from data_prep.variant_windows import read_listed_variants
from tests.fakes import calibrate_, tiny_hparams
from tests.genomes import random_sequence, write_fasta, write_vcf
from tests.haplotype_cohort import consensus, oracle_window
from variformer import cli
from variformer.analysis import mutagenesis
from variformer.analysis.variant_effects import gene_variant_effects
from variformer.model import Variformer

LENGTH, TSS1, SEQ_LEN, CROP = 4000, 2001, 512, 256
TSS0 = TSS1 - 1
PEOPLE = [f"P{i}" for i in range(6)]


def _cohort_records(seq):
    """Phased cohort records (pos1, REF, ALT, GTs of PEOPLE); P0's alleles are fixed."""

    def r(p1, n=1):
        return seq[p1 - 1 : p1 - 1 + n]

    def other(b):
        return "A" if b != "A" else "C"

    return [
        (TSS1 + 20, r(TSS1 + 20), other(r(TSS1 + 20)), ["1|0", "0|1", "1|1", "0|0", "1|0", "0|0"]),
        (TSS1 - 40, r(TSS1 - 40, 7), r(TSS1 - 40), ["0|1", "1|0", "0|0", "1|1", "0|0", "0|1"]),
        (TSS1 + 60, r(TSS1 + 60), r(TSS1 + 60) + "GATTA", ["1|1", "0|0", "1|0", "0|1", "0|0", "0|0"]),
        (TSS1 - 80, r(TSS1 - 80, 2), "TG" if r(TSS1 - 80, 2) != "TG" else "CA",
         ["0|0", "1|1", "0|1", "0|0", "1|0", "0|0"]),
    ]  # fmt: skip


def _listed(seq):
    """The variants to score: (pos1, REF, ALT); every cohort allele, and new ones."""

    def r(p1, n=1):
        return seq[p1 - 1 : p1 - 1 + n]

    def other(s):
        return "".join("A" if b != "A" else "G" for b in s)

    crop0 = TSS0 - CROP // 2  # 0-based first base of the run's crop
    return [
        (TSS1 - 10, r(TSS1 - 10), other(r(TSS1 - 10))),  # an unobserved SNV
        (TSS1 - 51, r(TSS1 - 51), r(TSS1 - 51) + "CCGTACGT"),  # insertion upstream
        (TSS1 + 49, r(TSS1 + 49, 13), r(TSS1 + 49)),  # deletion downstream
        (TSS1 - 4, r(TSS1 - 4, 9), r(TSS1 - 4)),  # deletion spanning the TSS
        (crop0 - 6, r(crop0 - 6, 12), r(crop0 - 6)),  # deletion across the crop's left edge
        (crop0 + CROP - 4, r(crop0 + CROP - 4, 10), r(crop0 + CROP - 4)),  # ... right edge
        (TSS1 + 29, r(TSS1 + 29, 3), other(r(TSS1 + 29, 3))),  # MNP
        (TSS1 + 39, r(TSS1 + 39, 3), "TT" if r(TSS1 + 40, 2) != "TT" else "GG"),  # complex
        (TSS1 + 14, r(TSS1 + 14, 10), r(TSS1 + 14)),  # deletion before P0's SNV: displaces it
        (TSS1 - 38, r(TSS1 - 38), other(r(TSS1 - 38))),  # SNV inside P0's deletion: blocked
        (TSS1, r(TSS1), r(TSS1) + "TTAG"),  # insertion anchored on the TSS
    ]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variant_effects")
    rng = np.random.default_rng(5)
    seq = random_sequence(rng, LENGTH, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
    records = _cohort_records(seq)
    recs = [("chr1", p, ".", r, [a], gts) for p, r, a, gts in records]
    vcf = write_vcf(tmp / "cohort.vcf.gz", {"chr1": LENGTH}, PEOPLE, recs)
    listed = [(p, r, a) for p, r, a, _ in records] + _listed(seq)
    odd = [
        (TSS1 + 70, ".", seq[TSS1 + 69], "<DEL>"),  # symbolic
        (100, ".", seq[99], "A" if seq[99] != "A" else "C"),
    ]  # outside every window
    (tmp / "tss.tsv").write_text(
        f"gene_name\tgene_id\tchrom\ttss\tstrand\nG\tENSG1.1\tchr1\t{TSS1}\t+\n"
    )
    sites = [(p, f"v{i}", r, a) for i, (p, r, a) in enumerate(listed)]
    listed_vcf = _sites_vcf(tmp / "listed.vcf", sites + odd)
    common = dict(vcfs=[vcf], fasta=fasta, annotation=tmp / "tss.tsv", genes=["G"],
                  seq_len=SEQ_LEN, n_folds=1, tune_fraction=0.3, test_fraction=0.3,
                  progress=False)  # fmt: skip
    prep_dataset(out=tmp / "hap", haplotypes=True, **common)
    prep_dataset(out=tmp / "snv", **common)
    torch.manual_seed(0)
    model = calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), CROP)
    # one network, recorded as trained on the two haplotypes ("runs") or on their mean one-hot
    for root, haplotypes in (("runs", True), ("runs_mean", False)):
        run = tmp / root / "G" / "fold0"
        run.mkdir(parents=True)
        model.save(run)
        summary = {"fold": 0, "genes": ["G"], "haplotypes": haplotypes}
        (run / "summary.json").write_text(json.dumps(summary))
        config = {"data": {"seq_len": CROP, "haplotypes": haplotypes}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    return dict(tmp=tmp, seq=seq, fasta=fasta, records=records, listed=listed,
                listed_vcf=listed_vcf, model=Variformer.load(run).eval())  # fmt: skip


def _sites_vcf(path, records):
    """A plain sites-only VCF (no samples, no index): records (pos1, id, REF, ALT)."""
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID=chr1,length={LENGTH}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # fmt: skip
    lines += [f"chr1\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t." for p, i, r, a in sorted(records)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _forward(model, windows: list[str]) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(np.stack([one_hot(encode(w)) for w in windows]))
        return model(x).double().numpy()


def _forward_mean(model, windows: list[str]) -> float:
    """One forward of the mean one-hot of ``windows`` (a person's two haplotypes)."""
    with torch.no_grad():
        x = torch.from_numpy(np.mean([one_hot(encode(w)) for w in windows], axis=0)[None])
        return float(model(x).double().numpy()[0])


def _window(c, vcf, sample, hap, tmp) -> str:
    return oracle_window(c["fasta"], vcf, "chr1", LENGTH, sample, hap, TSS0, CROP, tmp)


def _person_vcf(c, path, sample, extra=None):
    """The cohort's records (every person's GTs) plus ``extra`` carried 1|1 by ``sample``."""
    recs = [("chr1", p, ".", r, [a], gts) for p, r, a, gts in c["records"]]
    if extra is not None:
        gts = ["1|1" if s == sample else "0|0" for s in PEOPLE]
        recs.append(("chr1", extra[0], ".", extra[1], [extra[2]], gts))  # after same-pos ones
    return write_vcf(path, {"chr1": LENGTH}, PEOPLE, recs)


def _score(c, dataset, out, *extra, runs="runs"):
    args = ["score-variants", "--runs", c["tmp"] / runs, "--vcf", c["listed_vcf"],
            "--dataset", c["tmp"] / dataset, "--out", out, "--device", "cpu", *extra]  # fmt: skip
    assert cli.main([str(a) for a in args]) == 0
    return pd.read_csv(out, sep="\t", dtype={"chrom": str, "id": str, "background_applied": str},
                       keep_default_na=False, na_values={"effect_background": ["NA"]})  # fmt: skip


def test_effects_equal_two_forwards_of_bcftools_windows(cohort, tmp_path, capsys, monkeypatch):
    c = cohort
    widths = []  # the edits the fast path took: MNPs and indels' shifted stretches too
    fast_effects = mutagenesis._fast_effects

    def spy(model, seq, starts, values, **kw):
        widths.extend(len(v) for v in values)
        return fast_effects(model, seq, starts, values, **kw)

    monkeypatch.setattr(mutagenesis, "_fast_effects", spy)
    naive = _score(c, "hap", tmp_path / "naive.tsv", "--background", "P0", "--method", "naive")
    assert widths == []
    capsys.readouterr()
    table = _score(c, "hap", tmp_path / "eff.tsv", "--background", "P0")
    out = capsys.readouterr().out
    assert max(widths) > 20 and sum(w > 1 for w in widths) >= 10, widths
    assert "1 symbolic" in out and "1 outside_windows" in out, out
    listed = c["listed"]
    assert len(table) == len(listed)  # every allele is inside the crop, or overlaps it
    np.testing.assert_array_equal(table["pos"], sorted(p for p, _, _ in listed))
    kinds = dict(zip(zip(table["pos"], table["ref"], table["alt"]), table["kind"]))
    assert set(kinds.values()) == {"snv", "mnp", "insertion", "deletion", "complex"}
    assert (table["fold"] == 0).all() and (table["gene"] == "G").all()
    np.testing.assert_array_equal(table["tss_distance"], table["pos"] - TSS1)
    # the reference: bcftools consensus of a one-record VCF, anchored by its chain
    model, ref_vcf = c["model"], tmp_path / "one.vcf.gz"
    empty = write_vcf(tmp_path / "none.vcf.gz", {"chr1": LENGTH}, ["X"], [])
    windows = [_window(c, empty, "X", 1, tmp_path)]
    for p, r, a in zip(table["pos"], table["ref"], table["alt"]):
        write_vcf(ref_vcf, {"chr1": LENGTH}, ["X"], [("chr1", p, ".", r, [a], ["1|1"])])
        windows.append(_window(c, ref_vcf, "X", 1, tmp_path))
    pred = _forward(model, windows)
    want = pred[1:] - pred[0]
    assert np.abs(want).min() > 0 and np.abs(want).max() > 1e-3
    for got in (table, naive):
        np.testing.assert_allclose(got["effect_reference"], want, atol=1e-5 * np.abs(want).max())
    # a person of the haplotype dataset: the mean of two haplotypes, with and without the allele
    own = _person_vcf(c, tmp_path / "own.vcf.gz", "P0")
    own_wins = [_window(c, own, "P0", h, tmp_path) for h in (1, 2)]
    base, base_mean = _forward(model, own_wins).mean(), _forward_mean(model, own_wins)
    want_bg, want_mean, applied = [], [], []
    for k, (p, r, a) in enumerate(zip(table["pos"], table["ref"], table["alt"])):
        vcf = _person_vcf(c, tmp_path / f"with{k}.vcf.gz", "P0", (p, r, a))
        wins = [_window(c, vcf, "P0", h, tmp_path) for h in (1, 2)]
        want_bg.append(_forward(model, wins).mean() - base)
        want_mean.append(_forward_mean(model, wins) - base_mean)
        whole = [consensus(c["fasta"], f"chr1:1-{LENGTH}", v, "P0", h, tmp_path)[0]
                 for v in (vcf, own) for h in (1, 2)]  # fmt: skip
        applied.append(f"{int(whole[0] != whole[2])}|{int(whole[1] != whole[3])}")
    want_bg = np.array(want_bg)
    for got in (table, naive):
        np.testing.assert_allclose(
            got["effect_background"], want_bg, atol=1e-5 * np.abs(want).max()
        )
        assert list(got["background_applied"]) == applied
    # a run trained on the mean one-hot of the two haplotypes (data.haplotypes=false): the
    # allele on each haplotype, then one forward of their mean
    mean = _score(c, "hap", tmp_path / "mean.tsv", "--background", "P0", runs="runs_mean")
    np.testing.assert_allclose(mean["effect_reference"], want, atol=1e-5 * np.abs(want).max())
    want_mean = np.array(want_mean)
    assert np.abs(want_mean - want_bg).max() > 1e-3 * np.abs(want).max()  # the modes differ
    np.testing.assert_allclose(mean["effect_background"], want_mean, atol=1e-5 * np.abs(want).max())
    assert list(mean["background_applied"]) == applied
    # ISM with a background scores the observed alleles (SNVs too) as score-variants does
    for runs, effects in (("runs", table), ("runs_mean", mean)):
        out = tmp_path / f"ism_{runs}.tsv"
        args = ["ism", "--runs", c["tmp"] / runs, "--dataset", c["tmp"] / "hap", "--out", out,
                "--background", "P0", "--device", "cpu"]  # fmt: skip
        assert cli.main([str(x) for x in args]) == 0
        ism = pd.read_csv(out, sep="\t", dtype={"chrom": str})
        observed = {(p, r, a) for p, r, a, _ in c["records"]}
        assert set(zip(ism["pos"], ism["ref"], ism["alt"])) == observed
        joined = ism.merge(effects, on=["pos", "ref", "alt"])
        np.testing.assert_allclose(
            joined["score"], joined["effect_background"], atol=1e-5 * np.abs(want).max()
        )
    row = dict(zip(zip(table["pos"], table["alt"]), table["background_applied"]))
    assert row[TSS1 - 38, listed[-2][2]] == "1|0"  # blocked where P0's deletion comes first
    first = c["records"][0]  # P0's own SNV (hap 1) is carried: a second copy is not applied
    assert row[first[0], first[2]] == "0|1"


def test_ism_scores_observed_indels_as_score_variants(cohort, tmp_path):
    c = cohort
    effects = _score(c, "hap", tmp_path / "eff.tsv")
    assert effects["effect_background"].isna().all()
    assert (effects["background_applied"] == "NA").all()
    out = tmp_path / "ism.tsv"
    run = c["tmp"] / "runs" / "G" / "fold0"
    args = ["ism", "--run", run, "--dataset", c["tmp"] / "hap", "--out", out, "--device", "cpu"]
    assert cli.main([str(a) for a in args]) == 0
    ism = pd.read_csv(out, sep="\t", dtype={"chrom": str})
    observed = {(p, r, a) for p, r, a, _ in c["records"]}
    assert set(zip(ism["pos"], ism["ref"], ism["alt"])) == observed  # SNV, MNP and indels
    joined = ism.merge(effects, on=["pos", "ref", "alt"])
    assert len(joined) == len(observed)
    scale = np.abs(joined["effect_reference"]).max()
    np.testing.assert_allclose(joined["score"], joined["effect_reference"], atol=1e-4 * scale)
    naive = tmp_path / "ism_naive.tsv"  # the fast path (default) equals one forward per allele
    assert (
        cli.main([str(a) for a in [*args[:-3], naive, "--device", "cpu", "--method", "naive"]]) == 0
    )
    naive = pd.read_csv(naive, sep="\t", dtype={"chrom": str})
    np.testing.assert_allclose(ism["score"], naive["score"], atol=1e-5 * scale)
    assert (ism[["pos", "ref", "alt"]] == naive[["pos", "ref", "alt"]]).all().all()


def test_averaged_background_places_snvs_and_mnps_only(cohort, tmp_path, capsys):
    c = cohort
    table = _score(c, "snv", tmp_path / "eff.tsv", "--background", "P1")
    out = capsys.readouterr().out
    same = (table["ref"].str.len() == table["alt"].str.len()).to_numpy()
    assert f"{int((~same).sum())} indel_on_averaged_background" in out, out
    assert table["effect_background"][~same].isna().all()
    assert (table["background_applied"][~same] == "NA").all()
    # truth: P1's averaged one-hot (bcftools consensus -H 1 and -H 2 of the SNVs it carries,
    # averaged) with the allele's bases written in
    snvs = [r for r in c["records"] if len(r[1]) == len(r[2]) == 1]
    vcf = write_vcf(tmp_path / "snvs.vcf.gz", {"chr1": LENGTH}, PEOPLE,
                    [("chr1", p, ".", r, [a], g) for p, r, a, g in snvs])  # fmt: skip
    person = np.mean([one_hot(encode(_window(c, vcf, "P1", h, tmp_path))) for h in (1, 2)], axis=0)
    crop0 = TSS0 - CROP // 2
    wins = [person]
    for p, a in zip(table["pos"][same], table["alt"][same]):
        w = person.copy()
        for k, b in enumerate(a):
            if 0 <= p - 1 + k - crop0 < CROP:
                w[p - 1 + k - crop0] = np.eye(4, dtype=np.float32)["ACGT".index(b)]
        wins.append(w)
    with torch.no_grad():
        pred = c["model"](torch.from_numpy(np.stack(wins))).double().numpy()
    want = pred[1:] - pred[0]
    got = table["effect_background"][same].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


def test_reference_mismatches_and_missing_reference(cohort, tmp_path):
    c = cohort
    seq, ds = c["seq"], open_dataset(c["tmp"] / "snv")
    rng = np.random.default_rng(0)
    pos = np.sort(rng.choice(np.arange(TSS1 - 100, TSS1 + 100), 120, replace=False))
    rows = [("chr1", int(p), ".", seq[p - 1], "A" if seq[p - 1] != "A" else "C") for p in pos]
    bad = ("chr1", int(pos[0]), ".", "ACGT"["ACGT".index(seq[pos[0] - 1]) - 1], "T")
    frame = pd.DataFrame([*rows, bad], columns=["chrom", "pos", "id", "ref", "alt"])
    frame["kind"] = "snv"
    counts = Counter()
    table = gene_variant_effects(c["model"], ds, "G", frame, seq_len=CROP, counts=counts)
    assert len(table) == 120 and counts["ref_mismatch"] == 1  # under 1%: skipped, counted
    with pytest.raises(InputError, match="another genome build"):
        gene_variant_effects(c["model"], ds, "G", frame.iloc[-20:], seq_len=CROP)
    # an SNV dataset keeps its window only: a deletion across the window's edge needs more
    w0 = TSS0 - SEQ_LEN // 2
    edge = pd.DataFrame([("chr1", w0 - 3, ".", seq[w0 - 4 : w0 + 6], seq[w0 - 4], "deletion")],
                        columns=frame.columns)  # fmt: skip
    counts = Counter()
    torch.manual_seed(0)
    full = calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), SEQ_LEN)
    assert len(gene_variant_effects(full, ds, "G", edge, counts=counts)) == 0
    assert counts["beyond_reference"] == 1


def test_bad_inputs_one_line(cohort, tmp_path, capsys):
    c = cohort
    base = ["score-variants", "--runs", c["tmp"] / "runs", "--dataset", c["tmp"] / "hap"]
    junk = tmp_path / "junk.vcf"
    junk.write_text("not a vcf\n")
    wrong = _sites_vcf(tmp_path / "wrong.vcf", [(TSS1, ".", "ACG", "A")])
    wrong_ref = c["seq"][TSS0 : TSS0 + 3] != "ACG"
    for extra, message in [
        (["--vcf", c["listed_vcf"], "--background", "NOBODY"], "not a sample"),
        (["--vcf", junk], "junk.vcf"),
        (["--vcf", c["listed_vcf"], "--batch-size", "0"], "--batch-size must be >= 1"),
        *([(["--vcf", wrong], "another genome build")] if wrong_ref else []),
    ]:
        out = tmp_path / "bad.tsv"
        assert cli.main([str(a) for a in [*base, *extra, "--out", out]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not out.exists()
    assert read_listed_variants(c["listed_vcf"])[1] == Counter(symbolic=1)


def test_alleles_scored_in_chunks_give_the_same_table(cohort, tmp_path, monkeypatch):
    from variformer.analysis import variant_effects

    whole = _score(cohort, "hap", tmp_path / "whole.tsv", "--background", "P1")
    monkeypatch.setattr(variant_effects, "CHUNK", 3)
    chunked = _score(cohort, "hap", tmp_path / "chunked.tsv", "--background", "P1")
    assert len(whole) == len(chunked) > 3 * 3
    pd.testing.assert_frame_equal(
        chunked.drop(columns=["effect_reference", "effect_background"]),
        whole.drop(columns=["effect_reference", "effect_background"]),
    )
    for col in ("effect_reference", "effect_background"):
        scale = np.abs(whole[col]).max()
        np.testing.assert_allclose(chunked[col], whole[col], rtol=0, atol=1e-5 * scale)
