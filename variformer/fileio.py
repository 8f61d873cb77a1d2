"""One way to publish outputs, and one way to open maybe-gzipped text.

Every command writes its output somewhere private and moves it into place only when it is
complete, so an interrupted run never leaves something that looks finished:

- :func:`atomic_dir` - a directory built as a hidden sibling and renamed into place;
- :func:`atomic_write_text` / :func:`atomic_write_bytes` - one file, via a temporary sibling;
- :func:`publish_dir` - move an already-built directory (e.g. a ``.partial`` run) into place.

A path that exists is replaced only with ``force=True`` (the old one is renamed aside first and
removed after the new one is in place). No torch here: ``data_prep`` and ``baselines`` use it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from variformer.errors import InputError

__all__ = [
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable_parent",
    "open_text",
    "publish_dir",
]


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file for reading, gzip/BGZF or plain, decided by its magic bytes."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def check_writable_parent(out: str | os.PathLike) -> Path:
    """Create ``out``'s parent and check that a new entry can be written there.

    Raises
    ------
    InputError
        ``out`` is a dangling symlink, its parent is a file, or the parent is not writable.
        Checked before any work starts, so a long run does not fail at its very end.
    """
    out = Path(out).expanduser()
    if out.is_symlink() and not out.exists():
        raise InputError(f"{out} is a dangling symlink; remove it or choose another output path")
    parent = out.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError(f"cannot write {out}: {p} is a file, not a directory")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{out.name}.probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise InputError(
            f"cannot write {out}: {err.strerror or err}; choose a writable output path"
        ) from None
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def publish_dir(tmp: str | os.PathLike, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Rename the finished directory ``tmp`` to ``out``.

    An existing ``out`` is replaced only with ``force`` (renamed aside, then removed once the
    new one is in place); without it an :class:`InputError` says to pass ``--force``.
    """
    tmp, out = Path(tmp), Path(out)
    if out.exists() or out.is_symlink():
        if not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        _remove(old)
        os.replace(out, old)
        os.replace(tmp, out)
        _remove(old)
    else:
        os.replace(tmp, out)
    return out


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Build a directory privately and publish it at ``out`` only if the block succeeds.

    Yields a fresh hidden sibling of ``out``; on success it is renamed to ``out`` (see
    :func:`publish_dir`), on any exception (Ctrl-C included) it is removed.

    Examples
    --------
    >>> with atomic_dir("results/run1") as tmp:          # doctest: +SKIP
    ...     (tmp / "summary.json").write_text("{}")
    """
    out = Path(out).expanduser()
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    check_writable_parent(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        publish_dir(tmp, out, force=force)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling and an atomic rename."""
    return atomic_write_bytes(path, text.encode())
