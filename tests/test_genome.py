"""Contig-name harmonization, windows and one-hot encoding against hand-written truth."""

import numpy as np
import pytest

from data_prep import InputError
from data_prep.genome import ContigMap, canonical_contig, encode, one_hot, tss_window


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("chr1", "1"),
        ("1", "1"),
        ("CHR7", "7"),
        ("chrX", "X"),
        ("chrM", "MT"),
        ("MT", "MT"),
        ("M", "MT"),
        ("chrMT", "MT"),
        ("chr1_KI270706v1_random", "1_KI270706v1_random"),
    ],
)
def test_canonical_contig(name, key):
    assert canonical_contig(name) == key


def test_contig_map_finds_every_spelling():
    vcf = ContigMap(["1", "2", "X", "MT"], source="VCF")
    assert [vcf.get(c) for c in ("chr1", "1", "chrX", "chrM", "MT", "chrY")] == [
        "1",
        "1",
        "X",
        "MT",
        "MT",
        None,
    ]
    fasta = ContigMap(["chr1", "chrM"], source="FASTA")
    assert fasta.require("MT") == "chrM" and fasta.require("1") == "chr1"
    with pytest.raises(InputError, match="contig 'chr9' is not in the FASTA"):
        fasta.require("chr9")


def test_window_and_encoding():
    w = tss_window("chr1", 1000, "-", 256)
    assert (w.start0, w.end0, w.tss0) == (872, 1128, 1000) and w.tss0 - w.start0 == 256 // 2
    codes = encode("ACGTacgtNRYn")
    np.testing.assert_array_equal(codes, [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4])
    oh = one_hot(codes)
    assert oh.shape == (12, 4) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh[:4], np.eye(4)) and np.testing.assert_array_equal(oh[8:], 0)
