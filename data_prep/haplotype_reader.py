"""Reading a haplotype-mode dataset: each person's two windows, materialized from sparse edits.

:class:`data_prep.dataset.GeneDataset` delegates here when its dataset was prepared with
``--haplotypes`` (see :mod:`data_prep.dataset` for the files). Per gene, the stored reference
span and the alleles each haplotype applies (``carriers.npz`` codes, bits 0-3) are turned into
TSS-anchored windows by :func:`data_prep.haplotype_windows.anchored_window`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from data_prep.haplotype_windows import (
    GeneEdits,
    anchored_window,
    gene_edits,
    haplotype_extent,
)
from data_prep.haplotypes import DROP1, DROP2, HAP1, HAP2

__all__ = ["HaplotypeStore"]


class HaplotypeStore:
    """Materializes haplotype windows of one dataset.

    Parameters
    ----------
    genes : pd.DataFrame
        genes.tsv (with ``span0``, ``span_len``, ``span_start``, ``contig_len``).
    spans : np.ndarray, shape=(total span length,), uint8
        spans.npy (memory-mapped is fine).
    variants : pd.DataFrame
        variants.tsv (``pos`` 1-based, ``ref``, ``alt``).
    carriers : tuple of np.ndarray
        carriers.npz's ``(indptr, sample, code)``.
    n_samples, seq_len : int
    """

    def __init__(self, genes, spans, variants, carriers, *, n_samples: int, seq_len: int):
        self.genes = genes
        self.spans = spans
        self.variants = variants
        self.carriers = carriers
        self.n_samples = n_samples
        self.seq_len = seq_len
        self._edits = lru_cache(maxsize=64)(self._gene_edits)

    def _gene_edits(self, row: int) -> GeneEdits:
        g = self.genes.iloc[row]
        v0, nv = int(g["var_start"]), int(g["n_variants"])
        v = self.variants.iloc[v0 : v0 + nv]
        return gene_edits(v["pos"].to_numpy(np.int64), list(v["ref"]), list(v["alt"]))

    def codes(self, row: int, sample_rows: np.ndarray) -> np.ndarray:
        """Window codes of people ``sample_rows`` in gene ``row``, shape=(n, 2, seq_len), uint8."""
        g = self.genes.iloc[row]
        v0, nv = int(g["var_start"]), int(g["n_variants"])
        indptr, sample, code = self.carriers
        a, b = indptr[v0], indptr[v0 + nv]
        dense = np.zeros((self.n_samples, nv), dtype=np.uint8)
        dense[sample[a:b], np.repeat(np.arange(nv), np.diff(indptr[v0 : v0 + nv + 1]))] = code[a:b]
        s0, slen = int(g["span_start"]), int(g["span_len"])
        span = np.asarray(self.spans[s0 : s0 + slen])
        edits = self._edits(row)
        span0, tss0 = int(g["span0"]), int(g["tss0"])
        mine = dense[np.asarray(sample_rows)]
        applied = np.stack([(mine & HAP1) > 0, (mine & HAP2) > 0], axis=1)  # (n, 2, V)
        dropped = np.stack([(mine & DROP1) > 0, (mine & DROP2) > 0], axis=1)
        tss_at, _ = haplotype_extent(
            edits, applied, dropped, tss0=tss0, span0=span0, span1=span0 + len(span)
        )
        out = np.empty((len(mine), 2, self.seq_len), dtype=np.uint8)
        for k in range(len(mine)):
            for h in (0, 1):
                rows = np.flatnonzero(applied[k, h])
                anchored_window(
                    span, span0, edits, rows, dropped[k, h, rows], tss0=tss0,
                    seq_len=self.seq_len, contig_len=int(g["contig_len"]), out=out[k, h],
                    tss_at=int(tss_at[k, h]),
                )  # fmt: skip
        return out
