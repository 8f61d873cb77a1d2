"""The Fig. S10 table: standardized attributions around HSVs / drivers and matched controls.

Paper (Methods, "Input sequence attribution"): for each fine-tuned model and gene, gradient x
input on the reference window and on the test people's personal windows (mean over people),
each turned into a standardized attribution track (|.|, max over bases, z-score over the
window); read around driver SNPs and HSVs and around control SNPs of the same window (TSS
distance within 2.5 kb, MAF within 10% for drivers and 0.5% for HSVs).

:func:`attribution_table` writes one row per SNV, offset and background::

    model, gene, fold, background, group, chrom, pos, ref, alt, offset, attribution

``group`` is ``hsv``, ``hsv_control``, ``driver`` or ``driver_control``; ``background`` is
``reference`` or ``personal``; ``offset`` is bp from the SNV (``-flank .. flank``, in the
direction of the window, positions outside the window left out).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.errors import InputError
from data_prep.genome import crop_bounds
from variformer.analysis.attributions import (
    gradient_x_input,
    matched_controls,
    standardized_attribution,
)
from variformer.analysis.gene_ism import gene_snvs

__all__ = ["ATTRIBUTION_COLUMNS", "attribution_table"]

ATTRIBUTION_COLUMNS = [
    "model", "gene", "fold", "background", "group", "chrom", "pos", "ref", "alt", "offset",
    "attribution",
]  # fmt: skip
_KEY = ["chrom", "pos", "ref", "alt"]
# Fig. S10's control matching: MAF within 0.5% for HSVs, 10% for drivers; TSS within 2.5 kb
MAF_TOLERANCE = {"hsv": 0.005, "driver": 0.10}


def _rows_of(variants: pd.DataFrame, picks: pd.DataFrame) -> np.ndarray:
    """Row positions in ``variants`` of the SNVs in ``picks`` (matched on chrom/pos/ref/alt)."""
    if picks.empty:
        return np.zeros(0, dtype=np.int64)
    v = variants[_KEY].astype(str).reset_index(drop=True)
    p = picks[_KEY].astype(str).drop_duplicates()
    hit = v.reset_index().merge(p, on=_KEY, how="inner")["index"]
    return np.sort(hit.to_numpy(dtype=np.int64))


def _controls(variants, targets, *, group, max_controls, rng) -> np.ndarray:
    """Up to ``max_controls`` matched controls per target (seeded sample), as row positions."""
    if len(targets) == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = matched_controls(variants, targets, max_maf_difference=MAF_TOLERANCE[group])
    chosen: list[int] = []
    for _, sub in pairs.groupby("target", sort=True):
        c = sub["control"].to_numpy()
        if len(c) > max_controls:
            c = rng.choice(c, size=max_controls, replace=False)
        chosen.extend(int(x) for x in c)
    return np.unique(np.asarray(chosen, dtype=np.int64))


def _profile_rows(track, variants, rows, *, flank, base: dict, group: str) -> list[dict]:
    out = []
    length = len(track)
    for r in rows:
        v = variants.iloc[int(r)]
        centre = int(v["pos0"])
        lo, hi = max(0, centre - flank), min(length, centre + flank + 1)
        for p in range(lo, hi):
            out.append(
                base
                | {"group": group, "chrom": str(v["chrom"]), "pos": int(v["pos"]),
                   "ref": str(v["ref"]), "alt": str(v["alt"]), "offset": p - centre,
                   "attribution": float(track[p])}
            )  # fmt: skip
    return out


def attribution_table(
    runs: Iterable,
    dataset,
    hsvs: pd.DataFrame,
    drivers: pd.DataFrame,
    *,
    model_name: str = "variformer",
    flank: int = 100,
    max_controls: int = 5,
    max_people: int = 16,
    seed: int = 0,
    batch_size: int = 4,
    device=None,
    log=None,
) -> pd.DataFrame:
    """Standardized attribution profiles around ``model_name``'s HSVs and drivers.

    Parameters
    ----------
    runs : iterable of core.runs.Run
        Finished fine-tuning runs (their ``best.ckpt``/``model.pt`` is loaded).
    dataset : data_prep.GeneDataset
    hsvs, drivers : pd.DataFrame
        ``analyze``'s ``hsvs.tsv`` (model, gene, chrom, pos, ref, alt, ...) and ``drivers.tsv``
        (also ``fold``); only rows of ``model_name`` are used. HSVs are read in every run of
        their gene, drivers in the run of their fold.
    flank : int, default 100
        Bases either side of each SNV.
    max_controls : int, default 5
        Matched controls kept per target (a seeded sample when more match).
    max_people : int, default 16
        Test people whose personal windows are averaged (the first ones of the split).

    Returns
    -------
    pd.DataFrame
        :data:`ATTRIBUTION_COLUMNS`; no rows when no run has a gene with HSVs or drivers.
    """
    from variformer.model import Variformer

    if flank < 0 or max_controls < 0 or max_people < 1:
        raise InputError("flank and max_controls must be >= 0 and max_people >= 1")
    hsvs = hsvs[hsvs["model"] == model_name] if len(hsvs) else hsvs
    drivers = drivers[drivers["model"] == model_name] if len(drivers) else drivers
    wanted = set(hsvs.get("gene", pd.Series(dtype=str))) | set(
        drivers.get("gene", pd.Series(dtype=str))
    )
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    known = set(dataset.genes)
    for run in runs:
        genes = [g for g in (run.summary.get("genes") or []) if g in wanted and g in known]
        if not genes:
            continue
        fold = -1 if run.fold is None else int(run.fold)
        seq_len = (run.config.get("data") or {}).get("seq_len")
        model = Variformer.load(run.path)
        test = list(dataset.split(fold)["test"])[:max_people] if fold >= 0 else []
        for gene in genes:
            variants = gene_snvs(dataset, gene, seq_len=seq_len).reset_index(drop=True)
            start, end = crop_bounds(dataset.seq_len, seq_len)
            backgrounds = {"reference": dataset.reference(gene)[start:end][None]}
            if test:
                backgrounds["personal"] = dataset.sequences(gene, test, start=start, end=end)
            targets = {
                "hsv": _rows_of(variants, hsvs[hsvs["gene"] == gene]),
                "driver": _rows_of(
                    variants,
                    drivers[(drivers["gene"] == gene) & (drivers["fold"].astype(int) == fold)],
                ),
            }
            picks = {}
            for group, t in targets.items():
                picks[group] = t
                picks[f"{group}_control"] = _controls(
                    variants, t, group=group, max_controls=max_controls, rng=rng
                )
            if not any(len(v) for v in picks.values()):
                continue
            for background, X in backgrounds.items():
                gxi = gradient_x_input(model, X, batch_size=batch_size, device=device)
                track = standardized_attribution(gxi)
                base = {"model": model_name, "gene": gene, "fold": fold, "background": background}
                for group, r in picks.items():
                    rows += _profile_rows(track, variants, r, flank=flank, base=base, group=group)
            if log is not None:
                log(
                    f"attributions: {gene} fold {fold}: {len(targets['hsv'])} HSVs, "
                    f"{len(targets['driver'])} drivers, "
                    f"{len(picks['hsv_control']) + len(picks['driver_control'])} controls"
                )
        del model
    return pd.DataFrame(rows, columns=ATTRIBUTION_COLUMNS)
