"""core.metrics: R2/PCC against scikit-learn/scipy, the predictions schema, per-gene table."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from core.errors import InputError
from core.metrics import METRIC_COLUMNS, gene_metrics, nanmean, pcc, r2, r2_pcc
from core.tables import (
    PREDICTIONS,
    empty_predictions,
    predictions_table,
    read_predictions,
    validate_predictions,
    write_predictions,
)

PREDICTION_COLUMNS = PREDICTIONS.columns

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=40))
def test_r2_and_pcc_equal_sklearn_and_scipy(pairs):
    obs, pred = np.array(pairs).T
    assert r2(obs, pred) == pytest.approx(r2_score(obs, pred), nan_ok=True, abs=1e-9)
    if np.ptp(obs) > 0 and np.ptp(pred) > 0:
        expected = pearsonr(obs, pred).statistic
        assert pcc(obs, pred) == pytest.approx(expected, abs=1e-9, nan_ok=True)
    else:
        assert np.isnan(pcc(obs, pred))
    assert r2_pcc(obs, pred) == (r2(obs, pred), pcc(obs, pred)) or np.isnan(pcc(obs, pred))


def test_undefined_metrics_are_nan_not_errors():
    assert np.isnan(r2([1.0], [2.0])) and np.isnan(pcc([1.0], [2.0]))
    assert np.isnan(r2([], [])) and np.isnan(pcc([], []))
    assert np.isnan(pcc([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]))  # constant observed
    assert np.isnan(pcc([0.1, 0.2, 0.3], [1.0, 1.0, 1.0]))  # constant predictions
    with pytest.raises(ValueError, match="3 values"):
        r2([1, 2, 3], [1, 2])


def test_nanmean_skips_nan_and_none():
    assert nanmean([1.0, float("nan"), 3.0, None]) == 2.0
    assert np.isnan(nanmean([float("nan")])) and np.isnan(nanmean([]))


def _table(rng, genes=("A", "B"), n=12):
    frames = []
    for gene in genes:
        for split in ("tune", "test"):
            obs = rng.normal(size=n)
            frames.append(
                predictions_table(
                    [f"{gene}{split}{i}" for i in range(n)],
                    gene=gene,
                    split=split,
                    observed=obs,
                    predicted=obs + rng.normal(size=n),
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_gene_metrics_from_a_predictions_table():
    table = _table(np.random.default_rng(0))
    out = gene_metrics(table, genes=["B", "A", "MISSING"], splits=["test", "tune"])
    assert list(out.columns) == list(METRIC_COLUMNS)
    assert list(zip(out.gene, out.split)) == [
        (g, s) for g in ("B", "A", "MISSING") for s in ("test", "tune")
    ]
    for row in out.itertuples(index=False):
        rows = table[(table.gene == row.gene) & (table.split == row.split)]
        assert row.n == len(rows)
        if row.gene == "MISSING":
            assert np.isnan(row.r2) and np.isnan(row.pcc)
            continue
        assert row.r2 == pytest.approx(r2_score(rows.observed, rows.predicted), abs=1e-12)
        assert row.pcc == pytest.approx(pearsonr(rows.observed, rows.predicted)[0], abs=1e-12)
    default = gene_metrics(table)
    assert list(default.gene.unique()) == ["A", "B"] and list(default.split[:2]) == [
        "tune",
        "test",
    ]


def test_predictions_round_trip_exactly(tmp_path):
    table = _table(np.random.default_rng(1))
    table.loc[0, "sample"] = "NA"  # a sample id that pandas would read as missing by default
    write_predictions(table, tmp_path / "predictions.tsv")
    back = read_predictions(tmp_path / "predictions.tsv")
    assert list(back.columns) == list(PREDICTION_COLUMNS)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert (back.observed.to_numpy() == table.observed.to_numpy()).all()  # bit-exact
    empty = empty_predictions()
    assert list(empty.columns) == list(PREDICTION_COLUMNS) and len(empty) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="observed"), "lacks the column"),
        (lambda t: t.assign(split="validation"), "unknown split"),
        (lambda t: t.assign(predicted="x"), "not numeric"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "occurs twice"),
    ],
)
def test_bad_predictions_tables_are_refused(change, message):
    with pytest.raises(InputError, match=message):
        validate_predictions(change(_table(np.random.default_rng(2))))


def test_metrics_module_does_not_import_torch():
    code = "import sys, core.metrics, core.runs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
