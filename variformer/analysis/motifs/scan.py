"""The motif disruption scan: which SNVs break or create motifs, in one window or a dataset.

For REF and ALT, both strands, the best-scoring window that overlaps each SNV under a scoring
method (:mod:`variformer.analysis.motifs.scoring`), its exact p-value
(:mod:`variformer.analysis.motifs.pvalues`) and motifbreakR's effect;
:func:`motif_disruption` scans one sequence, :func:`dataset_motif_disruption` the reference
windows of a ``variformer prep`` dataset.

Rows follow motifbreakR's ``scoreSnpList`` (``R/scoreMotif.R``, 2.17.1) for ``default`` and
``ic``: one row per (SNV, matrix), REF's and ALT's best windows over both strands, the effect
from their score difference (``alleleDiff = scoreAlt - scoreRef``: ``|d| >= 0.7`` strong,
``> 0.4`` weak, else neutral). ``log`` keeps this package's original rows: one per (SNV,
matrix, strand) and the effect from the probability difference of the alleles at the SNV's
motif column (motifbreakR 1.x's ``snpEff``). Two things differ from motifbreakR on purpose:
the p-value filter is exact (motifbreakR's ``filterp=TRUE`` keeps a window whose score beats
TFMPvalue's threshold for the matrix rounded to 2 decimals, less 0.02, a slightly looser
filter), and only windows that overlap the SNV are scored (motifbreakR 2.x also scores the
one window just right of it) and none that holds an N (motifbreakR scores N as 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from data_prep.genome import in_window
from variformer.analysis.motifs.matrices import BASES
from variformer.analysis.motifs.pvalues import (
    N_CODE,
    background_probs,
    encode_sequence,
    prepared,
)
from variformer.analysis.motifs.scoring import check_method, score_range
from variformer.analysis.motifs.windows import at_snv, best_strand, each_strand, strand_scores

__all__ = ["COLUMNS", "KEYS", "dataset_motif_disruption", "motif_disruption"]

STRONG, WEAK = 0.7, 0.4  # motifbreakR's effect thresholds (snpEff / varEff)
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
    "ref_pct",
    "alt_pct",
    "allele_effect_size",
    "method",
    "database",
]


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
    method: str = "default",
    background="uniform",
    pseudocount: float | None = None,
    granularity: float | None = None,
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
    method : {"default", "ic", "log"}
        The scoring matrix (:func:`~variformer.analysis.motifs.scoring.scoring_matrix`):
        ``default`` is motifbreakR's default (the paper's), ``ic`` its information-content
        weighting, ``log`` log-odds in bits (this package's original scan). ``default`` and
        ``ic`` give one row per (SNV, matrix) with the effect on the score difference, ``log``
        one per (SNV, matrix, strand) with the effect on ``allele_diff`` (module docstring).
    background : "uniform", "window" or 4 probabilities (A, C, G, T)
        The null model of the p-values (all methods) and the odds of ``ic`` and ``log``.
    pseudocount : float or None
        Added to each column's counts; None: the method's (``default`` / ``ic``: 1, split
        evenly, motifbreakR's; ``log``: 0.8, split by the background, TFBSTools').
    granularity : float or None
        Score units per step of the discretized p-value tables; None: the method's (0.001 for
        ``default`` / ``ic``, 0.01 bits for ``log``).
    show_neutral : bool
        Keep hits whose effect is neutral (see ``effect``).

    Returns
    -------
    pd.DataFrame
        One row per hit, columns :data:`COLUMNS`: ``ref_score`` / ``alt_score`` (the method's
        units, bits for ``log``; best window per allele; NaN if every window has an N),
        ``ref_p`` / ``alt_p``, ``delta = alt_score - ref_score`` (motifbreakR's
        ``alleleDiff``), ``effect`` (strong / weak / neutral), ``direction`` (increase /
        decrease / none by the sign of ``delta``), ``motif_start`` (1-based genome start of
        the hit window: the better allele's best window), ``motif_pos`` (1-based SNV position
        within the motif, motif orientation), ``allele_diff = P[ref] - P[alt]`` at that
        position (strand-aware; the method's probabilities), ``ic`` (its information
        content, bits), ``ref_pct`` / ``alt_pct`` (relative scores ``(score - min) / (max -
        min)`` of the matrix, motifbreakR's ``pctRef`` / ``pctAlt``), ``allele_effect_size =
        delta / max`` (motifbreakR's ``alleleEffectSize``), ``method`` and ``database`` (the
        matrix's, ``.`` if unknown). Sorted by gene, pos, alt, min p.

    Raises
    ------
    InputError
        A non-SNV, a SNV outside the window, a REF that disagrees with the window, or an
        unknown method.
    """
    codes = encode_sequence(sequence)
    df = _variant_frame(variants)
    for col, value in (("gene", gene), ("chrom", chrom)):
        if col not in df.columns:
            df[col] = value if value is not None else "."
    _check_options(pvalue, method)
    bg = background_probs(background, codes)
    wmax = max((m.width for m in motifs), default=1)
    ctx, ref_c, alt_c = _contexts(codes, df, int(start0), wmax)
    options = dict(
        method=method,
        pvalue=pvalue,
        pseudocount=pseudocount,
        granularity=granularity,
        show_neutral=show_neutral,
    )
    return _scan(df, ctx, ref_c, alt_c, motifs, bg, **options)


def _check_options(pvalue: float, method: str) -> None:
    if not 0 < pvalue <= 1:
        raise InputError(f"pvalue must lie in (0, 1], got {pvalue}")
    check_method(method)


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


def _scan(
    df, ctx, ref_c, alt_c, motifs, bg, *, method, pvalue, pseudocount, granularity, show_neutral
):
    """Hits of every matrix at the SNVs of ``df`` (contexts from :func:`_contexts`)."""
    if len(df) == 0 or len(motifs) == 0:
        return _empty()
    wmax = (ctx.shape[1] + 1) // 2
    snv0 = df["pos"].to_numpy() - 1
    settings = dict(method=method, pseudocount=pseudocount, granularity=granularity)
    parts: dict[str, list] = {}
    for motif in motifs:
        probs, mat, table = prepared(motif, bg, **settings)
        w = motif.width
        sub = ctx[:, wmax - w : wmax + w - 1]  # (n, 2w-1), SNV at w-1
        per_strand = strand_scores(mat, table, sub, ref_c, alt_c)
        pick = each_strand if method == "log" else best_strand
        found = pick(per_strand, pvalue)
        if found["row"].size == 0:
            continue
        found.update(at_snv(found, probs, bg, ref_c, alt_c, w))
        lo, hi = score_range(mat)
        found["ref_pct"] = (found["ref_score"] - lo) / (hi - lo)
        found["alt_pct"] = (found["alt_score"] - lo) / (hi - lo)
        found["allele_effect_size"] = found["delta"] / hi
        n = len(found["row"])
        found["matrix_id"] = np.full(n, motif.matrix_id, dtype=object)
        found["tf"] = np.full(n, motif.tf, dtype=object)
        found["database"] = np.full(n, motif.database or ".", dtype=object)
        found["strand"] = np.where(found.pop("flip"), "-", "+").astype(object)
        # genome start (0-based) of window k is the SNV's position - (w - 1) + k
        found["motif_start"] = snv0[found["row"]] - (w - 1) + found.pop("window") + 1
        for key, values in found.items():
            parts.setdefault(key, []).append(values)
    if not parts:
        return _empty()
    hits = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    hits["method"] = method
    # motifbreakR's effect: log (this package's original rule, motifbreakR 1.x's snpEff) on the
    # SNV column's probability difference, >= 0.7 strong, >= 0.4 weak; default / ic (2.x's
    # varEff) on the score difference of the best windows, >= 0.7 strong, > 0.4 weak
    mag = np.abs(hits["allele_diff" if method == "log" else "delta"].to_numpy(float))
    weak = mag >= WEAK if method == "log" else mag > WEAK
    hits["effect"] = np.where(mag >= STRONG, "strong", np.where(weak, "weak", "neutral"))
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


def dataset_motif_disruption(
    dataset,
    genes,
    motifs,
    *,
    variants=None,
    pvalue: float = 5e-5,
    method: str = "default",
    background="uniform",
    pseudocount: float | None = None,
    granularity: float | None = None,
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
    method : {"default", "ic", "log"}
        motifbreakR's default (the paper's) unless told; see :func:`motif_disruption`, as for
        ``pvalue``, ``background``, ``pseudocount``, ``granularity`` and ``show_neutral``.
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

    _check_options(pvalue, method)
    wmax = max((m.width for m in motifs), default=1)
    # SNVs of windows with the same background are scanned together, one pass per matrix
    groups: dict[tuple, list] = {}
    for gene in tqdm(genes, desc="motifs", unit="gene", disable=not progress):
        win = ds.window(gene)
        if variants is None:
            v = ds.variants(gene)
        elif "gene" in variants.columns:
            v = variants[variants["gene"].astype(str) == gene]
            off = ~in_window(v["chrom"], v["pos"], win)
            if off.any():
                row = v[off].iloc[0]
                raise InputError(
                    f"variant {row['chrom']}:{row['pos']} is listed for {gene}, whose window is "
                    f"{win.chrom}:{win.start0 + 1}-{win.end0}; fix its chrom/pos or gene column"
                )
        else:
            v = variants[in_window(variants["chrom"], variants["pos"], win)]
        v = _variant_frame(v.assign(gene=gene)[KEYS].drop_duplicates())
        codes = encode_sequence(ds.reference(gene))
        bg = background_probs(background, codes)
        ctx, ref_c, alt_c = _contexts(codes, v, win.start0, wmax)
        groups.setdefault(tuple(bg), []).append((v, ctx, ref_c, alt_c))
    options = dict(
        method=method,
        pvalue=pvalue,
        pseudocount=pseudocount,
        granularity=granularity,
        show_neutral=show_neutral,
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
