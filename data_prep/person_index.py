"""The person-major carrier index behind :meth:`data_prep.dataset.GeneDataset.sequences`.

``carriers.npz`` is variant-major (who carries each SNV allele); a batch of people needs the
opposite, so the dataset transposes it once when first used (:func:`person_index`) and adds
each person's alleles to the reference window (:meth:`PersonIndex.add_alleles_`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from data_prep.genome import ONE_HOT, encode

__all__ = ["PersonIndex", "person_index"]


def _codes(bases: pd.Series) -> np.ndarray:
    return encode("".join(bases)) if len(bases) else np.zeros(0, np.uint8)


# allele weight of a carrier code: bit 0 = haplotype 1 carries ALT, bit 1 = haplotype 2
_WEIGHT = np.array([0.0, 0.5, 0.5, 1.0], dtype=np.float32)


class PersonIndex(NamedTuple):
    """The carriers turned person-major, so a batch costs O(its people's alleles), not O(gene).

    ``variant[lo[s, g]:hi[s, g]]`` are the (global) variants that person ``s`` carries in
    gene ``g``, with ``code`` alongside; ``site`` is each variant's 0-based window offset and
    ``delta`` its one-hot change per unit of allele weight (ALT one-hot minus the reference
    window's one-hot at the site).
    """

    lo: np.ndarray  # int64 (n_samples, n_genes)
    hi: np.ndarray  # int64 (n_samples, n_genes)
    variant: np.ndarray  # int32 (nnz,), person-major, ascending within a person
    code: np.ndarray  # uint8 (nnz,)
    site: np.ndarray  # int64 (n_variants_total,)
    delta: np.ndarray  # float32 (n_variants_total, 4)

    def add_alleles_(self, out: np.ndarray, row: int, idx: np.ndarray, *, start: int) -> None:
        """Add the allele weights of people ``idx`` in gene ``row`` to ``out`` (in place).

        ``out`` : float32, C-contiguous, shape=(len(idx), L, 4), holding the reference of
        window positions ``[start, start + L)``.
        """
        lo, hi = self.lo[idx, row], self.hi[idx, row]
        lens = hi - lo
        total = int(lens.sum())
        if not total:
            return
        # positions of every person's entries, concatenated (no Python loop over people)
        first = np.cumsum(lens) - lens
        pos = np.repeat(lo - first, lens) + np.arange(total)
        v = self.variant[pos]
        length = out.shape[1]
        offset = self.site[v] - start
        at = np.repeat(np.arange(len(idx), dtype=np.int64) * length, lens) + offset
        inside = (offset >= 0) & (offset < length)
        if not inside.all():  # a crop: drop the alleles outside it
            v, at, pos = v[inside], at[inside], pos[inside]
        vals = self.delta[v] * _WEIGHT[self.code[pos]][:, None]
        flat = (at[:, None] * 4 + np.arange(4)).ravel()
        # add.at, not +=: a person can carry two ALTs of one multi-allelic site
        np.add.at(out.reshape(-1), flat, vals.ravel())


def person_index(
    carriers, *, var_start, n_variants, start0, pos1, alt, reference, n_samples
) -> PersonIndex:
    """Transpose the variant-major carrier CSR to person-major (O(nnz), once per open dataset)."""
    from scipy.sparse import csr_matrix

    indptr, sample, code = carriers
    n_var = len(indptr) - 1
    by_person = csr_matrix((code, sample, indptr), shape=(n_var, n_samples)).tocsc()
    variant = by_person.indices.astype(np.int32, copy=False)
    ptr = by_person.indptr
    n_genes = len(var_start)
    lo = np.empty((n_samples, n_genes), dtype=np.int64)
    hi = np.empty((n_samples, n_genes), dtype=np.int64)
    for s in range(n_samples):  # variants ascend within a person: gene blocks are ranges
        mine = variant[ptr[s] : ptr[s + 1]]
        lo[s] = ptr[s] + np.searchsorted(mine, var_start)
        hi[s] = ptr[s] + np.searchsorted(mine, var_start + n_variants)
    order = np.argsort(var_start, kind="stable")
    gene_of = np.repeat(order, n_variants[order])
    site = pos1 - 1 - start0[gene_of]
    ref_at_site = np.asarray(reference[gene_of, site]) if n_var else np.zeros(0, np.uint8)
    delta = ONE_HOT[_codes(alt)] - ONE_HOT[ref_at_site]
    return PersonIndex(lo, hi, variant, by_person.data.astype(np.uint8, copy=False), site, delta)
