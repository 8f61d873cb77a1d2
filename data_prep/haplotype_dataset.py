"""The haplotype-mode half of :class:`data_prep.dataset.GeneDataset` (``prep --haplotypes``).

A haplotype-mode dataset adds ``spans.npy`` and span columns in genes.tsv, and keeps its
carrier codes per haplotype: memory-mapped ``carriers_*.npy`` from version 3 on
(:mod:`data_prep.haplotype_carriers`), one zlib-compressed ``carriers.npz`` in version 2
(still read). Windows are materialized by :class:`data_prep.haplotype_reader.HaplotypeStore`.
"""

from __future__ import annotations

import numpy as np

from core.errors import InputError
from data_prep.genome import ONE_HOT
from data_prep.haplotype_reader import _ONE_HOT_ROWS

__all__ = ["HAPLOTYPE_MODE", "HAPLOTYPE_VERSION", "HAPLOTYPE_VERSIONS", "HaplotypeMethods"]

HAPLOTYPE_MODE = "haplotypes"
HAPLOTYPE_VERSION = 3  # version 1 plus spans.npy and the carrier codes of carriers_*.npy
# version 2: the same codes in carriers.npz (zlib), decompressed on opening; still read
HAPLOTYPE_VERSIONS = (2, HAPLOTYPE_VERSION)


class HaplotypeMethods:
    """Methods :class:`data_prep.dataset.GeneDataset` gains for haplotype-mode datasets."""

    @property
    def _carrier_files(self) -> list[str]:
        """The files holding the carrier codes (by dataset.json's mode and version)."""
        if self.haplotype_mode and self.meta.get("version") == HAPLOTYPE_VERSION:
            from data_prep.haplotype_carriers import FILES

            return list(FILES)
        return ["carriers.npz"]

    def _check_carrier_files(self) -> None:
        """Check the carrier files on opening (InputError naming a missing or damaged one)."""
        files = self._carrier_files
        if files == ["carriers.npz"]:
            self._checked(self._check_carriers, "carriers.npz")  # decompressed here
            return
        for name in files:  # memory-mapped: opening reads only their headers
            self._checked(lambda name=name: np.load(self.path / name, mmap_mode="r"), name)
        self._checked(self._check_carrier_store, files[0])

    def _check_spans(self) -> None:
        from data_prep.haplotype_reader import load_spans

        self._spans_mm = load_spans(self.path / "spans.npy", self._genes)

    def _check_carrier_store(self) -> None:
        from data_prep.haplotype_carriers import CarrierStore

        self._codes_store = CarrierStore(
            self.path, n_variants=int(self._genes["n_variants"].sum()), n_samples=len(self.samples)
        )

    @property
    def _carrier_codes(self):
        """Per-gene carrier codes: ``.codes(v0, nv)`` -> (n_samples, nv) uint8."""
        if not hasattr(self, "_codes_store"):
            from data_prep.haplotype_carriers import CsrCodes

            self._codes_store = CsrCodes(self._carriers, n_samples=len(self.samples))
        return self._codes_store

    def haplotypes(self, gene: str, sample: str) -> np.ndarray:
        """A person's two haplotype windows (SNVs, MNPs, indels), float32 one-hot,
        shape=(2, seq_len, 4): haplotype 1 (first GT allele), haplotype 2; TSS at
        ``seq_len // 2`` (anchoring: :mod:`data_prep.haplotype_windows`).

        Raises
        ------
        InputError
            The dataset was prepared without ``--haplotypes``.
        """
        return ONE_HOT[self._haplotype_codes(gene, [sample])[0]]

    def haplotype_sequences(
        self, gene: str, samples, *, start: int = 0, end: int | None = None, out=None
    ) -> np.ndarray:
        """Several people's two haplotype windows, float32 one-hot, shape=(n, 2, end - start, 4).

        The batched :meth:`haplotypes` (haplotype-mode training and prediction). ``start``,
        ``end`` and ``out`` are as for :meth:`sequences` (0-based window positions; a centre
        crop keeps the TSS at ``(end - start) // 2``); ``out`` has shape (n, 2, end - start, 4).

        Raises
        ------
        InputError
            The dataset was prepared without ``--haplotypes``, or the positions lie outside
            the window.
        """
        end = self.seq_len if end is None else end
        if not 0 <= start < end <= self.seq_len:
            raise InputError(f"positions [{start}, {end}) are outside the {self.seq_len}-bp window")
        if start == 0 and end == self.seq_len and (out is None or out.flags.c_contiguous):
            rows = self._sample_rows(samples)  # whole windows: one-hot rows written directly
            return self._haplotype_store.one_hot(self._row(gene), rows, out=out)
        codes = self._haplotype_codes(gene, samples)[:, :, start:end]
        if out is None:
            out = np.empty((*codes.shape, 4), dtype=np.float32)
        if out.flags.c_contiguous:  # one 16-byte gather per base, straight into the buffer
            np.take(
                _ONE_HOT_ROWS, codes, out=out.view(np.complex128).reshape(codes.shape), mode="clip"
            )
        else:
            out[...] = ONE_HOT[codes]
        return out

    @property
    def _haplotype_store(self):
        """The :class:`~data_prep.haplotype_reader.HaplotypeStore`, built on first use."""
        if not hasattr(self, "_hap_store"):
            from data_prep.haplotype_reader import HaplotypeStore

            self._hap_store = HaplotypeStore.of(self)  # InputError for an SNV dataset
        return self._hap_store

    def _haplotype_codes(self, gene: str, samples) -> np.ndarray:
        """Codes of people's haplotype windows, shape=(n, 2, seq_len), uint8."""
        return self._haplotype_store.codes(self._row(gene), self._sample_rows(samples))
