"""ISM tables of whole models: one fine-tuning run, every run under a runs root, or Enformer.

What ``variformer ism`` does, as functions that tests and the demo call directly: pick the
(model, gene) pairs, check them against the dataset, and write one resumable ISM TSV through
:func:`variformer.analysis.gene_ism.write_ism_tsv`.

A run trained in haplotype mode (issue #24) predicts a person as the mean over their two
haplotypes; on the reference both haplotypes are the reference, so its ISM on the reference is
the single forward used here. A person's background (``--background``) is refused for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from core.errors import InputError
from core.manifest import check_made_from, dataset_fingerprints
from core.runs import Run, find_runs, model_checksum, read_run
from variformer.analysis.gene_ism import ism_table, write_ism_tsv
from variformer.config import ENFORMER_BLOOD_TRACK, recorded_haplotypes

__all__ = [
    "IsmOptions",
    "IsmResult",
    "RunSetting",
    "RunTasks",
    "ism_of_enformer",
    "ism_of_run",
    "ism_of_runs",
    "one_model_at_a_time",
    "run_tasks",
]


class IsmOptions(NamedTuple):
    """How every gene is scored (see :func:`variformer.analysis.ism`)."""

    background: str | None = None  # a sample id: that person's sequence instead of the reference
    method: str = "fast"
    batch_size: int = 16
    device: Any = None
    precision: str = "32"  # "bf16-mixed" only when asked: see variformer.analysis.ism
    force: bool = False
    progress: bool | None = None


DEFAULT_OPTIONS = IsmOptions()


class IsmResult(NamedTuple):
    """The published table and what went into it."""

    table: pd.DataFrame
    n_genes: int
    n_runs: int


class RunSetting(NamedTuple):
    """What scoring needs to know of a fine-tuning run."""

    fold: int  # -1 for a run without folds
    genes: list[str] | None
    seq_len: int | None  # data.seq_len: the crop it was trained on
    haplotypes: bool  # trained on each person's two haplotypes (recorded_haplotypes)


def _run_setting(run: Run) -> RunSetting:
    return RunSetting(
        -1 if run.fold is None else run.fold,
        list(run.summary.get("genes") or []) or None,
        (run.config.get("data") or {}).get("seq_len"),
        recorded_haplotypes(run),
    )


def _check(ds, genes: Sequence[str], background: str | None, dataset: Any) -> None:
    unknown = [g for g in genes if g not in set(ds.genes)]
    if unknown:
        raise InputError(
            f"gene(s) {', '.join(unknown[:5])} not in the dataset {dataset}; see its genes.tsv"
        )
    if background is not None and background not in set(ds.samples):
        raise InputError(f"--background {background} is not a sample of {dataset}")


def _write(
    model, ds, genes, out, *, fold, seq_len, source: dict, opt: IsmOptions, haplotypes=None
) -> IsmResult:
    table = partial(
        ism_table, model, ds, fold=fold, seq_len=seq_len, background=opt.background,
        haplotypes=haplotypes,
        method=opt.method, batch_size=opt.batch_size, device=opt.device,
        precision=opt.precision,
    )  # fmt: skip
    settings = {
        **source,
        "dataset": str(Path(ds.path).resolve()),
        "dataset_fingerprints": dataset_fingerprints(ds),
        "background": opt.background,
        "precision": opt.precision,
        "genes": list(genes),
    }
    result = write_ism_tsv(
        out, list(genes), table, settings=settings, force=opt.force, progress=opt.progress
    )
    return IsmResult(result, len(genes), 1)


def ism_of_run(
    run_dir: str | os.PathLike,
    ds,
    out,
    *,
    genes: Sequence[str] | None = None,
    options: IsmOptions = DEFAULT_OPTIONS,
) -> IsmResult:
    """ISM of one fine-tuning run on its genes (or ``genes``), into the TSV ``out``."""
    from variformer.model import Variformer

    run_dir = Path(run_dir).expanduser()
    run = read_run(run_dir)
    fold, run_genes, seq_len, haplotypes = _run_setting(run)
    check_made_from(run_dir, ds, verb="score")
    asked = list(dict.fromkeys(genes or []))
    genes = asked or list(dict.fromkeys(run_genes or list(ds.genes)))
    _check(ds, genes, options.background, ds.path)
    foreign = [g for g in asked if run_genes and g not in set(run_genes)]
    if foreign:
        raise InputError(
            f"{run_dir} was not trained on {', '.join(foreign[:5])} (its genes: "
            f"{', '.join(run_genes[:5])}); its scores there would describe no learned effect"
        )
    model = Variformer.load(run_dir)
    source = {"run": str(run_dir.resolve()), "model": model_checksum(run_dir)}
    return _write(
        model, ds, genes, out, fold=fold, seq_len=seq_len, source=source, opt=options,
        haplotypes=haplotypes,
    )  # fmt: skip


def ism_of_enformer(
    weights: str | os.PathLike,
    ds,
    out,
    *,
    track: int = ENFORMER_BLOOD_TRACK,
    genes: Sequence[str] | None = None,
    options: IsmOptions = DEFAULT_OPTIONS,
) -> IsmResult:
    """ISM of pre-trained Enformer (``track``, 3 centre bins) on ``genes`` (default: all)."""
    from variformer.predict import load_enformer_track

    genes = list(dict.fromkeys(genes or list(ds.genes)))
    _check(ds, genes, options.background, ds.path)
    model = load_enformer_track(weights, track=track)
    source = {"enformer": os.fspath(weights), "track": track}
    # a person is read as evaluate scores Enformer (predict_people): the mean one-hot
    return _write(
        model, ds, genes, out, fold=-1, seq_len=None, source=source, opt=options, haplotypes=False
    )


class RunTasks(NamedTuple):
    """The (run, gene) pairs to score under a runs root (:func:`run_tasks`)."""

    tasks: list  # (run dir, gene), runs in find_runs order
    settings: dict  # run dir -> RunSetting
    n_runs: int


def run_tasks(
    runs: str | os.PathLike,
    ds,
    *,
    fold: int | None = None,
    genes: Sequence[str] | None = None,
    verb: str = "score",
) -> RunTasks:
    """Every finished fine-tuning run under ``runs`` (of ``fold``, or of every fold), each on
    its genes (those of ``genes`` only), checked against the dataset.

    Raises
    ------
    InputError
        No finished run; a run made from another dataset or with a gene the dataset lacks; two
        runs of one gene on one fold; a gene of ``genes`` that no run has.
    """
    found = [r for r in find_runs(runs, kind="finetune") if fold is None or r.fold == fold]
    if not found:
        which = "" if fold is None else f" of fold {fold}"
        raise InputError(
            f"no finished fine-tuning run{which} under {runs}; run `variformer finetune` first"
        )
    wanted = set(genes or []) or None
    known = set(ds.genes)
    for run in found:
        check_made_from(run.path, ds, verb=verb)
    settings = {str(run.path): _run_setting(run) for run in found}
    tasks: list[tuple[str, str]] = []  # (run dir, gene)
    seen: dict[tuple[str, int], str] = {}
    for run in found:
        run_fold, run_genes = settings[str(run.path)][:2]
        for gene in run_genes or list(ds.genes):
            if wanted is not None and gene not in wanted:
                continue
            if gene not in known:
                raise InputError(
                    f"run {run.path} has gene {gene}, which is not in the dataset {ds.path}"
                )
            if (gene, run_fold) in seen:
                raise InputError(
                    f"{gene} has two runs on fold {run_fold} ({seen[gene, run_fold]} and "
                    f"{run.path}); score one with --run, or pass --genes to leave the gene out"
                )
            seen[gene, run_fold] = str(run.path)
            tasks.append((str(run.path), gene))
    if wanted is not None:
        missing = sorted(wanted - {g for _, g in tasks})
        if missing:
            raise InputError(f"no finished run under {runs} has gene(s) {', '.join(missing[:5])}")
    return RunTasks(tasks, settings, len(found))


def ism_of_runs(
    runs: str | os.PathLike,
    ds,
    out,
    *,
    fold: int | None = None,
    genes: Sequence[str] | None = None,
    options: IsmOptions = DEFAULT_OPTIONS,
) -> IsmResult:
    """Every finished run under ``runs`` (of ``fold``, or of every fold), each on its genes.

    A gene may have one run per fold; two runs of one gene on one fold are refused.
    """

    tasks, settings, n_runs = run_tasks(runs, ds, fold=fold, genes=genes)
    _check(ds, [], options.background, ds.path)
    model_of = one_model_at_a_time()

    def table(task: tuple[str, str]) -> pd.DataFrame:
        run_dir, gene = task
        run_fold, _, seq_len, haplotypes = settings[run_dir]
        return ism_table(
            model_of(run_dir), ds, gene, fold=run_fold, seq_len=seq_len,
            background=options.background, method=options.method, haplotypes=haplotypes,
            batch_size=options.batch_size, device=options.device, precision=options.precision,
        )  # fmt: skip

    stamp = {
        "runs": [str(Path(r).resolve()) for r, _ in tasks],
        # finished genes are reused only for the same weights: a retrained run is rescored
        "models": [model_checksum(r) for r, _ in tasks],
        "dataset": str(Path(ds.path).resolve()),
        "dataset_fingerprints": dataset_fingerprints(ds),
        "background": options.background,
        "precision": options.precision,
        "genes": [g for _, g in tasks],
    }
    result = write_ism_tsv(
        out, tasks, table, settings=stamp, force=options.force, progress=options.progress
    )
    return IsmResult(result, len(tasks), n_runs)


def one_model_at_a_time() -> Callable[[str], Any]:
    """``model_of(run_dir)``: the run's loaded Variformer; only the last one stays in memory
    (tasks come grouped by run, so each run is loaded once)."""
    from variformer.model import Variformer

    loaded: dict[str, Any] = {}

    def model_of(run_dir: str) -> Any:
        if run_dir not in loaded:
            loaded.clear()
            loaded[run_dir] = Variformer.load(run_dir)
        return loaded[run_dir]

    return model_of
