"""Reference windows, one-hot encoding and contig-name harmonization.

Codes: A=0, C=1, G=2, T=3, anything else (N, IUPAC ambiguity codes) = 4, which one-hot
encodes as all zeros. Windows are 0-based half-open and padded with N beyond contig ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from variformer.errors import InputError

N_CODE = 4
_LUT = np.full(256, N_CODE, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _LUT[ord(_b)] = _i
    _LUT[ord(_b.lower())] = _i
# one-hot rows per code; row 4 (N) is all zeros
ONE_HOT = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])


class Window(NamedTuple):
    """A TSS-centred window: 0-based half-open ``[start0, end0)``, ``tss0 - start0 == seq_len // 2``."""

    chrom: str
    start0: int
    end0: int
    tss0: int
    strand: str


def tss_window(chrom: str, tss0: int, strand: str, seq_len: int) -> Window:
    """The forward-strand window of ``seq_len`` bp with the TSS at index ``seq_len // 2``."""
    start0 = int(tss0) - seq_len // 2
    return Window(chrom, start0, start0 + seq_len, int(tss0), strand)


def encode(seq: str) -> np.ndarray:
    """Sequence -> codes, shape=(L,), uint8 (A,C,G,T = 0..3; anything else 4), case-insensitive."""
    return _LUT[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


def one_hot(codes: np.ndarray) -> np.ndarray:
    """Codes, shape=(..., L) -> float32 one-hot, shape=(..., L, 4); N is all zeros."""
    return ONE_HOT[codes]


def fetch_window(fasta, contig: str, start0: int, end0: int, contig_length: int) -> str:
    """Upper-case reference of ``[start0, end0)``, N-padded where it runs off the contig."""
    lo, hi = max(start0, 0), min(end0, contig_length)
    body = fasta.fetch(contig, lo, hi).upper() if hi > lo else ""
    return "N" * (lo - start0) + body + "N" * (end0 - max(hi, lo))


def canonical_contig(name: str) -> str:
    """Naming-independent key: 'chr1' and '1' -> '1'; 'chrM', 'MT', 'M' -> 'MT'."""
    key = name[3:] if name.lower().startswith("chr") else name
    return "MT" if key.upper() in ("M", "MT") else key


class ContigMap:
    """Find a contig by any of its spellings in one file's naming (e.g. VCF 'chr1' vs FASTA '1')."""

    def __init__(self, names: Iterable[str], *, source: str):
        self.source = source
        self.names = list(names)
        self._by_key: dict[str, str] = {}
        for name in self.names:
            self._by_key.setdefault(canonical_contig(name), name)

    def get(self, contig: str) -> str | None:
        if contig in self.names:
            return contig
        return self._by_key.get(canonical_contig(contig))

    def require(self, contig: str) -> str:
        found = self.get(contig)
        if found is None:
            shown = ", ".join(self.names[:5]) + (" ..." if len(self.names) > 5 else "")
            raise InputError(f"contig {contig!r} is not in the {self.source} (it has {shown})")
        return found
