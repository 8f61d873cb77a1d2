"""Matched comparisons in ``variformer evaluate`` (issue #21) on hand-made predictions tables:
a model with fold 0 only is set beside the other models' fold 0; the 3-fold mean only where
every model has all 3 folds; no shared fold, no number; other test people, refused. Every
summary number is recomputed from the written metrics.tsv (:mod:`tests.matched`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.tables import predictions_table
from tests.matched import check_summary_against_metrics, read_evaluation_tables
from variformer.evaluate import evaluate, write_evaluation
from variformer.evaluation_sources import Source


def _source(model, fold, people, *, gene="G", setting="hop", shift=0.0, seed=0):
    """A predictions table of ``people`` (tune = first half, test = second half)."""
    rng = np.random.default_rng(seed)
    observed = np.sin(np.arange(len(people)) + fold)
    half = len(people) // 2
    table = predictions_table(
        people, gene=gene, split=["tune"] * half + ["test"] * (len(people) - half),
        observed=observed, predicted=observed + shift + rng.normal(size=len(people)),
    )  # fmt: skip
    return Source(model, setting, fold, 1.0, table, f"{model}-{gene}-{setting}-{fold}.tsv")


def _people(fold):
    return [f"f{fold}p{i}" for i in range(20)]


def _evaluate_to(tmp_path, sources):
    write_evaluation(evaluate(sources), tmp_path)
    return read_evaluation_tables(tmp_path)


def test_a_model_with_fold_0_only_is_compared_with_fold_0(tmp_path):
    sources = [_source("elastic_net", k, _people(k), seed=k) for k in (0, 1, 2)]
    sources.append(_source("variformer", 0, _people(0), shift=0.3, seed=9))
    metrics, summary = _evaluate_to(tmp_path, sources)
    check_summary_against_metrics(metrics, summary)
    assert list(summary["folds"]) == ["0", "0"] and list(summary["n_folds"]) == [1, 1]
    en = metrics[(metrics["model"] == "elastic_net") & (metrics["split"] == "test")]
    fold0 = en.loc[en["fold"] == 0, "r2"].item()
    by_model = summary.set_index("model")
    assert by_model.loc["elastic_net", "r2"] == pytest.approx(fold0)
    assert by_model.loc["variformer", "elastic_net_r2"] == pytest.approx(fold0)
    assert fold0 != pytest.approx(en["r2"].mean())  # the unmatched number it used to show


def test_models_with_every_fold_get_the_3_fold_mean(tmp_path):
    sources = [
        _source(model, k, _people(k), shift=shift, seed=10 * k + i)
        for i, (model, shift) in enumerate((("elastic_net", 0.0), ("variformer", 0.2)))
        for k in (0, 1, 2)
    ]
    # a second gene that only the elastic net has: compared with nobody, all its folds
    sources += [_source("elastic_net", k, _people(k), gene="H", seed=k) for k in (0, 1, 2)]
    metrics, summary = _evaluate_to(tmp_path, sources)
    check_summary_against_metrics(metrics, summary)
    assert set(summary["folds"]) == {"0,1,2"} and set(summary["n_folds"]) == {3}
    test = metrics[metrics["split"] == "test"]
    v = summary[(summary["gene"] == "G") & (summary["model"] == "variformer")].iloc[0]
    mine = test[(test["gene"] == "G") & (test["model"] == "variformer")]
    assert v["r2"] == pytest.approx(mine["r2"].mean())
    assert len(figures := list((tmp_path / "figures").iterdir())) >= 3, figures


def test_models_sharing_no_fold_are_not_compared(tmp_path):
    sources = [_source("elastic_net", 1, _people(1)), _source("variformer", 0, _people(0))]
    metrics, summary = _evaluate_to(tmp_path, sources)
    check_summary_against_metrics(metrics, summary)
    assert list(summary["folds"]) == ["", ""] and list(summary["n_folds"]) == [0, 0]
    assert summary[["r2", "pcc", "elastic_net_r2", "elastic_net_pcc"]].isna().all().all()


def test_cross_cohort_rows_are_set_beside_the_elastic_nets_cross_cohort_numbers(tmp_path):
    """A cross-cohort row's elastic-net column is the elastic net on the same other cohort's
    people, never its in-cohort R2; each cohort has its own matched folds."""
    ds2 = [f"ext{i}" for i in range(20)]
    sources = [_source("elastic_net", k, _people(k), seed=k) for k in (0, 1, 2)]
    sources += [_source("variformer", k, _people(k), seed=5 + k) for k in (0, 1)]
    sources += [
        _source(m, k, ds2, setting="cross_cohort", seed=20 + k + 3 * i)
        for i, m in enumerate(("elastic_net", "variformer"))
        for k in (0, 1, 2)
    ]
    metrics, summary = _evaluate_to(tmp_path, sources)
    check_summary_against_metrics(metrics, summary)
    folds = dict(zip(summary["setting"], summary["folds"]))
    assert folds == {"hop": "0,1", "cross_cohort": "0,1,2"}


def test_different_test_people_in_one_fold_are_refused():
    other = [*_people(0)[:-1], "stranger"]
    sources = [_source("elastic_net", 0, _people(0)), _source("variformer", 0, other)]
    with pytest.raises(InputError, match=r"G fold 0: .* tested on different people"):
        evaluate(sources)
    # the same test people in another order are the same people
    shuffled = _people(0)[:10] + _people(0)[10:][::-1]
    evaluate([_source("elastic_net", 0, _people(0)), _source("variformer", 0, shuffled)])
