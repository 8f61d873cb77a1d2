"""The Fig. S10 tables: standardized attributions around HSVs / drivers and matched controls.

Paper (Methods, "Input sequence attribution"): on 15 random genes of those with Variformer
R2 > 0.2, for each fine-tuned replicate and for pre-trained Enformer (matched to each
replicate's test fold) and each gene, gradient x input on the reference window and on the test
people's personal windows (mean over people), each turned into a standardized attribution track
(|.|, max over bases, z-score over the window); read around driver SNPs and HSVs and around
control SNPs of the same window (TSS distance within 2.5 kb, MAF within 10% for drivers and
0.5% for HSVs). :func:`analysis_attributions` is ``variformer analyze``'s step; the mean over
replicates and the bootstrap intervals are :mod:`~variformer.analysis.attribution_stats`.

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
from variformer.config import recorded_haplotypes

__all__ = ["ATTRIBUTION_COLUMNS", "analysis_attributions", "attribution_table"]

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


def _tasks(runs, dataset, genes: list[str], *, with_enformer: bool) -> list[tuple]:
    """(run or None, fold, seq_len, genes) per replicate: each run on its genes among
    ``genes``; without runs (and with an Enformer) every fold on the whole windows."""
    tasks = []
    for run in runs:
        chosen = [g for g in (run.summary.get("genes") or []) if g in set(genes)]
        if chosen:
            fold = -1 if run.fold is None else int(run.fold)
            tasks.append((run, fold, (run.config.get("data") or {}).get("seq_len"), chosen))
    if not runs and with_enformer:
        tasks = [(None, fold, None, list(genes)) for fold in range(dataset.n_folds)]
    return tasks


def _picks(variants, hsvs, drivers, gene, fold, *, max_controls, rng) -> dict[str, np.ndarray]:
    """Row positions of one model's HSVs, its drivers of ``fold`` and their matched controls."""
    fold_drivers = drivers[(drivers["gene"] == gene) & (drivers["fold"].astype(int) == fold)]
    targets = {
        "hsv": _rows_of(variants, hsvs[hsvs["gene"] == gene]),
        "driver": _rows_of(variants, fold_drivers),
    }
    picks = {}
    for group, t in targets.items():
        picks[group] = t
        picks[f"{group}_control"] = _controls(
            variants, t, group=group, max_controls=max_controls, rng=rng
        )
    return picks


def _of_model(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["model"] == name] if len(table) else table


def attribution_table(
    runs: Iterable,
    dataset,
    hsvs: pd.DataFrame,
    drivers: pd.DataFrame,
    *,
    genes: Iterable[str] | None = None,
    enformer=None,
    enformer_name: str = "enformer",
    model_name: str = "variformer",
    flank: int = 100,
    max_controls: int = 5,
    max_people: int = 16,
    seed: int = 0,
    batch_size: int = 4,
    device=None,
    log=None,
) -> pd.DataFrame:
    """Standardized attribution profiles around each model's HSVs and drivers and controls.

    Parameters
    ----------
    runs : iterable of core.runs.Run
        Finished fine-tuning runs (their ``best.ckpt``/``model.pt`` is loaded): the
        ``model_name`` replicates, one per fold.
    dataset : data_prep.GeneDataset
    hsvs, drivers : pd.DataFrame
        ``analyze``'s ``hsvs.tsv`` (model, gene, chrom, pos, ref, alt, ...) and ``drivers.tsv``
        (also ``fold``). A model's HSVs are read in every replicate of their gene, its drivers
        in the replicate of their fold.
    genes : iterable of str, optional
        Only these genes (e.g. :func:`~variformer.analysis.attribution_stats.pick_genes`).
    enformer : torch.nn.Module, optional
        Pre-trained Enformer reduced to one value per sequence
        (:func:`variformer.predict.load_enformer_track`): its rows (model ``enformer_name``,
        with that model's HSVs and drivers) come from the same windows and the same test
        people as each run's (the paper's matching of Enformer to the replicates' test folds);
        without runs, from every fold's test people on the whole windows.
    flank : int, default 100
        Bases either side of each SNV.
    max_controls : int, default 5
        Matched controls kept per target (a seeded sample when more match).
    max_people : int, default 16
        Test people whose personal windows are averaged (the first ones of the split). For a
        run trained in haplotype mode the personal background is each person's two haplotype
        windows (gradient x input of each, averaged over haplotypes and people: the gradient
        of the run's prediction, the mean of the two); offsets stay in reference coordinates,
        so around an SNV behind an indel of a haplotype that haplotype's track is shifted.

    Returns
    -------
    pd.DataFrame
        :data:`ATTRIBUTION_COLUMNS`; no rows when no replicate has a gene with HSVs or drivers.
        Targets outside a replicate's window (e.g. Enformer's, scored on the whole window, in a
        run's crop) are left out.
    """
    from variformer.model import Variformer

    if flank < 0 or max_controls < 0 or max_people < 1:
        raise InputError("flank and max_controls must be >= 0 and max_people >= 1")
    runs = list(runs)
    targets = {model_name: (_of_model(hsvs, model_name), _of_model(drivers, model_name))}
    if enformer is not None:
        targets[enformer_name] = (_of_model(hsvs, enformer_name), _of_model(drivers, enformer_name))
    wanted = {g for h, d in targets.values() for g in (*h.get("gene", []), *d.get("gene", []))}
    chosen = [g for g in dataset.genes if g in wanted and (genes is None or g in set(genes))]
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    tracks: dict[tuple, np.ndarray] = {}  # Enformer's reference tracks, the same in every fold
    for run, fold, seq_len, run_genes in _tasks(
        runs, dataset, chosen, with_enformer=enformer is not None
    ):
        models = [] if run is None else [(model_name, Variformer.load(run.path))]
        models += [] if enformer is None else [(enformer_name, enformer)]
        test = list(dataset.split(fold)["test"])[:max_people] if fold >= 0 else []
        start, end = crop_bounds(dataset.seq_len, seq_len)
        haplotypes = run is not None and recorded_haplotypes(run)
        for gene in run_genes:
            variants = gene_snvs(dataset, gene, seq_len=seq_len).reset_index(drop=True)
            backgrounds = {"reference": dataset.reference(gene)[start:end][None]}
            if test and haplotypes:  # (n, 2, L, 4) -> 2n windows, averaged in gradient_x_input
                backgrounds["personal"] = dataset.haplotype_sequences(
                    gene, test, start=start, end=end
                ).reshape(-1, end - start, 4)
            elif test:
                backgrounds["personal"] = dataset.sequences(gene, test, start=start, end=end)
            for name, model in models:
                h, d = targets[name]
                picks = _picks(variants, h, d, gene, fold, max_controls=max_controls, rng=rng)
                if not any(len(v) for v in picks.values()):
                    continue
                for background, X in backgrounds.items():
                    key = (name, gene, start, end)
                    if name == enformer_name and background == "reference" and key in tracks:
                        track = tracks[key]
                    else:
                        gxi = gradient_x_input(model, X, batch_size=batch_size, device=device)
                        track = standardized_attribution(gxi)
                        if name == enformer_name and background == "reference":
                            tracks[key] = track
                    base = {"model": name, "gene": gene, "fold": fold, "background": background}
                    for group, r in picks.items():
                        rows += _profile_rows(
                            track, variants, r, flank=flank, base=base, group=group
                        )
                if log is not None:
                    log(
                        f"attributions: {name} {gene} fold {fold}: {len(picks['hsv'])} HSVs, "
                        f"{len(picks['driver'])} drivers, "
                        f"{len(picks['hsv_control']) + len(picks['driver_control'])} controls"
                    )
        del models
    return pd.DataFrame(rows, columns=ATTRIBUTION_COLUMNS)


def analysis_attributions(inp, opt, ds, hsvs, drivers, genes, notes: list[str]):
    """``variformer analyze``'s ``attributions.tsv`` and ``attribution_summary.tsv``.

    Parameters
    ----------
    inp, opt : AnalysisInputs, AnalysisOptions
        ``runs``, ``enformer`` / ``enformer_track``; ``attributions``, ``attribution_genes``,
        ``attribution_flank``, ``device``, ``seed``.
    ds : data_prep.GeneDataset
    hsvs, drivers : pd.DataFrame
        Every model's HSVs and drivers (Variformer's are model ``variformer``, Enformer's
        ``enformer``: its ISM table ``enformer.tsv`` and ``--predictions enformer=FILE``).
    genes : list of str
        The genes passing the R2 filter: ``opt.attribution_genes`` of them are drawn
        (seeded, :func:`~variformer.analysis.attribution_stats.pick_genes`).
    notes : list of str
        Appended to: what was skipped and which genes were drawn.

    Returns
    -------
    (pd.DataFrame, pd.DataFrame) or (None, None)
        The per-SNV table and its summary; None, None when skipped.
    """
    from core.runs import find_runs
    from variformer.analysis.attribution_stats import pick_genes, summarize_attributions

    if not opt.attributions:
        return None, None
    if inp.runs is None and inp.enformer is None:
        notes.append(
            "attributions: skipped (no --runs or --enformer: no model to take gradients of)"
        )
        return None, None
    enformer = None
    if inp.enformer is not None:
        from variformer.predict import load_enformer_track

        enformer = load_enformer_track(inp.enformer, track=inp.enformer_track)
    drawn = pick_genes(genes, opt.attribution_genes, seed=opt.seed)
    notes.append(
        f"attributions: {len(drawn)} of {len(genes)} passing gene(s) drawn at random "
        f"(seed {opt.seed}): {', '.join(drawn)}"
        if drawn
        else "attributions: no gene passes the R2 filter, so none is drawn"
    )
    runs = [] if inp.runs is None else list(find_runs(inp.runs, kind="finetune"))
    attr = attribution_table(
        runs, ds, hsvs, drivers, genes=drawn, enformer=enformer,
        flank=opt.attribution_flank, seed=opt.seed, device=opt.device,
    )  # fmt: skip
    if inp.runs is not None and not runs:
        notes.append(f"attributions: no finished fine-tuning run (with a model) under {inp.runs}")
    expected = (["variformer"] if runs else []) + (["enformer"] if enformer is not None else [])
    for name in expected:
        if name not in set(attr["model"]):
            notes.append(
                f"attributions: no {name} rows (no drawn gene has its HSVs or drivers in a window)"
            )
    return attr, summarize_attributions(attr, seed=opt.seed)
