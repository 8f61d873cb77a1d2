"""One way to publish outputs, and one way to open maybe-gzipped text.

Every command writes its output somewhere private and moves it into place only when it is
complete, so an interrupted run never leaves something that looks finished:

- :func:`atomic_dir` - a directory built as a hidden sibling and renamed into place;
- :func:`atomic_write_text` / :func:`atomic_write_bytes` - one file, via a temporary sibling;
- :func:`publish_dir` - move an already-built directory (e.g. a ``.partial`` run) into place;
- :func:`output_lock` - one writer at a time for outputs built in a shared, resumable place
  (a ``.partial`` run, ISM's finished genes): a second process is refused, not mixed in;
- :func:`check_out_apart` - an output that is, contains or lies inside an input is refused
  before anything is written, so ``--force`` can never delete what a command reads.

A path that exists is replaced only with ``force=True`` (the old one is renamed aside first and
removed after the new one is in place). No torch here: ``data_prep`` and ``baselines`` use it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

from core.errors import InputError

__all__ = [
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_out_apart",
    "check_writable_parent",
    "open_text",
    "output_lock",
    "publish_dir",
]


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a text file for reading, gzip/BGZF or plain, decided by its magic bytes."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


PathLike = str | os.PathLike


def _real(path: PathLike) -> Path:
    """``path`` with ``~``, ``..`` and every symlink resolved (a missing tail is kept as is)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _shown(path: PathLike, real: Path) -> str:
    """``path`` as given, and where it really is when links or ``..`` make that differ."""
    given = os.fspath(path)
    plain = Path(os.path.abspath(os.path.expanduser(given)))
    return given if plain == real else f"{given} (= {real})"


def _paths(value: PathLike | Iterable[PathLike] | None) -> list[PathLike]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return [v for v in value if v is not None]


def check_out_apart(
    out: PathLike,
    inputs: Mapping[str, PathLike | Iterable[PathLike] | None],
    *,
    flag: str = "--out",
) -> None:
    """Refuse an output that is the same place as an input, lies inside one, or contains one.

    Replacing an output (``--force``) removes it first, and writing into an input's directory
    mixes outputs into it; so an output that overlaps an input could destroy the user's data.
    Paths are compared after resolving ``~``, ``..`` and symlinks (of ``out``'s existing
    parents too, so a new ``out`` under a link into an input is caught). Call it before any
    work and before anything is written or removed.

    Parameters
    ----------
    out : path
        The output (a directory or a file; need not exist yet).
    inputs : mapping of str to path, paths or None
        Each input by the flag that named it (``{"--dataset": ..., "--vcf": [...]}``). None
        and paths that do not exist are skipped: there is nothing there to destroy (the
        command's reader reports a missing input), and names such as a hub id or a config
        preset are not paths.
    flag : str, default "--out"
        The output's flag, for the message.

    Raises
    ------
    InputError
        One line naming both paths and what to do.

    Examples
    --------
    >>> check_out_apart("data/EVAL", {"--dataset": "data"})  # doctest: +SKIP
    Traceback (most recent call last):
    core.errors.InputError: --out data/EVAL lies inside --dataset data; an output must not ...
    >>> check_out_apart("data2", {"--dataset": "data"})  # a sibling with a common prefix: fine
    """
    target = _real(out)
    for name, value in inputs.items():
        for path in _paths(value):
            if not os.path.exists(os.path.expanduser(os.fspath(path))):
                continue
            real = _real(path)
            if real == target:
                relation = "is the same path as"
            elif real in target.parents:
                relation = "lies inside"
            elif target in real.parents:
                relation = "contains"
            else:
                continue
            raise InputError(
                f"{flag} {_shown(out, target)} {relation} {name} {_shown(path, real)}; an "
                f"output must not overlap an input (--force would delete it): give {flag} a "
                "path outside every input (nothing was written)"
            )


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
    :func:`publish_dir`), on any exception (Ctrl-C included) it is removed. A second process
    building the same ``out`` is refused (:func:`output_lock`); hidden siblings left by a
    killed writer (kill -9, OOM) are removed.

    Examples
    --------
    >>> with atomic_dir("results/run1") as tmp:          # doctest: +SKIP
    ...     (tmp / "summary.json").write_text("{}")
    """
    out = Path(out).expanduser()
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    check_writable_parent(out)
    with output_lock(out):
        # holding the lock, any other private sibling is a leftover of a killed writer
        for stale in out.parent.glob(f".{out.name}.tmp-*"):
            _remove(stale)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
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


@contextlib.contextmanager
def output_lock(target: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``target`` (the file ``.<name>.lock`` beside it) while writing.

    ``flock`` locks die with their process (kill -9, OOM, node failure), so a rerun after a
    crash is never blocked by a stale lock; a live second writer gets one clear line. The
    directory holding ``target`` must exist.

    Raises
    ------
    InputError
        Another live process holds the lock.
    """
    import fcntl
    import socket

    target = Path(target).expanduser()
    lock = target.with_name(f".{target.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                holder = lock.read_text().strip() or "another process"
            except OSError:
                holder = "another process"
            raise InputError(
                f"{target} is being written by {holder}; wait for it to finish (two writers "
                "would mix their outputs), or write somewhere else"
            ) from None
        try:  # a finishing holder unlinks the file: lock the one that is at the path now
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
