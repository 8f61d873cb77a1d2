"""Annotations that do not fit the dataset are harmonized with a note or refused, never turned
into a finding: ChromHMM contig spellings, bad or overlapping segments, unannotated windows."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import InputError
from data_prep.genome import Window
from variformer.analysis import chromatin

HSVS = pd.DataFrame({"model": "m", "gene": "G", "chrom": "1", "pos": [11, 21, 401]})
WINDOWS = {"G": Window("1", 0, 1000, 500, "+")}


def _bed(tmp_path, text: str, name: str = "s.bed"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chr1\t10\t10\t1_TssA\n", r"s.bed:1: a segment needs 0 <= start < end, got 10-10"),
        ("chr1\t20\t10\t1_TssA\n", r"got 20-10"),
        ("chr1\t-5\t10\t1_TssA\n", r"got -5-10"),
        (
            "chr1\t0\t100\t1_TssA\nchr1\t50\t200\t18_Quies\n",
            r"s.bed:2: segment chr1:50-200 overlaps the one before it",
        ),
        (
            "chr1\t100\t200\tA\nchr2\t0\t50\tB\nchr1\t0\t150\tC\n",
            r"s.bed:1: segment chr1:100-200 overlaps",
        ),
    ],
)
def test_bad_segments_are_refused_with_the_line(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        chromatin.read_chromhmm(_bed(tmp_path, text))


def test_adjacent_segments_and_other_contigs_are_fine(tmp_path):
    seg = chromatin.read_chromhmm(
        _bed(tmp_path, "chr1\t0\t100\tA\nchr1\t100\t200\tB\nchr2\t50\t60\tA\n")
    )
    assert list(seg["end0"]) == [100, 200, 60]


def test_chr_prefixed_segments_are_renamed_to_the_datasets_contigs_with_a_note(tmp_path):
    """'chr1' in the BED, '1' in the dataset: the same enrichment as a BED spelled '1'."""
    text = "chr1\t0\t250\t1_TssA\nchr1\t250\t1000\t18_Quies\n"
    seg = chromatin.read_chromhmm(_bed(tmp_path, text))
    renamed, note = chromatin.harmonize_contigs(seg, {"1"}, name="s.bed")
    assert note == "chromatin: s.bed contigs renamed to the dataset's (chr1 -> 1)"
    same = chromatin.read_chromhmm(_bed(tmp_path, text.replace("chr1", "1"), "plain.bed"))
    a = chromatin.chromatin_enrichment(HSVS, WINDOWS, {"s": renamed})
    b = chromatin.chromatin_enrichment(HSVS, WINDOWS, {"s": same})
    pd.testing.assert_frame_equal(a, b)
    # TssA: 2 HSVs observed, expected 0.25 * 3 (hand-computed)
    row = a[(a["gene"] == "G") & (a["state"] == "1_TssA")].iloc[0]
    assert (row["observed"], row["expected"]) == (2, pytest.approx(0.75))
    unchanged, none = chromatin.harmonize_contigs(same, {"1"})
    assert none == "" and unchanged is same


def test_an_unannotated_window_is_said_and_never_enriched(tmp_path):
    seg = chromatin.read_chromhmm(_bed(tmp_path, "1\t5000\t6000\t1_TssA\n"))
    notes: list[str] = []
    out = chromatin.chromatin_enrichment(HSVS, WINDOWS, {"s": seg}, notes=notes)
    assert out.empty and notes == ["chromatin: no annotation for gene G"]


def test_motif_variants_honour_the_chromosome_column(small_dataset):
    """A variant table spelled 'chr1' finds the SNVs of a dataset spelled '1' (and the other
    way round); a row whose chrom/pos is not in its gene's window is refused, not scanned at
    a wrong place."""
    import numpy as np

    from data_prep import open_dataset
    from data_prep.genome import canonical_contig
    from variformer.analysis.motifs.matrices import MotifMatrix
    from variformer.analysis.motifs.scan import dataset_motif_disruption

    ds = open_dataset(small_dataset)
    gene = ds.genes[0]
    v = ds.variants(gene)[["chrom", "pos", "ref", "alt"]].head(5).copy()
    other = (
        "chr" + v["chrom"].astype(str)
        if not str(v["chrom"].iloc[0]).startswith("chr")
        else v["chrom"].str[3:]
    )
    motif = [MotifMatrix("M1", "TF", np.eye(4)[[0, 1, 2, 3, 0, 1]] * 10 + 1)]
    same = dataset_motif_disruption(ds, [gene], motif, variants=v, pvalue=0.5, show_neutral=True)
    spelled = dataset_motif_disruption(
        ds, [gene], motif, variants=v.assign(chrom=other), pvalue=0.5, show_neutral=True
    )
    assert len(same) > 0
    pd.testing.assert_frame_equal(same.drop(columns="chrom"), spelled.drop(columns="chrom"))
    assert {canonical_contig(str(c)) for c in spelled["chrom"]} == {
        canonical_contig(str(c)) for c in v["chrom"]
    }
    wrong = v.assign(gene=gene, chrom="99")
    with pytest.raises(InputError, match=rf"variant 99:\d+ is listed for {gene}, whose window is"):
        dataset_motif_disruption(ds, [gene], motif, variants=wrong)
