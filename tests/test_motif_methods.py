"""Motif scoring methods (motifbreakR's ``default`` and ``ic``, and ``log``), the database a hit
comes from, and HOCOMOCO v11 / v12 MEME files.

Expected values are computed here from motifbreakR's documented formulas (``preparePWM`` and
``scoreSnpList`` in its ``R/scoreMotif.R``) with hand-written matrices and plain loops, not by
the code under test.
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from variformer.analysis.motifs import (
    COLUMNS,
    MotifMatrix,
    dataset_motif_disruption,
    load_jaspar,
    log_odds,
    motif_database_name,
    motif_disruption,
    read_meme,
    scoring_matrix,
)
from variformer.cli import main as cli_main

BASES = "ACGT"
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}

# 4 columns, 10 sites each: a strong (A), a fairly strong (C), a two-way (A/C) and a weak column
COUNTS = np.array([[10, 0, 0, 0], [0, 8, 1, 1], [5, 5, 0, 0], [2, 2, 3, 3]], dtype=float)
TOY = MotifMatrix("T4", "toy", COUNTS)
# motifbreakR's default by hand: P = (count + 0.25) / 11 and omega = max(P) - min(P) =
# (max count - min count) / 11, so M = P * omega = (count + 0.25) * (range of counts) / 121:
# column 1: (10.25 * 10, 0.25 * 10) / 121; column 2: (0.25, 8.25, 1.25, 1.25) * 8 / 121; ...
# written here in units of 1/484 (= 1/121 / 4) so that every score is an exact integer
M_UNITS = np.array([[410, 10, 10, 10], [8, 264, 40, 40], [105, 105, 5, 5], [9, 9, 13, 13]])
M_DEFAULT = M_UNITS / 484


def _revcomp(word: str) -> str:
    return "".join(COMP[b] for b in reversed(word))


def _score(word: str, units=M_UNITS) -> int:
    return int(sum(units[j][BASES.index(b)] for j, b in enumerate(word)))


def _best(seq: str, pos1: int, allele: str, w: int = 4):
    """motifbreakR's maxThresholdWindows over the windows holding the SNV: the best score over
    both strands, ties to the leftmost window, then to + (R's which.max, column-major)."""
    s = seq[: pos1 - 1] + allele + seq[pos1:]
    best = None
    for k in range(pos1 - w, pos1):  # 0-based starts, left to right
        if k < 0 or k + w > len(s):
            continue
        for strand in "+-":
            word = s[k : k + w] if strand == "+" else _revcomp(s[k : k + w])
            if best is None or _score(word) > best[0]:
                best = (_score(word), k, strand)
    return best


def _pvalue(units: int) -> float:
    """P(S >= s) over all 256 uniform 4-mers, by enumeration."""
    scores = [_score("".join(w)) for w in itertools.product(BASES, repeat=4)]
    return sum(s >= units for s in scores) / 256


def test_default_matrix_is_motifbreakr_weighted_sum():
    np.testing.assert_allclose(scoring_matrix(TOY, "default"), M_DEFAULT, rtol=1e-12)
    # the background plays no part in the default matrix (motifbreakR splits 1 evenly)
    skewed = scoring_matrix(TOY, "default", [0.4, 0.1, 0.1, 0.4])
    np.testing.assert_allclose(skewed, M_DEFAULT, rtol=1e-12)


@pytest.mark.parametrize("bg", [[0.25] * 4, [0.3, 0.2, 0.2, 0.3]])
def test_ic_matrix_is_relative_entropy_weighted(bg):
    p = (COUNTS + 0.25) / 11  # motifbreakR: (pwm * scount + 0.25) / (scount + 1)
    omega = (p * np.log2(p / np.array(bg))).sum(axis=1)  # Equation 4.2, per column
    np.testing.assert_allclose(scoring_matrix(TOY, "ic", bg), p * omega[:, None], rtol=1e-12)
    # the first column by hand, uniform background: 10.25/11 log2(41/11) + 3 * 0.25/11 log2(1/11)
    if bg[0] == 0.25:
        w0 = 10.25 / 11 * np.log2(41 / 11) + 3 * 0.25 / 11 * np.log2(1 / 11)
        assert scoring_matrix(TOY, "ic")[0, 0] == pytest.approx(10.25 / 11 * w0)


def test_log_matrix_unchanged_and_motifbreakr_log_up_to_base():
    # this package's log: log2((count + 0.8 * bg) / (n + 0.8) / bg)
    expect = np.log2((COUNTS + 0.8 * 0.25) / 10.8 / 0.25)
    np.testing.assert_allclose(scoring_matrix(TOY, "log"), expect, rtol=1e-12)
    np.testing.assert_allclose(log_odds(TOY), expect, rtol=1e-12)
    # motifbreakR's method="log" is ln(P / bg) with P = (count + 0.25) / 11: the same matrix
    # for a pseudocount of 1, in nats instead of bits
    mb_log = np.log((COUNTS + 0.25) / 11 / 0.25)
    np.testing.assert_allclose(scoring_matrix(TOY, "log", pseudocount=1.0), mb_log / np.log(2))


# a + site ACAG at 3-6 and a - site ATGT (ACAT read on -) at 9-12, 1-based
SEQ = "TTACAGTTATGTTT"
SNVS = pd.DataFrame({"pos": [3, 4, 5, 6, 10, 11], "ref": list("ACAGTG"), "alt": list("TAGCAC")})


def test_default_scan_hand_computed():
    out = motif_disruption(
        SEQ, SNVS, [TOY], pvalue=1.0, show_neutral=True, granularity=1 / 484
    )  # granularity 1/484: the matrix is exact on the p-value grid
    assert out["method"].eq("default").all() and out["database"].eq(".").all()
    # one row per SNV and matrix: the best strand, as motifbreakR reports
    assert len(out) == len(SNVS) and not out.duplicated(["pos", "alt", "matrix_id"]).any()
    lo, hi = M_UNITS.min(axis=1).sum(), M_UNITS.max(axis=1).sum()  # 32 and 792
    for r in out.itertuples():
        ref = _best(SEQ, r.pos, r.ref)
        alt = _best(SEQ, r.pos, r.alt)
        assert r.ref_score == pytest.approx(ref[0] / 484)
        assert r.alt_score == pytest.approx(alt[0] / 484)
        d = alt[0] - ref[0]  # alleleDiff = scoreAlt - scoreRef
        assert r.delta == pytest.approx(d / 484, abs=1e-8)
        assert r.ref_p == pytest.approx(_pvalue(ref[0]))
        assert r.alt_p == pytest.approx(_pvalue(alt[0]))
        assert r.ref_pct == pytest.approx((ref[0] - lo) / (hi - lo))  # pctRef
        assert r.alt_pct == pytest.approx((alt[0] - lo) / (hi - lo))
        assert r.allele_effect_size == pytest.approx(d / hi, abs=1e-8)  # alleleDiff / max
        # varEff: |d| >= 0.7 strong, > 0.4 weak, else neutral
        mag = abs(d) / 484
        assert r.effect == ("strong" if mag >= 0.7 else "weak" if mag > 0.4 else "neutral")
        hit = ref if ref[0] >= alt[0] else alt
        assert (r.strand, r.motif_start) == (hit[2], hit[1] + 1)
    by_pos = out.set_index("pos")
    # A>T at the + site's first column: the same window, -omega_1 * (P[A] - P[T]) = -(10/11)^2
    assert by_pos.loc[3, "delta"] == pytest.approx(-((10 / 11) ** 2))
    assert by_pos.loc[3, ["effect", "direction", "strand"]].tolist() == ["strong", "decrease", "+"]
    assert by_pos.loc[3, ["motif_start", "motif_pos"]].tolist() == [3, 1]
    assert by_pos.loc[3, "ref_p"] == pytest.approx(4 / 256)  # A C {A,C} {G,T}
    # G>C at the - site: the motif reads C>G at its 2nd column, -(8/11) * (8.25 - 1.25) / 11
    assert by_pos.loc[11, "delta"] == pytest.approx(-8 / 11 * 7 / 11)
    assert by_pos.loc[11, ["effect", "strand", "motif_start", "motif_pos"]].tolist() == [
        "weak",
        "-",
        9,
        2,
    ]
    # A>G at the two-way column: the best ALT window ties the REF one, nothing changes
    assert by_pos.loc[5, ["delta", "effect", "direction"]].tolist() == [0.0, "neutral", "none"]
    # the default run drops the neutral rows
    kept = motif_disruption(SEQ, SNVS, [TOY], pvalue=1.0, granularity=1 / 484)
    assert sorted(kept["pos"]) == [3, 11]


def test_log_scan_keeps_its_rows_and_rule():
    """``log`` keeps one row per strand and its effect on P[ref] - P[alt] at the SNV column."""
    out = motif_disruption(SEQ, SNVS, [TOY], pvalue=1.0, method="log", show_neutral=True)
    assert out["method"].eq("log").all()
    assert len(out) == 2 * len(SNVS)
    p = (COUNTS + 0.2) / 10.8  # the log method's probabilities (pseudocount 0.8, uniform)
    first = out[(out["pos"] == 3) & (out["strand"] == "+")].iloc[0]
    assert first["allele_diff"] == pytest.approx(p[0, 0] - p[0, 3])
    assert first["ref_score"] == pytest.approx(np.log2(p[[0, 1, 2, 3], [0, 1, 0, 2]] / 0.25).sum())
    mag = out["allele_diff"].abs()
    strong, weak = mag >= 0.7, (mag >= 0.4) & (mag < 0.7)
    assert (out["effect"] == np.where(strong, "strong", np.where(weak, "weak", "neutral"))).all()


def test_ic_scan_uses_its_matrix():
    out = motif_disruption(SEQ, SNVS, [TOY], pvalue=1.0, method="ic", show_neutral=True)
    m = scoring_matrix(TOY, "ic")
    # the + site ACAG is REF's best window of the first SNV
    assert out.iloc[0]["ref_score"] == pytest.approx(m[[0, 1, 2, 3], [0, 1, 0, 2]].sum())
    assert out["method"].eq("ic").all() and len(out) == len(SNVS)


def test_method_is_checked_and_defaults_to_motifbreakr():
    for fn in (motif_disruption, dataset_motif_disruption):
        assert inspect.signature(fn).parameters["method"].default == "default"
    with pytest.raises(InputError, match="default, ic, log"):
        motif_disruption(SEQ, SNVS, [TOY], method="notrans")


def test_jaspar_matrices_name_their_database():
    jaspar = load_jaspar(2024)
    assert {m.database for m in jaspar} == {"JASPAR2024 CORE vertebrates"}
    assert motif_database_name(jaspar) == "JASPAR2024 CORE vertebrates"
    assert motif_database_name([TOY]) == "custom"
    assert motif_database_name([jaspar[0], TOY]) == "JASPAR2024 CORE vertebrates + custom"
    seq = "".join(BASES[i] for i in jaspar[0].counts.argmax(axis=1)) * 2
    v = pd.DataFrame({"pos": [2], "ref": [seq[1]], "alt": ["A" if seq[1] != "A" else "C"]})
    out = motif_disruption(seq, v, jaspar[:1], pvalue=1.0, show_neutral=True)
    assert out["database"].eq("JASPAR2024 CORE vertebrates").all()
    assert list(out.columns) == COLUMNS


# ---------------------------------------------------------------- HOCOMOCO MEME files

HOCOMOCO_V11 = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF AHR_HUMAN.H11MO.0.B
letter-probability matrix: alength= 4 w= 4 nsites= 40 E= 0
0.250000\t0.125000\t0.500000\t0.125000
0.000000\t0.000000\t0.000000\t1.000000

0.000000\t0.000000\t1.000000\t0.000000
0.000000\t1.000000\t0.000000\t0.000000
URL http://hocomoco11.autosome.org/motif/AHR_HUMAN.H11MO.0.B

MOTIF NKX21_HUMAN.H11MO.0.A
letter-probability matrix: alength= 4 w= 3 nsites= 500 E= 1.2e-30
0.9 0.0 0.1 0.0
0.0 1.0 0.0 0.0
0.0 0.0 0.0 1.0
URL http://hocomoco11.autosome.org/motif/NKX21_HUMAN.H11MO.0.A

MOTIF ZN384_MOUSE.H11MO.1.D
letter-probability matrix: alength= 4 w= 2
0.5 0.5 0.0 0.0
0.0 0.0 0.5 0.5
"""

HOCOMOCO_V12 = """MEME version 5

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF AHR.H12CORE.0.P.B
letter-probability matrix: alength= 4 w= 3 nsites= 250 E= 0
 0.200000  0.200000  0.400000  0.200000
 0.000000  0.000000  0.000000  1.000000
 0.000000  0.000000  1.000000  0.000000
URL https://hocomoco12.autosome.ru/motif/AHR.H12CORE.0.P.B

MOTIF NKX2-1.H12CORE.1.SM.B
letter-probability matrix: alength= 4 w= 2 nsites= 1000 E= 0
 0.970000  0.010000  0.010000  0.010000
 0.010000  0.970000  0.010000  0.010000
URL https://hocomoco12.autosome.ru/motif/NKX2-1.H12CORE.1.SM.B
"""


def test_read_hocomoco_v11(tmp_path):
    path = tmp_path / "HOCOMOCOv11_full_HUMAN_mono_meme_format.meme"
    path.write_text(HOCOMOCO_V11)
    ms = read_meme(path)
    assert [(m.matrix_id, m.tf, m.width) for m in ms] == [
        ("AHR_HUMAN.H11MO.0.B", "AHR", 4),
        ("NKX21_HUMAN.H11MO.0.A", "NKX21", 3),
        ("ZN384_MOUSE.H11MO.1.D", "ZN384", 2),
    ]
    # counts are probabilities x nsites (20 without nsites=); the blank row and URLs skipped
    np.testing.assert_allclose(ms[0].counts[0], [10, 5, 20, 5])
    np.testing.assert_allclose(ms[0].counts[1:], [[0, 0, 0, 40], [0, 0, 40, 0], [0, 40, 0, 0]])
    np.testing.assert_allclose(ms[1].counts[0], [450, 0, 50, 0])
    np.testing.assert_allclose(ms[2].counts, [[10, 10, 0, 0], [0, 0, 10, 10]])
    assert {m.database for m in ms} == {"HOCOMOCO v11"}
    assert motif_database_name(ms) == "HOCOMOCO v11"


def test_read_hocomoco_v12(tmp_path):
    path = tmp_path / "H12CORE_meme_format.meme"
    path.write_text(HOCOMOCO_V12)
    ms = read_meme(path)
    assert [(m.matrix_id, m.tf, m.width) for m in ms] == [
        ("AHR.H12CORE.0.P.B", "AHR", 3),
        ("NKX2-1.H12CORE.1.SM.B", "NKX2-1", 2),
    ]
    np.testing.assert_allclose(ms[0].counts[0], [50, 50, 100, 50])
    np.testing.assert_allclose(ms[1].counts.sum(axis=1), [1000, 1000])
    assert motif_database_name(ms) == "HOCOMOCO v12"
    # scanned, the hits carry the database; motifbreakR's default is the default method
    seq = "CCAATGCC"
    v = pd.DataFrame({"pos": [5], "ref": ["T"], "alt": ["C"]})
    out = motif_disruption(seq, v, ms, pvalue=1.0, show_neutral=True)
    assert set(out["database"]) == {"HOCOMOCO v12"} and set(out["method"]) == {"default"}


def test_meme_database_from_file_name_else_the_name(tmp_path):
    plain = "MOTIF m1 TF1\nletter-probability matrix: alength= 4 w= 1\n0.25 0.25 0.25 0.25\n"
    named = tmp_path / "hocomoco_v11_subset.meme"
    named.write_text(plain)
    assert motif_database_name(read_meme(named)) == "HOCOMOCO v11"
    other = tmp_path / "my_motifs.meme"
    other.write_text(plain)
    assert motif_database_name(read_meme(other)) == "my_motifs.meme"
    mixed = tmp_path / "mixed.meme"
    mixed.write_text(HOCOMOCO_V11 + "\n" + plain)
    assert motif_database_name(read_meme(mixed)) == "mixed.meme"
    protein = tmp_path / "aa.meme"
    protein.write_text("MOTIF p\nletter-probability matrix: alength= 20 w= 1\n" + "0.05 " * 20)
    with pytest.raises(InputError, match="alength= 20"):
        read_meme(protein)


# ---------------------------------------------------------------- command line


def _run(capsys, *args):
    code = cli_main(["motifs", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.err, cap.out


def test_cli_method_and_database_columns(small_dataset, capsys, tmp_path):
    meme = tmp_path / "HOCOMOCOv11_full_HUMAN_mono_meme_format.meme"
    meme.write_text(HOCOMOCO_V11)
    base = ["--dataset", small_dataset, "--gene", "BTNL3", "--variants", "all"]
    out = tmp_path / "log.tsv"
    loose = ["--pvalue", "1", "--show-neutral"]
    code, err, text = _run(capsys, *base, "--meme", meme, "--method", "log", *loose, "--out", out)
    assert code == 0, err
    assert "3 matrices from HOCOMOCO v11" in text and "method log" in text
    table = pd.read_csv(out, sep="\t", dtype={"chrom": str})
    assert len(table) > 0 and list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert set(table["method"]) == {"log"} and set(table["database"]) == {"HOCOMOCO v11"}
    # without --method: motifbreakR's default, one row per SNV and matrix
    out2 = tmp_path / "default.tsv"
    code, err, text = _run(capsys, *base, "--meme", meme, *loose, "--out", out2)
    assert code == 0, err
    table2 = pd.read_csv(out2, sep="\t", dtype={"chrom": str})
    assert set(table2["method"]) == {"default"}
    assert not table2.duplicated(["pos", "alt", "matrix_id"]).any()
    assert len(table2) == len(table[["pos", "alt", "matrix_id"]].drop_duplicates())


def test_cli_bad_method_is_one_line(small_dataset, capsys, tmp_path):
    out = tmp_path / "x.tsv"
    base = ["--dataset", small_dataset, "--gene", "BTNL3", "--variants", "all"]
    code, err, _ = _run(capsys, *base, "--method", "notrans", "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "'notrans'" in err and "default, ic, log" in err
    assert not out.exists()
