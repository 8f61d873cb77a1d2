"""Read the plain lists users pass as files: genes, samples, test samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import InputError


def read_list(path, *, what: str, unique: bool = False) -> list[str]:
    """Items of a text file, one per line: the first tab-separated field, ``#`` comments dropped.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file lists, for messages ("genes", "samples").
    unique : bool
        Refuse a file that names an item twice.

    Raises
    ------
    InputError
        Missing file, no items, or (with ``unique``) a repeated item.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    items = [ln.split("#", 1)[0].split("\t")[0].strip() for ln in path.read_text().splitlines()]
    items = [item for item in items if item]
    if not items:
        raise InputError(f"{what} file {path} is empty")
    if unique:
        dup = pd.Index(items)[pd.Index(items).duplicated()]
        if len(dup):
            raise InputError(f"{what} file {path} lists {dup[0]!r} twice")
    return items
