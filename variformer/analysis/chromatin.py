"""Enrichment of HSVs in ChromHMM chromatin states (the paper's Fig. 3a).

As in the paper (Methods, "ChromHMM analysis"), per annotation sample, gene window and state:
``observed`` = HSVs inside the state's segments; ``expected`` = (bp of the state inside the
window / bp of all annotated segments inside the window) x the gene's number of HSVs. Both are
averaged over the annotation samples (the paper used 3 PBMC samples from Epimap). Rows with
``gene == "all"`` sum the averaged counts over genes; the enrichment is
``log2((observed + pc) / (expected + pc))`` with a pseudocount ``pc`` (0.5) so that a state
without HSVs gets a finite depletion instead of -inf.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import open_text

__all__ = [
    "chromatin_enrichment",
    "harmonize_contigs",
    "read_chromhmm",
    "state_occupancy",
    "state_order",
]

COLUMNS = (
    "model", "gene", "state", "observed", "expected", "log2_ratio", "n_hsvs", "n_samples",
)  # fmt: skip


def read_chromhmm(path) -> pd.DataFrame:
    """A ChromHMM segmentation BED (plain or gzipped): ``chrom, start0, end0, state``.

    Columns 1-4 of the BED (0-based half-open); ``track``/``browser``/``#`` lines are skipped.

    Raises
    ------
    InputError
        The file is missing, has fewer than 4 columns, non-integer coordinates, a segment
        with start >= end or start < 0, or two segments that overlap.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--chromhmm {path} does not exist")
    rows = []
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 4:
                raise InputError(f"{path}:{n}: a ChromHMM BED line needs chrom, start, end, state")
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                raise InputError(
                    f"{path}:{n}: start/end are not integers: {line.strip()!r}"
                ) from None
            if start < 0 or start >= end:
                raise InputError(
                    f"{path}:{n}: a segment needs 0 <= start < end, got {start}-{end}; "
                    "is the file a BED (0-based, half-open)?"
                )
            rows.append((f[0], start, end, f[3], n))
    seg = pd.DataFrame(rows, columns=["chrom", "start0", "end0", "state", "line"])
    seg = seg.sort_values(["chrom", "start0"], kind="stable")
    prev_end = seg.groupby("chrom")["end0"].shift()
    overlap = seg["start0"] < prev_end
    if overlap.any():
        row = seg[overlap].iloc[0]
        raise InputError(
            f"{path}:{row['line']}: segment {row['chrom']}:{row['start0']}-{row['end0']} overlaps "
            "the one before it; one ChromHMM sample assigns each base one state (pass each "
            "sample's segmentation as its own --chromhmm file)"
        )
    return seg.drop(columns="line").reset_index(drop=True)


def harmonize_contigs(seg: pd.DataFrame, contigs, *, name: str = "") -> tuple[pd.DataFrame, str]:
    """Rename a segmentation's contigs to the dataset's spelling ('chr1' vs '1', 'chrM' vs
    'MT'); returns the table and a note saying which renaming was applied ('' if none)."""
    from data_prep.genome import canonical_contig

    spelling = {canonical_contig(c): c for c in contigs}
    mapping = {
        c: spelling[canonical_contig(c)]
        for c in seg["chrom"].unique()
        if canonical_contig(c) in spelling and spelling[canonical_contig(c)] != c
    }
    if not mapping:
        return seg, ""
    shown = ", ".join(f"{a} -> {b}" for a, b in list(mapping.items())[:3])
    more = f" and {len(mapping) - 3} more" if len(mapping) > 3 else ""
    note = f"chromatin: {name} contigs renamed to the dataset's ({shown}{more})"
    return seg.assign(chrom=seg["chrom"].replace(mapping)), note


def state_order(states) -> list[str]:
    """The distinct states, numbered ones (``1_TssA``, ``2_TssFlnk``, ...) first by number."""

    def key(s):
        m = re.match(r"^(\d+)_", s)
        return (0, int(m.group(1)), s) if m else (1, 0, s)

    return sorted(set(states), key=key)


def _sample_counts(seg: pd.DataFrame, window, pos0: np.ndarray):
    """State bp inside the window, and the state of each position (None outside segments)."""
    s = seg[
        (seg["chrom"] == window.chrom)
        & (seg["end0"] > window.start0)
        & (seg["start0"] < window.end0)
    ]
    s = s.sort_values("start0")
    lo = np.maximum(s["start0"].to_numpy(), window.start0)
    hi = np.minimum(s["end0"].to_numpy(), window.end0)
    bp = pd.Series(hi - lo, index=s["state"].to_numpy()).groupby(level=0).sum()
    starts, ends, names = s["start0"].to_numpy(), s["end0"].to_numpy(), s["state"].to_numpy()
    idx = np.searchsorted(starts, pos0, side="right") - 1
    ok = (
        (idx >= 0) & (pos0 < ends[np.maximum(idx, 0)]) if len(starts) else np.zeros(len(pos0), bool)
    )
    state_of = np.where(ok, names[np.maximum(idx, 0)] if len(starts) else None, None)
    return bp, state_of


def state_occupancy(annotations: dict, window, pos1, states) -> tuple[np.ndarray, bool]:
    """The share of annotation samples that place each position in each state.

    Parameters
    ----------
    annotations : dict
        sample name -> :func:`read_chromhmm` table.
    window
        ``chrom, start0, end0`` (0-based half-open) of the gene window.
    pos1 : array-like of int, shape=(n,)
        1-based positions inside the window.
    states : sequence of str
        The states, in column order (e.g. :func:`state_order`).

    Returns
    -------
    occupancy : np.ndarray, shape=(n, len(states))
        Row sums are at most 1 (less where some sample leaves a position unannotated); summed
        over a model's HSVs a column is that gene's ``observed`` of :func:`chromatin_enrichment`.
    annotated : bool
        Whether any sample annotates some base of the window (if none, the gene has no
        ``chromatin.tsv`` rows).
    """
    pos0 = np.asarray(pos1, dtype=np.int64) - 1
    column = {s: i for i, s in enumerate(states)}
    occupancy = np.zeros((len(pos0), len(column)))
    annotated = False
    for seg in annotations.values():
        bp, state_of = _sample_counts(seg, window, pos0)
        annotated |= bool(bp.sum() > 0)
        for i, state in enumerate(state_of):
            if state is not None and state in column:
                occupancy[i, column[state]] += 1.0
    return occupancy / max(len(annotations), 1), annotated


def chromatin_enrichment(
    hsvs: pd.DataFrame,
    windows: dict,
    annotations: dict,
    *,
    pseudocount: float = 0.5,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Observed vs expected HSVs per model, gene and chromatin state, averaged over samples.

    Parameters
    ----------
    hsvs : pd.DataFrame
        ``model, gene, chrom, pos`` (``pos`` 1-based).
    windows : dict
        gene -> window with ``chrom, start0, end0`` (0-based half-open), e.g. ``ds.window(g)``.
    annotations : dict
        sample name -> :func:`read_chromhmm` table.
    pseudocount : float
        Added to observed and expected before the log2 ratio.
    notes : list of str, optional
        Receives "no annotation for gene X" for each gene whose window no sample annotates
        (such a gene has no rows: nothing can be enriched in it).

    Returns
    -------
    pd.DataFrame
        :data:`COLUMNS`; ``gene == "all"`` rows sum over genes.
    """
    if not annotations:
        return pd.DataFrame(columns=list(COLUMNS))
    states = state_order(s for a in annotations.values() for s in a["state"])
    rows = []
    for (model, gene), h in hsvs.groupby(["model", "gene"], sort=True):
        if gene not in windows:
            continue
        win = windows[gene]
        pos0 = h["pos"].to_numpy(np.int64) - 1
        obs = pd.Series(0.0, index=states)
        exp = pd.Series(0.0, index=states)
        annotated = 0
        for seg in annotations.values():
            bp, state_of = _sample_counts(seg, win, pos0)
            counts = pd.Series(state_of[state_of != None]).value_counts()  # noqa: E711
            obs = obs.add(counts, fill_value=0.0)
            if bp.sum() > 0:
                annotated += 1
                exp = exp.add(bp / bp.sum() * len(h), fill_value=0.0)
        if not annotated:
            if notes is not None and f"chromatin: no annotation for gene {gene}" not in notes:
                notes.append(f"chromatin: no annotation for gene {gene}")
            continue
        k = len(annotations)
        for state in states:
            rows.append((model, gene, state, obs[state] / k, exp[state] / k, len(h), k))
    df = pd.DataFrame(
        rows, columns=["model", "gene", "state", "observed", "expected", "n_hsvs", "n_samples"]
    )
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    total = df.groupby(["model", "state"], sort=False).agg(
        observed=("observed", "sum"),
        expected=("expected", "sum"),
        n_hsvs=("n_hsvs", "sum"),
        n_samples=("n_samples", "first"),
    )
    total = total.reset_index().assign(gene="all")
    df = pd.concat([df, total], ignore_index=True)
    df["n_hsvs"] = df.groupby(["model", "gene"])["n_hsvs"].transform("first")
    df["log2_ratio"] = np.log2((df["observed"] + pseudocount) / (df["expected"] + pseudocount))
    return df[list(COLUMNS)]
