"""JASPAR transcription-factor motifs for the simulated cohort: load, scan, plant.

Matrices come from the ``pyjaspar`` package, which ships the JASPAR database offline; the
release and matrix ids are pinned so the same seed writes the same reference on any machine.
Sequences are integer-coded ``A, C, G, T = 0, 1, 2, 3`` so that ``3 - x`` is the complement.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import numpy as np

JASPAR_RELEASE = "JASPAR2024"

# Promoter-proximal factors (GC box, CCAAT box, TATA box, ETS, YY1, CRE, NRF1).
PROMOTER_MOTIFS = (
    "MA0079.5",  # SP1
    "MA0060.4",  # NFYA
    "MA0108.3",  # TBP
    "MA0028.3",  # ELK1
    "MA0095.4",  # YY1
    "MA0018.5",  # CREB1
    "MA0506.3",  # NRF1
    "MA0062.4",  # GABPA
)
# Blood / immune enhancer factors, the kind whose motifs the paper's HSVs break or create.
ENHANCER_MOTIFS = (
    "MA0080.7",  # SPI1 (PU.1)
    "MA0466.4",  # CEBPB
    "MA0035.5",  # GATA1
    "MA0002.3",  # RUNX1
    "MA0105.4",  # NFKB1
    "MA0107.1",  # RELA
    "MA0778.2",  # NFKB2
    "MA1419.2",  # IRF4
    "MA0098.4",  # ETS1
    "MA0099.4",  # FOS::JUN (AP-1)
    "MA0144.3",  # STAT3
    "MA0139.2",  # CTCF
)

# Frequency-scale pseudocount: keeps log-odds finite (about -4.7 bits at a zero count)
# whatever the matrix's total count (SELEX matrices have tens of thousands of sites).
_PSEUDO = 0.01


class Motif(NamedTuple):
    """One JASPAR position frequency matrix and its log-odds scores.

    Attributes
    ----------
    matrix_id : str
        Versioned JASPAR id, e.g. ``MA0080.7``.
    name : str
        Transcription-factor name, e.g. ``SPI1``.
    probs : np.ndarray, shape=(w, 4)
        Base probabilities per motif position (columns A, C, G, T), rows sum to 1.
    log_odds : np.ndarray, shape=(w, 4)
        ``log2(probs / 0.25)`` against a uniform background.
    """

    matrix_id: str
    name: str
    probs: np.ndarray
    log_odds: np.ndarray

    @property
    def label(self) -> str:
        """``matrix_id:name``, the form written to ``truth.tsv``."""
        return f"{self.matrix_id}:{self.name}"

    @property
    def width(self) -> int:
        return int(self.probs.shape[0])


def motif_from_counts(matrix_id: str, name: str, counts: np.ndarray) -> Motif:
    """Build a :class:`Motif` from a count matrix.

    Parameters
    ----------
    counts : np.ndarray, shape=(w, 4)
        Counts (or frequencies) per position, columns A, C, G, T.
    """
    counts = np.asarray(counts, dtype=np.float64)
    freqs = counts / counts.sum(axis=1, keepdims=True)
    probs = (freqs + _PSEUDO) / (1.0 + 4 * _PSEUDO)
    return Motif(matrix_id, name, probs, np.log2(probs / 0.25))


@functools.lru_cache(maxsize=4)
def load_motifs(matrix_ids: tuple[str, ...]) -> tuple[Motif, ...]:
    """Fetch pinned JASPAR matrices from the offline ``pyjaspar`` database.

    Parameters
    ----------
    matrix_ids : tuple of str
        Versioned JASPAR ids from release :data:`JASPAR_RELEASE`.

    Returns
    -------
    tuple of Motif
        In the order asked for.
    """
    from pyjaspar import jaspardb

    db = jaspardb(release=JASPAR_RELEASE)
    motifs = []
    for mid in matrix_ids:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = db.fetch_motif_by_id(mid)
        if m is None:
            raise RuntimeError(f"JASPAR matrix {mid} is missing from {JASPAR_RELEASE}")
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T
        motifs.append(motif_from_counts(mid, str(m.name), counts))
    return tuple(motifs)


def score_range(motif: Motif) -> tuple[float, float]:
    """Lowest and highest possible log-odds score of ``motif``."""
    return float(motif.log_odds.min(axis=1).sum()), float(motif.log_odds.max(axis=1).sum())


def relative_score(motif: Motif, score: np.ndarray | float) -> np.ndarray:
    """Map log-odds scores to ``[0, 1]`` as ``(s - min) / (max - min)`` (TFBSTools' relative score)."""
    lo, hi = score_range(motif)
    return (np.asarray(score, dtype=np.float64) - lo) / (hi - lo)


def scan(seq: np.ndarray, motif: Motif) -> np.ndarray:
    """Log-odds score of every placement of ``motif`` on both strands.

    Parameters
    ----------
    seq : np.ndarray, shape=(n,), integer codes 0-3 (A, C, G, T)
    motif : Motif

    Returns
    -------
    np.ndarray, shape=(n - w + 1, 2)
        Column 0: motif read on the + strand starting at offset i; column 1: on the - strand
        (the reverse complement of ``seq[i:i+w]`` scored as the motif).
    """
    seq = np.asarray(seq, dtype=np.int64)
    w = motif.width
    n = seq.shape[0] - w + 1
    if n <= 0:
        return np.zeros((0, 2))
    idx = np.arange(n)[:, None] + np.arange(w)[None, :]
    windows = seq[idx]  # (n, w)
    pos = np.arange(w)[None, :]
    plus = motif.log_odds[pos, windows].sum(axis=1)
    # The - strand reads the window backwards and complemented.
    minus = motif.log_odds[pos, (3 - windows)[:, ::-1]].sum(axis=1)
    return np.stack([plus, minus], axis=1)


def instance_score(motif: Motif, instance: np.ndarray) -> float:
    """Log-odds score of one motif-oriented instance, shape=(w,), codes 0-3."""
    return float(motif.log_odds[np.arange(motif.width), np.asarray(instance)].sum())


def sample_instance(
    motif: Motif, rng: np.random.Generator, *, min_relative: float = 0.85
) -> np.ndarray:
    """Draw a strong binding site: sample each position from the sharpened PWM.

    Squaring the probabilities mimics the high-affinity sites that ChIP-seq and motif
    scanners call; draws below ``min_relative`` are redrawn, falling back to the consensus.

    Returns
    -------
    np.ndarray, shape=(w,), int8 codes in motif orientation
    """
    sharp = motif.probs**2
    sharp /= sharp.sum(axis=1, keepdims=True)
    cum = np.cumsum(sharp, axis=1)
    for _ in range(20):
        u = rng.random(motif.width)
        inst = (u[:, None] > cum).sum(axis=1).clip(0, 3)
        if relative_score(motif, instance_score(motif, inst)) >= min_relative:
            return inst.astype(np.int8)
    return motif.probs.argmax(axis=1).astype(np.int8)


def switch_positions(motif: Motif, *, min_prob: float = 0.6) -> np.ndarray:
    """Motif positions where one base dominates, so a single SNV there breaks or makes the site.

    Returns
    -------
    np.ndarray, shape=(k,), int
        Motif-orientation positions whose most likely base has probability >= ``min_prob``.
    """
    return np.flatnonzero(motif.probs.max(axis=1) >= min_prob)


def to_genome(instance: np.ndarray, strand: str) -> np.ndarray:
    """Bases to write on the genome's + strand for a motif-oriented instance on ``strand``."""
    instance = np.asarray(instance, dtype=np.int8)
    return instance if strand == "+" else (3 - instance[::-1]).astype(np.int8)


def genome_offset(position: int, width: int, strand: str) -> int:
    """Offset on the genome (from the instance's leftmost base) of motif position ``position``."""
    return position if strand == "+" else width - 1 - position


def plant(ref: np.ndarray, occupied: np.ndarray, start0: int, bases: np.ndarray) -> bool:
    """Write ``bases`` into ``ref`` at ``start0`` unless that overlaps an instance already planted.

    Parameters
    ----------
    ref : np.ndarray, shape=(contig_length,), int8 codes, modified in place
    occupied : np.ndarray, shape=(contig_length,), bool, modified in place
    start0 : int
        0-based leftmost position on the + strand.
    bases : np.ndarray, shape=(w,), codes already in genome orientation

    Returns
    -------
    bool
        Whether the instance was written.
    """
    end0 = start0 + len(bases)
    if start0 < 0 or end0 > ref.shape[0] or occupied[start0:end0].any():
        return False
    ref[start0:end0] = bases
    occupied[start0:end0] = True
    return True


class Planted(NamedTuple):
    """One motif instance written into the reference (0-based half-open, genome + strand)."""

    motif: Motif
    strand: str
    start0: int
    ref_base: int
    alt_base: int


def plant_switch(
    ref: np.ndarray,
    occupied: np.ndarray,
    pos0: int,
    effect: str,
    motifs: tuple[Motif, ...],
    rng: np.random.Generator,
) -> Planted | None:
    """Plant a motif over ``pos0`` so that one base change there breaks or creates it.

    For ``effect='break'`` the reference carries the motif's dominant base at a dominant
    position and the returned ALT base is its least likely base; ``'create'`` swaps the two,
    so the reference holds a damaged site that the ALT allele repairs.

    Returns
    -------
    Planted or None
        ``ref_base`` / ``alt_base`` are genome-strand codes; None if no placement fits.
    """
    for _ in range(20):
        motif = motifs[int(rng.integers(len(motifs)))]
        positions = switch_positions(motif)
        if positions.size == 0:
            continue
        j = int(rng.choice(positions))
        strand = "+-"[int(rng.integers(2))]
        strong, weak = int(motif.probs[j].argmax()), int(motif.probs[j].argmin())
        ref_b, alt_b = (strong, weak) if effect == "break" else (weak, strong)
        inst = sample_instance(motif, rng)
        inst[j] = ref_b
        start0 = pos0 - genome_offset(j, motif.width, strand)
        if plant(ref, occupied, start0, to_genome(inst, strand)):
            if strand == "-":
                ref_b, alt_b = 3 - ref_b, 3 - alt_b
            return Planted(motif, strand, start0, ref_b, alt_b)
    return None


def plant_cluster(
    ref: np.ndarray,
    occupied: np.ndarray,
    lo: int,
    hi: int,
    n: int,
    motifs: tuple[Motif, ...],
    rng: np.random.Generator,
) -> list[Planted]:
    """Plant up to ``n`` strong instances of random ``motifs`` at free spots of ``[lo, hi)``."""
    done = []
    for _ in range(n):
        for _ in range(10):
            motif = motifs[int(rng.integers(len(motifs)))]
            strand = "+-"[int(rng.integers(2))]
            if hi - lo <= motif.width:
                break
            start0 = int(rng.integers(lo, hi - motif.width))
            if plant(ref, occupied, start0, to_genome(sample_instance(motif, rng), strand)):
                done.append(Planted(motif, strand, start0, -1, -1))
                break
    return done
