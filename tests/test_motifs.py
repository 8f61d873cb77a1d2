"""Motif disruption (`variformer motifs`): scores and p-values against Biopython's ``Bio.motifs``
and exhaustive enumeration, strands, window edges, and the simulated cohort's planted motifs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from Bio import motifs as bio_motifs
from Bio.Seq import Seq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from variformer.analysis.motifs.matrices import MotifMatrix, load_jaspar, read_meme
from variformer.analysis.motifs.pvalues import (
    background_probs,
    encode_sequence,
    log_odds,
    pvalue_table,
)
from variformer.analysis.motifs.scan import (
    COLUMNS,
    KEYS,
    dataset_motif_disruption,
    motif_disruption,
)
from variformer.analysis.motifs.summary import summarize_disruption
from variformer.cli import main as cli_main

BASES = "ACGT"
UNIFORM = np.full(4, 0.25)
SKEWED = np.array([0.3, 0.2, 0.2, 0.3])  # strand-symmetric, AT-rich


@pytest.fixture(scope="module")
def jaspar():
    return {m.matrix_id: m for m in load_jaspar(2024)}


def _bio_pssm(motif: MotifMatrix, bg, pseudocount=0.8):
    """The same matrix as a Biopython PSSM: counts + pseudocount * bg, log2 odds vs bg."""
    counts = {b: [float(x) for x in motif.counts[:, i]] for i, b in enumerate(BASES)}
    fpm = bio_motifs.matrix.FrequencyPositionMatrix(BASES, counts)
    pwm = fpm.normalize(pseudocounts={b: pseudocount * bg[i] for i, b in enumerate(BASES)})
    return pwm.log_odds(background={b: float(bg[i]) for i, b in enumerate(BASES)})


def _random_seq(rng, n, bg=UNIFORM) -> str:
    return "".join(rng.choice(list(BASES), size=n, p=bg))


def _brute_sf(lo: np.ndarray, bg) -> tuple[np.ndarray, np.ndarray]:
    """Every w-mer's exact log-odds score and background probability (4**w of them)."""
    w = lo.shape[0]
    words = np.array(list(itertools.product(range(4), repeat=w)))
    return lo[np.arange(w), words].sum(axis=1), np.asarray(bg)[words].prod(axis=1)


# ---------------------------------------------------------------- hand-computed


def test_log_odds_and_pvalue_hand_computed():
    motif = MotifMatrix("T1", "toy", np.array([[8, 0, 0, 0], [0, 8, 0, 0], [0, 0, 4, 4]]))
    lo = log_odds(motif)
    # p = (count + 0.8 * 0.25) / (8 + 0.8), log2(p / 0.25)
    hi, zero, half = np.log2(8.2 / 8.8 / 0.25), np.log2(0.2 / 8.8 / 0.25), np.log2(4.2 / 8.8 / 0.25)
    np.testing.assert_allclose(lo[0], [hi, zero, zero, zero])
    np.testing.assert_allclose(lo[2], [zero, zero, half, half])
    table = pvalue_table(lo)
    # ACG and ACT both score the maximum: 2 of the 64 3-mers
    assert table.pvalue([[0, 1, 2]])[0] == pytest.approx(2 / 64)
    assert table.pvalue([[0, 1, 3]])[0] == pytest.approx(2 / 64)
    # A-C- with a G/T last (2) vs A-C-A: the 3rd column then scores 'zero'; ACA, ACC, + 2 above
    assert table.pvalue([[0, 1, 0]])[0] == pytest.approx(4 / 64)
    assert table.pvalue([[3, 3, 0]])[0] == pytest.approx(1.0)  # the minimum score


def test_snv_at_window_edges_hand_computed():
    motif = MotifMatrix("T1", "toy", np.array([[8, 0, 0, 0], [0, 8, 0, 0], [0, 0, 8, 0]]))
    lo = log_odds(motif)
    hi, zero = lo[0, 0], lo[0, 1]
    seq = "ACGTTTTTTTTTTCGT"  # ACG at the left edge on +, CGT (ACG on -) at the right edge
    v = pd.DataFrame({"pos": [1, len(seq)], "ref": ["A", "T"], "alt": ["G", "C"]})
    out = motif_disruption(seq, v, [motif], pvalue=1.0, method="log", show_neutral=True)
    first = out[(out["pos"] == 1) & (out["strand"] == "+")].iloc[0]
    # only one + window overlaps position 1 (windows off the sequence are not scored)
    assert first["ref_score"] == pytest.approx(3 * hi)
    assert first["alt_score"] == pytest.approx(2 * hi + zero)
    assert first["ref_p"] == pytest.approx(1 / 64)
    assert (first["direction"], first["effect"], first["motif_start"]) == ("decrease", "strong", 1)
    assert first["motif_pos"] == 1
    last = out[(out["pos"] == len(seq)) & (out["strand"] == "-")].iloc[0]
    assert last["ref_score"] == pytest.approx(3 * hi)
    # T>C at the last base: the - strand motif reads G at its first column -> A-column change
    assert last["alt_score"] == pytest.approx(2 * hi + zero)
    assert last["motif_start"] == len(seq) - 2 and last["motif_pos"] == 1
    assert last["allele_diff"] == pytest.approx((8.2 - 0.2) / 8.8)


# ---------------------------------------------------------------- Biopython cross-checks


@pytest.mark.parametrize("bg", [UNIFORM, SKEWED], ids=["uniform", "skewed"])
def test_log_odds_match_biopython(jaspar, bg):
    for mid in ("MA0080.7", "MA0139.2", "MA0035.5", "MA0108.3"):
        motif = jaspar[mid]
        pssm = _bio_pssm(motif, bg)
        np.testing.assert_allclose(log_odds(motif, bg), np.array([pssm[b] for b in BASES]).T)


def _bio_sf(dist, score: float) -> float:
    """P(S >= score) from Biopython's discretized background density."""
    i = max(0, int((score - dist.min_score + 0.5 * dist.step) // dist.step))
    return float(np.sum(dist.bg_density[i:]))


@pytest.mark.parametrize("mid", ["MA0080.7", "MA0002.3"])
def test_pvalues_match_biopython_score_distribution(jaspar, mid):
    motif, bg = jaspar[mid], SKEWED
    pssm = _bio_pssm(motif, bg)
    bg_dict = {b: float(bg[i]) for i, b in enumerate(BASES)}
    dist = pssm.distribution(background=bg_dict, precision=400)
    lo = log_odds(motif, bg)
    table = pvalue_table(lo, bg)
    w = motif.width
    tol = w * (dist.step + table.granularity)  # both discretizations, worst case
    rng = np.random.default_rng(1)
    # windows from random to near-consensus, p from ~1 to ~1e-8
    best = lo.argmax(axis=1)
    for n_mut in range(0, w, 2):
        word = best.copy()
        word[rng.choice(w, n_mut, replace=False)] = rng.integers(0, 4, n_mut)
        score = float(lo[np.arange(w), word].sum())
        p = float(table.pvalue([word])[0])
        assert _bio_sf(dist, score + tol) <= p * (1 + 1e-9) + 1e-12
        assert p <= _bio_sf(dist, score - tol) * (1 + 1e-9) + 1e-12
    # the score threshold for p < 5e-5, as Biopython's threshold_fpr finds it
    t_bio, t_ours = dist.threshold_fpr(5e-5), table.score_threshold(5e-5)
    assert abs(t_bio - t_ours) <= tol + 0.5, (t_bio, t_ours)


@st.composite
def _matrices(draw):
    w = draw(st.integers(1, 6))
    counts = draw(
        st.lists(st.lists(st.integers(0, 30), min_size=4, max_size=4), min_size=w, max_size=w)
    )
    at = draw(st.floats(0.1, 0.4))
    bg = draw(st.sampled_from([UNIFORM, np.array([at, 0.5 - at, 0.5 - at, at])]))
    return MotifMatrix("H", "h", np.array(counts, dtype=float)), bg


@settings(max_examples=40, deadline=None)
@given(_matrices(), st.sampled_from([0.1, 0.01, 0.001]), st.integers(0, 2**31))
def test_pvalues_exact_against_enumeration(mb, granularity, seed):
    """p is exact for the rounded matrix, so the true P(S >= s) brackets it within w*g."""
    motif, bg = mb
    lo = log_odds(motif, bg)
    table = pvalue_table(lo, bg, granularity=granularity)
    scores, probs = _brute_sf(lo, bg)
    assert table.sf[0] == pytest.approx(1.0)
    assert np.all(np.diff(table.sf) <= 1e-15)  # a survival function
    w = motif.width
    slack = w * granularity + 1e-9
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 4, size=(20, w))
    p = table.pvalue(words)
    s = lo[np.arange(w), words].sum(axis=1)
    for si, pi in zip(s, p):
        assert (
            probs[scores >= si + slack].sum() - 1e-12
            <= pi
            <= probs[scores >= si - slack].sum() + 1e-12
        )
    # monotone: a higher (rounded) score never has a larger p-value
    ints = table.int_lo[np.arange(w), words].sum(axis=1)
    order = np.argsort(ints, kind="stable")
    assert np.all(np.diff(p[order]) <= 1e-15)


# ---------------------------------------------------------------- the disruption scan


def _reference_scan(seq: str, variants: pd.DataFrame, motif: MotifMatrix, bg):
    """motifbreakR's max-window rule, written with Biopython's PSSM on explicit strings."""
    pssm = _bio_pssm(motif, bg)
    rc = pssm.reverse_complement()
    w, out = motif.width, {}
    for r in variants.itertuples():
        i = r.pos - 1
        lo, hi = max(0, i - w + 1), min(len(seq), i + w)
        for allele in (r.ref, r.alt):
            sub = seq[lo:i] + allele + seq[i + 1 : hi]
            for strand, m in (("+", pssm), ("-", rc)):
                s = np.atleast_1d(m.calculate(Seq(sub))) if len(sub) >= w else []
                out[(r.pos, r.alt, strand, allele == r.alt)] = max(s) if len(s) else np.nan
    return out


@pytest.mark.parametrize("background", ["uniform", "window"])
def test_scan_matches_reference_and_threshold_is_a_filter(jaspar, background):
    rng = np.random.default_rng(3)
    seq = _random_seq(rng, 160, bg=np.array([0.35, 0.15, 0.15, 0.35]))
    spi1 = "".join(BASES[i] for i in jaspar["MA0080.7"].counts.argmax(axis=1))
    seq = seq[:60] + spi1 + seq[60 + len(spi1) :]  # a strong site for the filter to keep
    pos = np.unique(np.concatenate([[1, 2, 66, len(seq)], rng.choice(len(seq), 12) + 1]))
    ref = [seq[p - 1] for p in pos]
    alt = [BASES[(BASES.index(b) + int(rng.integers(1, 4))) % 4] for b in ref]
    v = pd.DataFrame({"chrom": "chr1", "pos": pos, "ref": ref, "alt": alt})
    motifs = [jaspar[m] for m in ("MA0080.7", "MA0139.2", "MA0108.3")]
    kw = dict(method="log", background=background)
    full = motif_disruption(seq, v, motifs, pvalue=1.0, show_neutral=True, **kw)
    bg = background_probs(background, seq)
    assert background == "uniform" or not np.allclose(bg, 0.25)
    for motif in motifs:
        expect = _reference_scan(seq, v, motif, bg)
        got = full[full["matrix_id"] == motif.matrix_id]
        # every SNV x strand has a row (p < 1 for all but the worst possible window)
        assert len(got) == 2 * len(v)
        for r in got.itertuples():
            assert r.ref_score == pytest.approx(expect[(r.pos, r.alt, r.strand, False)], abs=1e-4)
            assert r.alt_score == pytest.approx(expect[(r.pos, r.alt, r.strand, True)], abs=1e-4)
            # the reported window holds the better allele's best score
            start0 = r.motif_start - 1
            assert start0 <= r.pos - 1 < start0 + motif.width
            allele = r.ref if r.ref_score >= r.alt_score else r.alt
            word = seq[start0 : r.pos - 1] + allele + seq[r.pos : start0 + motif.width]
            codes = np.array([BASES.index(b) for b in word])
            if r.strand == "-":
                codes = 3 - codes[::-1]  # the reverse complement, in motif orientation
            s = log_odds(motif, bg)[np.arange(motif.width), codes].sum()
            assert s == pytest.approx(max(r.ref_score, r.alt_score))
    # the default run is exactly the rows of the full run that pass the filters
    hits = motif_disruption(seq, v, motifs, **kw)
    keep = full[(np.minimum(full["ref_p"], full["alt_p"]) < 5e-5) & (full["effect"] != "neutral")]
    assert len(hits) > 0 and 66 in set(hits["pos"])
    pd.testing.assert_frame_equal(hits, keep.reset_index(drop=True), check_dtype=False)
    assert list(hits.columns[: len(COLUMNS)]) == COLUMNS


def _revcomp_case(seq: str, v: pd.DataFrame):
    comp = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
    rc_seq = "".join(comp[b] for b in reversed(seq))
    rc_v = pd.DataFrame(
        {
            "pos": len(seq) + 1 - v["pos"],
            "ref": v["ref"].map(comp),
            "alt": v["alt"].map(comp),
        }
    )
    return rc_seq, rc_v


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text("ACGT", min_size=12, max_size=60),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 3)), min_size=1, max_size=6),
    st.sampled_from(["uniform", "window"]),
)
def test_reverse_complement_symmetry_and_labels(seq, snvs, background):
    """The reverse-complemented window gives the same hits with strands swapped; labels follow
    the numbers (direction = sign of delta; effect = |allele_diff| band)."""
    rows = {}
    for at, shift in snvs:
        p = at % len(seq) + 1
        rows[p] = (seq[p - 1], BASES[(BASES.index(seq[p - 1]) + shift) % 4])
    v = pd.DataFrame([(p, r, a) for p, (r, a) in rows.items()], columns=["pos", "ref", "alt"])
    toy = [
        MotifMatrix("A3", "a", np.array([[9, 0, 1, 0], [0, 9, 0, 1], [1, 1, 8, 0]])),
        MotifMatrix("B5", "b", np.array([[5, 5, 0, 0], [0, 0, 0, 10], [10, 0, 0, 0]] * 2)[:5]),
    ]
    kw = dict(pvalue=0.2, method="log", background=background, show_neutral=True)
    a = motif_disruption(seq, v, toy, **kw)
    b = motif_disruption(*_revcomp_case(seq, v), toy, **kw)
    b = b.assign(
        pos=len(seq) + 1 - b["pos"],
        strand=b["strand"].map({"+": "-", "-": "+"}),
    )
    key = ["pos", "matrix_id", "strand"]
    cols = ["ref_score", "alt_score", "ref_p", "alt_p", "delta"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key], check_dtype=False)
    np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), atol=1e-9)
    delta = a["alt_score"] - a["ref_score"]
    assert (
        a["direction"] == np.where(delta > 0, "increase", np.where(delta < 0, "decrease", "none"))
    ).all()
    mag = a["allele_diff"].abs()
    assert ((mag >= 0.7) == (a["effect"] == "strong")).all()
    assert (((mag >= 0.4) & (mag < 0.7)) == (a["effect"] == "weak")).all()
    # within a matrix, a higher score never has a larger p-value
    for _, g in a.groupby("matrix_id"):
        s = np.concatenate([g["ref_score"], g["alt_score"]])
        p = np.concatenate([g["ref_p"], g["alt_p"]])
        o = np.argsort(s)
        assert np.all(np.diff(p[o]) <= 1e-12)


def test_windows_with_n_are_not_scored():
    motif = MotifMatrix("T1", "toy", np.array([[6, 0, 2, 0], [0, 6, 0, 2], [2, 0, 6, 0]]))
    v = pd.DataFrame({"pos": [3], "ref": ["G"], "alt": ["T"]})
    out = motif_disruption("ANGTACGT", v, [motif], pvalue=1.0, method="log", show_neutral=True)
    plus = out[out["strand"] == "+"].iloc[0]
    # windows ANG and NGT hold an N; only GTA scores, for both alleles
    lo = log_odds(motif)
    assert plus["ref_score"] == pytest.approx(lo[0, 2] + lo[1, 3] + lo[2, 0])
    assert plus["motif_start"] == 3


def test_bad_input_is_one_clear_error():
    motif = MotifMatrix("T1", "toy", np.array([[8, 0, 0, 0], [0, 8, 0, 0]]))
    seq = "ACGTACGT"
    cases = [
        (pd.DataFrame({"pos": [2], "ref": ["A"], "alt": ["G"]}), "disagrees with the window"),
        (pd.DataFrame({"pos": [9], "ref": ["A"], "alt": ["G"]}), "outside the window"),
        (pd.DataFrame({"pos": [1], "ref": ["A"], "alt": ["AT"]}), "is not a SNV"),
        (pd.DataFrame({"pos": [1], "ref": ["A"]}), "needs columns"),
    ]
    for v, msg in cases:
        with pytest.raises(InputError, match=msg):
            motif_disruption(seq, v, [motif])
    ok = pd.DataFrame({"pos": [1], "ref": ["A"], "alt": ["G"]})
    with pytest.raises(InputError, match="pvalue"):
        motif_disruption(seq, ok, [motif], pvalue=0)
    with pytest.raises(InputError, match="background"):
        motif_disruption(seq, ok, [motif], background="genome")
    with pytest.raises(InputError, match="JASPAR release"):
        load_jaspar(1999)


def test_one_hot_input_and_window_background():
    rng = np.random.default_rng(5)
    seq = _random_seq(rng, 50)
    oh = np.eye(4, dtype=np.float32)[[BASES.index(b) for b in seq]]
    oh[10] = 0.5 * (oh[10] + np.eye(4)[0])  # a het row is not a base
    codes = encode_sequence(oh)
    assert codes[10] == 4 and "".join("ACGTN"[c] for i, c in enumerate(codes) if i != 10) == (
        seq[:10] + seq[11:]
    )
    counts = np.bincount(codes[codes < 4], minlength=4)
    at = (counts[0] + counts[3] + 1) / (counts.sum() + 2) / 2  # one pseudo-count per base pair
    at = round(at * 200) / 200  # on the 0.005 grid
    np.testing.assert_allclose(background_probs("window", oh), [at, 0.5 - at, 0.5 - at, at])


# ---------------------------------------------------------------- MEME files


MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF SPI1_HUMAN.H11MO.0.A
letter-probability matrix: alength= 4 w= 4 nsites= 10 E= 0
0.1 0.2 0.3 0.4
0.7 0.1 0.1 0.1
0.0 0.0 1.0 0.0
0.2 0.2 0.2 0.4

MOTIF MA0004.1 Arnt
letter-probability matrix: alength= 4 w= 2 nsites= 20 E= 0
0.5 0.5 0 0
0 0 0 1
URL http://jaspar.genereg.net/matrix/MA0004.1

MOTIF plain_id
letter-probability matrix: alength= 4 w= 1
0.25 0.25 0.25 0.25
"""


def test_read_meme_matches_biopython(tmp_path):
    path = tmp_path / "m.meme"
    path.write_text(MEME)
    ours = read_meme(path)
    assert [(m.matrix_id, m.tf) for m in ours] == [
        ("SPI1_HUMAN.H11MO.0.A", "SPI1"),
        ("MA0004.1", "Arnt"),
        ("plain_id", "plain_id"),
    ]
    with open(path) as fh:
        theirs = list(bio_motifs.parse(fh, "minimal"))
    for m, b in zip(ours, theirs):
        np.testing.assert_allclose(m.counts, np.array([b.counts[x] for x in BASES]).T)
    assert ours[2].counts.sum() == pytest.approx(20)  # nsites defaults to 20


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("ALPHABET= ACDEFGHIKLMNPQRSTVWY\n", "not DNA"),
        ("MOTIF x\nletter-probability matrix: alength= 4 w= 2\n0.1 0.9 0 0\n", "row 2"),
        ("MOTIF x\nletter-probability matrix: alength= 4\n", "w="),
        ("MEME version 4\n", "no MEME letter-probability"),
    ],
)
def test_read_meme_errors(tmp_path, text, msg):
    path = tmp_path / "bad.meme"
    path.write_text(text)
    with pytest.raises(InputError, match=msg):
        read_meme(path)


# ---------------------------------------------------------------- summary


def test_summarize_disruption_hand_counted():
    key = dict(gene="G", chrom="chr1", ref="A", alt="C")
    hits = pd.DataFrame(
        [
            {**key, "pos": 10, "direction": "decrease", "effect": "strong"},
            {**key, "pos": 10, "direction": "increase", "effect": "weak"},
            {**key, "pos": 20, "direction": "decrease", "effect": "weak"},
        ]
    )
    hsvs = pd.DataFrame(
        [
            {**key, "pos": p, "model": m}
            for m, ps in (("enet", [10, 30]), ("vf", [10, 20, 30, 40]))
            for p in ps
        ]
    )
    s = summarize_disruption(hits, hsvs).set_index("model")
    assert s.loc[
        "enet", ["n_hsvs", "n_disrupting", "n_hits", "n_increase", "n_decrease"]
    ].tolist() == [2, 1, 2, 1, 1]
    assert s.loc["enet", "rate"] == pytest.approx(0.5)
    assert s.loc["vf", ["n_hsvs", "n_disrupting", "n_hits", "n_decrease", "n_strong"]].tolist() == [
        4,
        2,
        3,
        2,
        1,
    ]
    assert s.loc["vf", "frac_decrease"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------- the simulated cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("motifs")
    sim = simulate_cohort(root / "sim", people=80, genes=8, seq_len=4096, seed=0)
    truth = pd.read_csv(sim.truth, sep="\t", dtype={"chrom": str})
    genes = sorted(set(truth["gene"]))
    prep_dataset(
        vcfs=[sim.vcf], fasta=sim.fasta, annotation=sim.gtf, genes=genes, seq_len=4096,
        out=root / "ds", seed=0, progress=False,
    )  # fmt: skip
    planted = pd.read_csv(sim.motifs, sep="\t", dtype={"chrom": str, "causal_pos1": str})
    return {"root": root, "ds": root / "ds", "truth": truth, "planted": planted, "genes": genes}


def test_planted_motif_breaking_snvs_are_flagged(cohort, jaspar):
    """Every planted motif-breaking causal SNV breaks its planted TF's motif (a decrease, on the
    planted strand, at the planted site); every motif-creating one makes it. Matrices too short
    to ever reach p < 5e-5 (7-mers: at best 4**-7 = 6.1e-5) cannot be called and are skipped."""
    truth = cohort["truth"]
    hits = dataset_motif_disruption(
        cohort["ds"], cohort["genes"], list(jaspar.values()), method="log"
    )
    planted = cohort["planted"].set_index(["gene", "causal_pos1"])
    checked = {"break": 0, "create": 0}
    for r in truth[truth["motif_effect"].isin(["break", "create"])].itertuples():
        mid = r.motif.split(":")[0]
        best_p = pvalue_table(log_odds(jaspar[mid])).sf[-1]
        if best_p >= 5e-5:
            continue
        site = planted.loc[(r.gene, str(r.pos))]
        h = hits[(hits["gene"] == r.gene) & (hits["pos"] == r.pos) & (hits["matrix_id"] == mid)]
        on_site = h[h["strand"] == site["strand"]]
        assert len(on_site) == 1, (r, h)
        hit = on_site.iloc[0]
        assert hit["tf"] == jaspar[mid].tf
        assert hit["motif_start"] == site["start0"] + 1
        if r.motif_effect == "break":
            assert hit["direction"] == "decrease" and hit["ref_p"] < 5e-5, hit
        else:
            assert hit["direction"] == "increase" and hit["alt_p"] < 5e-5, hit
        checked[r.motif_effect] += 1
    assert checked["break"] >= 5 and checked["create"] >= 5, checked


# ---------------------------------------------------------------- command line


def _run(capsys, *args):
    code = cli_main(["motifs", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.err, cap.out


def test_cli_all_snvs_and_hsv_table(cohort, capsys, tmp_path):
    gene = cohort["genes"][0]
    out = tmp_path / "motifs.tsv"
    code, err, text = _run(
        capsys, "--dataset", cohort["ds"], "--gene", gene, "--variants", "all", "--out", out
    )
    assert code == 0, err
    assert "in 1 genes" in text
    table = pd.read_csv(out, sep="\t", dtype={"chrom": str})
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert set(table["gene"]) == {gene}
    # the same through an HSV table in an analysis directory (two models share one SNV)
    an = tmp_path / "AN"
    an.mkdir()
    snvs = table[KEYS].drop_duplicates().head(2)
    hsv = pd.concat([snvs.assign(model="enet"), snvs.head(1).assign(model="variformer")])
    hsv.to_csv(an / "hsvs.tsv", sep="\t", index=False)
    out2 = tmp_path / "hsv.tsv"
    code, err, _ = _run(capsys, "--dataset", cohort["ds"], "--analysis", an, "--out", out2)
    assert code == 0, err
    again = pd.read_csv(out2, sep="\t", dtype={"chrom": str})
    expect = table.merge(snvs, on=KEYS)
    pd.testing.assert_frame_equal(again, expect)


def test_cli_meme_and_errors(cohort, capsys, tmp_path):
    meme = tmp_path / "m.meme"
    meme.write_text(MEME)
    out = tmp_path / "o.tsv"
    base = ["--dataset", cohort["ds"], "--gene", cohort["genes"][0]]
    code, err, text = _run(capsys, *base, "--variants", "all", "--meme", meme, "--out", out)
    assert code == 0 and "3 matrices" in text, err
    bad_ref = tmp_path / "bad.tsv"
    truth = cohort["truth"]
    v = truth[truth["gene"] == cohort["genes"][0]].iloc[:1][["chrom", "pos", "ref", "alt"]]
    wrong = next(b for b in BASES if b not in (v["ref"].iloc[0], v["alt"].iloc[0]))
    v.assign(ref=wrong).to_csv(bad_ref, sep="\t", index=False)
    cases = [
        ([*base, "--out", tmp_path / "x.tsv"], "--analysis AN"),
        ([*base, "--variants", "all", "--out", out], "already exists"),
        ([*base, "--variants", bad_ref, "--out", tmp_path / "x.tsv"], "disagrees"),
        (["--dataset", cohort["ds"], "--gene", "NOPE", "--out", tmp_path / "x.tsv"], "NOPE"),
        (
            [*base, "--variants", "all", "--jaspar-release", "1999", "--out", tmp_path / "x.tsv"],
            "1999",
        ),
    ]
    for args, msg in cases:
        code, err, _ = _run(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and msg in err, (args, err)
        assert not (tmp_path / "x.tsv").exists()
