"""A fast reader of a bgzipped text VCF's window: raw lines from tabix, GT parsed with numpy.

htslib (inside cyvcf2) parses every FORMAT field of every sample into typed arrays; prep only
needs each sample's two GT alleles. For the simple, common case this module fetches the
window's raw lines with ``pysam.TabixFile`` (.tbi or .csi index) and reads the GT characters of
all samples of all lines at once, vectorized on the line bytes. A window is taken by the fast
path only if **every** record starting in it is that simple case:

- the line has the 9 fixed columns plus exactly one column per sample, and no ``\\r`` (the
  CR of a CRLF line end is already gone: htslib's line reader drops it, for cyvcf2 too);
- POS is a decimal integer; REF is not empty; ALT is ``.`` (no ALT) or a comma list of non-empty
  alleles other than ``.``; FILTER and ID are not empty;
- FORMAT is ``GT`` or starts with ``GT:``;
- every sample's GT is exactly 3 characters: allele, ``|`` or ``/``, allele, each allele one
  digit ``0``-``9`` or ``.`` (missing -> -1); then the sample field ends (FORMAT ``GT``) or
  ends or goes on with ``:`` (FORMAT ``GT:...``).

Anything else in the window (a haploid call ``1``, a two-digit allele index, a triploid call, a
``.`` sample field, a missing FORMAT, a wrong number of columns, a stray CR, a non-ASCII byte, a
contig missing from the tabix index ...) sends the **whole window** to the cyvcf2 reader,
which also gives every error message for malformed input. BCF input always uses cyvcf2.

The record semantics (ID ``.`` for none, ALT ``.`` = no ALT, FILTER ``PASS`` or ``.`` = pass)
are those of cyvcf2, so :func:`data_prep.variants.read_window_variants` gives the same result
through either reader. Haplotype mode (:func:`data_prep.haplotype_records.read_haplotype_records`)
reads every record the index returns for a region (``overlapping=True``, as cyvcf2 does) with
each call's phase (``phase=True``).

Off switch: the environment variable ``VARIFORMER_VCF_READER=cyvcf2`` makes every window use
cyvcf2 (``auto``, the default, takes the fast path where it applies). It is read per window.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep._htslib import is_bcf, vcf_index

__all__ = ["READER_ENV", "IndexedVcf", "TextVcf", "TextWindow", "fast_reader_enabled"]

READER_ENV = "VARIFORMER_VCF_READER"

_TAB, _NL, _COLON, _PIPE, _SLASH = 9, 10, ord(":"), ord("|"), ord("/")
# a 4-byte GT field read as a little-endian uint32: the phase byte and the tab after the GT
_SEP_MASK = np.uint32(0xFF00FF00)
_PHASED_TAB = np.uint32(_PIPE << 8 | _TAB << 24)
_UNPHASED_TAB = np.uint32(_SLASH << 8 | _TAB << 24)


def fast_reader_enabled() -> bool:
    """Whether the fast text reader may be used (``VARIFORMER_VCF_READER``, default ``auto``)."""
    value = os.environ.get(READER_ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return True
    if value == "cyvcf2":
        return False
    raise InputError(f"{READER_ENV} must be 'auto' or 'cyvcf2', got {value!r}")


class TextWindow(NamedTuple):
    """The records starting in a window, parsed by the fast path (R records, n samples).

    Attributes
    ----------
    pos1 : list of int, length R
        1-based positions, in file order.
    ids : list of str
        ID column (``.`` if none).
    refs : list of str
        REF as written.
    alts : list of list of str
        ALT alleles as written (``[]`` for ALT ``.``).
    filter_pass : list of bool
        FILTER is ``PASS`` or ``.`` (cyvcf2's ``FILTER is None``).
    gt : np.ndarray, shape=(R, n, 2), int8
        Allele indexes of the two GT alleles, -1 for a missing allele, samples already
        selected and ordered by ``sample_index``.
    phased : np.ndarray, shape=(R, n), bool, or None
        Whether each call is written phased (``|``); only when asked for (``phase=True``).
    """

    pos1: list
    ids: list
    refs: list
    alts: list
    filter_pass: list
    gt: np.ndarray
    phased: np.ndarray | None = None


class TextVcf:
    """Raw-line access to a bgzipped, tabix/CSI-indexed text VCF, and its fast GT parser.

    Parameters
    ----------
    path : Path
        The ``.vcf.gz``.
    index : Path
        Its ``.tbi`` or ``.csi``.
    n_samples : int
        Sample columns named by the ``#CHROM`` header.

    Attributes
    ----------
    windows : Counter
        ``fast`` per window read by the fast path, ``fallback:<reason>`` per window left to
        cyvcf2 (for tests and profiling).
    """

    def __init__(self, path: Path, index: Path, n_samples: int):
        import pysam

        self.path = Path(path)
        self.n_samples = int(n_samples)
        # threads=1: no decompression threads (with them a damaged block can hang htslib)
        self._tbx = pysam.TabixFile(str(path), index=str(index), threads=1)
        self._contigs = frozenset(self._tbx.contigs)
        self.windows: Counter = Counter()

    @classmethod
    def open(cls, path: Path, n_samples: int) -> TextVcf | None:
        """The reader for a bgzipped text VCF; None for a BCF or when tabix cannot open it."""
        path = Path(path)
        try:
            if is_bcf(path):
                return None
        except (OSError, EOFError):
            return None
        index = vcf_index(path)
        if index is None:
            return None
        try:
            return cls(path, index, n_samples)
        except (OSError, ValueError):
            return None  # cyvcf2 reads it (and names any damage)

    def close(self) -> None:
        self._tbx.close()

    def read_window(
        self,
        contig: str,
        start0: int,
        end0: int,
        sample_index: np.ndarray | None = None,
        *,
        overlapping: bool = False,
        phase: bool = False,
    ) -> TextWindow | None:
        """The records starting in ``[start0, end0)`` (``start0 >= 0``), or None: use cyvcf2.

        Parameters
        ----------
        contig : str
            The contig as the VCF spells it.
        start0, end0 : int
            0-based half-open window.
        sample_index : np.ndarray, shape=(n,), int, optional
            Sample columns to keep, in output order (all, in VCF order, if None).
        overlapping : bool
            Also keep the records starting before ``start0`` whose REF reaches into the window
            (every record the tabix index returns, as ``cyvcf2.VCF(region)`` does).
        phase : bool
            Fill :attr:`TextWindow.phased`.

        Returns
        -------
        TextWindow or None
            None when any record starting in the window is not the simple case (see the
            module docstring); the caller then reads the whole window with cyvcf2.
        """
        if contig not in self._contigs or end0 <= start0 or start0 < 0:
            return self._fallback("region")
        region = f"{contig}:{start0 + 1}-{end0}"
        try:
            rows = self._tbx.fetch(contig, start0, end0)
        except (OSError, ValueError) as err:  # pysam: "could not create iterator for region"
            raise InputError(
                f"cannot read {region} from {self.path} ({err}); is it bgzipped and indexed "
                "(bcftools index)?"
            ) from None
        try:
            lines = list(rows)
        except UnicodeDecodeError:
            return self._fallback("non_ascii")
        except (OSError, ValueError) as err:  # pysam: "iteration failed" on a damaged block
            raise InputError(
                f"VCF {self.path} is corrupt or truncated: cannot read {region} ({err}); "
                "re-download it or re-compress it with bgzip"
            ) from None
        parsed = _parse_columns(lines, -1 if overlapping else start0, end0)
        if parsed is None:
            return self._fallback("columns")
        pos1, ids, refs, alts, filter_pass, gt_only, rests = parsed
        got = _parse_gt(rests, gt_only, self.n_samples, phase=phase)
        if got is None:
            return self._fallback("genotypes")
        gt, phased = got
        if sample_index is not None and not (
            len(sample_index) == self.n_samples
            and np.array_equal(sample_index, np.arange(self.n_samples))
        ):
            gt = np.take(gt, np.asarray(sample_index), axis=1)
            if phased is not None:
                phased = np.take(phased, np.asarray(sample_index), axis=1)
        self.windows["fast"] += 1
        return TextWindow(pos1, ids, refs, alts, filter_pass, gt, phased)

    def _fallback(self, reason: str) -> None:
        self.windows[f"fallback:{reason}"] += 1
        return None


def _parse_columns(lines: list[str], start0: int, end0: int):
    """The fixed columns of the lines starting in the window, or None if one is not simple.

    ``start0 = -1``: every line starting before ``end0`` (tabix returns only overlapping ones).

    Returns (pos1, ids, refs, alts, filter_pass, gt_only, rests): ``gt_only[i]`` is whether
    FORMAT is exactly ``GT``; ``rests[i]`` the line's sample columns, tab-separated.
    """
    pos1, ids, refs, alts, filter_pass, gt_only, rests = [], [], [], [], [], [], []
    for line in lines:
        f = line.split("\t", 9)
        if len(f) != 10 or "\r" in line:
            return None
        p = f[1]
        if not (p.isascii() and p.isdigit()):
            return None
        p1 = int(p)
        if p1 - 1 < start0 or p1 - 1 >= end0:
            continue  # starts before the window (a long REF overlapping it): not read
        vid, ref, alt, flt, fmt = f[2], f[3], f[4], f[6], f[8]
        if not (vid and ref and alt and flt) or (";" in flt and "PASS" in flt.split(";")):
            return None  # (PASS with other filters: left to cyvcf2's reading)
        if alt == ".":
            alt_list: list[str] = []
        else:
            alt_list = alt.split(",")
            if not all(alt_list) or "." in alt_list:
                return None
        if fmt == "GT":
            gt_only.append(True)
        elif fmt.startswith("GT:"):
            gt_only.append(False)
        else:
            return None
        pos1.append(p1)
        ids.append(vid)
        refs.append(ref)
        alts.append(alt_list)
        filter_pass.append(flt in ("PASS", "."))
        rests.append(f[9])
    return pos1, ids, refs, alts, filter_pass, gt_only, rests


def _parse_gt(rests: list[str], gt_only: list[bool], n: int, *, phase: bool = False):
    """``(gt, phased)``, or None if a line is not simple.

    ``gt``: GT allele indexes of every sample of every line, shape=(R, n, 2) int8 (-1
    missing); ``phased``: shape=(R, n) bool, whether the call is written ``a|b`` (None unless
    ``phase``). ``rests``: each line's sample columns (``n`` tab-separated fields expected);
    ``gt_only``: whether each line's FORMAT is exactly ``GT``.
    """
    r = len(rests)
    if not r:
        return np.zeros((0, n, 2), np.int8), (np.zeros((0, n), bool) if phase else None)
    if all(gt_only) and all(len(s) == 4 * n - 1 for s in rests):
        # every field is 3 characters plus its tab: a fixed stride, an (R, n, 4) view
        buf = np.frombuffer(("\t".join(rests) + "\t").encode("ascii"), np.uint8)
        if len(buf) != r * 4 * n:
            return None
        # bytes 2 and 4 of each field (little-endian uint32): a phase character, then the tab
        masked = buf.view("<u4") & _SEP_MASK
        if not ((masked == _PHASED_TAB) | (masked == _UNPHASED_TAB)).all():
            return None
        fields = buf.reshape(r, n, 4)
        alleles = fields[:, :, 0:3:2]
        phased = fields[:, :, 1] == _PIPE if phase else None
    else:
        # variable field lengths (GT:AD:DP ...): find every field's start from the separators
        buf = np.frombuffer("\n".join(rests).encode("ascii"), np.uint8)
        size = len(buf)
        seps = np.flatnonzero((buf == _TAB) | (buf == _NL))
        if len(seps) != r * n - 1:
            return None
        # line ends must be exactly every n-th separator: then every line has n fields
        if not (buf[seps[n - 1 :: n]] == _NL).all() or np.count_nonzero(buf == _NL) != r - 1:
            return None
        starts = np.empty(r * n, np.int64)
        starts[0] = 0
        starts[1:] = seps + 1
        ends = np.empty(r * n, np.int64)
        ends[:-1] = seps
        ends[-1] = size
        length = ends - starts
        if (length < 3).any():
            return None
        after = np.where(length > 3, buf[np.minimum(starts + 3, size - 1)], _COLON)
        exact = np.repeat(np.asarray(gt_only, bool), n)
        # FORMAT GT: the field is the 3 characters; GT:...: the GT ends at ':' (or the field does)
        if not np.where(exact, length == 3, after == _COLON).all():
            return None
        separator = buf[starts + 1]
        pipe = separator == _PIPE
        if not (pipe | (separator == _SLASH)).all():
            return None
        phased = pipe.reshape(r, n) if phase else None
        alleles = buf[np.stack([starts, starts + 2], axis=-1)].reshape(r, n, 2)
    # '0'-'9' -> 0-9 and '.' -> -2 (uint8 wrap-around read as int8); '/' -> -1; others: outside
    code = (alleles - np.uint8(48)).view(np.int8)
    if code.max() > 9 or code.min() < -2 or (code == -1).any():
        return None
    return np.maximum(code, -1, out=code), phased  # a missing allele '.' -> -1


class IndexedVcf:
    """An open cyvcf2.VCF with the fast text reader beside it (None for BCF).

    Behaves as the cyvcf2.VCF (calls and attributes are passed on), so code written for a
    cyvcf2.VCF keeps working; :func:`data_prep.variants.read_window_variants` uses
    ``text_reader`` where it can.

    Parameters
    ----------
    vcf : cyvcf2.VCF
    text_reader : TextVcf or None
    """

    __slots__ = ("text_reader", "vcf")

    def __init__(self, vcf, text_reader: TextVcf | None):
        self.vcf = vcf
        self.text_reader = text_reader

    def __call__(self, *args, **kwargs):
        return self.vcf(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.vcf, name)
