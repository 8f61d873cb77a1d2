"""Do a model's |weights| pick out fine-mapped (or truly causal) eQTLs? auROC and auPR per model.

As in the paper (Methods, "auROC/auPR analysis"; Fig. 3c): positives are a gene's CAVIAR
high-confidence fine-mapped SNVs (GTEx layout: ``TISSUE, GENE, eQTL, CHROM, POS, Probability``);
each positive gets ``n_negatives`` (5) distance-matched negatives (ties broken by a seeded
shuffle, each used once per gene). Every model scores the same SNVs by ``|weight|`` (a SNV the
model did not score gets 0). Per gene, ``sklearn.metrics.roc_auc_score`` and
``average_precision_score`` (the step-wise area under the precision-recall curve); per model,
the mean over genes, as the paper reports it. With the simulated cohort's ``truth.tsv`` the
positives are the true causal SNVs instead.

Two definitions of the negatives, named in the tables' ``negatives`` column:

- ``"eqtl"`` (as published, "5 distance-matched non-FM eQTLs"): non-fine-mapped significant
  eQTLs of the same gene (GTEx ``signif_variant_gene_pairs``, read by
  :func:`~variformer.analysis.eqtl_pool.read_eqtls`) that are SNVs of the window, matched on
  ``|tss_distance|``: :func:`eqtl_sets`, then ``eqtl_auroc(..., negatives=sets.negatives)``.
- ``"any-snv"`` (the earlier approximation): any non-positive SNV of the window, matched on the
  strand-aware TSS distance: ``eqtl_auroc(...)`` without ``negatives``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from core.errors import InputError
from data_prep.genome import tss_distance
from data_prep.keys import KEY_COLUMNS, normalize_keys, strip_chr
from variformer.analysis.eqtl_pool import EQTL_COLUMNS, gene_names, read_eqtls

__all__ = [
    "EqtlSets",
    "eqtl_auroc",
    "eqtl_negatives",
    "eqtl_sets",
    "fm_eqtl_tables",
    "matched_negatives",
    "read_eqtls",
    "read_finemap",
    "read_truth",
]

FINEMAP_COLUMNS = ("GENE", "CHROM", "POS")
MODEL_COLUMNS = ("model", "negatives", "auroc", "aupr", "n_pos", "n_neg")
GENE_COLUMNS = ("gene", "model", "negatives", "auroc", "aupr", "n_pos", "n_neg")
#: Values of the ``negatives`` column: the published definition and the any-SNV approximation.
NEGATIVES = ("eqtl", "any-snv")


def read_finemap(path, dataset, *, tissue: str | None = None) -> pd.DataFrame:
    """Fine-mapped SNVs of the dataset's genes: ``gene, chrom, pos`` (1-based; no alleles).

    ``GENE`` is an Ensembl id (with or without version) or a gene name; ``CHROM`` may lack the
    ``chr`` prefix. ``tissue`` keeps only that ``TISSUE`` (default: every row).
    """
    try:
        df = pd.read_csv(path, sep="\t", dtype={"GENE": str, "CHROM": str, "TISSUE": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read --finemap {path}: {err}") from None
    missing = [c for c in FINEMAP_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"--finemap {path} lacks column(s) {', '.join(missing)}; expected GTEx CAVIAR "
            "columns TISSUE, GENE, eQTL, CHROM, POS, Probability"
        )
    if tissue is not None:
        if "TISSUE" not in df.columns or not (df["TISSUE"] == tissue).any():
            raise InputError(f"--finemap {path} has no rows for tissue {tissue!r}")
        df = df[df["TISSUE"] == tissue]
    names = gene_names(dataset)
    gene = df["GENE"].map(lambda g: names.get(g, names.get(g.split(".")[0])))
    out = pd.DataFrame({"gene": gene, "chrom": df["CHROM"].map(strip_chr), "pos": df["POS"]})
    return (
        out.dropna(subset=["gene"])
        .astype({"pos": "int64"})
        .drop_duplicates()
        .reset_index(drop=True)
    )


def read_truth(path) -> pd.DataFrame:
    """The simulated cohort's ``truth.tsv``: ``gene, chrom, pos, ref, alt`` of causal SNVs."""
    try:
        df = pd.read_csv(path, sep="\t", dtype={"chrom": str, "ref": str, "alt": str, "gene": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read --truth {path}: {err}") from None
    missing = [c for c in ("gene", *KEY_COLUMNS) if c not in df.columns]
    if missing:
        raise InputError(
            f"--truth {path} lacks column(s) {', '.join(missing)} (expected truth.tsv)"
        )
    return normalize_keys(df[["gene", *KEY_COLUMNS]])


def matched_negatives(
    distance: np.ndarray, positive: np.ndarray, *, n_negatives: int = 5, rng=None
) -> np.ndarray:
    """Indices of distance-matched negatives: per positive, the closest unused non-positives.

    Parameters
    ----------
    distance : np.ndarray, shape=(n_snvs,)
        TSS distance of every SNV of the window.
    positive : np.ndarray of bool, shape=(n_snvs,)
    n_negatives : int
        Negatives per positive (fewer when the window runs out).
    rng : np.random.Generator, optional
        Breaks ties between equally distant candidates and orders the positives.

    Returns
    -------
    np.ndarray of int
        Sorted indices of the chosen negatives (each at most once, never a positive).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    distance = np.asarray(distance, dtype=np.float64)
    free = ~np.asarray(positive, dtype=bool)
    chosen = []
    for p in rng.permutation(np.flatnonzero(positive)):
        cand = np.flatnonzero(free)
        if not len(cand):
            break
        tie = rng.random(len(cand))
        pick = cand[np.lexsort((tie, np.abs(distance[cand] - distance[p])))[:n_negatives]]
        free[pick] = False
        chosen.extend(pick.tolist())
    return np.sort(np.asarray(chosen, dtype=np.int64))


def eqtl_negatives(
    positives: pd.DataFrame, pool: pd.DataFrame, *, n_negatives: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Per positive, the ``n_negatives`` non-fine-mapped eQTLs of its gene nearest in |TSS distance|.

    Candidates are the ``pool`` rows of the positive's gene at a position no positive of that
    gene has. Genes are taken in sorted order and, within a gene, the positives in a seeded
    random order; each takes the unused candidates with the smallest
    ``abs(abs(d_candidate) - abs(d_positive))`` (ties broken by the seeded random draw), so a
    candidate serves at most one positive of its gene. A gene that runs out of candidates gets
    fewer negatives.

    Parameters
    ----------
    positives : pd.DataFrame
        ``gene, chrom, pos, tss_distance`` (more columns are ignored).
    pool : pd.DataFrame
        ``gene, chrom, pos, ref, alt, tss_distance`` (as :func:`read_eqtls` returns it).
    n_negatives : int
        Negatives per positive (the paper: 5).
    seed : int

    Returns
    -------
    pd.DataFrame
        The chosen ``pool`` rows (its columns), sorted by gene and position.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for gene in sorted(set(positives["gene"])):
        mine = positives[positives["gene"] == gene]
        taken = set(zip(mine["chrom"].map(strip_chr), mine["pos"].astype("int64")))
        cand = pool[pool["gene"] == gene]
        free = [k not in taken for k in zip(cand["chrom"].map(strip_chr), cand["pos"])]
        cand = cand[np.asarray(free, dtype=bool)]
        if cand.empty:
            continue
        dist = np.abs(
            np.r_[mine["tss_distance"].to_numpy(float), cand["tss_distance"].to_numpy(float)]
        )
        is_pos = np.r_[np.ones(len(mine), bool), np.zeros(len(cand), bool)]
        chosen = matched_negatives(dist, is_pos, n_negatives=n_negatives, rng=rng) - len(mine)
        picked.append(cand.iloc[chosen])
    if not picked:
        return pool.iloc[:0].reset_index(drop=True)
    out = pd.concat(picked)
    return out.sort_values(["gene", "chrom", "pos"], kind="stable").reset_index(drop=True)


class EqtlSets(NamedTuple):
    """Positives and published (``"eqtl"``) negatives restricted to SNVs of the windows.

    Attributes
    ----------
    positives, negatives : pd.DataFrame
        ``gene, chrom, pos, ref, alt, tss_distance`` (:data:`EQTL_COLUMNS`; ``chrom`` without
        ``chr``): SNV alleles of the gene's window. A positive given by position only stands
        for every allele observed there.
    n_pos_unobserved : int
        Positive rows of the dataset's genes that are not an SNV of the gene's window (left out).
    n_pool_unobserved : int
        Pool rows of the dataset's genes that are not an SNV of the window (indels, outside the
        window, filtered by prep): never negatives.
    """

    positives: pd.DataFrame
    negatives: pd.DataFrame
    n_pos_unobserved: int
    n_pool_unobserved: int


def _keys(table: pd.DataFrame, alleles: bool) -> list[tuple]:
    chrom = table["chrom"].map(strip_chr)
    pos = table["pos"].astype("int64")
    if alleles:
        return list(zip(chrom, pos, table["ref"].astype(str), table["alt"].astype(str)))
    return list(zip(chrom, pos))


def _observed(table: pd.DataFrame, v: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(which rows of the window's SNVs ``v`` the table names, which table rows are among them).

    Matched on ``chrom, pos, ref, alt`` when the table has alleles, else on ``chrom, pos``.
    """
    alleles = {"ref", "alt"} <= set(table.columns)
    want, have = _keys(table, alleles), _keys(v, alleles)
    wanted, present = set(want), set(have)
    return (
        np.array([k in wanted for k in have], dtype=bool),
        np.array([k in present for k in want], dtype=bool),
    )


def eqtl_sets(
    positives: pd.DataFrame, pool: pd.DataFrame, dataset, *, n_negatives: int = 5, seed: int = 0
) -> EqtlSets:
    """The published FM-eQTL positives and negatives among the SNVs of the dataset's windows.

    Positives (e.g. :func:`read_finemap`) and the pool (:func:`read_eqtls`) are first kept to
    SNVs observed in the gene's window (the only SNVs a model weights), then
    :func:`eqtl_negatives` draws ``n_negatives`` distance-matched negatives per positive from
    the observed non-fine-mapped pool. A positive's ``tss_distance`` is the pool's when it is a
    significant pair, else GTEx's ``pos - (tss0 + 1)`` from the dataset's window (variant minus
    the 1-based TSS, not strand-corrected); only its absolute value is matched.

    Parameters
    ----------
    positives : pd.DataFrame
        ``gene, chrom, pos`` and optionally ``ref, alt``.
    pool : pd.DataFrame
        :data:`EQTL_COLUMNS`.
    dataset : data_prep.GeneDataset
    n_negatives, seed : int
        As in :func:`eqtl_negatives`.

    Returns
    -------
    EqtlSets
    """
    pos_rows, pool_rows = [], []
    n_pos_lost = n_pool_lost = 0
    for gene in dataset.genes:
        mine, theirs = positives[positives["gene"] == gene], pool[pool["gene"] == gene]
        if mine.empty and theirs.empty:
            continue
        v = normalize_keys(dataset.variants(gene))[list(KEY_COLUMNS)]
        v["chrom"] = v["chrom"].map(strip_chr)
        is_pos, found = _observed(mine, v)
        n_pos_lost += int((~found).sum())
        _, found = _observed(theirs, v)
        n_pool_lost += int((~found).sum())
        kept = normalize_keys(theirs[found]).assign(chrom=lambda d: d["chrom"].map(strip_chr))
        kept = kept.drop_duplicates(subset=["gene", *KEY_COLUMNS])
        pool_rows.append(kept[list(EQTL_COLUMNS)])
        if is_pos.any():
            w = dataset.window(gene)
            p = v[is_pos].assign(gene=gene, tss_distance=v["pos"][is_pos] - (int(w.tss0) + 1))
            p = p.merge(kept, on=["gene", *KEY_COLUMNS], how="left", suffixes=("", "_pool"))
            p["tss_distance"] = p["tss_distance_pool"].fillna(p["tss_distance"]).astype("int64")
            pos_rows.append(p[list(EQTL_COLUMNS)])
    empty = pd.DataFrame(columns=list(EQTL_COLUMNS))
    pos = pd.concat(pos_rows, ignore_index=True) if pos_rows else empty
    pos = pos.sort_values(["gene", "chrom", "pos", "ref", "alt"]).reset_index(drop=True)
    obs_pool = pd.concat(pool_rows, ignore_index=True) if pool_rows else empty
    neg = eqtl_negatives(pos, obs_pool, n_negatives=n_negatives, seed=seed)
    return EqtlSets(pos, neg, n_pos_lost, n_pool_lost)


def eqtl_auroc(
    weights: pd.DataFrame,
    positives: pd.DataFrame,
    dataset,
    *,
    negatives: pd.DataFrame | None = None,
    n_negatives: int = 5,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """auROC and auPR of ``|weight|`` for positives vs negatives, per gene and model.

    Parameters
    ----------
    weights : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt, weight``.
    positives : pd.DataFrame
        ``gene, chrom, pos`` and optionally ``ref, alt`` (then alleles must match too; without
        them every allele at the position is positive). Chromosome names match with or
        without ``chr``.
    dataset : data_prep.GeneDataset
    negatives : pd.DataFrame, optional
        Given (``gene, chrom, pos, ref, alt``; e.g. :attr:`EqtlSets.negatives`): these are the
        negatives, labelled ``"eqtl"``; rows that are not SNVs of the window, or are
        positives, are ignored. Omitted: per positive, ``n_negatives`` distance-matched
        non-positive SNVs of the window (:func:`matched_negatives`), labelled ``"any-snv"``.
    n_negatives : int
        Only without ``negatives``.
    seed : int
        Only without ``negatives``: seeds the sampling (same seed, same negatives for every
        model).

    Returns
    -------
    (per_model, per_gene) : tuple of pd.DataFrame
        ``per_model`` has :data:`MODEL_COLUMNS` (means over genes, summed counts); ``per_gene``
        has :data:`GENE_COLUMNS`; ``negatives`` is ``"eqtl"`` or ``"any-snv"``. Genes without a
        positive or a negative (among the window's SNVs) are left out.
    """
    label = NEGATIVES[1] if negatives is None else NEGATIVES[0]
    rng = np.random.default_rng(seed)
    models = sorted(weights["model"].unique())
    rows = []
    for gene in dataset.genes:
        mine = positives[positives["gene"] == gene]
        gw = weights[weights["gene"] == gene]
        if mine.empty or gw.empty:
            continue
        v = normalize_keys(dataset.variants(gene))
        is_pos = _observed(mine, v)[0]
        if not is_pos.any():
            continue
        if negatives is None:
            dist = tss_distance(v["pos"], dataset.window(gene))
            neg = matched_negatives(dist, is_pos, n_negatives=n_negatives, rng=rng)
        else:
            is_neg = _observed(negatives[negatives["gene"] == gene], v)[0]
            neg = np.flatnonzero(is_neg & ~is_pos)
        if not len(neg):
            continue
        idx = np.concatenate([np.flatnonzero(is_pos), neg])
        labels = np.r_[np.ones(is_pos.sum()), np.zeros(len(neg))]
        sub = v.iloc[idx][list(KEY_COLUMNS)].reset_index(drop=True)
        for model in models:
            w = gw[gw["model"] == model]
            if w.empty:
                continue
            s = sub.merge(w[[*KEY_COLUMNS, "weight"]], on=list(KEY_COLUMNS), how="left")
            score = s["weight"].abs().fillna(0.0).to_numpy(float)
            rows.append(
                (gene, model, label, roc_auc_score(labels, score),
                 average_precision_score(labels, score), int(labels.sum()), len(neg))
            )  # fmt: skip
    per_gene = pd.DataFrame(rows, columns=list(GENE_COLUMNS))
    per_model = (
        per_gene.groupby(["model", "negatives"], sort=True)
        .agg(
            auroc=("auroc", "mean"),
            aupr=("aupr", "mean"),
            n_pos=("n_pos", "sum"),
            n_neg=("n_neg", "sum"),
        )
        .reset_index()
    )
    return per_model[list(MODEL_COLUMNS)], per_gene


def fm_eqtl_tables(
    weights, ds, *, finemap, tissue, eqtls, negatives, ism_models, n_negatives, seed, notes
):
    """``analyze``'s ``eqtl_auroc.tsv`` and per-gene table (None, None when not asked for): the ISM
    models and ridge (the paper's Fig. 3c: "so that all variants get a weight") score
    CAVIAR positives against distance-matched non-fine-mapped eQTLs (or, asked for, any SNV)."""
    if finemap is None:
        extra = " to give the positives; --eqtls alone has none" if eqtls is not None else ""
        notes.append(f"eQTL auROC: skipped (no --finemap{extra})")
        return None, None
    if negatives not in NEGATIVES:
        raise InputError(f"--eqtl-negatives must be one of {', '.join(NEGATIVES)}")
    if negatives == "eqtl" and eqtls is None:
        notes.append(
            "eQTL auROC: skipped (the paper's negatives are non-fine-mapped eQTLs: pass --eqtls "
            "GTEx signif_variant_gene_pairs.txt.gz, or --eqtl-negatives any-snv for any SNV)"
        )
        return None, None
    models = set(ism_models) | {"ridge"}
    if "ridge" not in set(weights["model"]):
        notes.append(
            "eQTL auROC: no ridge baseline, so no linear model is scored (run "
            "`variformer baselines --model ridge` on the same splits)"
        )
    scored = weights[weights["model"].isin(models)]
    fm = read_finemap(finemap, ds, tissue=tissue)
    if negatives == "any-snv":
        table, genes = eqtl_auroc(scored, fm, ds, n_negatives=n_negatives, seed=seed)
        _few(table, notes)
        return table, genes
    pool = read_eqtls(eqtls, ds)
    sets = eqtl_sets(fm, pool, ds, n_negatives=n_negatives, seed=seed)
    if sets.n_pos_unobserved or sets.n_pool_unobserved:
        notes.append(
            f"eQTL auROC: {sets.n_pos_unobserved} fine-mapped variant(s) and "
            f"{sets.n_pool_unobserved} significant pair(s) are not observed SNVs of the windows "
            "(left out)"
        )
    table, genes = eqtl_auroc(scored, sets.positives, ds, negatives=sets.negatives)
    _few(table, notes)
    return table, genes


#: fewer positives or negatives than this per model make the auROC a check, not a finding
FEW_SNVS = 10


def _few(table: pd.DataFrame, notes: list[str]) -> None:
    """A note when the auROC of some model rests on too few SNVs to compare models."""
    few = table[(table["n_pos"] < FEW_SNVS) | (table["n_neg"] < FEW_SNVS)]
    if len(few):
        counts = ", ".join(f"{r.model} {r.n_pos}+/{r.n_neg}-" for r in few.itertuples())
        notes.append(
            f"eQTL auROC rests on fewer than {FEW_SNVS} positives or negatives ({counts}): "
            "too few SNVs to compare models"
        )
