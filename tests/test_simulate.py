"""`variformer simulate`: the simulated cohort parses with real readers and matches its truth."""

from __future__ import annotations

import argparse
import hashlib
import re

import cyvcf2
import numpy as np
import pandas as pd
import pysam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import linregress, norm, rankdata

from core.errors import InputError
from data_prep.normalize import inverse_normal_transform
from data_prep.simulate import default_h2, genetics, motifs, simulate_cohort, write

PEOPLE, GENES, SEQ_LEN = 200, 4, 8192
STATES_18 = {
    "1_TssA", "2_TssFlnk", "3_TssFlnkU", "4_TssFlnkD", "5_Tx", "6_TxWk", "7_EnhG1", "8_EnhG2", "9_EnhA1",
    "10_EnhA2", "11_EnhWk", "12_ZNF/Rpts", "13_Het", "14_TssBiv", "15_EnhBiv", "16_ReprPC", "17_ReprPCWk", "18_Quies",
}  # fmt: skip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "cohort"
    return simulate_cohort(out, people=PEOPLE, genes=GENES, seq_len=SEQ_LEN, seed=1)


def _read_gtf(path) -> pd.DataFrame:
    gtf = pd.read_csv(path, sep="\t", comment="#", header=None, dtype={0: str})
    gtf.columns = [
        "chrom",
        "source",
        "feature",
        "start",
        "end",
        "score",
        "strand",
        "frame",
        "attrs",
    ]
    for key in ("gene_id", "gene_name", "gene_type"):
        gtf[key] = gtf["attrs"].str.extract(rf'{key} "([^"]+)"')[0]
    return gtf


def _tables(s):
    truth = pd.read_csv(s.truth, sep="\t", dtype={"chrom": str})
    genes = pd.read_csv(s.truth_genes, sep="\t", dtype={"chrom": str})
    return truth, genes


def _dosages(vcf_path, chrom, lo1, hi1):
    """Biallelic SNV dosages in [lo1, hi1] (1-based), shape=(n_people, n_sites), read with cyvcf2."""
    vcf = cyvcf2.VCF(str(vcf_path))
    pos, cols, refalt = [], [], []
    for rec in vcf(f"{chrom}:{max(1, lo1)}-{hi1}"):
        if len(rec.ALT) != 1:
            continue
        gt = rec.genotype.array()[:, :2]
        pos.append(rec.POS)
        refalt.append((rec.REF, rec.ALT[0]))
        cols.append((gt > 0).sum(axis=1))
    return np.array(pos), np.array(cols, dtype=np.float64).T, refalt


def test_files_parse_with_real_readers(cohort):
    fasta = pysam.FastaFile(str(cohort.fasta))
    vcf = cyvcf2.VCF(str(cohort.vcf))
    lengths = dict(zip(fasta.references, fasta.lengths))
    assert dict(zip(vcf.seqnames, [fasta.get_reference_length(c) for c in vcf.seqnames])) == lengths
    assert all(re.fullmatch(r"chr\d+", c) for c in lengths)
    samples = list(vcf.samples)
    assert len(samples) == PEOPLE == len(set(samples))
    assert all(re.fullmatch(r"GTEX-[1-9A-Z][0-9A-Z]{3,4}", s) for s in samples)

    n, last = 0, {}
    for rec in vcf:
        n += 1
        assert fasta.fetch(rec.CHROM, rec.POS - 1, rec.POS) == rec.REF  # REF agrees with ref.fa
        assert last.get(rec.CHROM, 0) < rec.POS  # sorted, one record per site
        last[rec.CHROM] = rec.POS
        assert rec.FORMAT == ["GT"]
        g = rec.genotype.array()
        assert not g[:, 2].any()  # unphased
        assert g[:, :2].max() <= len(rec.ALT) and g[:, :2].min() >= 0
        assert len({rec.REF, *rec.ALT}) == 1 + len(rec.ALT)
    assert n == cohort.n_variants

    expr = pd.read_csv(cohort.expression, sep="\t")
    assert list(expr.columns[:4]) == ["#chr", "start", "end", "gene_id"]
    assert list(expr.columns[4:]) == samples  # expression columns are the VCF samples
    _truth, genes = _tables(cohort)
    assert sorted(expr["gene_id"]) == sorted(genes["gene_id"])
    assert all(re.fullmatch(r"ENSG\d{11}\.\d+", g) for g in expr["gene_id"])
    # Each gene's values are GTEx's inverse-normal transform of something: ranks -> norm.ppf.
    for _, row in expr.iterrows():
        v = row.iloc[4:].to_numpy(np.float64)
        np.testing.assert_allclose(
            np.sort(v), norm.ppf(np.arange(1, PEOPLE + 1) / (PEOPLE + 1)), atol=1e-6
        )
    tbx = pysam.TabixFile(str(cohort.expression))
    for _, g in genes.iterrows():
        hits = list(tbx.fetch(g["chrom"], int(g["tss0"]), int(g["tss0"]) + 1))
        assert [h.split("\t")[3] for h in hits] == [g["gene_id"]]

    # TSS from the GTF convention (start-1 on +, end-1 on -) is where truth_genes says.
    gtf = _read_gtf(cohort.gtf)
    gene_rows = gtf[gtf["feature"] == "gene"].set_index("gene_name")
    assert {"gene", "transcript", "exon"} <= set(gtf["feature"])
    assert set(gene_rows["strand"]) == {"+", "-"}
    assert (gene_rows["gene_type"] == "lncRNA").sum() == 1
    for _, g in genes.iterrows():
        r = gene_rows.loc[g["gene"]]
        assert (
            r["gene_id"] == g["gene_id"] and r["strand"] == g["strand"] and r["chrom"] == g["chrom"]
        )
        assert (r["start"] - 1 if r["strand"] == "+" else r["end"] - 1) == g["tss0"]
    # At least one window runs off its contig, for prep's N padding.
    off = [
        (t - SEQ_LEN // 2 < 0) or (t - SEQ_LEN // 2 + SEQ_LEN > lengths[c])
        for c, t in zip(genes["chrom"], genes["tss0"])
    ]
    assert any(off)
    assert set(genes["gene"]) >= {"BTNL3", "ZFP57", "PPIF"}


def test_real_prep_readers_accept_the_files(cohort):
    annotation = pytest.importorskip("data_prep.annotation")
    expression = pytest.importorskip("data_prep.expression")
    ann = annotation.read_annotation(cohort.gtf)
    _, genes = _tables(cohort)
    tss = ann.set_index("gene_name")["tss0"]
    assert all(tss[g] == t for g, t in zip(genes["gene"], genes["tss0"]))
    expr = expression.read_expression_bed(cohort.expression)
    assert expr.shape == (GENES, PEOPLE)


def test_truth_matches_vcf_and_requested_h2(cohort):
    truth, genes = _tables(cohort)
    assert set(truth.columns) >= {
        "gene",
        "gene_id",
        "chrom",
        "pos",
        "ref",
        "alt",
        "beta",
        "maf",
        "dist_to_tss",
        "motif",
        "motif_effect",
        "h2",
    }
    assert sorted(genes["h2_target"]) == sorted(default_h2(GENES))
    assert (
        0.0 in set(genes["h2_target"]) and genes.set_index("gene").loc["BTNL3", "h2_target"] == 0.6
    )
    expr = pd.read_csv(cohort.expression, sep="\t").set_index("gene_id")
    for _, g in genes.iterrows():
        mine = truth[truth["gene"] == g["gene"]]
        assert len(mine) == g["n_causal"]
        if g["h2_target"] == 0:
            assert len(mine) == 0 and g["h2_realized"] == 0
            continue
        assert len(mine) >= 2
        lo1 = g["tss0"] - SEQ_LEN // 2 + 1
        pos, dos, refalt = _dosages(cohort.vcf, g["chrom"], lo1, lo1 + SEQ_LEN - 1)
        idx = [
            int(np.flatnonzero(pos == p)[0]) for p in mine["pos"]
        ]  # every causal SNV is in the VCF window
        assert [refalt[i] for i in idx] == list(zip(mine["ref"], mine["alt"]))
        freq = dos[:, idx].mean(axis=0) / 2
        np.testing.assert_allclose(np.minimum(freq, 1 - freq), mine["maf"], atol=1e-5)
        sign = 1 if g["strand"] == "+" else -1
        assert list((mine["pos"] - 1 - g["tss0"]) * sign) == list(mine["dist_to_tss"])
        genetic = dos[:, idx] @ mine["beta"].to_numpy()
        # The genetic value rebuilt from the files has exactly the requested variance ...
        assert genetic.var() == pytest.approx(g["h2_target"], rel=1e-3)
        assert abs(g["h2_realized"] - g["h2_target"]) < 0.1
        # ... and explains about h2 of the (inverse-normal transformed) expression.
        y = expr.loc[g["gene_id"]].iloc[3:].to_numpy(np.float64)
        # Rank-based INT compresses large (rare-variant) effects, so the explained share can drop.
        assert 0.5 * g["h2_target"] < np.corrcoef(genetic, y)[0, 1] ** 2 < g["h2_target"] + 0.12
    # Roles: at least one common and one rare causal SNV over the cohort, and distal ones.
    assert (truth["maf"] >= 0.05).any() and (truth["maf"] < 0.05).any()
    assert (truth["dist_to_tss"].abs() > SEQ_LEN * 0.1).any()
    assert (truth["motif"] != ".").mean() > 0.5  # most causal SNVs sit in planted motifs


def _harmonic_expectations(n_hap):
    """Neutral coalescent: E[#sites with i derived copies] is proportional to 1/i (Watterson)."""
    i = np.arange(1, n_hap)
    rare = (1 / i)[np.minimum(i, n_hap - i) / n_hap < 0.05].sum() / (1 / i).sum()
    classes = np.histogram(i / n_hap, bins=DAF_EDGES, weights=1 / i)[0] / (1 / i).sum()
    return rare, classes, (1 / i).sum()


DAF_EDGES = np.array([0.0, 0.1, 0.5, 1.0 + 1e-9])  # derived-allele-frequency classes


def test_cohort_spectrum_has_rare_and_common_snvs(cohort):
    vcf = cyvcf2.VCF(str(cohort.vcf))
    dac = np.array(
        [(r.genotype.array()[:, :2] > 0).sum() for r in vcf]
    )  # derived = ALT (REF is ancestral)
    n_hap = 2 * PEOPLE
    maf = np.minimum(dac, n_hap - dac) / n_hap
    assert (maf < 0.01).any() and (maf < 0.05).any() and (maf > 0.05).any()
    rare, _classes, _ = _harmonic_expectations(n_hap)
    # Loose: ~130 sites on a few short contigs share few genealogies.
    assert (maf < 0.05).mean() == pytest.approx(rare, abs=0.25)
    share = np.histogram(dac / n_hap, bins=DAF_EDGES)[0] / len(dac)
    assert share[0] > max(share[1], share[2])  # low-frequency derived alleles dominate


def test_coalescent_spectrum_and_density_match_neutral_theory():
    people, length = 200, 1_000_000
    sites = genetics.simulate_sites(length, people, 5)
    n_hap = 2 * people
    dac = (sites.hap > 0).sum(axis=1)
    maf = np.minimum(dac, n_hap - dac) / n_hap
    rare, classes, harmonic = _harmonic_expectations(n_hap)
    assert (maf < 0.05).mean() == pytest.approx(rare, abs=0.05)
    share = np.histogram(dac / n_hap, bins=DAF_EDGES)[0] / len(dac)
    np.testing.assert_allclose(share, classes, atol=0.05)
    # Watterson: E[S] = 4 Ne mu L * H_{n-1}; on the order of 100-300 per 49 kb window.
    theta = 4 * genetics.NE * genetics.MUTATION_RATE * length
    assert len(dac) == pytest.approx(theta * harmonic, rel=0.2)
    assert (np.diff(sites.pos0) > 0).all() and sites.pos0.max() < length


def test_default_density_is_human_like(tmp_path):
    s = simulate_cohort(tmp_path / "demo")  # the defaults: 300 people, 5 genes, 49,152 bp
    _, genes = _tables(s)
    vcf = cyvcf2.VCF(str(s.vcf))
    per_window = [
        sum(1 for _ in vcf(f"{c}:{max(1, t - 24576 + 1)}-{t + 24576}"))
        for c, t in zip(genes["chrom"], genes["tss0"])
    ]
    # ~100-300 SNVs per 49 kb window (the edge gene's window is partly off its contig).
    assert 80 <= np.median(per_window) <= 350
    assert len(genes) == 5 and sorted(genes["h2_target"]) == [0.0, 0.1, 0.25, 0.4, 0.6]


def _hashes(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes(tmp_path):
    kw = dict(people=60, genes=3, seq_len=4096)
    a = simulate_cohort(tmp_path / "a", seed=7, **kw)
    b = simulate_cohort(tmp_path / "b", seed=7, **kw)
    c = simulate_cohort(tmp_path / "c", seed=8, **kw)
    ha, hb, hc = _hashes(a.out), _hashes(b.out), _hashes(c.out)
    assert len(ha) == 16 and ha == hb
    for name in ("ref.fa", "cohort.vcf.gz", "expression.bed.gz", "truth.tsv"):
        assert ha[name] != hc[name]


def _pwm(matrix_id):
    """Log-odds from pyjaspar's counts, computed here independently of data_prep.simulate.motifs."""
    from pyjaspar import jaspardb

    m = jaspardb(release=motifs.JASPAR_RELEASE).fetch_motif_by_id(matrix_id)
    counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T
    p = (counts + 0.01 * counts.sum(1, keepdims=True)) / (1.04 * counts.sum(1, keepdims=True))
    return np.log2(p / 0.25)


def _best_placement(lo_odds, seq, offset):
    """Best (score, start, strand) over placements of the PWM covering seq[offset]."""
    w = lo_odds.shape[0]
    best = (-np.inf, None, None)
    for start in range(offset - w + 1, offset + 1):
        win = seq[start : start + w]
        for strand, s in (("+", win), ("-", (3 - win)[::-1])):
            score = lo_odds[np.arange(w), s].sum()
            if score > best[0]:
                best = (score, start, strand)
    return best


def _score(lo_odds, seq, start, strand):
    w = lo_odds.shape[0]
    win = seq[start : start + w]
    return lo_odds[np.arange(w), win if strand == "+" else (3 - win)[::-1]].sum()


def test_motif_causals_break_or_create_planted_motifs(cohort):
    truth, _ = _tables(cohort)
    planted = pd.read_csv(cohort.motifs, sep="\t", dtype={"chrom": str, "causal_pos1": str})
    fasta = pysam.FastaFile(str(cohort.fasta))
    flagged = truth[truth["motif"] != "."]
    assert len(flagged) >= 3 and set(flagged["motif_effect"]) <= {"break", "create"}
    assert set(truth.loc[truth["motif"] == ".", "motif_effect"]) <= {"none"}
    code = {b: i for i, b in enumerate("ACGT")}
    for _, r in flagged.iterrows():
        matrix_id = r["motif"].split(":")[0]
        lo = _pwm(matrix_id)
        w = lo.shape[0]
        ref = np.array([code[b] for b in fasta.fetch(r["chrom"], r["pos"] - w, r["pos"] + w - 1)])
        alt = ref.copy()
        assert ref[w - 1] == code[r["ref"]]
        alt[w - 1] = code[r["alt"]]
        strong, weak = (ref, alt) if r["motif_effect"] == "break" else (alt, ref)
        score, start, strand = _best_placement(lo, strong, w - 1)
        lo_s, hi_s = lo.min(axis=1).sum(), lo.max(axis=1).sum()
        assert (score - lo_s) / (hi_s - lo_s) >= 0.8  # a real binding site on the strong allele
        assert _score(lo, weak, start, strand) < score - 1.0  # the other allele weakens it
        hit = planted[
            (planted["causal_pos1"] == str(r["pos"])) & (planted["matrix_id"] == matrix_id)
        ]
        assert len(hit) == 1 and hit["start0"].iloc[0] <= r["pos"] - 1 < hit["end0"].iloc[0]


def test_chromhmm_and_finemap_layouts(cohort):
    fasta = pysam.FastaFile(str(cohort.fasta))
    hmm = pd.read_csv(
        cohort.chromhmm,
        sep="\t",
        header=None,
        names=["chrom", "start", "end", "state"],
        dtype={"chrom": str},
    )
    assert set(hmm["state"]) <= STATES_18
    for chrom, seg in hmm.groupby("chrom", sort=False):
        # Tiles the whole contig without gaps, in 200-bp bins.
        assert seg["start"].iloc[0] == 0 and seg["end"].iloc[-1] == fasta.get_reference_length(
            chrom
        )
        assert (seg["start"].to_numpy()[1:] == seg["end"].to_numpy()[:-1]).all()
        assert (seg["start"] % 200 == 0).all()
    planted = pd.read_csv(cohort.motifs, sep="\t", dtype={"chrom": str})
    for _, m in planted.iterrows():
        over = hmm[
            (hmm["chrom"] == m["chrom"]) & (hmm["start"] < m["end0"]) & (hmm["end"] > m["start0"])
        ]
        assert over["state"].str.contains("Tss|Enh").any()

    truth, genes = _tables(cohort)
    fm = pd.read_csv(cohort.finemap, sep="\t", dtype={"CHROM": str, "eQTL": str})
    assert list(fm.columns) == ["TISSUE", "GENE", "eQTL", "CHROM", "POS", "Probability"]
    assert fm["Probability"].between(0.1, 1.0).all()
    assert (fm["eQTL"] == fm["CHROM"] + "_" + fm["POS"].astype(str)).all()
    heritable = set(genes.loc[genes["h2_target"] > 0, "gene_id"])
    assert set(fm["GENE"]) <= heritable
    vcf = cyvcf2.VCF(str(cohort.vcf))
    for _, r in fm.iterrows():
        assert len(list(vcf(f"chr{r['CHROM']}:{r['POS']}-{r['POS']}"))) == 1
    # Derived from the truth: most fine-mapped eQTLs are causal or in LD with one; some causal hit.
    causal = set(zip(truth["gene_id"], truth["pos"]))
    assert any((g, p) in causal for g, p in zip(fm["GENE"], fm["POS"]))


def test_signif_pairs_are_linregress_of_expression_on_dosage(cohort):
    """Every biallelic SNV of a window, recomputed with scipy from the VCF and the expression BED."""
    pairs = pd.read_csv(cohort.eqtls, sep="\t", compression="gzip")
    assert cohort.eqtls.name == "signif_variant_gene_pairs.txt.gz"
    assert list(pairs.columns) == [
        "variant_id", "gene_id", "tss_distance", "ma_samples", "ma_count", "maf", "pval_nominal",
        "slope", "slope_se", "pval_nominal_threshold", "min_pval_nominal", "pval_beta",
    ]  # fmt: skip
    threshold = 1e-3  # stated in the docstrings and the README
    assert (pairs["pval_nominal_threshold"] == threshold).all()
    assert (pairs["pval_nominal"] < threshold).all()
    gtf = _read_gtf(cohort.gtf)
    assert set(pairs["gene_id"]) <= set(gtf.loc[gtf["feature"] == "gene", "gene_id"])
    _, genes = _tables(cohort)
    expr = pd.read_csv(cohort.expression, sep="\t").set_index("gene_id")
    fm = pd.read_csv(cohort.finemap, sep="\t", dtype={"CHROM": str})
    n_fm_in = 0
    for _, g in genes.iterrows():
        lo1 = g["tss0"] - SEQ_LEN // 2 + 1
        pos, dos, refalt = _dosages(cohort.vcf, g["chrom"], lo1, lo1 + SEQ_LEN - 1)
        y = expr.loc[g["gene_id"]].iloc[3:].to_numpy(np.float64)
        fits = [linregress(dos[:, i], y) for i in range(len(pos))]
        p = np.array([f.pvalue for f in fits])
        ids = [f"{g['chrom']}_{q}_{r}_{a}_b38" for q, (r, a) in zip(pos, refalt)]
        mine = pairs[pairs["gene_id"] == g["gene_id"]].set_index("variant_id")
        sig = np.flatnonzero(p < threshold)
        assert sorted(mine.index) == sorted(ids[i] for i in sig)
        for i in sig:
            row = mine.loc[ids[i]]
            assert row["pval_nominal"] == pytest.approx(p[i], rel=1e-5)
            assert row["slope"] == pytest.approx(fits[i].slope, rel=1e-5)
            assert row["slope_se"] == pytest.approx(fits[i].stderr, rel=1e-5)
            # GTEx/FastQTL: variant position minus the 1-based TSS, not strand-corrected
            assert row["tss_distance"] == pos[i] - (g["tss0"] + 1)
            alt = dos[:, i].sum()
            minor = dos[:, i] if alt <= PEOPLE else 2 - dos[:, i]
            assert row["ma_count"] == minor.sum() and row["ma_samples"] == (minor > 0).sum()
            assert row["maf"] == pytest.approx(minor.sum() / (2 * PEOPLE), rel=1e-5)
            assert row["min_pval_nominal"] == pytest.approx(p.min(), rel=1e-5)
            assert row["pval_beta"] == pytest.approx(min(1.0, len(pos) * p.min()), rel=1e-5)
        # fine-mapped SNVs were tested: in the file exactly when significant
        for q in fm.loc[fm["GENE"] == g["gene_id"], "POS"]:
            i = int(np.flatnonzero(pos == q)[0])
            assert (ids[i] in mine.index) == (p[i] < threshold)
            n_fm_in += ids[i] in mine.index
    assert n_fm_in >= 1 and len(pairs) > n_fm_in  # some positives, some candidate negatives


def test_elastic_net_recovers_heritable_gene_only(cohort):
    from sklearn.linear_model import ElasticNetCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split

    _, genes = _tables(cohort)
    expr = pd.read_csv(cohort.expression, sep="\t").set_index("gene_id")
    r2 = {}
    for _, g in genes.iterrows():
        lo1 = g["tss0"] - SEQ_LEN // 2 + 1
        _, dos, _ = _dosages(cohort.vcf, g["chrom"], lo1, lo1 + SEQ_LEN - 1)
        y = expr.loc[g["gene_id"]].iloc[3:].to_numpy(np.float64)
        xtr, xte, ytr, yte = train_test_split(dos, y, test_size=0.3, random_state=0)
        model = ElasticNetCV(l1_ratio=0.5, cv=5, random_state=0).fit(xtr, ytr)
        r2[g["h2_target"]] = r2_score(yte, model.predict(xte))
    assert r2[0.6] > 0.2
    assert r2[0.0] < 0.05


def test_existing_out_needs_force(tmp_path):
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="--force"):
        simulate_cohort(out, people=20, genes=1, seq_len=2048)
    assert (out / "keep.txt").exists()
    s = simulate_cohort(out, people=20, genes=1, seq_len=2048, force=True)
    assert not (out / "keep.txt").exists() and s.fasta.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(write, "write_finemap", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate_cohort(tmp_path / "cohort", people=20, genes=2, seq_len=2048)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(genes=3, h2=[0.1, 0.2]), "one per gene"),
        (dict(genes=2, h2=[1.5]), r"\[0, 1\]"),
        (dict(people=5), "people"),
        (dict(seq_len=100), "seq-len"),
    ],
)
def test_bad_input(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_cohort(tmp_path / "x", **{"people": 20, "seq_len": 2048, **kwargs})
    assert not (tmp_path / "x").exists()


def test_cli_hooks(tmp_path, capsys):
    from variformer.commands import simulate as simulate_command

    parser = argparse.ArgumentParser()
    simulate_command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "c"),
            "--people",
            "20",
            "--genes",
            "2",
            "--seq-len",
            "2048",
            "--h2",
            "0.3",
            "--seed",
            "3",
        ]
    )
    assert simulate_command.main(args) == 0
    assert "20 people" in capsys.readouterr().out
    genes = pd.read_csv(tmp_path / "c" / "truth_genes.tsv", sep="\t")
    assert list(genes["h2_target"]) == [0.3, 0.3]
    with pytest.raises(InputError):
        simulate_command.main(args)  # exists now, no --force


def test_multiallelic_sites_are_written_unphased(tmp_path):
    sites = {
        "chr1": genetics.Sites(
            np.array([9, 19]),
            [["A", "C", "T"], ["G", "A"]],
            np.array([[0, 1, 2, 1, 0, 0], [1, 1, 0, 1, 0, 0]], dtype=np.int8),
        )
    }
    path = tmp_path / "x.vcf.gz"
    assert (
        write.write_vcf(
            path, sites, {"chr1": 100}, ["GTEX-A", "GTEX-B", "GTEX-C"], np.random.default_rng(0)
        )
        == 2
    )
    recs = list(cyvcf2.VCF(str(path)))
    assert recs[0].ALT == ["C", "T"] and recs[0].POS == 10
    assert [str(x) for x in recs[0].gt_bases] == ["A/C", "C/T", "A/A"]
    assert recs[1].genotype.array()[:, :2].tolist() == [[1, 1], [0, 1], [0, 0]]
    assert not recs[1].genotype.array()[:, 2].any()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=60))
def test_inverse_normal_is_gtex_formula(values):
    y = np.array(values)
    z = inverse_normal_transform(y[None, :])[0]  # the one INT, as the simulator applies it
    np.testing.assert_allclose(z, norm.ppf(rankdata(y) / (len(y) + 1)))
    assert (np.diff(z[np.argsort(y, kind="stable")]) >= -1e-12).all()  # order preserving


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=12, max_size=40), st.sampled_from(motifs.ENHANCER_MOTIFS)
)
def test_motif_scan_matches_brute_force(seq, matrix_id):
    motif = motifs.load_motifs((matrix_id,))[0]
    seq = np.array(seq)
    got = motifs.scan(seq, motif)
    w = motif.width
    want = [[_score(motif.log_odds, seq, i, s) for s in "+-"] for i in range(len(seq) - w + 1)]
    np.testing.assert_allclose(got, np.array(want).reshape(-1, 2))
    rc = motifs.scan(3 - seq[::-1], motif)  # reverse complement swaps strands and offsets
    np.testing.assert_allclose(rc[::-1, ::-1], got)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_allele_relabelling_makes_ref_the_reference_base(data):
    m = data.draw(st.integers(1, 8))
    alleles = [data.draw(st.permutations("ACGT"))[: data.draw(st.integers(2, 4))] for _ in range(m)]
    ref = np.array(data.draw(st.lists(st.integers(0, 3), min_size=20, max_size=20)), dtype=np.int8)
    pos0 = np.sort(
        np.array(data.draw(st.lists(st.integers(0, 19), min_size=m, max_size=m, unique=True)))
    )
    sites = genetics.Sites(pos0, [list(a) for a in alleles], np.zeros((m, 2), np.int8))
    genetics.finalize_alleles(sites, ref, set())
    for k in range(m):
        assert sites.alleles[k][0] == "ACGT"[ref[pos0[k]]]
        assert len(set(sites.alleles[k])) == len(alleles[k])
        # A shift (mod 4) of every allele: differences between alleles are preserved.
        d_old = ["ACGT".index(a) - "ACGT".index(alleles[k][0]) for a in alleles[k]]
        d_new = ["ACGT".index(a) - "ACGT".index(sites.alleles[k][0]) for a in sites.alleles[k]]
        assert [x % 4 for x in d_old] == [x % 4 for x in d_new]


@pytest.mark.parametrize("n", [1, 5, 13])
def test_gene_names_are_the_simulated_genes(tmp_path, n):
    from data_prep.simulate import simulate_cohort
    from data_prep.simulate.layout import gene_names

    sim = simulate_cohort(tmp_path / "c", people=100, genes=n, seq_len=4096, seed=0)
    assert sorted(gene_names(n)) == sorted(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
