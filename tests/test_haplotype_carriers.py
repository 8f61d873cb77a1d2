"""Haplotype carrier codes on disk (:mod:`data_prep.haplotype_carriers`, dataset version 3).

Random code matrices (common and rare alleles, dropped first bases, genes without alleles) are
written and read back gene by gene: every code must come back. A prepared haplotype dataset
turned back into the version-2 layout (one zlib CSR, ``carriers.npz``, built here with numpy)
must give the same haplotypes and dosages; a damaged carrier file is one line naming it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from data_prep import open_dataset
from data_prep.haplotype_carriers import FILES, CarrierStore, pack_carriers, write_carriers
from data_prep.prep import prep_dataset
from tests.haplotype_cohort import edge_cohort


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    n=st.integers(1, 70),
    sizes=st.lists(st.integers(0, 9), min_size=0, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_codes_come_back_gene_by_gene(tmp_path_factory, n, sizes, seed):
    rng = np.random.default_rng(seed)
    genes = []
    for v in sizes:
        # per allele a carrier frequency from rare to common; now and then a dropped base
        freq = rng.choice([0.0, 0.01, 0.05, 0.3, 0.9], size=v)
        codes = (rng.random((n, v, 2)) < freq[None, :, None]).astype(np.uint8)
        codes = codes[:, :, 0] | (codes[:, :, 1] << 1)
        drop = rng.random((n, v)) < 0.03
        codes[drop & (codes > 0)] |= np.uint8(4)
        genes.append(codes)
    tmp = tmp_path_factory.mktemp("c")
    write_carriers(tmp, [pack_carriers(c) for c in genes], n)
    store = CarrierStore(tmp, n_variants=sum(sizes), n_samples=n)
    v0 = 0
    for codes in genes:
        np.testing.assert_array_equal(store.codes(v0, codes.shape[1]), codes)
        v0 += codes.shape[1]
    # both forms are used, and each allele is where it takes fewer bytes
    row = np.load(tmp / "carriers_row.npy")
    everything = np.concatenate(genes, axis=1) if genes else np.zeros((n, 0), np.uint8)
    carriers = np.count_nonzero(everything, axis=0)
    dense = (everything <= 3).all(axis=0) & (5 * carriers >= (2 * n + 7) // 8)
    np.testing.assert_array_equal(row >= 0, dense)


def _prep(tmp, vcf, fasta):
    (tmp / "tss.tsv").write_text(
        "gene_name\tgene_id\tchrom\ttss\tstrand\nMID\tENSG00000000001.1\tchr1\t301\t+\n"
        "EDGE\tENSG00000000002.1\tchr1\t263\t-\n"
    )
    prep_dataset(
        vcfs=[vcf], fasta=fasta, annotation=tmp / "tss.tsv", genes=["MID", "EDGE"], seq_len=128,
        out=tmp / "ds", n_folds=1, tune_fraction=0.3, test_fraction=0.3, progress=False,
        haplotypes=True,
    )  # fmt: skip
    return tmp / "ds"


def test_version_2_datasets_still_read(tmp_path):
    fasta, vcf, samples = edge_cohort(tmp_path, np.random.default_rng(6))
    new = _prep(tmp_path, vcf, fasta)
    assert json.loads((new / "dataset.json").read_text())["version"] == 3
    assert not (new / "carriers.npz").exists()
    # the version-2 layout, built with numpy: carriers.npz = CSR over all alleles, zlib
    old = tmp_path / "old"
    shutil.copytree(new, old)
    row = np.load(new / "carriers_row.npy")
    dense = np.load(new / "carriers_dense.npy")
    indptr = np.load(new / "carriers_indptr.npy")
    sample = np.load(new / "carriers_sample.npy")
    code = np.load(new / "carriers_code.npy")
    n = len(samples)
    full = np.zeros((n, len(row)), np.uint8)
    for v in range(len(row)):
        full[sample[indptr[v] : indptr[v + 1]], v] = code[indptr[v] : indptr[v + 1]]
        if row[v] >= 0:
            bits = np.unpackbits(dense[row[v]], bitorder="little")[: 2 * n].reshape(n, 2)
            full[:, v] = bits[:, 0] | (bits[:, 1] << 1)
    v_idx, s_idx = np.nonzero(full.T)
    np.savez_compressed(
        old / "carriers.npz",
        indptr=np.concatenate([[0], np.cumsum(np.bincount(v_idx, minlength=len(row)))]),
        sample=s_idx.astype(np.int32),
        code=full.T[v_idx, s_idx],
    )
    for name in FILES:
        (old / name).unlink()
    meta = json.loads((old / "dataset.json").read_text())
    (old / "dataset.json").write_text(json.dumps({**meta, "version": 2}))
    a, b = open_dataset(new), open_dataset(old)
    for gene in a.genes:
        np.testing.assert_array_equal(a.dosages(gene), b.dosages(gene))
        for s in samples:
            np.testing.assert_array_equal(a.haplotypes(gene, s), b.haplotypes(gene, s))
    assert a.fingerprints["samples"] == b.fingerprints["samples"]
    # a damaged carrier file: one line naming it
    (new / "carriers_dense.npy").write_bytes((new / "carriers_dense.npy").read_bytes()[:-3])
    with pytest.raises(InputError, match=r"carriers_dense\.npy is truncated or corrupt"):
        open_dataset(new)
    (new / "carriers_row.npy").unlink()
    with pytest.raises(InputError, match=r"lacks carriers_row\.npy"):
        open_dataset(new)
