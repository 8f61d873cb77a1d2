"""Haplotype windows of many people at once (the batched reader behind ``ds._haplotype_codes``,
``ds.sequences`` and ``HaplotypeStore.one_hot``) equal ``bcftools consensus -H 1/-H 2`` person
by person, for batches in any order, with a person repeated, and windows off the contig ends."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.haplotype_reader import HaplotypeStore
from data_prep.prep import prep_dataset
from tests.genomes import write_fasta, write_vcf
from tests.haplotype_cohort import cohorts, oracle_window

SEQ_LEN = 128


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(cohort=cohorts(min_samples=3), seed=st.integers(0, 2**16))
def test_batches_equal_bcftools_consensus(cohort, seed):
    seq, records, samples, tss0, _ = cohort
    assume(records)  # prep refuses a VCF without records (a cohort can draw none)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
        vcf = write_vcf(tmp / "r.vcf.gz", {"chr1": len(seq)}, samples, records)
        tss = {"G0": tss0, "G1": len(seq) // 3}
        lines = ["gene_name\tgene_id\tchrom\ttss\tstrand"]
        lines += [f"{g}\tENSG{i:011d}.1\tchr1\t{t + 1}\t+" for i, (g, t) in enumerate(tss.items())]
        (tmp / "tss.tsv").write_text("\n".join(lines) + "\n")
        prep_dataset(
            vcfs=[vcf], fasta=fasta, annotation=tmp / "tss.tsv", genes=list(tss),
            seq_len=SEQ_LEN, out=tmp / "ds", n_folds=1, tune_fraction=0.34,
            test_fraction=0.34, progress=False, haplotypes=True,
        )  # fmt: skip
        ds = open_dataset(tmp / "ds")
        store = HaplotypeStore.of(ds)
        batch = [*rng.permutation(samples).tolist(), samples[int(rng.integers(len(samples)))]]
        rows = np.array([list(ds.samples).index(s) for s in batch])
        for gene, t in tss.items():
            want = np.stack([
                [encode(oracle_window(fasta, vcf, "chr1", len(seq), s, h, t, SEQ_LEN, tmp))
                 for h in (1, 2)]
                for s in batch
            ])  # fmt: skip
            np.testing.assert_array_equal(ds._haplotype_codes(gene, batch), want)
            hot = np.stack([[one_hot(w) for w in pair] for pair in want])
            got = store.one_hot(list(ds.genes).index(gene), rows)
            np.testing.assert_array_equal(got, hot)
            np.testing.assert_array_equal(ds.sequences(gene, batch), hot.mean(axis=1))
