"""Reference windows and their coordinates, one-hot encoding, contig-name harmonization.

The coordinate helpers every stage shares live here, once: :func:`tss_window` (the
TSS-centred window), :func:`crop_bounds` (the TSS-centred crop of a window that a model sees),
:func:`tss_distance` (a variant's signed distance to the TSS) and :func:`in_window` (whether a
variant lies in a window, whatever the contig spelling).

Codes: A=0, C=1, G=2, T=3, anything else (N, IUPAC ambiguity codes) = 4, which one-hot
encodes as all zeros. Windows are 0-based half-open and padded with N beyond contig ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError

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


def crop_bounds(window_len: int, seq_len: int | None = None) -> tuple[int, int]:
    """0-based half-open ``(start, end)`` of the ``seq_len`` crop of a window, TSS-centred.

    The TSS at index ``window_len // 2`` of the window stays at index ``seq_len // 2`` of the
    crop. ``seq_len=None`` is the whole window.

    Raises
    ------
    InputError
        If ``seq_len`` exceeds the window.
    """
    window_len = int(window_len)
    seq_len = window_len if seq_len is None else int(seq_len)
    if not 1 <= seq_len <= window_len:
        raise InputError(
            f"seq_len={seq_len} does not fit the dataset's {window_len} bp windows; lower it"
        )
    start = window_len // 2 - seq_len // 2
    return start, start + seq_len


def tss_distance(pos1, window) -> np.ndarray:
    """Strand-aware distance to the TSS: ``(pos1 - 1 - tss0)``, negated on the minus strand.

    Negative = upstream (the simulator's ``dist_to_tss``). ``pos1`` is 1-based (scalar or
    array); ``window`` has ``tss0`` (0-based) and ``strand``. Returns int64.
    """
    d = np.asarray(pos1, dtype=np.int64) - 1 - int(window.tss0)
    return -d if window.strand == "-" else d


def in_window(chrom, pos1, window) -> np.ndarray:
    """Which variants (``chrom``, 1-based ``pos1``: arrays) lie inside ``window``, whatever
    the contig spelling ('chr1' and '1' are one contig, see :func:`canonical_contig`)."""
    key = canonical_contig(str(window.chrom))
    same = np.array([canonical_contig(str(c)) == key for c in chrom], dtype=bool)
    pos1 = np.asarray(pos1, dtype=np.int64)
    return same & (pos1 > int(window.start0)) & (pos1 <= int(window.end0))


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


def open_fasta(path):
    """Open an indexed reference FASTA (plain or bgzipped) after checking its index fits it.

    Raises
    ------
    InputError
        Missing file or ``.fai``; gzip (not bgzip) compression; a bgzipped FASTA without
        ``.gzi``; an index that does not describe this file (stale: the FASTA changed after
        ``samtools faidx``).

    Returns
    -------
    pysam.FastaFile
    """
    import pysam

    path = Path(path)
    if not path.is_file():
        raise InputError(f"FASTA not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(18)
    compressed = head[:2] == b"\x1f\x8b"
    if compressed and not (len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC"):
        raise InputError(
            f"{path} is gzip-compressed, not bgzip-compressed (samtools cannot index it); re-compress "
            f"it with bgzip (`zcat {path} | bgzip > {path.stem}.fa.gz`), then `samtools faidx` it"
        )
    fai = Path(f"{path}.fai")
    if not fai.is_file():
        raise InputError(f"{path} has no .fai index; create one with `samtools faidx {path}`")
    if compressed and not Path(f"{path}.gzi").is_file():
        raise InputError(f"{path} has no .gzi index; create it with `samtools faidx {path}`")
    if not compressed:
        stale = _fai_mismatch(path, fai)
        if stale:
            raise InputError(
                f"the index {fai} does not match {path} ({stale}): the FASTA changed after it was "
                f"indexed; re-create it with `samtools faidx {path}`"
            )
    try:
        return pysam.FastaFile(str(path))
    except Exception as err:
        raise InputError(
            f"cannot open FASTA {path} ({err}); re-create its index with `samtools faidx {path}`"
        ) from None


def _fai_mismatch(path: Path, fai: Path) -> str | None:
    """Why a plain FASTA's .fai does not describe it, or None.

    Each entry must point just past its own ``>name`` header line, its first line must end
    where the line width says, and its sequence must end (newline or end of file) where its
    length says. Reads a few bytes per contig.
    """
    size = path.stat().st_size
    with open(fai) as fh, open(path, "rb") as fa:

        def at(offset: int, n: int) -> bytes:
            fa.seek(offset)
            return fa.read(n)

        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5 or not all(x.isdigit() for x in parts[1:5]):
                return f"malformed index line {line.strip()!r}"
            name, length, offset, bases, width = parts[0], *map(int, parts[1:5])
            start = max(0, offset - 4096)
            before = at(start, offset - start)
            header = before[:-1].rsplit(b"\n", 1)[-1].rstrip(b"\r").split()
            if not before.endswith(b"\n") or not header or header[0] != b">" + name.encode():
                return f"contig {name} is not where the index says"
            if bases <= 0 or length == 0:
                continue
            eol = width - bases
            n_full = (length - 1) // bases  # full lines before the last one
            end = offset + n_full * width + (length - n_full * bases)  # just past the last base
            if end > size:
                return f"contig {name} runs past the end of the file"
            if length > bases and at(offset + bases, eol) not in (b"\n", b"\r\n"):
                return f"contig {name} has another line width than the index says"
            first_line = at(offset, min(bases, length))
            last_line = at(offset + n_full * width, length - n_full * bases)
            if any(c in line for line in (first_line, last_line) for c in (b"\n", b"\r", b">")):
                return f"contig {name} has another line width than the index says"
            tail = at(end, 1)
            if tail not in (b"", b"\n", b"\r"):
                return f"contig {name} is longer than the index says"
    return None
