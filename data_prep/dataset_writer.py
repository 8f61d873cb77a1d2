"""Writing a gene dataset: :func:`write_dataset` and the sparse carriers it stores.

The layout is described in :mod:`data_prep.dataset`, which reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from data_prep.dataset import FORMAT, VERSION
from data_prep.haplotype_dataset import HAPLOTYPE_MODE, HAPLOTYPE_VERSION

__all__ = ["CarrierCSR", "carrier_csr", "write_dataset"]


class CarrierCSR(NamedTuple):
    """One gene's carriers, variant-major and sparse (what ``carriers.npz`` stores)."""

    counts: np.ndarray  # shape=(V,), int64: carriers per variant
    sample: np.ndarray  # shape=(nnz,), int32: carrier rows, ascending within a variant
    code: np.ndarray  # shape=(nnz,), uint8: bit 0 haplotype 1 carries ALT, bit 1 haplotype 2


def carrier_csr(carriers) -> CarrierCSR:
    """A dense (n_samples, V) uint8 carrier matrix as :class:`CarrierCSR` (a CSR passes through).

    Prep converts each gene as soon as it is read, so memory holds the sparse carriers of the
    genes done so far, not their dense matrices.
    """
    if isinstance(carriers, CarrierCSR):
        return carriers
    c = np.asarray(carriers)
    v, s = np.nonzero(c.T)  # row-major over (variant, sample): samples ascend per variant
    return CarrierCSR(
        np.bincount(v, minlength=c.shape[1]).astype(np.int64),
        s.astype(np.int32),
        c.T[v, s].astype(np.uint8),
    )


def _write_carriers(path: Path, genes: list[CarrierCSR]) -> None:
    """``carriers.npz`` (indptr, sample, code) streamed gene by gene, zlib level 1.

    The same arrays ``np.savez_compressed`` would write (``np.load`` reads them), without ever
    holding the concatenated ``sample``/``code`` arrays in memory.
    """
    import zipfile

    counts = np.concatenate([g.counts for g in genes]) if genes else np.zeros(0, np.int64)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("indptr.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, indptr, allow_pickle=False)
        for name, dtype in (("sample", np.int32), ("code", np.uint8)):
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                          "fortran_order": False, "shape": (nnz,)}  # fmt: skip
                np.lib.format.write_array_header_2_0(fh, header)
                for g in genes:
                    fh.write(np.ascontiguousarray(getattr(g, name), dtype=dtype).tobytes())


def write_dataset(
    tmp_dir: Path,
    *,
    seq_len: int,
    samples: list[str],
    genes: pd.DataFrame,
    reference: np.ndarray,
    variants: pd.DataFrame,
    carriers: list[np.ndarray],
    expression: pd.DataFrame | None,
    splits: pd.DataFrame,
    n_folds: int,
    info: dict,
    spans: list[np.ndarray] | None = None,
) -> None:
    """Write every dataset file into ``tmp_dir``; ``dataset.json`` goes last.

    ``tmp_dir`` is a private directory (:func:`core.fileio.atomic_dir`) renamed into
    place once complete, so a dataset with a ``dataset.json`` is always whole.

    Parameters
    ----------
    carriers : list of np.ndarray (each shape=(n_samples, V_gene), uint8) or CarrierCSR
        Per gene, in ``genes`` order; concatenated along variants into the CSR file (haplotype
        mode: the ``carriers_*.npy`` of :mod:`data_prep.haplotype_carriers`, each gene dense
        or already a :class:`~data_prep.haplotype_carriers.PackedCarriers`).
    spans : list of np.ndarray (each shape=(span_len,), uint8), optional
        Haplotype mode: per gene, the reference span codes (``spans.npy``); the dataset is then
        written as version 3, mode ``haplotypes`` (see :mod:`data_prep.haplotype_dataset`).
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    genes.to_csv(tmp_dir / "genes.tsv", sep="\t", index=False)
    np.save(tmp_dir / "reference.npy", reference)
    variants.to_csv(tmp_dir / "variants.tsv", sep="\t", index=False)
    if spans is None:
        _write_carriers(tmp_dir / "carriers.npz", [carrier_csr(c) for c in carriers])
    else:
        from data_prep.haplotype_carriers import pack_carriers, write_carriers

        write_carriers(tmp_dir, [pack_carriers(c) for c in carriers], len(samples))
    if expression is not None:
        expression.to_csv(tmp_dir / "expression.tsv", sep="\t", float_format="%.8g")
    splits.to_csv(tmp_dir / "splits.tsv", sep="\t", index=False)
    mode = {}
    if spans is not None:
        np.save(tmp_dir / "spans.npy", np.concatenate(spans) if spans else np.zeros(0, np.uint8))
        mode = {"mode": HAPLOTYPE_MODE}
    meta = {
        "format": FORMAT,
        "version": VERSION if spans is None else HAPLOTYPE_VERSION,
        **mode,
        "seq_len": seq_len,
        "n_folds": n_folds,
        "samples": samples,
        **info,
    }
    (tmp_dir / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
