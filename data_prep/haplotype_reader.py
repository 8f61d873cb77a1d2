"""Reading a haplotype-mode dataset: each person's two windows, materialized from sparse edits.

The haplotype-mode dataset (``variformer prep --haplotypes``; ``"version": 3`` and
``"mode": "haplotypes"`` in dataset.json, so a reader that knows only version 1 refuses it)
stores each person's two phased haplotypes with SNVs, MNPs and indels as sparse edits::

    genes.tsv       + span0 (0-based), span_len, contig_len, span_start: the reference span
                    around the window that indels may shift into it (data_prep.haplotype_genes)
    spans.npy       uint8 (sum of span_len,): the spans' codes, concatenated in genes.tsv order
    variants.tsv    the same columns; one row per applied (pos, REF, ALT), REF/ALT as in the VCF
    carriers_*.npy  per allele, code bits 0/1 = applied on haplotype 1/2 (after bcftools'
                    overlap rule), bits 2/3 = applied there with its first base dropped:
                    memory-mapped 2-bit rows or CSR (data_prep.haplotype_carriers; version 2
                    kept them in carriers.npz, still read)

The other files are as in :mod:`data_prep.dataset`; SNV datasets (version 1) are unchanged.
:class:`data_prep.dataset.GeneDataset` delegates here: per gene, the reference span and the
alleles each haplotype applies become TSS-anchored windows, a whole batch at once
(:func:`data_prep.haplotype_windows.fill_windows_`); ``GeneDataset.haplotypes`` returns both,
``GeneDataset.sequences`` their mean, :meth:`HaplotypeStore.one_hot` a batch's one-hot windows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.genome import N_CODE, ONE_HOT
from data_prep.haplotype_windows import GeneEdits, fill_windows_, gene_edits, haplotype_extent
from data_prep.haplotypes import DROP1, DROP2, HAP1, HAP2

__all__ = ["HaplotypeStore", "load_spans"]

_ONE_HOT_ROWS = np.ascontiguousarray(ONE_HOT).view(np.complex128).ravel()  # a row per item


def load_spans(path, genes) -> np.ndarray:
    """spans.npy memory-mapped, after checking it against genes.tsv (ValueError if not)."""
    spans = np.load(path, mmap_mode="r")
    if any(c not in genes for c in ("span0", "span_len", "span_start", "contig_len")):
        raise ValueError("genes.tsv lacks the span columns")
    if spans.ndim != 1 or len(spans) != int(genes["span_len"].sum()):
        raise ValueError(f"{spans.shape} codes, expected {int(genes['span_len'].sum())}")
    return spans


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
    carriers : data_prep.haplotype_carriers.CarrierStore or CsrCodes
        The carrier codes: ``carriers.codes(v0, nv)`` -> shape=(n_samples, nv), uint8.
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
        self._genes = lru_cache(maxsize=4)(self._gene)  # batches come gene by gene

    @classmethod
    def of(cls, ds) -> HaplotypeStore:
        """The store of an open :class:`data_prep.dataset.GeneDataset`.

        Raises
        ------
        InputError
            The dataset was prepared without ``--haplotypes``.
        """
        if not ds.haplotype_mode:
            raise InputError(
                f"{ds.path} holds averaged SNV sequences; re-run `variformer prep --haplotypes` "
                "(phased VCF) for each person's two haplotypes"
            )
        return cls(ds._genes, ds._spans_mm, ds._variants, ds._carrier_codes,
                   n_samples=len(ds.samples), seq_len=ds.seq_len)  # fmt: skip

    def _gene_edits(self, row: int) -> GeneEdits:
        g = self.genes.iloc[row]
        v0, nv = int(g["var_start"]), int(g["n_variants"])
        v = self.variants.iloc[v0 : v0 + nv]
        return gene_edits(v["pos"].to_numpy(np.int64), list(v["ref"]), list(v["alt"]))

    def _gene(self, row: int) -> _Gene:
        """A gene's edits, span + ALT codes and dense carrier codes (n_samples, V), cached."""
        g = self.genes.iloc[row]
        dense = self.carriers.codes(int(g["var_start"]), int(g["n_variants"]))
        s0, slen = int(g["span_start"]), int(g["span_len"])
        edits = self._edits(row)
        source = np.concatenate([self.spans[s0 : s0 + slen], edits.alt_codes])
        return _Gene(edits, source, dense, int(g["span0"]), slen, int(g["tss0"]))

    def _fill(self, row: int, sample_rows, out: np.ndarray, table=None, fill=N_CODE):
        """Windows of people ``sample_rows`` into ``out``, shape=(2 n, seq_len): codes, or
        ``table[code]`` items when a ``table`` (one item per code, N included) is given."""
        gene = self._genes(row)
        mine = gene.dense[np.asarray(sample_rows, dtype=np.int64)]
        applied = np.stack([(mine & HAP1) > 0, (mine & HAP2) > 0], axis=1)  # (n, 2, V)
        dropped = np.stack([(mine & DROP1) > 0, (mine & DROP2) > 0], axis=1)
        span1 = gene.span0 + gene.span_len
        tss_at, _ = haplotype_extent(
            gene.edits, applied, dropped, tss0=gene.tss0, span0=gene.span0, span1=span1
        )
        n_hap, nv = 2 * len(mine), mine.shape[1]
        return fill_windows_(
            out, gene.source if table is None else table[gene.source], gene.edits,
            applied.reshape(n_hap, nv), dropped.reshape(n_hap, nv), span0=gene.span0,
            span_len=gene.span_len, tss_at=tss_at.reshape(n_hap), fill=fill,
        )  # fmt: skip

    def carrier_codes(self, row: int) -> np.ndarray:
        """Carrier codes of gene ``row``'s alleles, shape=(n_samples, V), uint8 (cached)."""
        return self._genes(row).dense

    def codes(self, row: int, sample_rows: np.ndarray) -> np.ndarray:
        """Window codes of people ``sample_rows`` in gene ``row``, shape=(n, 2, seq_len), uint8."""
        out = np.empty((len(sample_rows), 2, self.seq_len), dtype=np.uint8)
        self._fill(row, sample_rows, out.reshape(-1, self.seq_len))
        return out

    def one_hot(self, row: int, sample_rows, *, out: np.ndarray | None = None) -> np.ndarray:
        """One-hot windows of people ``sample_rows`` in gene ``row``, float32,
        shape=(n, 2, seq_len, 4) (N = all zeros), written straight from one-hot rows (no code
        array in between). ``out``: a C-contiguous buffer of that shape, optional."""
        shape = (len(sample_rows), 2, self.seq_len, 4)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous float32 {shape}")
        rows = out.view(np.complex128).reshape(-1, self.seq_len)
        self._fill(row, sample_rows, rows, _ONE_HOT_ROWS, _ONE_HOT_ROWS[N_CODE])
        return out


class _Gene(NamedTuple):
    edits: GeneEdits
    source: np.ndarray  # uint8 (span_len + ALT bases,): the span's codes, then the ALTs'
    dense: np.ndarray  # uint8 (n_samples, V): carrier codes
    span0: int
    span_len: int
    tss0: int
