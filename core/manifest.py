"""Fingerprints of what an output was made from, and the check that an input still matches.

Every output directory records, per input, a content fingerprint (SHA-256; size and mtime
would miss a rebuilt file of the same size). A later step that consumes the output, or a run
that resumes or skips, recomputes the fingerprints of its current inputs and refuses a
mismatch with one line naming both sides (:func:`check_same`).

Fingerprints are short hex strings (:data:`DIGEST_CHARS` characters of SHA-256): plenty to
tell two builds apart, short enough to read in a message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.fileio import atomic_write_text

__all__ = [
    "DIGEST_CHARS",
    "FAILED",
    "INPUTS",
    "MATCHED_PARTS",
    "check_inputs",
    "check_made_from",
    "check_same",
    "config_differences",
    "dataset_fingerprints",
    "digest_files",
    "digest_value",
    "file_digest",
    "json_safe",
    "read_inputs",
    "record_inputs",
    "write_failure",
]

DIGEST_CHARS = 16
#: what a run was made from (:func:`record_inputs`), written when it starts
INPUTS = "inputs.json"
#: why an unfinished run stopped for good (:func:`write_failure`)
FAILED = "failed.json"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex, full length).

    Raises
    ------
    InputError
        If the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot fingerprint {path}: no such file")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_value(value: Any) -> str:
    """Fingerprint of a JSON-able value (keys sorted, so dict order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def digest_files(directory: str | os.PathLike, names: list[str]) -> str:
    """One fingerprint over the named files of ``directory`` (name and content of each).

    A file that is absent counts as absent (its name with no content), so adding or removing
    an optional file changes the fingerprint.
    """
    directory = Path(directory)
    manifest = {
        name: file_digest(directory / name) if (directory / name).is_file() else None
        for name in names
    }
    return digest_value(manifest)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def config_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two nested configs (added or removed too)."""
    a, b = _flatten(recorded), _flatten(current)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def check_same(
    recorded: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    what: str,
    where: str | os.PathLike,
    advice: str,
) -> None:
    """Refuse when a recorded fingerprint differs from the current one.

    Parameters
    ----------
    recorded, current : mapping of name -> fingerprint
        Compared on the names both have (a name only one side knows is not evidence), in
        ``current``'s order, which names the parts that matter most first.
    what : str
        What the fingerprints are of, e.g. "the dataset".
    where : path
        The output that recorded them (named in the message).
    advice : str
        What to do, e.g. "pass --force to start the run again".

    Raises
    ------
    InputError
        Naming the first differing part, both fingerprints and ``where``.
    """
    names = [n for n in current if n in recorded]
    differ = [
        n
        for n in names
        if recorded[n] is not None
        and current[n] is not None
        and str(recorded[n]) != str(current[n])
    ]
    if len(differ) > 1 and "dataset" in differ:
        differ.remove("dataset")  # the whole is named by its parts
    if differ:
        first = differ[0]
        old, new = str(recorded[first])[:DIGEST_CHARS], str(current[first])[:DIGEST_CHARS]
        raise InputError(
            f"{where} was made from {what} with other {', '.join(differ)} ({first} {old} then, "
            f"{new} now: rebuilt, or another one); {advice}"
        )


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
