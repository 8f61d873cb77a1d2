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
No torch here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import yaml

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent, publish_dir
from core.manifest import check_same, config_differences, file_digest
from core.tables import empty_predictions, read_predictions

__all__ = [
    "CONFIG",
    "FAILED",
    "INPUTS",
    "PARTIAL_SUFFIX",
    "PREDICTIONS",
    "SUMMARY",
    "Run",
    "RunPaths",
    "check_inputs",
    "check_made_from",
    "dataset_fingerprints",
    "find_runs",
    "fingerprint",
    "json_safe",
    "open_partial",
    "plan_run",
    "provenance",
    "publish_run",
    "read_inputs",
    "read_run",
    "record_inputs",
    "run_name",
    "run_path",
    "versions",
    "write_config",
    "write_failure",
    "write_summary",
]

SUMMARY = "summary.json"
PREDICTIONS = "predictions.tsv"
CONFIG = "config.yaml"
#: what a run was made from (:func:`record_inputs`), written when it starts
INPUTS = "inputs.json"
#: why an unfinished run stopped for good (:func:`write_failure`)
FAILED = "failed.json"
PARTIAL_SUFFIX = ".partial"
_PACKAGES = ("variformer", "torch", "lightning", "enformer-pytorch", "numpy", "pandas")
_PACKAGES += ("scikit-learn", "scipy")


class Run(NamedTuple):
    """A complete run directory, read back by :func:`read_run`."""

    path: Path  # <root>/<name>/fold<k>
    kind: str  # summary["kind"]
    name: str  # summary["name"] (default: the parent directory's name)
    fold: int | None  # summary["fold"]
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


def run_path(root: str | os.PathLike, name: str, fold: int) -> Path:
    """``<root>/<name>/fold<fold>``."""
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise InputError(f"run name {name!r} must be a plain directory name (no '/')")
    return Path(root).expanduser() / name / f"fold{int(fold)}"


def plan_run(
    root: str | os.PathLike, name: str, fold: int, *, force: bool = False, check: bool = True
) -> RunPaths:
    """Check where run ``name``, ``fold`` will be written, before any work; creates nothing.

    Parameters
    ----------
    root : str or Path
        Parent of all runs (``--out`` of the producing command).
    name : str
        Run name (:func:`run_name`).
    fold : int
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


def json_safe(value: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN), numpy scalars and paths -> Python values."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# ---------------------------------------------------------------- inputs of a run


def dataset_fingerprints(dataset: Any) -> dict[str, str] | None:
    """The content fingerprints of a dataset's parts (``GeneDataset.fingerprints``), or None
    for an in-memory dataset that has none."""
    found = getattr(dataset, "fingerprints", None)
    return dict(found) if isinstance(found, Mapping) else None


def record_inputs(directory: str | os.PathLike, inputs: Mapping[str, Any]) -> Path:
    """Write ``inputs.json``: what the run in ``directory`` is made from (dataset
    fingerprints, genes, fold, the resolved config), before any work, so that a resume can
    check it (:func:`check_inputs`)."""
    text = json.dumps(json_safe(dict(inputs)), indent=1, sort_keys=True) + "\n"
    return atomic_write_text(Path(directory) / INPUTS, text)


#: dataset parts a finished run must share with the dataset it is read against (its prep
#: config may differ: only content matters)
MATCHED_PARTS = ("splits", "samples", "targets", "windows")


def check_made_from(directory: str | os.PathLike, dataset: Any, *, verb: str) -> bool:
    """Refuse a finished run (or fit) made from another dataset than ``dataset``: other splits,
    people, targets or windows would pair its folds and predictions with the wrong people.

    Parameters
    ----------
    verb : str
        What is being done with the run, for the advice ("evaluate", "score", "analyze").

    Returns
    -------
    bool
        True if checked; False when the run records no fingerprints (an older version) or the
        dataset has none (in memory), so nothing could be compared.
    """
    recorded = read_inputs(directory)
    current = dataset_fingerprints(dataset)
    if recorded is None or current is None:
        return False
    check_same(
        recorded.get("dataset") or {},
        {k: v for k, v in current.items() if k in MATCHED_PARTS},
        what="the dataset",
        where=directory,
        advice=f"{verb} it with the dataset it was made from, or re-run it on "
        f"{getattr(dataset, 'path', 'this dataset')}",
    )
    return True


def write_failure(directory: str | os.PathLike, reason: str) -> Path:
    """Record in a ``.partial`` run why it stopped for good (``failed.json``: status, reason)."""
    text = json.dumps({"status": "failed", "reason": reason}, indent=1) + "\n"
    return atomic_write_text(Path(directory) / FAILED, text)


def read_inputs(directory: str | os.PathLike) -> dict | None:
    """The recorded ``inputs.json`` of a run directory; None when it has none (an older run)."""
    path = Path(directory) / INPUTS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"{path} is not valid JSON ({err}); pass --force to redo the run"
        ) from None


def check_inputs(directory: str | os.PathLike, current: Mapping[str, Any], *, advice: str) -> None:
    """Refuse to reuse the run in ``directory`` (resume it, or skip it as done) unless it was
    made from ``current``: the same dataset parts, genes, fold and config.

    Raises
    ------
    InputError
        One line naming the run, what differs (the dataset part with both fingerprints, or
        the config keys) and ``advice``.
    """
    directory = Path(directory)
    recorded = read_inputs(directory)
    current = json_safe(dict(current))
    if recorded is None:
        raise InputError(
            f"{directory} records no input fingerprints (made by an older version), so it cannot "
            f"be checked against the current inputs; {advice}"
        )
    check_same(
        recorded.get("dataset") or {}, current.get("dataset") or {},
        what="the dataset", where=directory, advice=advice,
    )  # fmt: skip
    for key in ("genes", "fold", "model"):
        if key in recorded and key in current and recorded[key] != current[key]:
            raise InputError(
                f"{directory} was made for {key} {recorded[key]}, not {current[key]}; {advice}"
            )
    changed = config_differences(recorded.get("config") or {}, current.get("config") or {})
    if changed:
        shown = ", ".join(changed[:6]) + (
            f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        )
        raise InputError(f"{directory} was made with another config ({shown} differ); {advice}")


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
    fold = summary.get("fold")
    return Run(
        path=path,
        kind=str(summary.get("kind", "finetune")),
        name=str(summary.get("name") or path.parent.name),
        fold=None if fold is None else int(fold),
        summary=summary,
        config=config,
        predictions=predictions,
    )


def find_runs(root: str | os.PathLike, *, kind: str | None = None) -> Iterator[Run]:
    """Every complete run under ``root`` (any depth), in sorted path order.

    ``.partial`` and hidden directories (unfinished or being published) are skipped; ``kind``
    keeps only runs of that kind.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of runs")
    for summary_path in sorted(root.rglob(SUMMARY)):
        rel = summary_path.parent.relative_to(root).parts
        if any(p.endswith(PARTIAL_SUFFIX) or p.startswith(".") for p in rel):
            continue
        run = read_run(summary_path.parent)
        if kind is None or run.kind == kind:
            yield run
