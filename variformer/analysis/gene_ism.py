"""ISM over the genes of a dataset, into the one TSV the analysis stage reads.

Output columns (one row per observed SNV allele of each gene's window; in a haplotype-mode
dataset also per observed MNP and indel, scored by :func:`other_alleles`)::

    gene, fold, chrom, pos, id, ref, alt, maf, tss_distance, score

``pos`` is 1-based as in ``ds.variants``; ``tss_distance`` is ``pos0 - tss0`` in the direction
of transcription (negative upstream), as the simulator's truth tables define ``dist_to_tss``;
``fold`` is the fine-tuning run's fold (-1 for the pre-trained Enformer); ``score`` is
prediction(ALT) - prediction(background).

:func:`write_ism_tsv` is resumable: each finished gene is kept in a hidden ``.<out>.partial/``
directory next to ``out``; a rerun with the same settings skips those genes, and ``out`` is
published atomically once every gene is done.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent, output_lock
from core.tables import ISM, Schema, empty_table, read_table, write_table
from data_prep.genome import crop_bounds, tss_distance
from variformer.analysis.mutagenesis import BASES, ism
from variformer.analysis.variant_effects import EffectOptions, allele_effects, window_alleles

__all__ = [
    "COLUMNS",
    "gene_snvs",
    "ism_table",
    "manifest_path",
    "other_alleles",
    "write_ism_tsv",
]

#: the ISM table's columns (:data:`core.tables.ISM`)
COLUMNS = ISM.columns


def gene_snvs(ds: Any, gene: str, *, seq_len: int | None = None) -> pd.DataFrame:
    """A gene's SNV alleles inside the (cropped) window, with ``pos0`` and ``tss_distance``.

    Parameters
    ----------
    ds : data_prep.GeneDataset
    gene : str
    seq_len : int, optional
        Centre crop the model was trained on (the run's ``data.seq_len``); None = whole window.

    Returns
    -------
    pd.DataFrame
        ``ds.variants(gene)`` columns plus ``pos0`` (0-based in the cropped window) and
        ``tss_distance`` (signed, transcription direction); alleles outside the crop, and
        alleles that are not one base to one of A/C/G/T (a haplotype-mode dataset's MNPs and
        indels: :func:`other_alleles`), are left out.

    Raises
    ------
    InputError
        If a REF allele disagrees with the reference window (wrong coordinates).
    """
    start, end = crop_bounds(ds.seq_len, seq_len)
    length = end - start
    win = ds.window(gene)
    var = ds.variants(gene).copy()
    pos0_window = var["pos"].to_numpy(dtype=np.int64) - 1 - int(win.start0)
    var["pos0"] = pos0_window - start
    var["tss_distance"] = tss_distance(var["pos"], win)
    snv = var["alt"].astype(str).isin(list(BASES)) & (var["ref"].astype(str).str.len() == 1)
    keep = (var["pos0"] >= 0) & (var["pos0"] < length) & snv
    var = var[keep].reset_index(drop=True)
    ref = ds.reference(gene)[start : start + length]
    called = ref[var["pos0"].to_numpy()]
    has_base = called.sum(axis=1) > 0
    ref_base = np.array(list(BASES))[called.argmax(axis=1)]
    wrong = has_base & (ref_base != var["ref"].astype(str).str.upper().to_numpy())
    if wrong.any():
        row = var[wrong].iloc[0]
        raise InputError(
            f"{gene}: REF {row['ref']} at {row['chrom']}:{row['pos']} does not match the "
            f"reference window ({ref_base[wrong][0]}); the dataset is inconsistent, re-run `variformer prep`"
        )
    return var


def ism_table(
    model: nn.Module,
    ds: Any,
    gene: str,
    *,
    fold: int = -1,
    seq_len: int | None = None,
    background: str | None = None,
    method: str = "fast",
    batch_size: int = 16,
    device=None,
    precision: str = "32",
    haplotypes: bool | None = None,
) -> pd.DataFrame:
    """ISM scores of every observed SNV of one gene, as rows of the ISM TSV (:data:`COLUMNS`);
    on a haplotype-mode dataset also of every observed MNP and indel (:func:`other_alleles`).

    Parameters
    ----------
    model : torch.nn.Module
        A Variformer or a CenterBins-wrapped Enformer.
    ds : data_prep.GeneDataset
    gene : str
    fold : int, default -1
        Written to the ``fold`` column (the run's fold; -1 for the pre-trained Enformer).
    seq_len : int, optional
        Centre crop of the window the model reads (None = the dataset's window).
    background : str, optional
        A sample id: score on that person instead of the reference window. In an SNV dataset
        their averaged one-hot; in a haplotype dataset every allele (SNVs too) is added to each
        of their two haplotype windows by bcftools' rule (a haplotype may carry an indel that
        shifts the window), read as the run was trained (``haplotypes``).
    method, batch_size, device, precision
        As for :func:`variformer.analysis.ism` (32-bit by default).
    haplotypes : bool, optional
        The run's recorded ``data.haplotypes`` (:func:`variformer.analysis.variant_effects.
        allele_effects`); None: the dataset's mode.
    """
    start, end = crop_bounds(ds.seq_len, seq_len)
    if background is not None and background not in set(ds.samples):
        raise InputError(f"--background {background} is not a sample of the dataset")
    haplotype_dataset = getattr(ds, "haplotype_mode", False)
    options = EffectOptions(background, batch_size, device, precision, method)
    if haplotype_dataset and background is not None:
        out = other_alleles(
            model, ds, gene, fold=fold, seq_len=seq_len, options=options, haplotypes=haplotypes,
            snvs=True,
        )  # fmt: skip
        return out.sort_values(["pos", "ref", "alt"], kind="stable", ignore_index=True)
    var = gene_snvs(ds, gene, seq_len=seq_len)
    if background is None:
        seq = ds.reference(gene)[start:end]
    else:
        seq = ds.sequences(gene, [background], start=start, end=end)[0]
    scores = ism(
        model, seq, var, method=method, batch_size=batch_size, device=device, precision=precision
    )
    out = var.assign(gene=gene, fold=int(fold), score=scores)[list(COLUMNS)]
    if not haplotype_dataset:
        return out
    others = other_alleles(model, ds, gene, fold=fold, seq_len=seq_len, options=options)
    out = pd.concat([out, others], ignore_index=True) if len(others) else out
    return out.sort_values(["pos", "ref", "alt"], kind="stable", ignore_index=True)


def other_alleles(
    model: nn.Module,
    ds: Any,
    gene: str,
    *,
    fold: int,
    seq_len: int | None,
    options,
    haplotypes: bool | None = None,
    snvs: bool = False,
) -> pd.DataFrame:
    """ISM rows of a haplotype-mode dataset's observed MNPs and indels (and SNVs with
    ``snvs``) in the (cropped) window.

    A score is :func:`variformer.analysis.variant_effects.allele_effects`' effect: on the
    reference, or with a background on the person's two haplotypes, read as the run was
    trained (``haplotypes``). Fast path as :func:`variformer.analysis.mutagenesis.edit_effects`
    (``options.method``). An allele whose re-anchored window needs reference beyond the
    dataset's span is left out.
    """
    var = ds.variants(gene)
    var = var.assign(ref=var["ref"].astype(str).str.upper(), alt=var["alt"].astype(str).str.upper())
    single = (var["ref"].str.len() == 1) & var["alt"].isin(list(BASES))
    wanted = np.ones(len(var), dtype=bool) if snvs else ~single.to_numpy()
    var = var[wanted & window_alleles(ds, gene, var, seq_len=seq_len)].reset_index(drop=True)
    table = allele_effects(
        model, ds, gene, var, seq_len=seq_len, options=options, haplotypes=haplotypes,
        reference=options.background is None,
    )  # fmt: skip
    score = "effect_reference" if options.background is None else "effect_background"
    table = table.assign(
        gene=gene, fold=int(fold), score=table[score].astype(np.float32),
        tss_distance=tss_distance(table["pos"], ds.window(gene)),
    )  # fmt: skip
    return table[list(COLUMNS)]


def manifest_path(table: str | Path) -> Path:
    """The record written beside an ISM table (``<table>.json``): the settings it was made
    with (dataset fingerprints, model checksums, background, genes) and its row count."""
    table = Path(table)
    return table.with_name(table.name + ".json")


def _progress(iterable, *, total: int, show: bool, desc: str):
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="gene")


def write_ism_tsv(
    out: str | Path,
    genes: Sequence,
    table: Callable[[Any], pd.DataFrame],
    *,
    settings: dict,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    schema: Schema = ISM,
    name: str = "ism",
) -> pd.DataFrame:
    """Run ``table(gene)`` for each gene, keep each result, publish the TSV at ``out``.

    Parameters
    ----------
    out : path
        The TSV to create (an existing one is replaced only with ``force``).
    genes : sequence
        Gene names, or tuples whose last item is the gene (e.g. ``(run_dir, gene)``).
    table : callable
        item of ``genes`` -> DataFrame with :data:`COLUMNS` (e.g. a partial of :func:`ism_table`).
    settings : dict
        What the scores depend on (model, dataset, background, ...); finished genes of an
        interrupted run are reused only when these match.
    progress : bool, optional
        A progress bar; default: only when stderr is a terminal (else one line per gene).
    schema : core.tables.Schema, default :data:`core.tables.ISM`
        The table's schema (e.g. :data:`core.tables.VARIANT_EFFECTS` for score-variants).
    name : str, default "ism"
        The command, in log lines and the progress bar.

    Returns
    -------
    pd.DataFrame
        The published table, genes in the given order.
    """
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    check_writable_parent(out)
    with output_lock(out):  # one writer: a second process on the same --out is refused
        return _write_ism_tsv(out, genes, table, settings=settings, force=force,
                              progress=progress, log=log, schema=schema, name=name)  # fmt: skip


def _write_ism_tsv(
    out: Path, genes, table, *, settings, force, progress, log, schema, name
) -> pd.DataFrame:
    partial = out.with_name(f".{out.name}.partial")
    stamp = json.dumps(settings, sort_keys=True, default=str)
    if partial.is_dir() and (
        not (partial / "settings.json").is_file()
        or (partial / "settings.json").read_text() != stamp
    ):
        log(f"{name}: {partial} was made with other settings; starting over")
        shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    atomic_write_text(partial / "settings.json", stamp)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    frames = []
    for i, item in enumerate(_progress(genes, total=len(genes), show=show, desc=name)):
        gene = item if isinstance(item, str) else item[-1]
        done = partial / f"{i:05d}.tsv"
        if done.is_file():
            with contextlib.suppress(InputError):  # a damaged leftover is recomputed
                frame = read_table(done, schema)
                if (frame["gene"] == gene).all():
                    frames.append(frame)
                    continue
        t0 = time.perf_counter()
        frame = table(item)
        write_table(frame, done, schema)
        frames.append(read_table(done, schema))
        if not show:
            log(
                f"{name}: {gene}: {len(frame)} variants in {time.perf_counter() - t0:.1f} s "
                f"({i + 1}/{len(genes)})"
            )
    result = pd.concat(frames, ignore_index=True) if frames else empty_table(schema.columns)
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)  # --force over a directory; a file is replaced atomically below
    # the table's record (what it was made from, how many rows) first: a table is never
    # published without one that says what it is
    record = {**settings, "n_rows": len(result)}
    atomic_write_text(manifest_path(out), json.dumps(record, indent=1, default=str) + "\n")
    write_table(result, out, schema)
    shutil.rmtree(partial, ignore_errors=True)
    return result
