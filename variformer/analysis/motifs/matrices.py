"""Motif matrices: JASPAR position frequency matrices (offline ``pyjaspar``) and MEME files.

:class:`MotifMatrix` is what the scan (:mod:`variformer.analysis.motifs.scan`) takes:
site counts per motif position, columns A, C, G, T, and the database it came from
(:func:`motif_database_name` names a set of them for a report). MEME files of HOCOMOCO v11
(``AHR_HUMAN.H11MO.0.B``) and v12 (``AHR.H12CORE.0.P.B``) are recognized by their motif names.
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError

__all__ = [
    "BASES",
    "MotifMatrix",
    "load_jaspar",
    "load_motifs",
    "motif_database_name",
    "read_meme",
]

BASES = "ACGT"


class MotifMatrix(NamedTuple):
    """One position frequency matrix.

    Attributes
    ----------
    matrix_id : str
        e.g. ``MA0080.7`` (JASPAR) or ``SPI1_HUMAN.H11MO.0.A`` (HOCOMOCO).
    tf : str
        Transcription-factor name, e.g. ``SPI1``.
    counts : np.ndarray, shape=(w, 4)
        Site counts per motif position, columns A, C, G, T (MEME probabilities times nsites).
    database : str
        Where the matrix comes from, e.g. ``JASPAR2024 CORE vertebrates``, ``HOCOMOCO v11`` or
        a MEME file's name; ``""`` when unknown (a hand-made matrix).
    """

    matrix_id: str
    tf: str
    counts: np.ndarray
    database: str = ""

    @property
    def width(self) -> int:
        return int(self.counts.shape[0])


def _release_name(release) -> str:
    text = str(release).strip()
    return text if text.upper().startswith("JASPAR") else f"JASPAR{text}"


@functools.lru_cache(maxsize=8)
def _jaspar(release: str, collection: str, tax_group: str) -> tuple[MotifMatrix, ...]:
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = db.fetch_motifs(collection=collection, tax_group=[tax_group])
    out = []
    label = f"{release} {collection} {tax_group}"
    for m in found:
        counts = np.array([m.counts[b] for b in BASES], dtype=np.float64).T
        out.append(MotifMatrix(str(m.matrix_id), str(m.name), counts, label))
    return tuple(out)


def load_jaspar(
    release=2024, *, collection: str = "CORE", tax_group: str = "vertebrates"
) -> tuple[MotifMatrix, ...]:
    """JASPAR matrices (the latest version of each) from the offline ``pyjaspar`` database.

    Parameters
    ----------
    release : int or str
        ``2024``, ``"2024"`` or ``"JASPAR2024"``; what pyjaspar ships (2014-2026 in pyjaspar 4).
    collection, tax_group : str
        JASPAR's; the matrices' ``database`` reads e.g. ``JASPAR2024 CORE vertebrates``.

    Raises
    ------
    InputError
        An unknown release.
    """
    from pyjaspar import jaspardb

    name = _release_name(release)
    releases = jaspardb().get_releases()
    if name not in releases:
        raise InputError(
            f"JASPAR release {release!r} is not in pyjaspar; choose one of {', '.join(releases)}"
        )
    return _jaspar(name, collection, tax_group)


_HOCOMOCO = (re.compile(r"^(.+?)_(HUMAN|MOUSE)\.H1\dMO\."), re.compile(r"^(.+?)\.H1\d[A-Z]+\."))
# HOCOMOCO's version in a motif name: H11MO (v11: AHR_HUMAN.H11MO.0.B), H12CORE (v12), ...
_HOCOMOCO_VERSION = re.compile(r"\.H(1\d)(?:MO|[A-Z]+)\.")


def _tf_from_id(matrix_id: str) -> str:
    for pattern in _HOCOMOCO:
        m = pattern.match(matrix_id)
        if m:
            return m.group(1)
    return matrix_id


def _meme_database(path: Path, ids: list[str]) -> str:
    """``HOCOMOCO v11`` / ``v12`` when every motif name (or else the file's name) says so,
    else the file's name."""
    versions = {m.group(1) if m else None for m in map(_HOCOMOCO_VERSION.search, ids)}
    if len(versions) == 1 and None not in versions:
        return f"HOCOMOCO v{versions.pop()}"
    named = re.search(r"hocomoco[_ -]?v?(1\d)", path.name, flags=re.IGNORECASE)
    return f"HOCOMOCO v{named.group(1)}" if named else path.name


def _matrix_rows(lines: list[str], i: int, width: int, where: str, motif: str):
    """The ``width`` probability rows after header line ``i`` (blank lines skipped), and the
    index of the last one."""
    rows = []
    k = i
    while len(rows) < width:
        k += 1
        if k < len(lines) and not lines[k].strip():
            continue
        try:
            row = [float(x) for x in lines[k].split()]
        except (IndexError, ValueError):
            row = []
        if len(row) != 4 or min(row) < 0 or sum(row) <= 0:
            raise InputError(
                f"{where}:{k + 1}: expected 4 non-negative probabilities (A C G T) "
                f"in row {len(rows) + 1} of motif {motif}"
            )
        rows.append(row)
    return np.array(rows, dtype=np.float64), k


def read_meme(path, *, nsites: int = 20) -> tuple[MotifMatrix, ...]:
    """Matrices of a MEME motif file (``letter-probability matrix`` blocks, DNA alphabet).

    Reads MEME's minimal format as HOCOMOCO v11 and v12 ship it (``MOTIF`` lines with one or
    two names, ``letter-probability matrix: alength= 4 w= ... nsites= ... E= ...`` headers,
    ``URL`` and background lines, which are skipped).

    Parameters
    ----------
    path : str or Path
    nsites : int
        Sites assumed when a matrix header has no ``nsites=`` (MEME's own default is 20, as is
        motifbreakR's for a matrix without a sequence count); probabilities times nsites give
        the counts the pseudocount is added to.

    Returns
    -------
    tuple of MotifMatrix
        ``tf`` is the MOTIF line's alternative name, else the TF part of a HOCOMOCO id
        (``AHR_HUMAN.H11MO.0.B`` and ``AHR.H12CORE.0.P.B`` -> ``AHR``), else the id.
        ``database`` is ``HOCOMOCO v11`` / ``HOCOMOCO v12`` when every motif name (or else
        the file's name) says so, else the file's name.

    Raises
    ------
    InputError
        Missing file, a non-DNA alphabet, a malformed matrix, or no motifs.
    """
    from core.fileio import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError(f"MEME motif file not found: {path}")
    with open_text(path) as fh:
        lines = fh.read().splitlines()
    found: list[tuple[str, str, np.ndarray]] = []
    i, name = 0, None
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[1].strip() if "=" in line else ""
            if alphabet and not alphabet.upper().startswith("ACGT"):
                raise InputError(f"{path}: alphabet {alphabet!r} is not DNA (ACGT)")
        elif line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise InputError(f"{path}:{i + 1}: MOTIF line without an id")
            name = (parts[1], parts[2] if len(parts) > 2 else _tf_from_id(parts[1]))
        elif line.startswith("letter-probability matrix"):
            if name is None:
                raise InputError(f"{path}:{i + 1}: letter-probability matrix before any MOTIF line")
            fields = dict(re.findall(r"(\w+)=\s*(\S+)", line))
            try:
                width = int(fields["w"])
                sites = float(fields.get("nsites", nsites))
            except (KeyError, ValueError):
                raise InputError(f"{path}:{i + 1}: matrix header needs w= (width)") from None
            if fields.get("alength", "4") != "4":
                raise InputError(f"{path}:{i + 1}: alength= {fields['alength']}, not 4 (DNA)")
            probs, i = _matrix_rows(lines, i, width, str(path), name[0])
            probs /= probs.sum(axis=1, keepdims=True)
            found.append((name[0], name[1], probs * max(sites, 1.0)))
            name = None
        i += 1
    if not found:
        raise InputError(f"{path} holds no MEME letter-probability matrices")
    database = _meme_database(path, [f[0] for f in found])
    return tuple(MotifMatrix(*f, database) for f in found)


def load_motifs(*, jaspar_release=2024, meme=None) -> tuple[MotifMatrix, ...]:
    """The matrices to scan: a MEME file if given, else JASPAR CORE vertebrates of a release."""
    return read_meme(meme) if meme is not None else load_jaspar(jaspar_release)


def motif_database_name(pwms) -> str:
    """The database(s) of a set of matrices, for a report: e.g. ``JASPAR2024 CORE vertebrates``
    or ``HOCOMOCO v11``; several are joined by `` + `` in order of appearance, a matrix
    without one counts as ``custom``, and no matrices give ``""``.

    Parameters
    ----------
    pwms : iterable of MotifMatrix
    """
    return " + ".join(dict.fromkeys(getattr(m, "database", "") or "custom" for m in pwms))
