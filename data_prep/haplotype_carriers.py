"""Haplotype-mode carrier codes on disk: 2-bit rows for common alleles, sparse for the rest.

A haplotype-mode dataset (version 3) stores, per applied allele, which haplotypes apply it
(code bits :data:`~data_prep.haplotypes.HAP1`/``HAP2``, and ``DROP1``/``DROP2`` where an
anchored indel's first base is dropped). An allele carried by many people is a dense row of 2
bits per person; a rare one (or one with a dropped base) is a CSR list of its carriers::

    carriers_row.npy     int32 (V,): the allele's row in carriers_dense.npy, -1 if sparse
    carriers_dense.npy   uint8 (D, ceil(n / 4)): bit 2 s = person s's haplotype 1 applies
                         the allele, bit 2 s + 1 = haplotype 2 (``np.packbits``, little order)
    carriers_indptr.npy  int64 (V + 1,): CSR over the sparse alleles (none for a dense one)
    carriers_sample.npy  int32 (nnz,): carrier rows, ascending within an allele
    carriers_code.npy    uint8 (nnz,): their codes

An allele is dense when that takes fewer bytes (5 per carrier in CSR, ``ceil(n / 4)`` per
row) and no carrier drops a base. Nothing is compressed: the files are memory-mapped, so
opening a dataset reads none of them, and a gene's codes cost one unpack of its rows.
(Version 2 kept the same codes as one zlib-compressed CSR, ``carriers.npz``, decompressed
whole on opening; :class:`CsrCodes` still reads it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_prep.dataset_writer import CarrierCSR, carrier_csr

__all__ = ["FILES", "CarrierStore", "CsrCodes", "PackedCarriers", "pack_carriers", "write_carriers"]

FILES = ("carriers_row.npy", "carriers_dense.npy", "carriers_indptr.npy",
         "carriers_sample.npy", "carriers_code.npy")  # fmt: skip
_CSR_BYTES = 5  # an int32 sample and a uint8 code per carrier


class PackedCarriers(NamedTuple):
    """One gene's carrier codes as they are stored (V alleles, n people).

    Attributes
    ----------
    dense : np.ndarray, shape=(V,), bool
        Whether each allele is a dense row.
    rows : np.ndarray, shape=(D, ceil(n / 4)), uint8
        The dense alleles' packed haplotype bits.
    sparse : CarrierCSR
        The sparse alleles' carriers (``counts`` 0 for a dense allele).
    """

    dense: np.ndarray
    rows: np.ndarray
    sparse: CarrierCSR


def pack_carriers(codes) -> PackedCarriers:
    """A gene's dense codes, shape=(n, V), uint8, in the stored form (a PackedCarriers passes)."""
    if isinstance(codes, PackedCarriers):
        return codes
    codes = np.asarray(codes, dtype=np.uint8)
    n, _ = codes.shape
    carriers = np.count_nonzero(codes, axis=0)
    dense = (codes <= 3).all(axis=0) & (_CSR_BYTES * carriers >= _row_bytes(n))
    bits = codes[:, dense].T  # (D, n)
    pairs = np.stack([bits & 1, bits >> 1], axis=-1).reshape(len(bits), 2 * n)
    rows = np.packbits(pairs, axis=1, bitorder="little")
    few = carrier_csr(codes[:, ~dense])
    counts = np.zeros(len(dense), np.int64)
    counts[~dense] = few.counts
    return PackedCarriers(dense, rows, few._replace(counts=counts))


def write_carriers(directory: Path, genes: list[PackedCarriers], n_samples: int) -> None:
    """The five ``carriers_*.npy`` files for ``genes`` (in order), streamed gene by gene."""
    dense = np.concatenate([g.dense for g in genes]) if genes else np.zeros(0, bool)
    row = np.full(len(dense), -1, np.int32)
    row[dense] = np.arange(int(dense.sum()), dtype=np.int32)
    np.save(directory / FILES[0], row)
    _stream(directory / FILES[1], np.uint8, (int(dense.sum()), _row_bytes(n_samples)),
            (g.rows for g in genes))  # fmt: skip
    counts = [g.sparse.counts for g in genes]
    indptr = np.zeros(len(dense) + 1, np.int64)
    np.cumsum(np.concatenate(counts) if counts else [], out=indptr[1:])
    np.save(directory / FILES[2], indptr)
    nnz = int(indptr[-1])
    _stream(directory / FILES[3], np.int32, (nnz,), (g.sparse.sample for g in genes))
    _stream(directory / FILES[4], np.uint8, (nnz,), (g.sparse.code for g in genes))


def _row_bytes(n: int) -> int:
    return (2 * n + 7) // 8


def _stream(path: Path, dtype, shape: tuple, chunks) -> None:
    """An .npy of ``shape`` written chunk by chunk (the whole array is never in memory)."""
    with open(path, "wb") as fh:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                  "fortran_order": False, "shape": shape}  # fmt: skip
        np.lib.format.write_array_header_2_0(fh, header)
        for chunk in chunks:
            fh.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


class CarrierStore:
    """The memory-mapped carriers of a version-3 haplotype dataset.

    Parameters
    ----------
    directory : Path
    n_variants, n_samples : int
        What genes.tsv and dataset.json say (checked against the files: ValueError).
    """

    def __init__(self, directory: Path, *, n_variants: int, n_samples: int):
        self.n_samples = n_samples
        row, dense, indptr, sample, code = (
            np.load(Path(directory) / name, mmap_mode="r") for name in FILES
        )
        n_dense = int((row >= 0).sum()) if len(row) else 0
        if row.shape != (n_variants,) or indptr.shape != (n_variants + 1,):
            raise ValueError(f"{len(row)} alleles, expected {n_variants}")
        if dense.shape != (n_dense, _row_bytes(n_samples)):
            raise ValueError(f"dense rows of shape {dense.shape}, expected {n_dense} rows")
        if sample.shape != code.shape or int(indptr[-1]) != len(sample):
            raise ValueError("carrier arrays of different lengths")
        self.row, self.dense, self.indptr, self.sample, self.code = row, dense, indptr, sample, code

    def codes(self, v0: int, nv: int) -> np.ndarray:
        """Codes of alleles ``[v0, v0 + nv)``, shape=(n_samples, nv), uint8."""
        n = self.n_samples
        out = _csr_codes(self.indptr, self.sample, self.code, v0, nv, n)
        row = np.asarray(self.row[v0 : v0 + nv])
        cols = np.flatnonzero(row >= 0)
        if len(cols):
            packed = self.dense[row[cols[0]] : row[cols[-1]] + 1]  # dense rows are in order
            bits = np.unpackbits(packed, axis=1, count=2 * n, bitorder="little")
            bits = bits.reshape(len(cols), n, 2)
            out[:, cols] = (bits[:, :, 0] | (bits[:, :, 1] << 1)).T
        return out


class CsrCodes:
    """The codes of a ``carriers.npz`` CSR (SNV datasets; version-2 haplotype datasets)."""

    def __init__(self, carriers: tuple, *, n_samples: int):
        self.indptr, self.sample, self.code = carriers
        self.n_samples = n_samples

    def codes(self, v0: int, nv: int) -> np.ndarray:
        """Codes of alleles ``[v0, v0 + nv)``, shape=(n_samples, nv), uint8."""
        return _csr_codes(self.indptr, self.sample, self.code, v0, nv, self.n_samples)


def _csr_codes(indptr, sample, code, v0: int, nv: int, n: int) -> np.ndarray:
    a, b = int(indptr[v0]), int(indptr[v0 + nv])
    dense = np.zeros((n, nv), dtype=np.uint8)
    dense[sample[a:b], np.repeat(np.arange(nv), np.diff(indptr[v0 : v0 + nv + 1]))] = code[a:b]
    return dense
