"""Motif disruption without R: which SNVs break or create transcription-factor motifs.

A Python re-implementation of what motifbreakR (Coetzee et al. 2015) does with
``method="log"`` and ``filterp=TRUE``, the paper's motif analysis (its Methods: "MotifbreakR
analysis", HOCOMOCO v11, p < 5e-5):

1. Matrices: JASPAR CORE vertebrate position frequency matrices from the offline ``pyjaspar``
   database (release selectable), or any MEME motif file (HOCOMOCO ships one).
2. Log-odds: ``log2(p / bg)`` in bits, with ``p = (count + pseudocount * bg) / (n + pseudocount)``
   (TFBSTools' ``toPWM`` convention, pseudocount 0.8) and a background that is uniform or the
   strand-symmetrized base composition of the window (A = T, C = G, so both strands share one
   null distribution; on a 0.005 grid so similar windows share tables).
3. Exact p-values: the log-odds matrix is rounded to ``granularity`` bits and the exact
   distribution of the sum over independent background bases is built by dynamic programming
   (TFMPvalue's method at a fixed granularity); ``p = P(S >= s)``. One table per matrix and
   background, cached.
4. Both strands; for REF and ALT the best-scoring of the ``w`` windows that overlap the SNV,
   per strand (motifbreakR's ``scoreAllWindows`` + ``maxThresholdWindows``).
5. A hit is a (SNV, matrix, strand) where either allele reaches ``p < pvalue``.
6. ``effect`` follows motifbreakR's ``snpEff``: at the SNV's column of the hit window, the
   probability difference of the two alleles ``allele_diff = P[ref] - P[alt]``; ``|d| >= 0.7``
   is ``strong``, ``0.4 <= |d| < 0.7`` is ``weak`` and smaller is ``neutral`` (dropped unless
   ``show_neutral``). A difference of 0.7 needs one base with probability >= 0.7, i.e. a
   high-information column (>= 0.62 bits against a uniform background); its information
   content is reported as ``ic``.

Sequences are integer codes ``A, C, G, T, N = 0, 1, 2, 3, 4`` (``data_prep.genome``); windows
that contain an N are not scored. Variant positions are 1-based; ``start0`` is the 0-based
genome coordinate of the sequence's first base.
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = [
    "COLUMNS",
    "MotifMatrix",
    "PValueTable",
    "background_probs",
    "dataset_motif_disruption",
    "encode_sequence",
    "is_snv",
    "load_jaspar",
    "load_motifs",
    "log_odds",
    "motif_disruption",
    "pvalue_table",
    "read_meme",
    "read_variant_table",
    "score_sequence",
    "summarize_disruption",
]

BASES = "ACGT"
N_CODE = 4
STRONG, WEAK = 0.7, 0.4  # motifbreakR's snpEff thresholds on |P[ref] - P[alt]|
DEFAULT_PSEUDOCOUNT = 0.8
DEFAULT_GRANULARITY = 0.01
KEYS = ["gene", "chrom", "pos", "ref", "alt"]
COLUMNS = [
    *KEYS,
    "matrix_id",
    "tf",
    "strand",
    "ref_score",
    "alt_score",
    "ref_p",
    "alt_p",
    "delta",
    "effect",
    "direction",
    "motif_start",
    "motif_pos",
    "allele_diff",
    "ic",
]


class MotifMatrix(NamedTuple):
    """One position frequency matrix.

    Attributes
    ----------
    matrix_id : str
        e.g. ``MA0080.7`` (JASPAR) or ``SPI1_HUMAN.H11MO.0.A`` (HOCOMOCO).
    tf : str
        Transcription-factor name, e.g. ``SPI1``.
    counts : np.ndarray, shape=(w, 4)
        Site counts per motif position, columns A, C, G, T (MEME probabilities times nsites).
    """

    matrix_id: str
    tf: str
    counts: np.ndarray

    @property
    def width(self) -> int:
        return int(self.counts.shape[0])


# ---------------------------------------------------------------- loading matrices


def _release_name(release) -> str:
    text = str(release).strip()
    return text if text.upper().startswith("JASPAR") else f"JASPAR{text}"


@functools.lru_cache(maxsize=8)
def _jaspar(release: str, collection: str, tax_group: str) -> tuple[MotifMatrix, ...]:
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = db.fetch_motifs(collection=collection, tax_group=[tax_group])
    out = []
    for m in found:
        counts = np.array([m.counts[b] for b in BASES], dtype=np.float64).T
        out.append(MotifMatrix(str(m.matrix_id), str(m.name), counts))
    return tuple(out)


def load_jaspar(
    release=2024, *, collection: str = "CORE", tax_group: str = "vertebrates"
) -> tuple[MotifMatrix, ...]:
    """JASPAR matrices (the latest version of each) from the offline ``pyjaspar`` database.

    Parameters
    ----------
    release : int or str
        ``2024``, ``"2024"`` or ``"JASPAR2024"``; what pyjaspar ships (2014-2026 in pyjaspar 4).

    Raises
    ------
    InputError
        An unknown release.
    """
    from pyjaspar import jaspardb

    name = _release_name(release)
    releases = jaspardb().get_releases()
    if name not in releases:
        raise InputError(
            f"JASPAR release {release!r} is not in pyjaspar; choose one of {', '.join(releases)}"
        )
    return _jaspar(name, collection, tax_group)


_HOCOMOCO = (re.compile(r"^(.+?)_(HUMAN|MOUSE)\.H1\dMO\."), re.compile(r"^(.+?)\.H1\d[A-Z]+\."))


def _tf_from_id(matrix_id: str) -> str:
    for pattern in _HOCOMOCO:
        m = pattern.match(matrix_id)
        if m:
            return m.group(1)
    return matrix_id


def read_meme(path, *, nsites: int = 20) -> tuple[MotifMatrix, ...]:
    """Matrices of a MEME motif file (``letter-probability matrix`` blocks, DNA alphabet).

    Parameters
    ----------
    path : str or Path
    nsites : int
        Sites assumed when a matrix header has no ``nsites=`` (MEME's own default is 20);
        probabilities times nsites give the counts the pseudocount is added to.

    Returns
    -------
    tuple of MotifMatrix
        ``tf`` is the MOTIF line's alternative name, else the TF part of a HOCOMOCO id
        (``AHR_HUMAN.H11MO.0.B`` -> ``AHR``), else the id.

    Raises
    ------
    InputError
        Missing file, a non-DNA alphabet, a malformed matrix, or no motifs.
    """
    from core.fileio import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError(f"MEME motif file not found: {path}")
    with open_text(path) as fh:
        lines = fh.read().splitlines()
    motifs: list[MotifMatrix] = []
    i, name = 0, None
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[1].strip() if "=" in line else ""
            if alphabet and not alphabet.upper().startswith("ACGT"):
                raise InputError(f"{path}: alphabet {alphabet!r} is not DNA (ACGT)")
        elif line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise InputError(f"{path}:{i + 1}: MOTIF line without an id")
            name = (parts[1], parts[2] if len(parts) > 2 else _tf_from_id(parts[1]))
        elif line.startswith("letter-probability matrix"):
            if name is None:
                raise InputError(f"{path}:{i + 1}: letter-probability matrix before any MOTIF line")
            fields = dict(re.findall(r"(\w+)=\s*(\S+)", line))
            try:
                width = int(fields["w"])
                sites = float(fields.get("nsites", nsites))
            except (KeyError, ValueError):
                raise InputError(f"{path}:{i + 1}: matrix header needs w= (width)") from None
            rows = []
            for j in range(width):
                k = i + 1 + j
                try:
                    row = [float(x) for x in lines[k].split()]
                except (IndexError, ValueError):
                    row = []
                if len(row) != 4 or min(row) < 0 or sum(row) <= 0:
                    raise InputError(
                        f"{path}:{k + 1}: expected 4 non-negative probabilities (A C G T) "
                        f"in row {j + 1} of motif {name[0]}"
                    )
                rows.append(row)
            probs = np.array(rows, dtype=np.float64)
            probs /= probs.sum(axis=1, keepdims=True)
            motifs.append(MotifMatrix(name[0], name[1], probs * max(sites, 1.0)))
            i += width
            name = None
        i += 1
    if not motifs:
        raise InputError(f"{path} holds no MEME letter-probability matrices")
    return tuple(motifs)


def load_motifs(*, jaspar_release=2024, meme=None) -> tuple[MotifMatrix, ...]:
    """The matrices to scan: a MEME file if given, else JASPAR CORE vertebrates of a release."""
    return read_meme(meme) if meme is not None else load_jaspar(jaspar_release)


# ---------------------------------------------------------------- scores and p-values


def encode_sequence(sequence) -> np.ndarray:
    """A sequence as codes, shape=(L,), int64, A,C,G,T,N = 0..4.

    Parameters
    ----------
    sequence : str, or np.ndarray of codes shape=(L,), or one-hot shape=(L, 4)
        A one-hot row that is not a single 1 (all zeros, or a het 0.5/0.5) counts as N.
    """
    if isinstance(sequence, str):
        from data_prep.genome import encode

        return encode(sequence).astype(np.int64)
    arr = np.asarray(sequence)
    if arr.ndim == 2 and arr.shape[1] == 4:
        codes = arr.argmax(axis=1).astype(np.int64)
        codes[arr.max(axis=1) < 1] = N_CODE
        return codes
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        return np.where((arr >= 0) & (arr < 4), arr, N_CODE).astype(np.int64)
    raise InputError("sequence must be a string, integer codes (L,) or one-hot (L, 4)")


def background_probs(background="uniform", sequence=None) -> np.ndarray:
    """Background base probabilities A, C, G, T, shape=(4,).

    Parameters
    ----------
    background : "uniform", "window" or array-like of 4 probabilities
        ``"window"``: the base composition of ``sequence`` (N ignored), strand-symmetrized
        (A and T share their mean, C and G theirs) so both strands share one null model, with
        one pseudo-count per base pair so that no base has probability 0, and rounded to a
        0.005 grid so that windows of similar composition share their p-value tables.
    """
    if isinstance(background, str):
        if background == "uniform":
            return np.full(4, 0.25)
        if background == "window":
            if sequence is None:
                raise InputError("background 'window' needs the window's sequence")
            codes = encode_sequence(sequence)
            n = np.bincount(codes[codes < 4], minlength=4).astype(np.float64)
            at = (n[0] + n[3] + 1.0) / (n.sum() + 2.0) / 2  # +1: an absent base stays possible
            # on a 0.005 grid, so windows of similar composition share p-value tables
            at = float(np.clip(np.round(at * 200) / 200, 0.005, 0.495))
            return np.array([at, 0.5 - at, 0.5 - at, at])
        raise InputError(f"background must be 'uniform' or 'window', not {background!r}")
    bg = np.asarray(background, dtype=np.float64)
    if bg.shape != (4,) or (bg <= 0).any():
        raise InputError("a background must be 4 positive probabilities (A, C, G, T)")
    return bg / bg.sum()


def _probs(motif: MotifMatrix, bg: np.ndarray, pseudocount: float) -> np.ndarray:
    counts = np.asarray(motif.counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return (counts + pseudocount * bg) / (total + pseudocount)


def log_odds(
    motif: MotifMatrix, background=None, *, pseudocount: float = DEFAULT_PSEUDOCOUNT
) -> np.ndarray:
    """Log-odds scoring matrix in bits, ``log2(p / bg)``, shape=(w, 4), columns A, C, G, T.

    ``p = (count + pseudocount * bg) / (n_sites + pseudocount)`` per position (TFBSTools).
    """
    if not pseudocount > 0:
        raise InputError("pseudocount must be > 0 (zero counts would give -inf scores)")
    bg = np.full(4, 0.25) if background is None else np.asarray(background, dtype=np.float64)
    return np.log2(_probs(motif, bg, pseudocount) / bg)


def score_sequence(sequence, lo: np.ndarray) -> np.ndarray:
    """Log-odds of every placement of a matrix on both strands.

    Parameters
    ----------
    sequence : str or codes, shape=(L,)
    lo : np.ndarray, shape=(w, 4)

    Returns
    -------
    np.ndarray, shape=(L - w + 1, 2)
        Column 0: the + strand window starting at 0-based offset i; column 1: its reverse
        complement. Windows with an N are ``-inf``.
    """
    codes = encode_sequence(sequence)
    w = lo.shape[0]
    n = codes.shape[0] - w + 1
    if n <= 0:
        return np.zeros((0, 2))
    ext = np.concatenate([lo, np.full((w, 1), -np.inf)], axis=1)
    win = codes[np.arange(n)[:, None] + np.arange(w)[None, :]]
    plus = ext[np.arange(w), win].sum(axis=1)
    minus = _reverse_complement(ext)[np.arange(w), win].sum(axis=1)
    return np.stack([plus, minus], axis=1)


def _reverse_complement(m: np.ndarray) -> np.ndarray:
    """Matrix that scores a window's reverse complement: rows reversed, A<->T, C<->G; N stays."""
    return m[::-1][:, [3, 2, 1, 0, *range(4, m.shape[1])]]


class PValueTable(NamedTuple):
    """The exact null distribution of a discretized log-odds matrix.

    Attributes
    ----------
    granularity : float
        Bits per integer step; the matrix used is ``round(lo / granularity)``.
    int_lo : np.ndarray, shape=(w, 4), int64
        The rounded matrix.
    offset : int
        The lowest integer score (sum of the column minima).
    sf : np.ndarray, shape=(max - offset + 1,)
        ``sf[k] = P(S >= offset + k)`` under the background.
    """

    granularity: float
    int_lo: np.ndarray
    offset: int
    sf: np.ndarray

    def pvalue_int(self, int_scores) -> np.ndarray:
        """P-values of integer scores (from :attr:`int_lo`); ``-inf``/NaN give 1."""
        s = np.asarray(int_scores, dtype=np.float64)
        k = np.nan_to_num(s - self.offset, nan=-1.0, neginf=-1.0, posinf=len(self.sf))
        k = np.clip(k, 0, len(self.sf)).astype(np.int64)
        return np.where(k < len(self.sf), self.sf[np.minimum(k, len(self.sf) - 1)], 0.0)

    def pvalue(self, windows) -> np.ndarray:
        """Exact p-values of motif-oriented windows, codes shape=(n, w)."""
        windows = np.asarray(windows, dtype=np.int64)
        w = self.int_lo.shape[0]
        return self.pvalue_int(self.int_lo[np.arange(w), windows].sum(axis=-1))

    def score_threshold(self, pvalue: float) -> float:
        """The lowest score (bits, on the discretized scale) whose p-value is < ``pvalue``."""
        k = int(np.searchsorted(-self.sf, -pvalue, side="right"))
        return (self.offset + k) * self.granularity


def pvalue_table(
    lo: np.ndarray, background=None, *, granularity: float = DEFAULT_GRANULARITY
) -> PValueTable:
    """Exact score distribution of ``round(lo / granularity)`` over i.i.d. background bases.

    Dynamic programming over the columns: after column j the array holds
    ``P(sum of the first j columns = offset_j + k)``; each column shifts and adds it four
    times. Cost ``O(w * range / granularity)``.

    Parameters
    ----------
    lo : np.ndarray, shape=(w, 4)
        Log-odds in bits.
    background : array-like of 4 probabilities, or None for uniform
    granularity : float
        Bits per step; the scores' rounding error is at most ``w * granularity / 2``.
    """
    if not granularity > 0:
        raise InputError("granularity must be > 0")
    bg = np.full(4, 0.25) if background is None else np.asarray(background, dtype=np.float64)
    int_lo = np.rint(np.asarray(lo, dtype=np.float64) / granularity).astype(np.int64)
    dist = np.ones(1)
    offset = 0
    for col in int_lo:
        lo_c = int(col.min())
        shifts = col - lo_c
        new = np.zeros(dist.shape[0] + int(shifts.max()))
        for b in range(4):
            new[shifts[b] : shifts[b] + dist.shape[0]] += bg[b] * dist
        dist, offset = new, offset + lo_c
    sf = np.cumsum(dist[::-1])[::-1]
    return PValueTable(float(granularity), int_lo, offset, np.minimum(sf, 1.0))


@functools.lru_cache(maxsize=2048)  # two backgrounds x all JASPAR CORE vertebrates
def _cached_table(key, counts_bytes, width, bg, pseudocount, granularity):
    counts = np.frombuffer(counts_bytes, dtype=np.float64).reshape(width, 4)
    bg_arr = np.asarray(bg)
    motif = MotifMatrix(key, key, counts)
    probs = _probs(motif, bg_arr, pseudocount)
    lo = np.log2(probs / bg_arr)
    return probs, lo, pvalue_table(lo, bg_arr, granularity=granularity)


def _prepared(motif: MotifMatrix, bg: np.ndarray, pseudocount: float, granularity: float):
    counts = np.ascontiguousarray(motif.counts, dtype=np.float64)
    bg_key = tuple(float(x) for x in bg)
    return _cached_table(
        motif.matrix_id, counts.tobytes(), counts.shape[0], bg_key, pseudocount, granularity
    )


# ---------------------------------------------------------------- the disruption scan


def _variant_frame(variants) -> pd.DataFrame:
    df = pd.DataFrame(variants).copy()
    missing = [c for c in ("pos", "ref", "alt") if c not in df.columns]
    if missing:
        raise InputError(f"the variant table needs columns pos, ref, alt (missing {missing})")
    df["ref"] = df["ref"].astype(str).str.upper()
    df["alt"] = df["alt"].astype(str).str.upper()
    bad = ~(df["ref"].isin(list(BASES)) & df["alt"].isin(list(BASES)) & (df["ref"] != df["alt"]))
    if bad.any():
        r = df[bad].iloc[0]
        raise InputError(
            f"variant at pos {r['pos']} ({r['ref']}>{r['alt']}) is not a SNV; "
            f"motif scanning takes single-base A/C/G/T changes only (drop indels first)"
        )
    df["pos"] = pd.to_numeric(df["pos"], errors="raise").astype(np.int64)
    return df.reset_index(drop=True)


def motif_disruption(
    sequence,
    variants,
    motifs,
    *,
    start0: int = 0,
    chrom: str | None = None,
    gene: str | None = None,
    pvalue: float = 5e-5,
    background="uniform",
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
    granularity: float = DEFAULT_GRANULARITY,
    show_neutral: bool = False,
) -> pd.DataFrame:
    """Motifs that SNVs break or create: REF vs ALT over every window overlapping each SNV.

    Parameters
    ----------
    sequence : str, codes shape=(L,), or one-hot shape=(L, 4)
        The reference window, forward strand; ``sequence[i]`` is genome position ``start0 + i``
        (0-based).
    variants : pd.DataFrame
        Columns ``pos`` (1-based), ``ref``, ``alt`` (single bases); ``chrom`` and ``gene``
        are kept when present (else filled from ``chrom`` / ``gene``). Every SNV must lie in
        the window and its REF must equal the window's base.
    motifs : sequence of MotifMatrix
    start0 : int
        0-based genome coordinate of ``sequence[0]``.
    pvalue : float
        A hit needs REF or ALT to reach ``p < pvalue`` (motifbreakR / the paper: 5e-5).
    background : "uniform", "window" or 4 probabilities (A, C, G, T)
    pseudocount : float
        Added to each column's counts, split by the background (TFBSTools: 0.8).
    granularity : float
        Bits per step of the discretized p-value tables.
    show_neutral : bool
        Keep hits whose SNV column barely prefers either allele (``|allele_diff| < 0.4``).

    Returns
    -------
    pd.DataFrame
        One row per (SNV, matrix, strand) hit, columns :data:`COLUMNS`: ``ref_score`` /
        ``alt_score`` (bits, best window per allele and strand; NaN if every window has an N),
        ``ref_p`` / ``alt_p``, ``delta = alt_score - ref_score``, ``effect``
        (strong / weak / neutral), ``direction`` (increase / decrease / none by the sign of
        ``delta``), ``motif_start`` (1-based genome start of the hit window: the better
        allele's best window), ``motif_pos`` (1-based SNV position within the motif, motif
        orientation), ``allele_diff = P[ref] - P[alt]`` at that position (strand-aware) and
        ``ic`` (its information content, bits). Sorted by gene, pos, alt, min p.

    Raises
    ------
    InputError
        A non-SNV, a SNV outside the window, or a REF that disagrees with the window.
    """
    codes = encode_sequence(sequence)
    df = _variant_frame(variants)
    for col, value in (("gene", gene), ("chrom", chrom)):
        if col not in df.columns:
            df[col] = value if value is not None else "."
    _check_options(pvalue)
    bg = background_probs(background, codes)
    wmax = max((m.width for m in motifs), default=1)
    ctx, ref_c, alt_c = _contexts(codes, df, int(start0), wmax)
    options = dict(
        pvalue=pvalue, pseudocount=pseudocount, granularity=granularity, show_neutral=show_neutral
    )
    return _scan(df, ctx, ref_c, alt_c, motifs, bg, **options)


def _check_options(pvalue: float) -> None:
    if not 0 < pvalue <= 1:
        raise InputError(f"pvalue must lie in (0, 1], got {pvalue}")


def _contexts(codes: np.ndarray, df: pd.DataFrame, start0: int, wmax: int):
    """The ``2 * wmax - 1`` window bases around each SNV (SNV at ``wmax - 1``, N beyond the
    window), and the REF / ALT codes; checks that every SNV lies in the window with its REF."""
    idx = df["pos"].to_numpy() - 1 - start0
    outside = (idx < 0) | (idx >= codes.shape[0])
    if outside.any():
        r = df[outside].iloc[0]
        raise InputError(
            f"variant {r['chrom']}:{r['pos']} lies outside the window "
            f"[{start0 + 1}, {start0 + codes.shape[0]}] (1-based); pass the window that holds it"
        )
    ref_c = np.array([BASES.index(b) for b in df["ref"]], dtype=np.int64)
    alt_c = np.array([BASES.index(b) for b in df["alt"]], dtype=np.int64)
    wrong = codes[idx] != ref_c
    if wrong.any():
        k = int(np.flatnonzero(wrong)[0])
        seen = "ACGTN"[codes[idx[k]]]
        raise InputError(
            f"variant {df['chrom'][k]}:{df['pos'][k]} REF {df['ref'][k]} disagrees with the "
            f"window's base {seen}; check that the variants and the window use the same genome"
        )
    padded = np.concatenate([np.full(wmax, N_CODE), codes, np.full(wmax, N_CODE)])
    ctx = padded[(idx + wmax)[:, None] + np.arange(-(wmax - 1), wmax)[None, :]]
    return ctx, ref_c, alt_c


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


def _scan(df, ctx, ref_c, alt_c, motifs, bg, *, pvalue, pseudocount, granularity, show_neutral):
    """Hits of every matrix at the SNVs of ``df`` (contexts from :func:`_contexts`)."""
    if len(df) == 0 or len(motifs) == 0:
        return _empty()
    wmax = (ctx.shape[1] + 1) // 2
    snv0 = df["pos"].to_numpy() - 1
    parts: dict[str, list] = {}
    for motif in motifs:
        probs, lo, table = _prepared(motif, bg, float(pseudocount), float(granularity))
        w = motif.width
        sub = ctx[:, wmax - w : wmax + w - 1]  # (n, 2w-1), SNV at w-1
        for strand, found in _scan_one(probs, lo, table, sub, ref_c, alt_c, bg, pvalue):
            found["matrix_id"] = np.full(len(found["row"]), motif.matrix_id, dtype=object)
            found["tf"] = np.full(len(found["row"]), motif.tf, dtype=object)
            found["strand"] = np.full(len(found["row"]), strand, dtype=object)
            # genome start (0-based) of window k is the SNV's position - (w - 1) + k
            found["motif_start"] = snv0[found["row"]] - (w - 1) + found.pop("window") + 1
            for key, values in found.items():
                parts.setdefault(key, []).append(values)
    if not parts:
        return _empty()
    hits = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    mag = hits["allele_diff"].abs().to_numpy()
    hits["effect"] = np.where(mag >= STRONG, "strong", np.where(mag >= WEAK, "weak", "neutral"))
    delta = hits["delta"].to_numpy()
    hits["direction"] = np.where(delta > 0, "increase", np.where(delta < 0, "decrease", "none"))
    if not show_neutral:
        hits = hits[hits["effect"] != "neutral"]
    v = df.iloc[hits["row"].to_numpy()].reset_index(drop=True)
    hits = hits.drop(columns="row").reset_index(drop=True)
    extra = [c for c in df.columns if c not in KEYS]
    out = pd.concat([v[KEYS], hits[COLUMNS[len(KEYS) :]], v[extra]], axis=1)
    return _sorted(out)


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    minp = np.minimum(out["ref_p"].to_numpy(float), out["alt_p"].to_numpy(float))
    out = out.assign(_minp=minp)
    out = out.sort_values(["gene", "pos", "alt", "_minp", "matrix_id", "strand"], kind="stable")
    return out.drop(columns="_minp").reset_index(drop=True)


def _scan_one(probs, lo, table, ctx, ref_c, alt_c, bg, pvalue):
    """Hits of one matrix at every SNV, per strand: yields ``(strand, dict of arrays)``.

    ``ctx`` holds the ``2w - 1`` bases around each SNV (the SNV at ``w - 1``); window ``k``
    is ``ctx[:, k:k+w]`` and holds the SNV at its column ``w - 1 - k``.
    """
    w = lo.shape[0]
    n = ctx.shape[0]
    rows = np.arange(n)
    k = np.arange(w)
    # codes of every window, as flat indices into a (w, 5) matrix: column j, base b -> 5j + b
    flat_idx = ctx[:, k[:, None] + k[None, :]] + 5 * k[None, None, :]  # (n, w, w)
    for strand, flip in (("+", False), ("-", True)):
        m = np.full((w, 5), -np.inf)
        m[:, :4] = lo
        mi = np.full((w, 5), -np.inf)
        mi[:, :4] = table.int_lo
        if flip:
            m, mi = _reverse_complement(m), _reverse_complement(mi)
        ref_s = m.ravel().take(flat_idx).sum(axis=2)  # (n, w)
        col = w - 1 - k  # the SNV's column in window k; ALT changes only that term
        change = m[col[None, :], alt_c[:, None]] - m[col[None, :], ref_c[:, None]]
        with np.errstate(invalid="ignore"):
            alt_s = ref_s + change  # -inf stays -inf (an N elsewhere in the window)
        best_r, best_a = ref_s.argmax(axis=1), alt_s.argmax(axis=1)
        r_score, a_score = ref_s[rows, best_r], alt_s[rows, best_a]
        r_int = mi.ravel().take(flat_idx[rows, best_r]).sum(axis=1)
        a_int = mi.ravel().take(flat_idx[rows, best_a]).sum(axis=1)
        a_int = a_int + mi[w - 1 - best_a, alt_c] - mi[w - 1 - best_a, ref_c]
        r_p, a_p = table.pvalue_int(r_int), table.pvalue_int(a_int)
        hit = np.flatnonzero((r_p < pvalue) | (a_p < pvalue))
        if hit.size == 0:
            continue
        r_score, a_score = r_score[hit], a_score[hit]
        win = np.where(r_score >= a_score, best_r[hit], best_a[hit])
        # motif-orientation column of the SNV and the alleles as the motif reads them
        if flip:
            mpos, rb, ab = win, 3 - ref_c[hit], 3 - alt_c[hit]
        else:
            mpos, rb, ab = w - 1 - win, ref_c[hit], alt_c[hit]
        r_score = np.where(np.isfinite(r_score), r_score, np.nan)
        a_score = np.where(np.isfinite(a_score), a_score, np.nan)
        yield (
            strand,
            {
                "row": hit,
                "ref_score": r_score,
                "alt_score": a_score,
                "ref_p": r_p[hit],
                "alt_p": a_p[hit],
                "delta": a_score - r_score,
                "window": win,
                "motif_pos": mpos + 1,
                "allele_diff": probs[mpos, rb] - probs[mpos, ab],
                "ic": (probs[mpos] * np.log2(probs[mpos] / bg)).sum(axis=1),
            },
        )


# ---------------------------------------------------------------- datasets and summaries


def read_variant_table(path) -> pd.DataFrame:
    """A tab-separated variant table: ``chrom, pos`` (1-based), ``ref, alt``, optional ``gene``.

    Any other columns (an HSV table's ``model``, ``score``, ...) are kept. Gzip is fine.

    Raises
    ------
    InputError
        Missing file or columns.
    """
    from core.fileio import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError(f"variant table not found: {path}")
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", dtype={"chrom": str, "gene": str}, keep_default_na=False)
    df.columns = [str(c).lstrip("#").lower() for c in df.columns]
    missing = [c for c in ("chrom", "pos", "ref", "alt") if c not in df.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; a variant table needs "
            "tab-separated chrom, pos (1-based), ref, alt (and optionally gene)"
        )
    df["chrom"] = df["chrom"].astype(str)
    try:
        df["pos"] = pd.to_numeric(df["pos"]).astype(np.int64)
    except (ValueError, TypeError):
        raise InputError(f"{path}: column pos must hold integers (1-based positions)") from None
    return df


def is_snv(df: pd.DataFrame) -> np.ndarray:
    """Rows whose ``ref`` and ``alt`` are different single A/C/G/T bases, shape=(n,), bool."""
    ref, alt = df["ref"].astype(str).str.upper(), df["alt"].astype(str).str.upper()
    return (ref.isin(list(BASES)) & alt.isin(list(BASES)) & (ref != alt)).to_numpy()


def dataset_motif_disruption(
    dataset,
    genes,
    motifs,
    *,
    variants=None,
    pvalue: float = 5e-5,
    background="uniform",
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
    granularity: float = DEFAULT_GRANULARITY,
    show_neutral: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`motif_disruption` over the reference windows of a ``variformer prep`` dataset.

    Parameters
    ----------
    dataset : data_prep.GeneDataset or path
    genes : list of str
    motifs : sequence of MotifMatrix
    variants : None or pd.DataFrame
        None: every SNV of each gene's window (``dataset.variants``). A table (an HSV table or
        any ``chrom, pos, ref, alt`` table): a row with a ``gene`` column goes to that gene;
        without one, to every listed gene whose window holds it. Rows are deduplicated on
        ``gene, chrom, pos, ref, alt`` (an HSV table lists a SNV once per model); the other
        columns are dropped, join them back on those keys.
    progress : bool
        A progress bar over the genes.

    Returns
    -------
    pd.DataFrame
        :data:`COLUMNS`, the genes one after another.
    """
    from data_prep import open_dataset

    ds = open_dataset(dataset) if isinstance(dataset, (str, Path)) else dataset
    from tqdm.auto import tqdm

    _check_options(pvalue)
    wmax = max((m.width for m in motifs), default=1)
    # SNVs of windows with the same background are scanned together, one pass per matrix
    groups: dict[tuple, list] = {}
    for gene in tqdm(genes, desc="motifs", unit="gene", disable=not progress):
        win = ds.window(gene)
        if variants is None:
            v = ds.variants(gene)
        elif "gene" in variants.columns:
            v = variants[variants["gene"].astype(str) == gene]
        else:
            inside = (
                (variants["chrom"].astype(str) == win.chrom)
                & (variants["pos"] > win.start0)
                & (variants["pos"] <= win.end0)
            )
            v = variants[inside]
        v = _variant_frame(v.assign(gene=gene)[KEYS].drop_duplicates())
        codes = encode_sequence(ds.reference(gene))
        bg = background_probs(background, codes)
        ctx, ref_c, alt_c = _contexts(codes, v, win.start0, wmax)
        groups.setdefault(tuple(bg), []).append((v, ctx, ref_c, alt_c))
    options = dict(
        pvalue=pvalue, pseudocount=pseudocount, granularity=granularity, show_neutral=show_neutral
    )
    frames = [
        _scan(
            pd.concat([g[0] for g in group], ignore_index=True),
            np.concatenate([g[1] for g in group]),
            np.concatenate([g[2] for g in group]),
            np.concatenate([g[3] for g in group]),
            motifs,
            np.asarray(bg),
            **options,
        )
        for bg, group in groups.items()
    ]
    frames = [f for f in frames if len(f)]
    return _sorted(pd.concat(frames, ignore_index=True)) if frames else _empty()


def summarize_disruption(hits: pd.DataFrame, hsvs: pd.DataFrame) -> pd.DataFrame:
    """Per model: how many HSVs disrupt a motif, and whether they raise or lower the score.

    Parameters
    ----------
    hits : pd.DataFrame
        :func:`motif_disruption` output for (at least) the HSVs.
    hsvs : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt`` (``AN/hsvs.tsv``); one row per HSV and model.

    Returns
    -------
    pd.DataFrame
        One row per model: ``n_hsvs``; ``n_disrupting`` (HSVs with at least one hit) and
        ``rate = n_disrupting / n_hsvs``; ``n_hits``, ``n_increase``, ``n_decrease``,
        ``n_strong`` over their hits; ``frac_decrease = n_decrease / (n_increase + n_decrease)``.
    """
    missing = [c for c in ("model", *KEYS) if c not in hsvs.columns]
    if missing:
        raise InputError(f"the HSV table lacks column(s) {', '.join(missing)}")
    keys = hsvs[["model", *KEYS]].drop_duplicates().copy()
    h = hits[[*KEYS, "direction", "effect"]].copy()
    for df in (keys, h):
        df["chrom"] = df["chrom"].astype(str)
        df["gene"] = df["gene"].astype(str)
        df["pos"] = df["pos"].astype(np.int64)
    joined = keys.merge(h, on=KEYS, how="left")
    rows = []
    for model, g in joined.groupby("model", sort=True):
        has = g["direction"].notna()
        n_hsvs = len(g.drop_duplicates(KEYS))
        n_dis = len(g[has].drop_duplicates(KEYS))
        inc = int((g["direction"] == "increase").sum())
        dec = int((g["direction"] == "decrease").sum())
        rows.append(
            {
                "model": model,
                "n_hsvs": n_hsvs,
                "n_disrupting": n_dis,
                "rate": n_dis / n_hsvs if n_hsvs else float("nan"),
                "n_hits": int(has.sum()),
                "n_increase": inc,
                "n_decrease": dec,
                "n_strong": int((g["effect"] == "strong").sum()),
                "frac_decrease": dec / (inc + dec) if inc + dec else float("nan"),
            }
        )
    cols = ["model", "n_hsvs", "n_disrupting", "rate", "n_hits", "n_increase", "n_decrease"]
    return pd.DataFrame(rows, columns=[*cols, "n_strong", "frac_decrease"])
