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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import InputError

__all__ = [
    "DIGEST_CHARS",
    "check_same",
    "config_differences",
    "digest_files",
    "digest_value",
    "file_digest",
]

DIGEST_CHARS = 16


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
