"""Do a model's |weights| pick out fine-mapped (or truly causal) eQTLs? auROC and auPR per model.

As in the paper (Methods, "auROC/auPR analysis"; Fig. 3c): positives are a gene's CAVIAR
high-confidence fine-mapped SNVs (GTEx layout: ``TISSUE, GENE, eQTL, CHROM, POS, Probability``);
each positive gets ``n_negatives`` (5) distance-matched negatives: non-fine-mapped SNVs of the
same window with the closest TSS distance (ties broken by a seeded shuffle, each SNV used once).
Every model scores the same SNVs by ``|weight|`` (a SNV the model did not score gets 0). Per gene,
``sklearn.metrics.roc_auc_score`` and ``average_precision_score`` (the step-wise area under the
precision-recall curve); per model, the mean over genes, as the paper reports it.
With the simulated cohort's ``truth.tsv`` the positives are the true causal SNVs instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from core.errors import InputError
from data_prep.genome import tss_distance
from data_prep.keys import KEY_COLUMNS, normalize_keys, strip_chr

__all__ = ["eqtl_auroc", "matched_negatives", "read_finemap", "read_truth"]

FINEMAP_COLUMNS = ("GENE", "CHROM", "POS")
MODEL_COLUMNS = ("model", "auroc", "aupr", "n_pos", "n_neg")
GENE_COLUMNS = ("gene", "model", "auroc", "aupr", "n_pos", "n_neg")


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
    names = _gene_names(dataset)
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


def _gene_names(dataset) -> dict[str, str]:
    genes = pd.read_csv(dataset.path / "genes.tsv", sep="\t", dtype=str)
    names = {g: g for g in genes["gene"]}
    for g, gid in zip(genes["gene"], genes["gene_id"]):
        names.setdefault(gid, g)
        names.setdefault(gid.split(".")[0], g)
    return names


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


def eqtl_auroc(
    weights: pd.DataFrame,
    positives: pd.DataFrame,
    dataset,
    *,
    n_negatives: int = 5,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """auROC and auPR of ``|weight|`` for positives vs distance-matched negatives.

    Parameters
    ----------
    weights : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt, weight``.
    positives : pd.DataFrame
        ``gene, chrom, pos`` and optionally ``ref, alt`` (then alleles must match too; without
        them every allele at the position is positive). Chromosome names match with or
        without ``chr``.
    dataset : data_prep.GeneDataset
    n_negatives : int
    seed : int
        Seeds the negative sampling (same seed, same negatives for every model).

    Returns
    -------
    (per_model, per_gene) : tuple of pd.DataFrame
        ``per_model`` has :data:`MODEL_COLUMNS` (means over genes, summed counts); ``per_gene``
        has :data:`GENE_COLUMNS`. Genes without a positive or a negative are left out.
    """
    rng = np.random.default_rng(seed)
    by_allele = {"ref", "alt"} <= set(positives.columns)
    pos_keys = positives.assign(chrom=positives["chrom"].map(strip_chr))
    models = sorted(weights["model"].unique())
    rows = []
    for gene in dataset.genes:
        mine = pos_keys[pos_keys["gene"] == gene]
        gw = weights[weights["gene"] == gene]
        if mine.empty or gw.empty:
            continue
        v = normalize_keys(dataset.variants(gene))
        chrom = v["chrom"].map(strip_chr)
        if by_allele:
            want = set(zip(mine["chrom"], mine["pos"].astype(int), mine["ref"], mine["alt"]))
            is_pos = np.array(
                [k in want for k in zip(chrom, v["pos"], v["ref"], v["alt"])], dtype=bool
            )
        else:
            want = set(zip(mine["chrom"], mine["pos"].astype(int)))
            is_pos = np.array([k in want for k in zip(chrom, v["pos"])], dtype=bool)
        if not is_pos.any():
            continue
        dist = tss_distance(v["pos"], dataset.window(gene))
        neg = matched_negatives(dist, is_pos, n_negatives=n_negatives, rng=rng)
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
                (gene, model, roc_auc_score(labels, score), average_precision_score(labels, score),
                 int(labels.sum()), len(neg))
            )  # fmt: skip
    per_gene = pd.DataFrame(rows, columns=list(GENE_COLUMNS))
    per_model = (
        per_gene.groupby("model", sort=True)
        .agg(
            auroc=("auroc", "mean"),
            aupr=("aupr", "mean"),
            n_pos=("n_pos", "sum"),
            n_neg=("n_neg", "sum"),
        )
        .reset_index()
    )
    return per_model[list(MODEL_COLUMNS)], per_gene
