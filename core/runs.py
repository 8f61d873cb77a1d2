"""The run-directory contract shared by finetune, baselines, evaluate, ism, analyze and the demo.

Layout (one directory per model x fold)::

    <root>/<name>/fold<k>/          a finished run (``name``: a gene, a gene set, a model name)
        summary.json                always: kind, name, fold, metrics, provenance (see below)
        predictions.tsv             models: sample, gene, split, observed, predicted
                                    (:data:`core.tables.PREDICTIONS`)
        config.yaml                 the settings the run used
        ...                         kind-specific files (best.ckpt, last.ckpt, coefficients.tsv)
    <root>/<name>/fold<k>.partial/  the same run while it is being written or was interrupted

Life of a run:

1. :func:`plan_run` checks the output before any work and creates nothing (a finished run
   needs ``force``; a read-only, under-a-file or dangling-symlink location is refused) and
   says whether an interrupted ``.partial`` directory exists;
2. :func:`open_partial` creates (or reuses, when resuming) ``fold<k>.partial/``;
3. the producer writes its files there (:func:`write_summary`, :func:`write_config`,
   :func:`core.tables.write_predictions`), ``summary.json`` last;
4. :func:`publish_run` renames it to ``fold<k>/`` (:func:`core.fileio.publish_dir`).

A directory is a complete run exactly when it is not ``.partial`` and holds ``summary.json``;
:func:`read_run` reads one back as a :class:`Run`, :func:`find_runs` yields every complete run
under a root. ``summary.json`` always has ``kind`` (``finetune``, ``baseline``, ``evaluate``,
``ism``, ``analysis``, ...), ``name``, ``fold``, and the :func:`provenance` keys ``versions``
(of the packages) and ``inputs`` (path and SHA-256 of each input; a dataset directory is
fingerprinted by its ``dataset.json``, which names every source file of the dataset).
A fit on every person (``variformer baselines --all-people``) lives beside the folds as
``<root>/<name>/all/`` (fold :data:`ALL_PEOPLE` in its ``summary.json``; :attr:`Run.fold` None):
it has no held-out people, so it is not a cross-validation run and :func:`find_runs` leaves it
out. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent, publish_dir
from core.manifest import file_digest, json_safe
from core.tables import empty_predictions, read_predictions

__all__ = [
    "ALL_PEOPLE",
    "CONFIG",
    "PARTIAL_SUFFIX",
    "PREDICTIONS",
    "RUN_DIR_FILES",
    "SUMMARY",
    "Run",
    "RunPaths",
    "find_runs",
    "fingerprint",
    "model_checksum",
    "model_file",
    "open_partial",
    "plan_run",
    "provenance",
    "publish_run",
    "read_run",
    "run_name",
    "run_path",
    "versions",
    "write_config",
    "write_summary",
]

SUMMARY = "summary.json"
PREDICTIONS = "predictions.tsv"
CONFIG = "config.yaml"
PARTIAL_SUFFIX = ".partial"
#: the "fold" of a fit on every person: its directory name and ``summary.json`` fold
ALL_PEOPLE = "all"
#: the model file of a fine-tuning run, in the order :func:`model_file` looks for them
RUN_DIR_FILES = ("model.pt", "best.ckpt")
_PACKAGES = ("variformer", "torch", "lightning", "enformer-pytorch", "numpy", "pandas")
_PACKAGES += ("scikit-learn", "scipy")


class Run(NamedTuple):
    """A complete run directory, read back by :func:`read_run`."""

    path: Path  # <root>/<name>/fold<k>
    kind: str  # summary["kind"]
    name: str  # summary["name"] (default: the parent directory's name)
    fold: int | None  # summary["fold"] (None for a fit on all people)
    summary: dict  # summary.json
    config: dict  # config.yaml ({} if the run has none)
    predictions: pd.DataFrame  # predictions.tsv (no rows if the run has none)


class RunPaths(NamedTuple):
    """Where a run is written (:func:`plan_run`)."""

    final: Path  # <root>/<name>/fold<k>
    partial: Path  # <root>/<name>/fold<k>.partial
    resuming: bool  # the partial directory exists (an interrupted run)


def run_name(genes: Sequence[str], *, name: str | None = None) -> str:
    """Directory name of a run: ``name``, the gene, or ``<n>genes-<hash of the list>``."""
    if name:
        return name
    if len(genes) == 1:
        return genes[0]
    digest = hashlib.sha1("\n".join(genes).encode()).hexdigest()[:8]
    return f"{len(genes)}genes-{digest}"


def run_path(root: str | os.PathLike, name: str, fold: int | str) -> Path:
    """``<root>/<name>/fold<fold>``, or ``<root>/<name>/all`` for fold :data:`ALL_PEOPLE`."""
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise InputError(f"run name {name!r} must be a plain directory name (no '/')")
    leaf = ALL_PEOPLE if fold == ALL_PEOPLE else f"fold{int(fold)}"
    return Path(root).expanduser() / name / leaf


def plan_run(
    root: str | os.PathLike, name: str, fold: int | str, *, force: bool = False, check: bool = True
) -> RunPaths:
    """Check where run ``name``, ``fold`` will be written, before any work; creates nothing.

    Parameters
    ----------
    root : str or Path
        Parent of all runs (``--out`` of the producing command).
    name : str
        Run name (:func:`run_name`).
    fold : int or str
        A fold, or :data:`ALL_PEOPLE`.
    force : bool
        Allow replacing a finished run (it is replaced only when the new one is published).
    check : bool
        Check that the output location is writable (:func:`core.fileio.check_writable_parent`).

    Returns
    -------
    RunPaths

    Raises
    ------
    InputError
        A finished run exists and ``force`` is False; the location is not writable (read-only,
        under a file, a dangling symlink).
    """
    final = run_path(root, name, fold)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if (final.exists() or final.is_symlink()) and not force:
        raise InputError(
            f"{final} holds a finished run; pass --force to replace it or choose another --out"
        )
    if check:
        _check_creatable(partial / SUMMARY)
    return RunPaths(final, partial, partial.is_dir())


def _check_creatable(path: Path) -> None:
    """Refuse a ``path`` that could not be created, creating nothing (probes its nearest
    existing ancestor with :func:`core.fileio.check_writable_parent`)."""
    child = path
    while not (child.parent.exists() or child.parent.is_symlink()) and child.parent != child:
        child = child.parent
    if child.parent.is_symlink() and not child.parent.exists():
        raise InputError(
            f"{child.parent} is a dangling symlink; remove it or choose another output path"
        )
    check_writable_parent(child)


def open_partial(paths: RunPaths) -> Path:
    """Create (or, resuming, reuse) the partial directory; returns it."""
    try:
        paths.partial.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create {paths.partial}: {err.strerror or err}") from None
    return paths.partial


def publish_run(paths: RunPaths, *, force: bool = False) -> Path:
    """Rename the finished partial directory to ``paths.final`` (replacing one with ``force``)."""
    if not (paths.partial / SUMMARY).is_file():
        raise InputError(f"{paths.partial} has no {SUMMARY}: the run is not finished")
    return publish_dir(paths.partial, paths.final, force=force)


def write_summary(directory: str | os.PathLike, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` atomically (NaN/inf become null, numpy scalars plain numbers).

    ``summary`` must hold ``kind``, ``name`` and ``fold``.
    """
    missing = [k for k in ("kind", "name", "fold") if k not in summary]
    if missing:
        raise ValueError(f"a run summary needs {', '.join(missing)}")
    text = json.dumps(json_safe(dict(summary)), indent=1) + "\n"
    return atomic_write_text(Path(directory) / SUMMARY, text)


def write_config(
    directory: str | os.PathLike, config: Mapping[str, Any], *, resuming: bool = False
) -> Path:
    """Write ``config.yaml``; resuming with a different config than the run started with warns."""
    path = Path(directory) / CONFIG
    text = yaml.safe_dump(json_safe(dict(config)), sort_keys=False)
    if resuming and path.is_file() and path.read_text() != text:
        warnings.warn(
            f"resuming {path.parent} with a different config than it started with", stacklevel=2
        )
    return atomic_write_text(path, text)


# ---------------------------------------------------------------- a run's model


def model_file(path: str | os.PathLike) -> Path:
    """The file :meth:`variformer.model.Variformer.load` reads: ``path`` itself, or a run directory's
    ``model.pt`` (else ``best.ckpt``).

    Raises
    ------
    InputError
        Neither exists.
    """
    file = Path(path).expanduser()
    if file.is_dir():
        found = [file / f for f in RUN_DIR_FILES if (file / f).is_file()]
        if not found:
            raise InputError(
                f"{file} holds none of {', '.join(RUN_DIR_FILES)}; pass a run directory or a checkpoint file"
            )
        file = found[0]
    if not file.is_file():
        raise InputError(f"no such model file or run directory: {file}")
    return file


def model_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of the model file of ``path`` (:func:`model_file`): what a cached result of the
    model (an ISM table being resumed) is keyed by, so a retrained model is never mixed in."""
    return file_digest(model_file(path))


# ---------------------------------------------------------------- provenance


def versions() -> dict[str, str | None]:
    """Python and the versions of the packages a result depends on (None: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a file (:func:`core.manifest.file_digest`), or of a dataset directory's
    ``dataset.json``.

    Raises
    ------
    InputError
        If the path does not exist, or is a directory without ``dataset.json``.
    """
    path = Path(path)
    return file_digest(path / "dataset.json" if path.is_dir() else path)


def provenance(inputs: Mapping[str, Any] | None = None) -> dict:
    """``{"versions": ..., "inputs": {key: {"path", "sha256"}}}``, merged into ``summary.json``.

    ``inputs`` maps a role (``dataset``, ``vcf``, ...) to a path; anything else (an
    in-memory dataset) is recorded by its type name with ``sha256`` None.
    """
    recorded = {}
    for key, value in (inputs or {}).items():
        if isinstance(value, (str, os.PathLike)):
            p = Path(value)
            recorded[key] = {"path": str(p.resolve()), "sha256": fingerprint(p)}
        else:
            recorded[key] = {"path": None, "type": type(value).__name__, "sha256": None}
    return {"versions": versions(), "inputs": recorded}


# ---------------------------------------------------------------- reading runs back


def read_run(path: str | os.PathLike) -> Run:
    """Read the complete run at ``path`` (``<root>/<name>/fold<k>``).

    Raises
    ------
    InputError
        ``path`` is missing, is a ``.partial`` (unfinished) run, or has no ``summary.json``.
    """
    path = Path(path).expanduser()
    if path.name.endswith(PARTIAL_SUFFIX):
        raise InputError(
            f"{path} is an unfinished run; re-run the command that wrote it to resume it"
        )
    summary_path = path / SUMMARY
    if not summary_path.is_file():
        what = "does not exist" if not path.exists() else f"has no {SUMMARY}"
        raise InputError(f"{path} {what}, so it is not a finished run")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{summary_path} is not valid JSON ({err}); re-run that run") from None
    config: dict = {}
    if (path / CONFIG).is_file():
        config = yaml.safe_load((path / CONFIG).read_text()) or {}
    predictions = (
        read_predictions(path / PREDICTIONS)
        if (path / PREDICTIONS).is_file()
        else empty_predictions()
    )
    _check_counts(path / PREDICTIONS, summary, predictions)
    fold = summary.get("fold")
    return Run(
        path=path,
        kind=str(summary.get("kind", "finetune")),
        name=str(summary.get("name") or path.parent.name),
        fold=None if fold is None or fold == ALL_PEOPLE else int(fold),
        summary=summary,
        config=config,
        predictions=predictions,
    )


def _expected_counts(summary: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """(gene, split) -> rows the run's ``summary.json`` says its predictions hold."""
    if isinstance(summary.get("per_gene"), Mapping):  # a fine-tuning run
        per_gene = summary["per_gene"].items()
    elif summary.get("gene") is not None:  # a baseline fit
        per_gene = [(summary["gene"], summary)]
    else:
        return {}
    return {
        (str(gene), split): int(info[f"n_{split}"])
        for gene, info in per_gene
        for split in ("tune", "test")
        if isinstance(info, Mapping) and info.get(f"n_{split}") is not None
    }


def _check_counts(path: Path, summary: Mapping[str, Any], predictions: pd.DataFrame) -> None:
    """Refuse a predictions table with other row counts than its summary recorded (a file cut
    short or edited since the run was published)."""
    counts = predictions.groupby(["gene", "split"]).size()
    for (gene, split), expected in _expected_counts(summary).items():
        got = int(counts.get((gene, split), 0))
        if got != expected:
            raise InputError(
                f"{path} has {got} {split} rows of {gene} but the run recorded {expected}: it "
                "was cut short or edited since; re-run the run"
            )


def find_runs(root: str | os.PathLike, *, kind: str | None = None) -> Iterator[Run]:
    """Every complete run under ``root`` (any depth), in sorted path order.

    ``.partial`` and hidden directories (unfinished or being published) are skipped, and so
    are fits on all people (fold :data:`ALL_PEOPLE`: no held-out people, nothing to evaluate);
    ``kind`` keeps only runs of that kind.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of runs")
    for summary_path in sorted(root.rglob(SUMMARY)):
        rel = summary_path.parent.relative_to(root).parts
        if any(p.endswith(PARTIAL_SUFFIX) or p.startswith(".") for p in rel):
            continue
        run = read_run(summary_path.parent)
        if run.summary.get("fold") == ALL_PEOPLE:
            continue
        if kind is None or run.kind == kind:
            yield run
