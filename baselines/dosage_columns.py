"""Which alleles a linear baseline's dosage columns are, and their keys.

On an SNV dataset the columns are its variants. A haplotype-mode dataset (``prep
--haplotypes``) lists every applied allele of a span around the window; by default a linear
model sees the SNVs of the reference window there (the very columns an SNV dataset of the same
VCF has), with ``--indels`` every allele overlapping the window (:func:`dosage_columns`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from data_prep.dataset import GeneDataset

__all__ = ["dosage_column_mask", "dosage_columns", "variant_keys"]


def variant_keys(variants: pd.DataFrame) -> list[str]:
    """``chrom:pos:ref:alt`` keys (``pos`` 1-based) for the rows of ``ds.variants(gene)``."""
    return [
        f"{c}:{int(p)}:{r}:{a}"
        for c, p, r, a in zip(variants["chrom"], variants["pos"], variants["ref"], variants["alt"])
    ]


def dosage_column_mask(variants: pd.DataFrame, window, *, indels: bool = False) -> np.ndarray:
    """Which rows of a haplotype dataset's ``ds.variants(gene)`` are a linear model's columns.

    A haplotype dataset lists every applied allele of a span around the window (wide enough
    for every haplotype's shifted window); the columns are the alleles whose REF bases
    overlap the reference window ``[window.start0, window.end0)`` (0-based; ``pos`` is
    1-based), and of those only the SNVs (REF and ALT one base each) unless ``indels``. So
    by default the columns are exactly an SNV dataset's variants of the same VCF and window.

    Returns
    -------
    np.ndarray, shape=(n_variants,), bool
    """
    pos0 = variants["pos"].to_numpy(np.int64) - 1
    ref_len = variants["ref"].str.len().to_numpy(np.int64)
    keep = (pos0 < window.end0) & (pos0 + ref_len > window.start0)
    if not indels:
        keep &= (ref_len == 1) & (variants["alt"].str.len().to_numpy() == 1)
    return keep


class _Columns:
    """A haplotype dataset seen through a linear model's columns
    (:func:`dosage_column_mask`): ``variants`` and ``dosages`` keep those alleles only;
    everything else is the dataset's."""

    def __init__(self, ds, indels: bool):
        self._ds, self._indels, self._masks = ds, indels, {}

    def __getattr__(self, name):
        return getattr(self._ds, name)

    def _mask(self, gene: str) -> np.ndarray:
        if gene not in self._masks:
            v, w = self._ds.variants(gene), self._ds.window(gene)
            self._masks[gene] = dosage_column_mask(v, w, indels=self._indels)
        return self._masks[gene]

    def variants(self, gene: str) -> pd.DataFrame:
        return self._ds.variants(gene)[self._mask(gene)].reset_index(drop=True)

    def dosages(self, gene: str, samples=None) -> np.ndarray:
        return self._ds.dosages(gene, samples)[:, self._mask(gene)]


def dosage_columns(ds: GeneDataset, *, indels: bool = False) -> GeneDataset:
    """The dataset whose ``variants`` / ``dosages`` are a linear model's columns.

    Parameters
    ----------
    ds : GeneDataset
    indels : bool
        On a haplotype-mode dataset (``prep --haplotypes``): False (default) keeps the SNVs
        of the reference window, the very columns an SNV dataset of the same VCF has; True
        keeps every allele (SNVs, MNPs, indels) overlapping the window
        (:func:`dosage_column_mask`). An SNV dataset's columns are its variants either way
        (``run_baselines`` refuses ``indels`` there).

    Returns
    -------
    GeneDataset
        ``ds`` itself (an SNV dataset, or already such a view), or a view of it.
    """
    if not getattr(ds, "haplotype_mode", False) or isinstance(ds, _Columns):
        return ds
    return _Columns(ds, indels)
