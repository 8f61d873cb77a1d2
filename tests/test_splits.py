"""Cross-validation splits: properties over random cohort sizes (Hypothesis)."""

import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep import InputError, open_dataset
from data_prep.dataset_writer import write_dataset
from data_prep.splits import make_splits


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(30, 800),
    n_folds=st.integers(1, 5),
    seed=st.integers(0, 10**6),
    tune=st.sampled_from([0.05, 0.1, 0.2]),
    test=st.sampled_from([0.05, 0.1, 0.2]),
)
def test_splits_partition_disjoint_and_nested(n, n_folds, seed, tune, test):
    if n_folds * test > 1:
        return
    samples = [f"P{i}" for i in range(n)]
    t = make_splits(samples, n_folds=n_folds, tune_fraction=tune, test_fraction=test, seed=seed)
    tests = []
    for k in range(n_folds):
        lab = t[f"fold{k}"]
        assert set(lab) <= {"train", "tune", "test"}
        assert (lab == "test").sum() == min(round(n * test), n // n_folds)
        assert (lab == "tune").sum() == round(n * tune)
        tests.append(set(t.loc[lab == "test", "sample"]))
        ranks = t.loc[lab == "train", f"train_rank{k}"]
        assert sorted(ranks) == list(range(len(ranks)))  # a permutation of the train people
        assert (t.loc[lab != "train", f"train_rank{k}"] == -1).all()
    for a in range(n_folds):
        for b in range(a + 1, n_folds):
            assert not tests[a] & tests[b]
    again = make_splits(samples, n_folds=n_folds, tune_fraction=tune, test_fraction=test, seed=seed)
    assert again.equals(t)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(20, 300),
    n_test=st.integers(1, 15),
    n_folds=st.integers(1, 4),
    seed=st.integers(0, 99),
)
def test_external_test_cohort_splits(n, n_test, n_folds, seed):
    samples = [f"P{i}" for i in range(n)]
    ext = samples[-n_test:]
    if round((n - n_test) * 0.1) < 1:  # no tune person would be left
        with pytest.raises(InputError, match="list fewer test samples"):
            make_splits(samples, n_folds=n_folds, test_samples=ext, seed=seed)
        return
    t = make_splits(samples, n_folds=n_folds, test_samples=ext, seed=seed)
    for k in range(n_folds):
        assert set(t.loc[t[f"fold{k}"] == "test", "sample"]) == set(ext)
        assert (t[f"fold{k}"] == "tune").sum() == round((n - n_test) * 0.1)


def _dataset_with_splits(tmp: Path, samples: list[str], splits: pd.DataFrame, n_folds: int):
    """A one-gene dataset (no variants) holding ``splits``, opened through the public API."""
    genes = pd.DataFrame(
        [dict(gene="G", gene_id="ENSG1", chrom="chr1", start0=0, end0=128, tss0=64,
              strand="+", n_variants=0, var_start=0)]
    )  # fmt: skip
    variants = pd.DataFrame(columns=["gene", "chrom", "pos", "id", "ref", "alt", "ac", "af", "maf"])
    write_dataset(
        tmp / "ds", seq_len=128, samples=samples, genes=genes,
        reference=np.zeros((1, 128), np.uint8), variants=variants,
        carriers=[np.zeros((len(samples), 0), np.uint8)], expression=None, splits=splits,
        n_folds=n_folds, info={},
    )  # fmt: skip
    return open_dataset(tmp / "ds")


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(30, 400),
    n_folds=st.integers(1, 4),
    seed=st.integers(0, 10**6),
    fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=5),
)
def test_downsampling_through_the_dataset_is_nested_and_random(n, n_folds, seed, fractions):
    """GeneDataset.split(k, train_fraction=f): ceil(f * n_train) train people, each smaller
    fraction inside every larger one, tune/test untouched, and not simply the first people."""
    samples = [f"P{i}" for i in range(n)]
    t = make_splits(samples, n_folds=n_folds, seed=seed)
    with tempfile.TemporaryDirectory() as d:
        ds = _dataset_with_splits(Path(d), samples, t, n_folds)
        for k in range(n_folds):
            full = ds.split(k)
            picked = {}
            for f in sorted(fractions):
                sp = ds.split(k, train_fraction=f)
                assert len(sp["train"]) == math.ceil(f * len(full["train"]) - 1e-9)
                assert set(sp["train"]) <= set(full["train"])
                assert sp["tune"] == full["tune"] and sp["test"] == full["test"]
                picked[f] = set(sp["train"])
            sizes = sorted(picked, key=lambda f: len(picked[f]))
            for small, large in itertools.pairwise(sizes):
                assert picked[small] <= picked[large]
        # the downsampling order is random, not the cohort's order (n_train >= 20 here)
        train = set(ds.split(0)["train"])
        half = ds.split(0, train_fraction=0.5)["train"]
        assert half != [s for s in samples if s in train][: len(half)]


def test_external_test_cohort_of_everyone_is_refused():
    samples = [f"P{i}" for i in range(20)]
    with pytest.raises(InputError, match="--test-samples lists 20 of the 20 people"):
        make_splits(samples, test_samples=samples)
    with pytest.raises(InputError, match="leaving 1 for train and tune"):
        make_splits(samples, test_samples=samples[1:])
