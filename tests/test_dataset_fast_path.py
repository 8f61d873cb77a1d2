"""GeneDataset's person-major fast path against the straightforward construction.

The straightforward construction is the definition of an averaged consensus one-hot: start
from the reference window's one-hot and, per variant a person carries, move half a unit of
one-hot mass per ALT haplotype from the reference base at the site to the ALT base.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_prep import open_dataset
from data_prep.dataset_writer import write_dataset
from data_prep.genome import ONE_HOT

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def _random_dataset(rng, tmp: Path, *, n_samples: int, n_genes: int, seq_len: int):
    """A random dataset written by ``write_dataset``: N in the reference, genes without
    variants, multi-allelic sites, all four carrier codes. Returns the raw inputs too."""
    samples = [f"S{i}" for i in range(n_samples)]
    reference = rng.choice(5, size=(n_genes, seq_len), p=[0.24, 0.24, 0.24, 0.24, 0.04])
    reference = reference.astype(np.uint8)
    genes, variants, carriers, var_start = [], [], [], 0
    for g in range(n_genes):
        start0 = int(rng.integers(0, 10_000))
        n_sites = int(rng.integers(0, 12)) if rng.random() > 0.2 else 0
        sites = np.sort(rng.choice(seq_len, size=n_sites, replace=False))
        rows = []
        for site in sites:
            ref_code = int(reference[g, site])
            others = [b for b in range(4) if b != ref_code]
            for alt in sorted(rng.choice(others, size=int(rng.integers(1, 3)), replace=False)):
                rows.append((int(site), int(alt), ref_code))
        nv = len(rows)
        code = rng.choice(4, size=(n_samples, nv), p=[0.5, 0.2, 0.2, 0.1]).astype(np.uint8)
        carriers.append(code)
        genes.append(
            {
                "gene": f"G{g}",
                "gene_id": f"ENSG{g:011d}.1",
                "chrom": "chr1",
                "start0": start0,
                "end0": start0 + seq_len,
                "tss0": start0 + seq_len // 2,
                "strand": "+",
                "n_variants": nv,
                "var_start": var_start,
            }
        )
        var_start += nv
        for site, alt, ref_code in rows:
            variants.append(
                {
                    "gene": f"G{g}",
                    "chrom": "chr1",
                    "pos": start0 + site + 1,
                    "id": ".",
                    "ref": "ACGTN"[ref_code],
                    "alt": "ACGT"[alt],
                    "ac": 0,
                    "af": 0.0,
                    "maf": 0.0,
                }
            )
    splits = pd.DataFrame({"sample": samples, "fold0": "train", "train_rank0": range(n_samples)})
    write_dataset(
        tmp / "ds",
        seq_len=seq_len,
        samples=samples,
        genes=pd.DataFrame(genes),
        reference=reference,
        variants=pd.DataFrame(
            variants, columns=["gene", "chrom", "pos", "id", "ref", "alt", "ac", "af", "maf"]
        ),
        carriers=carriers,
        expression=None,
        splits=splits,
        n_folds=1,
        info={},
    )
    return samples, genes, reference, pd.DataFrame(variants), carriers


def _straightforward(reference_codes, variants: pd.DataFrame, start0: int, codes) -> np.ndarray:
    """One person's averaged one-hot over the whole window, one variant at a time."""
    x = ONE_HOT[reference_codes].copy()
    for (_, v), code in zip(variants.iterrows(), codes):
        weight = 0.5 * ((int(code) & 1) + ((int(code) >> 1) & 1))
        site = int(v["pos"]) - 1 - start0
        x[site] += weight * (ONE_HOT["ACGT".index(v["alt"])] - ONE_HOT[reference_codes[site]])
    return x


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(1, 7),
    n_genes=st.integers(1, 4),
    seq_len=st.sampled_from([16, 64, 200]),
    data=st.data(),
)
def test_sequences_equal_the_straightforward_construction(seed, n_samples, n_genes, seq_len, data):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        samples, genes, reference, variants, carriers = _random_dataset(
            rng, Path(d), n_samples=n_samples, n_genes=n_genes, seq_len=seq_len
        )
        ds = open_dataset(Path(d) / "ds")
        # genes in random order (switching back and forth), people in any order with repeats
        for _ in range(3):
            g = data.draw(st.integers(0, n_genes - 1))
            people = data.draw(st.lists(st.integers(0, n_samples - 1), min_size=1, max_size=9))
            start = data.draw(st.integers(0, seq_len - 1))
            end = data.draw(st.integers(start + 1, seq_len))
            gv = variants[variants["gene"] == f"G{g}"] if len(variants) else variants
            expect = np.stack(
                [
                    _straightforward(reference[g], gv, genes[g]["start0"], carriers[g][p])
                    for p in people
                ]
            )
            names = [samples[p] for p in people]
            np.testing.assert_array_equal(ds.sequences(f"G{g}", names), expect)
            np.testing.assert_array_equal(
                ds.sequences(f"G{g}", names, start=start, end=end), expect[:, start:end]
            )
            # into a caller's buffer, also a non-contiguous one
            buf = np.full((2, len(people), end - start, 4), np.nan, np.float32)[1]
            assert ds.sequences(f"G{g}", names, start=start, end=end, out=buf) is buf
            np.testing.assert_array_equal(buf, expect[:, start:end])
            strided = np.full((len(people), end - start, 8), np.nan, np.float32)[:, :, ::2]
            ds.sequences(f"G{g}", names, start=start, end=end, out=strided)
            np.testing.assert_array_equal(strided, expect[:, start:end])
            np.testing.assert_array_equal(ds.reference(f"G{g}"), ONE_HOT[reference[g]])
            dosage = (carriers[g][people] & 1) + ((carriers[g][people] >> 1) & 1)
            np.testing.assert_array_equal(ds.dosages(f"G{g}", names), dosage)


def test_loader_workers_share_the_index_built_once(small_dataset, tmp_path, monkeypatch):
    """With DataLoader workers, the person-major index is built once in the main process
    (before the fork) and never again in a worker; the batches are the same as without."""
    import os

    import torch

    import data_prep.dataset as dsmod
    from tests.fakes import tiny_config
    from variformer.finetune import build_datamodule

    if torch.multiprocessing.get_start_method(allow_none=True) not in (None, "fork"):
        import pytest

        pytest.skip("workers are not forked here")
    log = tmp_path / "builds.txt"
    real = dsmod.person_index

    def counted(*a, **k):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(*a, **k)

    monkeypatch.setattr(dsmod, "person_index", counted)
    ds = open_dataset(small_dataset)
    batches = {}
    for workers in (0, 2):
        config = tiny_config(f"data.num_workers={workers}")
        dm = build_datamodule(
            ds if workers == 0 else small_dataset, genes=ds.genes[:2], fold=0, config=config
        )
        dm.setup("fit")
        batches[workers] = list(dm.train_dataloader())
    pids = log.read_text().split()
    assert pids == [str(os.getpid())] * 2  # once per opened dataset, never in a worker
    assert len(batches[0]) == len(batches[2])
    for a, b in zip(batches[0], batches[2]):
        for x, y in zip(a, b):
            if isinstance(x, torch.Tensor):
                torch.testing.assert_close(x, y)
