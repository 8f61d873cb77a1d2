"""Cross-validation splits: properties over random cohort sizes (Hypothesis)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

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
        # nested downsampling: the first ceil(f * n_train) by rank
        order = t.loc[lab == "train"].sort_values(f"train_rank{k}")["sample"].tolist()
        sets = [set(order[: math.ceil(f * len(order))]) for f in (0.25, 0.5, 0.75, 1.0)]
        assert sets[0] <= sets[1] <= sets[2] <= sets[3]
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
    t = make_splits(samples, n_folds=n_folds, test_samples=ext, seed=seed)
    for k in range(n_folds):
        assert set(t.loc[t[f"fold{k}"] == "test", "sample"]) == set(ext)
        assert (t[f"fold{k}"] == "tune").sum() == round((n - n_test) * 0.1)
