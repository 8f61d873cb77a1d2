"""Export models as PredictDB files for TWAS (S-PrediXcan / MetaXcan / PrediXcan).

Two kinds of model become per-gene SNP weights (per ALT dosage, on the scale of the normalized
expression; ``eff_allele`` = ALT):

- a linear baseline (:func:`baseline_models`): the elastic net's (lasso's, ridge's)
  coefficients of one fold, or of the refit on every person (``variformer baselines
  --all-people``); they are fitted on raw dosages, so they need no unscaling;
- a fine-tuned Variformer (:func:`surrogate_models`): its linear surrogate, ISM score x ALT
  dosage summed over every observed SNV (the sum whose correlation with the network's
  predictions is the drivers analysis' ``linear_pcc``), or over its drivers only.

``pred.perf.R2`` is each exported model's own test R2 against observed expression, on the fold's
test people: for a surrogate that is the surrogate's (``intercept + sum(score x dosage)``, the
intercept the mean residual of the fold's train people), not the network's. ``pred.perf.pval``
is the two-sided Pearson test of those test predictions against observed expression and
``pred.perf.qval`` its Benjamini-Hochberg adjustment over the exported genes. A model that
learned nothing (flat test predictions, ISM at float-rounding level; see
:mod:`variformer.analysis.screening`) and a model without any non-zero weight are left out, with
the reason.

The covariance is that of the model SNPs' dosages among the fold's train people (every person
with expression for an all-people refit), the people the weights were fitted on.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from baselines.all_people import read_all_people
from core.errors import InputError
from core.manifest import check_made_from
from core.metrics import r2
from core.runs import ALL_PEOPLE, Run, model_checksum, read_run, run_path
from core.tables import read_coefficients, read_ism, read_predictions
from data_prep.keys import KEY_COLUMNS, gtex_variant_ids, normalize_keys
from variformer.analysis.screening import learned_table
from variformer.predictdb import covariance_rows, write_predictdb

__all__ = [
    "ExportResult",
    "GeneModel",
    "baseline_models",
    "export_predictdb",
    "surrogate_models",
]

RSID_FROM = ("id", "varID")


class GeneModel(NamedTuple):
    """One gene's exported model."""

    gene: str
    snvs: pd.DataFrame  # chrom, pos (1-based), id, ref, alt, weight: the non-zero weights
    r2: float  # test R2 of this model against observed expression
    pval: float  # two-sided Pearson test of its test predictions against observed
    people: list[str]  # the people the covariance is estimated on (the fitting people)


class ExportResult(NamedTuple):
    db: Path
    covariance: Path
    n_genes: int
    n_weights: int
    left_out: dict[str, str]  # gene -> why it is not in the db


def _pearson_p(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.pearsonr(x, y).pvalue)


def _test_performance(predictions: pd.DataFrame) -> tuple[float, float]:
    test = predictions[predictions["split"] == "test"]
    obs, pred = test["observed"].to_numpy(float), test["predicted"].to_numpy(float)
    return r2(obs, pred), _pearson_p(pred, obs)


def _train_people(ds, gene: str, fold: int | None, *, train_fraction: float = 1.0) -> list[str]:
    """The people a model was fitted on: the fold's train people with expression (all of them
    with expression for ``fold`` None; a run on a downsampled train set: that subset)."""
    have = set(ds.expression(gene).index)
    people = ds.samples if fold is None else ds.split(fold, train_fraction=train_fraction)["train"]
    return [s for s in people if s in have]


def baseline_models(
    baselines, ds, *, model: str = "elastic_net", fold: int | str = 0, genes=None, log=print
) -> tuple[list[GeneModel], dict[str, str]]:
    """Per-gene weights of a linear baseline: ``BL/<model>/<gene>/fold<k>/`` (or ``all/``).

    Returns
    -------
    (models, left_out) : models in dataset gene order; genes without one, with the reason.
    """
    root = Path(baselines) / model
    if not root.is_dir():
        raise InputError(
            f"{baselines} has no {model} fits ({root}); run `variformer baselines --model {model}`"
        )
    wanted = list(ds.genes) if genes is None else list(genes)
    models, left_out = [], {}
    for gene in wanted:
        d = run_path(root, gene, ALL_PEOPLE if fold == "all" else int(fold))
        if not (d / "coefficients.tsv").is_file():
            if genes is not None:
                raise InputError(
                    f"{root} has no published {gene} {d.name} fit; run `variformer baselines`"
                )
            left_out[gene] = f"no {d.name} fit under {root}"
            continue
        check_made_from(d, ds, verb="export")
        if fold == "all":
            coefs = normalize_keys(read_all_people(root, gene).coefficients)
            r, p = _pooled_performance(root / gene, ds)
            people = _train_people(ds, gene, None)
        else:
            coefs = normalize_keys(read_coefficients(d / "coefficients.tsv"))
            preds = read_predictions(d / "predictions.tsv")
            test = preds[preds["split"] == "test"]
            learned = learned_table(
                pd.DataFrame(
                    {"model": [model], "gene": [gene], "fold": [int(fold)], "weight": [1.0]}
                ),
                test.assign(model=model, fold=int(fold)),
                ism_models=(),
            )
            reason = learned["learned_reason"].iloc[0]
            if reason:
                left_out[gene] = f"not learned: {reason}"
                continue
            r, p = _test_performance(preds)
            people = _train_people(ds, gene, int(fold))
        snvs = coefs.rename(columns={"coef": "weight"})
        snvs = snvs[snvs["weight"] != 0].reset_index(drop=True)
        if snvs.empty:
            left_out[gene] = "no SNV with a non-zero weight"
            continue
        models.append(GeneModel(gene, snvs, r, p, people))
    return models, left_out


def _pooled_performance(gene_dir: Path, ds) -> tuple[float, float]:
    """R2 and p of the out-of-fold test predictions of a gene's fold fits, pooled (the CV
    estimate of an all-people refit, as PredictDB reports its models'); NaN without folds."""
    frames = []
    for d in sorted(gene_dir.glob("fold*")):
        if d.is_dir() and (d / "predictions.tsv").is_file() and not d.name.endswith(".partial"):
            check_made_from(d, ds, verb="export")
            frames.append(read_predictions(d / "predictions.tsv"))
    if not frames:
        return math.nan, math.nan
    return _test_performance(pd.concat(frames, ignore_index=True))


def _ism_record(path: Path) -> dict:
    from variformer.analysis.gene_ism import manifest_path

    rec = manifest_path(path)
    if not rec.is_file():
        raise InputError(f"{path} has no record ({rec.name}); re-run `variformer ism` to export it")
    return json.loads(rec.read_text())


def _ism_runs(path: Path, record: dict) -> dict[tuple[str, int], Run]:
    """(gene, fold) -> the run its scores came from, each checked to still hold the scored
    weights (an ISM table of ``--runs`` holds one run per gene and fold)."""
    if "enformer" in record:
        raise InputError(
            f"{path} scores pre-trained Enformer; export a fine-tuned model's ISM (`variformer ism --runs`)"
        )
    if "runs" in record:
        runs, checksums, genes = record["runs"], record["models"], record["genes"]
    else:
        genes = record["genes"]
        runs, checksums = [record["run"]] * len(genes), [record["model"]] * len(genes)
    by_gene: dict[tuple[str, int], Run] = {}
    read: dict[Path, Run] = {}
    for run, checksum, gene in zip(runs, checksums, genes):
        run = Path(run)
        if not run.is_dir():
            raise InputError(
                f"{path} was scored from {run}, which no longer exists; re-run `variformer ism`"
            )
        if model_checksum(run) != checksum:
            raise InputError(
                f"{run} was retrained after {path} was scored; re-run `variformer ism` before exporting"
            )
        if run not in read:
            read[run] = read_run(run)
        fold = -1 if read[run].fold is None else int(read[run].fold)
        by_gene[gene, fold] = read[run]
    return by_gene


def surrogate_models(
    ism_path, ds, *, fold: int = 0, surrogate: str = "ism", genes=None, log=print
) -> tuple[list[GeneModel], dict[str, str]]:
    """Per-gene linear surrogate weights of fine-tuned runs from their ISM table.

    Parameters
    ----------
    ism_path : path
        An ISM table written by ``variformer ism --runs`` / ``--run`` (with its record).
    surrogate : {"ism", "drivers"}
        Every observed SNV's ISM score, or only the drivers (the authors' forward selection on
        the fold's test people, :func:`variformer.analysis.drivers.forward_drivers`).
    """
    from variformer.analysis.drivers import forward_drivers
    from variformer.analysis.weights import check_ism_record

    if surrogate not in ("ism", "drivers"):
        raise InputError(f"--surrogate must be ism or drivers, not {surrogate!r}")
    path = Path(ism_path)
    if path.is_dir():
        tables = sorted(p for p in path.glob("*.tsv") if not p.name.startswith("."))
        tables = [p for p in tables if p.stem != "enformer"]
        if len(tables) != 1:
            names = ", ".join(p.name for p in tables) or "none"
            raise InputError(
                f"--ism {path} holds {names}; give the fine-tuned model's table itself"
            )
        path = tables[0]
    if not path.is_file():
        raise InputError(f"--ism {path} does not exist; run `variformer ism --runs` first")
    ism = normalize_keys(read_ism(path))
    check_ism_record(path, len(ism), ds, None)
    runs = _ism_runs(path, _ism_record(path))
    ism = ism[ism["fold"] == int(fold)]
    if ism.empty:
        raise InputError(
            f"{path} has no scores of fold {fold} (it has folds {sorted(set(read_ism(path)['fold']))})"
        )
    wanted = [g for g in ds.genes if g in set(ism["gene"])] if genes is None else list(genes)
    models, left_out = [], {}
    for gene in wanted:
        if (gene, int(fold)) not in runs or gene not in set(ism["gene"]):
            raise InputError(f"{path} has no fold-{fold} scores of {gene}")
        run = runs[gene, int(fold)]
        preds = run.predictions[run.predictions["gene"] == gene]
        variants = normalize_keys(ds.variants(gene))
        scores = ism.loc[ism["gene"] == gene, [*KEY_COLUMNS, "score"]]
        v = variants.merge(scores, on=list(KEY_COLUMNS), how="left")
        w = v["score"].fillna(0.0).to_numpy(float)
        learned = learned_table(
            v.assign(model="variformer", gene=gene, fold=int(fold), weight=w),
            preds.assign(model="variformer", fold=int(fold)),
            ism_models={"variformer"},
        )
        reason = learned["learned_reason"].iloc[0]
        if reason:
            left_out[gene] = f"not learned: {reason}"
            continue
        test = preds[preds["split"] == "test"]
        test_people = list(test["sample"].astype(str))
        expression = ds.expression(gene)
        fraction = float((run.config.get("data") or {}).get("train_fraction") or 1.0)
        train_people = _train_people(ds, gene, int(fold), train_fraction=fraction)
        x_test = ds.dosages(gene, test_people).astype(np.float64)
        if surrogate == "drivers":
            found = forward_drivers(x_test, test["predicted"].to_numpy(float), w)
            keep = np.zeros(len(w), bool)
            keep[found["snv"].astype(int).to_numpy()] = True
        else:
            keep = w != 0
        if not keep.any():
            left_out[gene] = (
                "no driver" if surrogate == "drivers" else "no SNV with a non-zero ISM score"
            )
            continue
        wk = np.where(keep, w, 0.0)
        x_train = ds.dosages(gene, train_people).astype(np.float64)
        intercept = float(np.mean(expression.loc[train_people].to_numpy(float) - x_train @ wk))
        s_test = x_test @ wk + intercept
        observed = expression.loc[test_people].to_numpy(float)
        snvs = v.loc[keep, [*KEY_COLUMNS, "id"]].assign(weight=w[keep]).reset_index(drop=True)
        models.append(
            GeneModel(gene, snvs, r2(observed, s_test), _pearson_p(s_test, observed), train_people)
        )
    return models, left_out


def _rsids(snvs: pd.DataFrame, rsid_from: str) -> list[str]:
    if rsid_from == "varID":
        return gtex_variant_ids(snvs)
    return [str(i) for i in snvs["id"]]


def _check_ids(models: Sequence[GeneModel], rsid_from: str) -> None:
    """Every model SNP needs an id that names one variant (MetaXcan joins GWAS on it)."""
    if rsid_from not in RSID_FROM:
        raise InputError(f"--rsid-from must be one of {', '.join(RSID_FROM)}, not {rsid_from!r}")
    if rsid_from != "id":
        return
    named: dict[str, str] = {}
    missing = 0
    for m in models:
        for rsid, var in zip(_rsids(m.snvs, "id"), gtex_variant_ids(m.snvs)):
            if rsid in ("", ".", "nan"):
                missing += 1
            elif named.setdefault(rsid, var) != var:
                raise InputError(
                    f"the id {rsid} names two variants ({named[rsid]} and {var}; a multi-allelic "
                    "record?): duplicate variant ids; export with --rsid-from varID"
                )
    if missing:
        raise InputError(
            f"{missing} model SNV(s) have no id in the VCF ID column ('.'); export with "
            "--rsid-from varID (GTEx-style chr_pos_ref_alt_b38 ids), or annotate rs ids first"
        )


def export_predictdb(
    models: Sequence[GeneModel],
    left_out: dict[str, str],
    ds,
    out: str | os.PathLike,
    *,
    name: str,
    rsid_from: str = "id",
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Write ``out/<name>.db`` and ``out/<name>.txt.gz`` for ``models`` (see the module doc)."""
    _check_ids(models, rsid_from)
    if not models:
        why = "; ".join(f"{g}: {r}" for g, r in list(left_out.items())[:5])
        raise InputError(f"no gene has a model to export ({why})")
    weights, extra, cov = [], [], []
    for m in models:
        gid = ds.gene_id(m.gene) or m.gene
        rsids = _rsids(m.snvs, rsid_from)
        weights.append(
            pd.DataFrame(
                {
                    "rsid": rsids,
                    "gene": gid,
                    "weight": m.snvs["weight"].to_numpy(float),
                    "ref_allele": m.snvs["ref"].astype(str).to_numpy(),
                    "eff_allele": m.snvs["alt"].astype(str).to_numpy(),
                    "varID": gtex_variant_ids(m.snvs),
                }
            )
        )
        extra.append({"gene": gid, "genename": m.gene, "n.snps.in.model": len(m.snvs),
                      "pred.perf.R2": m.r2, "pred.perf.pval": m.pval})  # fmt: skip
        x = _model_dosages(ds, m)
        cov.extend(covariance_rows(gid, rsids, x))
    extra_df = pd.DataFrame(extra)
    p = extra_df["pred.perf.pval"].to_numpy(float)
    q = np.full(len(p), math.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    extra_df["pred.perf.qval"] = q
    weights_df = pd.concat(weights, ignore_index=True)
    db, cov_path = write_predictdb(out, name, weights_df, extra_df, cov)
    for gene, reason in left_out.items():
        log(f"export: {gene} left out: {reason}")
    return ExportResult(db, cov_path, len(extra_df), len(weights_df), dict(left_out))


def _model_dosages(ds, m: GeneModel) -> np.ndarray:
    """Dosages of the model's SNVs (in its order) among its fitting people."""
    v = normalize_keys(ds.variants(m.gene)).reset_index().rename(columns={"index": "col"})
    cols = m.snvs[list(KEY_COLUMNS)].merge(
        v[[*KEY_COLUMNS, "col"]], on=list(KEY_COLUMNS), how="left"
    )
    if cols["col"].isna().any():
        bad = cols[cols["col"].isna()].iloc[0]
        raise InputError(
            f"{m.gene}: model SNV {bad['chrom']}:{bad['pos']} {bad['ref']}>{bad['alt']} is not in the dataset; "
            "export with the dataset the model was fitted on"
        )
    return ds.dosages(m.gene, m.people)[:, cols["col"].astype(int).to_numpy()]
