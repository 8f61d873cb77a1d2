"""Effects of any listed variant (SNV, MNP, indel; observed in the cohort or not) on a model.

The work of ``variformer score-variants``. For each allele inside a model's (cropped) gene
window::

    effect_reference  = prediction(reference + allele) - prediction(reference)
    effect_background = prediction(person + allele) - prediction(person)

where "+ allele" is the allele applied at its true position and the window re-anchored at the
TSS (:mod:`data_prep.variant_windows`, the rule of :mod:`data_prep.haplotype_windows`). On a
haplotype-mode dataset the allele is added to each of the person's two haplotype windows by
bcftools' overlap rule, and their prediction is read as the run was trained: the mean of the
predictions of the two windows (``data.haplotypes`` true), or the prediction of their mean
one-hot (``data.haplotypes`` false); on an SNV dataset it is
the prediction of their averaged one-hot, on which only SNVs and MNPs can be placed (indels are
skipped there with a count, their ``effect_background`` NA). Every forward goes through
:func:`variformer.predict.predict`, batched: the naive path (one forward per allele on the
reference, one per changed haplotype on a person; an unchanged window reuses its prediction,
so an allele a person already carries scores exactly 0). Each edited window is scored as an
edit of the window it came from (:func:`variformer.analysis.mutagenesis.edit_effects`): with
``method="fast"`` (the default) only the local stages around the changed stretch are recomputed
(for an indel, the stretch shifted between it and the window's far end), exact to float
rounding; stretches over half the window, and ``method="naive"``, take one plain forward.

Output columns (:data:`core.tables.VARIANT_EFFECTS`; one row per run gene x fold x allele)::

    gene, fold, chrom, pos, id, ref, alt, kind, tss_distance, effect_reference,
    effect_background, background_applied

``pos`` 1-based as in the VCF; ``tss_distance`` as in the ISM table (``pos - 1 - tss0``,
negated on the minus strand); ``kind`` one of :data:`data_prep.variant_windows.KINDS`;
``background_applied`` says on which of the person's haplotypes the allele was applied, e.g.
``1|0`` (``NA`` without a background; ``1|1`` on an averaged one-hot, where it replaces both).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from torch import nn

from core.errors import InputError
from core.tables import VARIANT_EFFECTS
from data_prep.genome import ONE_HOT, crop_bounds, tss_distance
from data_prep.variant_windows import (
    background_windows,
    gene_reference,
    overlaps_window,
    person_alleles,
    reference_windows,
)
from variformer.analysis.mutagenesis import edit_effects, window_edits

__all__ = [
    "COLUMNS",
    "EffectOptions",
    "allele_effects",
    "check_reference_alleles",
    "gene_variant_effects",
    "window_alleles",
]

#: the table's columns
COLUMNS = VARIANT_EFFECTS.columns

#: alleles scored together: their edited windows (3 x seq_len bytes each) are held in memory
CHUNK = 256

#: the share of in-window alleles whose REF may disagree with the reference (skipped, counted);
#: above it the VCF is refused as another build
MISMATCH_LIMIT = 0.01


class EffectOptions(NamedTuple):
    """How alleles are scored (``precision`` as :func:`variformer.predict.inference_context`;
    32-bit by default: an effect is a difference of two close predictions; ``method`` as
    :func:`variformer.analysis.mutagenesis.edit_effects`)."""

    background: str | None = None
    batch_size: int = 16
    device: Any = None
    precision: str = "32"
    method: str = "fast"


DEFAULT_OPTIONS = EffectOptions()


def window_alleles(ds, gene: str, alleles: pd.DataFrame, *, seq_len: int | None = None):
    """The alleles (``chrom``, 1-based ``pos``, ``ref``, ``alt``) whose REF span overlaps the
    gene's (cropped) reference window: a bool mask, shape=(V,)."""
    start, end = crop_bounds(ds.seq_len, seq_len)
    win = ds.window(gene)
    return overlaps_window(alleles, win.chrom, win.start0 + start, win.start0 + end)


def check_reference_alleles(ds, gene: str, alleles: pd.DataFrame) -> np.ndarray:
    """Whether each allele's REF equals the reference the dataset keeps for ``gene``.

    Returns
    -------
    np.ndarray, shape=(V,), int8
        1 equal, 0 different, -1 unknown (the REF runs beyond the kept reference).
    """
    ref = gene_reference(ds, gene)
    p0 = alleles["pos"].to_numpy(np.int64) - 1
    out = np.full(len(alleles), -1, dtype=np.int8)
    for i, (p, r) in enumerate(zip(p0.tolist(), alleles["ref"])):
        if ref.covers(p, p + len(r)):
            out[i] = ref.text(p, p + len(r)) == r.upper()
    return out


def _effects(model, base: np.ndarray, windows, opt: EffectOptions) -> np.ndarray:
    """prediction(window) - prediction(``base``) for each of ``windows`` (one-hots) -> float64."""
    starts, values = window_edits(base, windows)
    return edit_effects(
        model, base, starts, values, method=opt.method, batch_size=opt.batch_size,
        device=opt.device, precision=opt.precision,
    )  # fmt: skip


def allele_effects(
    model: nn.Module,
    ds,
    gene: str,
    alleles: pd.DataFrame,
    *,
    seq_len: int | None = None,
    options: EffectOptions = DEFAULT_OPTIONS,
    counts: Counter | None = None,
    haplotypes: bool | None = None,
    reference: bool = True,
) -> pd.DataFrame:
    """Effects of alleles in one gene's window.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (b, L, 4) to (b,), e.g. a :class:`variformer.Variformer`.
    ds : data_prep.GeneDataset
    gene : str
    alleles : pd.DataFrame
        ``pos`` (1-based), ``ref``, ``alt`` (upper case, A/C/G/T), REF checked against the
        reference, inside the window (:func:`window_alleles`).
    seq_len : int, optional
        The run's crop (``data.seq_len``); None = the dataset's window.
    options : EffectOptions
    counts : Counter, optional
        Gains ``beyond_reference`` (an allele whose window needs reference the dataset does
        not keep: its row is left out) and ``indel_on_averaged_background``.
    haplotypes : bool, optional
        How the model reads a person of a haplotype dataset (its run's recorded
        ``data.haplotypes``): True, the mean of its predictions of the two haplotype windows;
        False, one prediction of their mean one-hot (both with the allele added to each
        haplotype by bcftools' rule). None: the dataset's mode.
    reference : bool, default True
        Also score on the reference (False: ``effect_reference`` NaN, no forwards for it).

    Returns
    -------
    pd.DataFrame
        The rows of ``alleles`` that fit, plus ``effect_reference``, ``effect_background``
        (NaN without a background) and ``background_applied``. Alleles are scored
        :data:`CHUNK` at a time (the edited windows of a chunk are held in memory).
    """
    counts = Counter() if counts is None else counts
    if len(alleles) > CHUNK:
        return pd.concat([
            allele_effects(
                model, ds, gene, alleles.iloc[i : i + CHUNK], seq_len=seq_len, options=options,
                counts=counts, haplotypes=haplotypes, reference=reference,
            )
            for i in range(0, len(alleles), CHUNK)
        ], ignore_index=True)  # fmt: skip
    if len(alleles) == 0:
        return alleles.assign(effect_reference=np.float64(0), effect_background=np.float64(0),
                              background_applied="NA").iloc[:0]  # fmt: skip
    start, end = crop_bounds(ds.seq_len, seq_len)
    length = end - start
    tss0 = ds.window(gene).tss0
    ref = gene_reference(ds, gene)
    pos1 = alleles["pos"].to_numpy(np.int64)
    refs, alts = list(alleles["ref"]), list(alleles["alt"])
    codes, fits = reference_windows(ref, pos1, refs, alts, tss0=tss0, seq_len=length)
    bg = None
    if options.background is not None and ds.haplotype_mode:
        person = person_alleles(ds, gene, options.background)
        bg = background_windows(ref, person, pos1, refs, alts, tss0=tss0, seq_len=length)
        fits &= bg[3]
    counts["beyond_reference"] += int((~fits).sum())
    keep = np.flatnonzero(fits)
    out = alleles.iloc[keep].reset_index(drop=True)
    base = ds.reference(gene)[start:end]
    out["effect_reference"] = (
        _effects(model, base, (ONE_HOT[c] for c in codes[keep]), options) if reference else np.nan
    )
    out["effect_background"] = np.nan
    out["background_applied"] = "NA"
    if options.background is None:
        return out
    if ds.haplotype_mode:
        two = ds.haplotype_mode if haplotypes is None else haplotypes
        effects = _haplotype_effects if two else _mean_input_effects
        effect, applied = effects(model, ds, gene, bg, keep, (start, end), options)
    else:
        effect, applied = _averaged_effects(model, ds, gene, out, (start, end), options, counts)
    out["effect_background"], out["background_applied"] = effect, applied
    return out


def _haplotype_effects(model, ds, gene, bg, keep, crop, opt):
    """Mean over the two haplotypes; only the changed haplotype windows are run."""
    codes, applied, displaced, _ = (x[keep] for x in bg)
    person = ds.haplotypes(gene, opt.background)[:, crop[0] : crop[1]]  # (2, L, 4)
    changed = applied | (displaced > 0)  # (V, 2): else the person's own window
    per_hap = np.zeros(changed.shape, dtype=np.float64)  # unchanged: the person's own window
    for hap in (0, 1):
        rows = np.flatnonzero(changed[:, hap])
        windows = (ONE_HOT[codes[v, hap]] for v in rows)
        per_hap[rows, hap] = _effects(model, person[hap], windows, opt)
    effect = per_hap.mean(axis=1)
    labels = [f"{int(a)}|{int(b)}" for a, b in applied]
    return effect, labels


def _mean_input_effects(model, ds, gene, bg, keep, crop, opt):
    """A model trained on the mean one-hot of the two haplotypes (``data.haplotypes=false`` on
    a haplotype dataset): one forward of the mean of the two (edited) haplotype windows."""
    codes, applied, displaced, _ = (x[keep] for x in bg)
    person = ds.haplotypes(gene, opt.background)[:, crop[0] : crop[1]]  # (2, L, 4)
    changed = applied | (displaced > 0)

    def windows():
        for v in range(len(codes)):
            haps = [ONE_HOT[codes[v, h]] if changed[v, h] else person[h] for h in (0, 1)]
            yield (haps[0] + haps[1]) / 2

    effect = _effects(model, (person[0] + person[1]) / 2, windows(), opt)
    return effect, [f"{int(a)}|{int(b)}" for a, b in applied]


def _averaged_effects(model, ds, gene, alleles, crop, opt, counts):
    """SNVs and MNPs placed base by base on the person's averaged one-hot."""
    start, end = crop
    person = ds.sequences(gene, [opt.background], start=start, end=end)[0]  # (L, 4)
    lo = ds.window(gene).start0 + start  # 0-based reference position of window index 0
    same = (alleles["ref"].str.len() == alleles["alt"].str.len()).to_numpy()
    counts["indel_on_averaged_background"] += int((~same).sum())
    windows, rows = [], []
    for i in np.flatnonzero(same):
        seq = person.copy()
        p0 = int(alleles["pos"].iloc[i]) - 1 - lo
        for k, base in enumerate(alleles["alt"].iloc[i]):
            if 0 <= p0 + k < len(seq):
                seq[p0 + k] = ONE_HOT["ACGT".index(base)]
        if not np.array_equal(seq, person):  # an identity edit scores exactly 0
            windows.append(seq)
            rows.append(i)
    effect = np.where(same, 0.0, np.nan)
    if rows:
        effect[rows] = _effects(model, person, windows, opt)
    return effect, np.where(same, "1|1", "NA")


def gene_variant_effects(
    model: nn.Module,
    ds,
    gene: str,
    alleles: pd.DataFrame,
    *,
    fold: int = -1,
    seq_len: int | None = None,
    options: EffectOptions = DEFAULT_OPTIONS,
    counts: Counter | None = None,
    haplotypes: bool | None = None,
) -> pd.DataFrame:
    """Rows of the effects table (:data:`COLUMNS`) for the listed alleles in a gene's window.

    Parameters
    ----------
    alleles : pd.DataFrame
        :func:`data_prep.variant_windows.read_listed_variants` rows (any genes); those outside
        the (cropped) window are ignored here.
    counts : Counter, optional
        Gains ``ref_mismatch`` (skipped: REF differs from the reference), ``beyond_reference``
        and ``indel_on_averaged_background``.
    haplotypes : bool, optional
        As :func:`allele_effects`.

    Raises
    ------
    InputError
        More than :data:`MISMATCH_LIMIT` of the alleles in the window have a REF that is not
        the reference's (the VCF is of another build).
    """
    counts = Counter() if counts is None else counts
    inside = alleles[window_alleles(ds, gene, alleles, seq_len=seq_len)].reset_index(drop=True)
    same = check_reference_alleles(ds, gene, inside)
    bad = same == 0
    if bad.sum() > MISMATCH_LIMIT * len(inside):
        row = inside[bad].iloc[0]
        raise InputError(
            f"{int(bad.sum())} of {len(inside)} variant(s) in {gene}'s window have a REF that is "
            f"not the reference's (first: {row['chrom']}:{row['pos']} REF {row['ref']}); is the "
            "VCF on another genome build than the dataset?"
        )
    counts["ref_mismatch"] += int(bad.sum())
    counts["beyond_reference"] += int((same < 0).sum())
    table = allele_effects(
        model, ds, gene, inside[same == 1], seq_len=seq_len, options=options, counts=counts,
        haplotypes=haplotypes,
    )  # fmt: skip
    table["gene"] = gene
    table["fold"] = int(fold)
    table["tss_distance"] = tss_distance(table["pos"], ds.window(gene))
    return table[list(COLUMNS)]


class EffectsResult(NamedTuple):
    """The published table and what went into it."""

    table: pd.DataFrame
    n_tasks: int
    n_runs: int
    skipped: Counter


def score_runs(
    runs,
    ds,
    vcf,
    out,
    *,
    fold: int | None = None,
    genes=None,
    options: EffectOptions = DEFAULT_OPTIONS,
    force: bool = False,
    progress: bool | None = None,
    log=print,
) -> EffectsResult:
    """Effects of every allele of ``vcf`` for every finished run under ``runs``, into ``out``.

    Runs are found and checked as ``variformer ism --runs`` finds them
    (:func:`variformer.analysis.ism_of_models.run_tasks`); each run scores its own genes in its
    own crop (``data.seq_len``). Resumable over (run, gene) like ``ism``
    (:func:`variformer.analysis.gene_ism.write_ism_tsv`).

    Returns
    -------
    EffectsResult
        ``skipped`` counts ``symbolic``, ``non_acgt``, ``ref_equals_alt`` alleles of the VCF,
        ``outside_windows`` (in no run gene's window), and per (run, gene) scored this time
        ``ref_mismatch``, ``beyond_reference``, ``indel_on_averaged_background``.

    Raises
    ------
    InputError
        A bad VCF or background, no runs, or a VCF of another build (:func:`gene_variant_effects`).
    """
    from pathlib import Path

    from core.manifest import dataset_fingerprints
    from core.runs import fingerprint, model_checksum
    from data_prep.variant_windows import read_listed_variants
    from variformer.analysis.gene_ism import write_ism_tsv
    from variformer.analysis.ism_of_models import one_model_at_a_time, run_tasks

    if options.background is not None and options.background not in set(ds.samples):
        raise InputError(f"--background {options.background} is not a sample of {ds.path}")
    tasks, settings, n_runs = run_tasks(runs, ds, fold=fold, genes=genes)
    alleles, skipped = read_listed_variants(vcf)
    anywhere = np.zeros(len(alleles), dtype=bool)
    for run_dir, gene in tasks:
        anywhere |= window_alleles(ds, gene, alleles, seq_len=settings[run_dir].seq_len)
    skipped["outside_windows"] += int((~anywhere).sum())
    alleles = alleles[anywhere].reset_index(drop=True)
    model_of = one_model_at_a_time()

    def table(task: tuple[str, str]) -> pd.DataFrame:
        run_dir, gene = task
        run_fold, _, seq_len, haplotypes = settings[run_dir]
        return gene_variant_effects(
            model_of(run_dir), ds, gene, alleles, fold=run_fold, seq_len=seq_len,
            options=options, counts=skipped, haplotypes=haplotypes,
        )  # fmt: skip

    stamp = {
        "runs": [str(Path(r).resolve()) for r, _ in tasks],
        "models": [model_checksum(r) for r, _ in tasks],
        "dataset": str(Path(ds.path).resolve()),
        "dataset_fingerprints": dataset_fingerprints(ds),
        "vcf": str(Path(vcf).resolve()),
        "vcf_fingerprint": fingerprint(vcf),
        "background": options.background,
        "precision": options.precision,
        "genes": [g for _, g in tasks],
    }
    result = write_ism_tsv(
        out, tasks, table, settings=stamp, force=force, progress=progress, log=log,
        schema=VARIANT_EFFECTS, name="score-variants",
    )  # fmt: skip
    return EffectsResult(result, len(tasks), n_runs, skipped)
