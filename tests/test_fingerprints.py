"""Outputs are tied to the inputs they were made from: a rebuilt dataset or a changed config
is refused where a run would resume, or a published fit be skipped, on stale inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal

import lightning as L
import pandas as pd
import pytest

from core.errors import InputError
from core.manifest import config_differences
from data_prep import open_dataset
from data_prep.prep import prep_dataset
from tests.datasets import simulated_dataset
from tests.fakes import tiny_config


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """One simulated cohort prepped twice: split seeds 0 and 1 (same windows, other splits)."""
    tmp = tmp_path_factory.mktemp("fingerprints")
    first, sim = simulated_dataset(tmp, people=40, genes=1, seq_len=2048)
    gene = str(pd.read_csv(sim.truth_genes, sep="\t")["gene"].iloc[0])
    other = tmp / "dataset_seed1"
    prep_dataset(
        vcfs=[sim.vcf], fasta=sim.fasta, annotation=sim.gtf, genes=[gene],
        expression=sim.expression, seq_len=2048, out=other, seed=1, progress=False,
    )  # fmt: skip
    return {"seed0": first, "seed1": other, "gene": gene, "tmp": tmp}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dataset_fingerprints_follow_content_not_path(cohort, tmp_path):
    a = open_dataset(cohort["seed0"]).fingerprints
    copy = shutil.copytree(cohort["seed0"], tmp_path / "copy")
    assert open_dataset(copy).fingerprints == a  # content, not where it lives
    b = open_dataset(cohort["seed1"]).fingerprints
    # the two preps share their windows, people and targets (byte-identical files) ...
    for name in ("reference.npy", "carriers.npz", "variants.tsv", "expression.tsv"):
        assert _sha(cohort["seed0"] / name) == _sha(cohort["seed1"] / name)
    assert (a["windows"], a["samples"], a["targets"]) == (b["windows"], b["samples"], b["targets"])
    # ... but not their splits (and the seed is part of the prep config)
    assert _sha(cohort["seed0"] / "splits.tsv") != _sha(cohort["seed1"] / "splits.tsv")
    assert a["splits"] != b["splits"] and a["config"] != b["config"]
    assert a["dataset"] != b["dataset"]
    # one changed byte in one file changes its part
    target = copy / "expression.tsv"
    text = target.read_text()
    target.write_text(text.replace("0", "1", 1))
    c = open_dataset(copy).fingerprints
    assert c["targets"] != a["targets"] and c["windows"] == a["windows"]


class _SigtermAfterEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # stops before the next epoch, after last.ckpt


def _interrupted_run(dataset, out, gene, config):
    from variformer import finetune as ft
    from variformer.interrupts import TrainingInterrupted

    with pytest.raises(TrainingInterrupted):
        ft.finetune(
            dataset, genes=[gene], fold=0, config=config, out=out, callbacks=[_SigtermAfterEpoch()]
        )
    partial = out / gene / "fold0.partial"
    assert (partial / "last.ckpt").is_file()
    return partial


def test_resume_on_a_rebuilt_dataset_or_another_config_is_refused(cohort, tmp_path):
    from variformer import finetune as ft

    gene = cohort["gene"]
    data = shutil.copytree(cohort["seed0"], tmp_path / "data")
    config = tiny_config("training.max_epochs=2", "training.early_stopping=false")
    partial = _interrupted_run(data, tmp_path / "runs", gene, config)
    recorded = json.loads((partial / "inputs.json").read_text())
    assert recorded["fold"] == 0 and recorded["genes"] == [gene]
    assert recorded["dataset"] == open_dataset(data).fingerprints
    checkpoint = _sha(partial / "last.ckpt")

    # the dataset is rebuilt in place with other splits: resuming would train on test people
    shutil.rmtree(data)
    shutil.copytree(cohort["seed1"], data)
    with pytest.raises(
        InputError, match=r"with other splits, config \(splits \w+ then, \w+ now"
    ) as e:
        ft.finetune(data, genes=[gene], fold=0, config=config, out=tmp_path / "runs")
    assert "--force" in str(e.value) and "\n" not in str(e.value)
    assert _sha(partial / "last.ckpt") == checkpoint  # refused before touching the run

    # back to the dataset it started on, but another learning rate: the keys are named
    shutil.rmtree(data)
    shutil.copytree(cohort["seed0"], data)
    other = tiny_config(
        "training.max_epochs=2", "training.early_stopping=false", "training.learning_rate=0.01"
    )
    with pytest.raises(InputError, match=r"another config \(training\.learning_rate differ\)"):
        ft.finetune(data, genes=[gene], fold=0, config=other, out=tmp_path / "runs")

    # --force starts again from scratch, on the current inputs
    result = ft.finetune(
        data, genes=[gene], fold=0, config=other, out=tmp_path / "runs", force=True
    )
    assert result.summary["epochs"] == 2 and not partial.exists()
    final = json.loads((result.run_dir / "inputs.json").read_text())
    assert final["config"]["training"]["learning_rate"] == 0.01
    weights = result.run_dir / "best.ckpt"
    assert result.summary["model_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_run_without_recorded_inputs_is_not_resumed_blindly(cohort, tmp_path):
    from variformer import finetune as ft

    gene = cohort["gene"]
    config = tiny_config("training.max_epochs=2", "training.early_stopping=false")
    partial = _interrupted_run(cohort["seed0"], tmp_path / "runs", gene, config)
    (partial / "inputs.json").unlink()  # as an older version left it
    with pytest.raises(InputError, match="records no input fingerprints"):
        ft.finetune(cohort["seed0"], genes=[gene], fold=0, config=config, out=tmp_path / "runs")


def test_baselines_skip_a_published_fit_only_on_the_same_inputs(cohort, tmp_path):
    from baselines.run import run_baselines

    gene, data = cohort["gene"], shutil.copytree(cohort["seed0"], tmp_path / "data")
    first = run_baselines(data, genes=[gene], folds=[0], out=tmp_path / "BL")
    assert first.fitted == [(gene, 0)]
    again = run_baselines(data, genes=[gene], folds=[0], out=tmp_path / "BL")
    assert again.skipped == [(gene, 0)] and again.fitted == []  # same inputs: resumed past

    fit = tmp_path / "BL" / "elastic_net" / gene / "fold0"
    before = {p.name: _sha(p) for p in fit.iterdir() if p.is_file()}
    shutil.rmtree(data)
    shutil.copytree(cohort["seed1"], data)
    with pytest.raises(InputError, match=r"other splits, config .* pass --force to refit it"):
        run_baselines(data, genes=[gene], folds=[0], out=tmp_path / "BL")
    with pytest.raises(InputError, match=r"another config \(cv differ\)"):
        run_baselines(cohort["seed0"], genes=[gene], folds=[0], out=tmp_path / "BL", cv=3)
    assert {p.name: _sha(p) for p in fit.iterdir() if p.is_file()} == before
    refit = run_baselines(data, genes=[gene], folds=[0], out=tmp_path / "BL", force=True)
    assert refit.fitted == [(gene, 0)]
    recorded = json.loads((fit / "inputs.json").read_text())["dataset"]
    assert recorded == open_dataset(data).fingerprints


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"x": 1, "y": {"z": 2}}, {"x": 1, "y": {"z": 2}}, []),
        ({"x": 1, "y": {"z": 2}}, {"x": 1, "y": {"z": 3}}, ["y.z"]),
        ({"x": 1}, {"x": 1, "w": None}, ["w"]),
        ({"t": {"a": 1, "b": 2}}, {"t": {"b": 2}}, ["t.a"]),
    ],
)
def test_config_differences_names_dotted_keys(a, b, expected):
    assert config_differences(a, b) == expected


def test_evaluate_refuses_runs_of_another_dataset_and_two_runs_of_one_gene_fold(
    cohort, tmp_path, capsys
):
    from variformer import finetune as ft
    from variformer.cli import main

    gene = cohort["gene"]
    config = tiny_config("training.max_epochs=1", "training.early_stopping=false")
    ft.finetune(cohort["seed0"], genes=[gene], fold=0, config=config, out=tmp_path / "runs")
    argv = ["evaluate", "--runs", str(tmp_path / "runs"), "--folds", "0"]
    # the same people and folds: evaluated
    assert main([*argv, "--dataset", str(cohort["seed0"]), "--out", str(tmp_path / "E0")]) == 0
    capsys.readouterr()
    # a dataset with other splits: the run's fold 0 test people are not this fold 0's
    assert main([*argv, "--dataset", str(cohort["seed1"]), "--out", str(tmp_path / "E1")]) == 2
    err = capsys.readouterr().err.strip()
    assert "other splits" in err and "fold0" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "E1").exists()
    # a second run of the same gene and fold (another name) would be averaged in: refused
    shutil.copytree(tmp_path / "runs" / gene / "fold0", tmp_path / "runs" / "again" / "fold0")
    assert main([*argv, "--dataset", str(cohort["seed0"]), "--out", str(tmp_path / "E2")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"two results for {gene} fold 0" in err and "again" in err, err
    assert not (tmp_path / "E2").exists()


def test_an_interrupted_ism_never_reuses_scores_of_a_model_since_retrained(
    ism_cohort, tmp_path, monkeypatch
):
    """The resume cache of ``ism --runs`` is keyed by the weights' checksum, not the path."""
    import torch

    from tests.fakes import copy_run
    from variformer.analysis import ism_of_models as im
    from variformer.model import Variformer

    g0, g1 = ism_cohort["genes"]
    root = tmp_path / "runs"
    copy_run(ism_cohort["run"], root / g0 / "fold1", fold=1, genes=[g0])
    copy_run(ism_cohort["run"], root / g1 / "fold1", fold=1, genes=[g1])
    ds, out = ism_cohort["ds"], tmp_path / "ism.tsv"

    real = im.ism_table
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the first gene was kept
        return real(*args, **kwargs)

    monkeypatch.setattr(im, "ism_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        im.ism_of_runs(root, ds, out)
    assert len(list(tmp_path.glob(".ism.tsv.partial/0*.tsv"))) == 1
    monkeypatch.setattr(im, "ism_table", real)

    # the first gene's run is retrained (other weights) before the rerun
    run = root / g0 / "fold1"
    model = Variformer.load(run)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save(run)
    resumed = im.ism_of_runs(root, ds, out).table
    fresh = im.ism_of_runs(root, ds, tmp_path / "fresh.tsv").table
    pd.testing.assert_frame_equal(resumed, fresh)
    assert (out.read_bytes()) == (tmp_path / "fresh.tsv").read_bytes()


def test_analysis_refuses_two_runs_of_one_gene_and_fold(tmp_path):
    from core.tables import predictions_table, write_predictions
    from variformer.analysis.weights import collect_predictions

    table = predictions_table(["a", "b"], gene="G", split="test", observed=[1, 2], predicted=[1, 3])
    for run in ("G/fold0", "G/fold1", "G_again/fold1"):
        (tmp_path / run).mkdir(parents=True)
        write_predictions(table, tmp_path / run / "predictions.tsv")
    with pytest.raises(
        InputError, match=r"variformer has two runs for G fold 1 \(.*G/fold1 and .*G_again/fold1\)"
    ):
        collect_predictions(tmp_path, model="variformer")
    (tmp_path / "G_again" / "fold1").rename(tmp_path / "G_again" / "fold2")
    got = collect_predictions(tmp_path, model="variformer")
    assert sorted(set(got["fold"])) == [0, 1, 2] and len(got) == 6


def test_a_diverging_run_stops_as_failed_with_its_reason(tmp_path, capsys):
    """A learning rate far too high: one line, exit 2, failed.json beside the checkpoints, and
    the run is not resumed (or published) until it is started again with --force."""
    from tests.fakes import FakeDataset
    from variformer import finetune as ft

    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=2048)
    bad = tiny_config("training.max_epochs=3", "training.learning_rate=1e6")
    with pytest.raises(
        InputError, match=r"training diverged by epoch \d+: \d+ tune predictions"
    ) as e:
        ft.finetune(ds, genes=["G0"], fold=0, config=bad, out=tmp_path)
    assert "lower training.learning_rate" in str(e.value) and "\n" not in str(e.value)
    partial = tmp_path / "G0" / "fold0.partial"
    failed = json.loads((partial / "failed.json").read_text())
    assert failed["status"] == "failed" and "diverged" in failed["reason"]
    assert not (tmp_path / "G0" / "fold0").exists()
    with pytest.raises(InputError, match=r"stopped as failed .*re-run it with --force"):
        ft.finetune(ds, genes=["G0"], fold=0, config=bad, out=tmp_path)
    good = tiny_config("training.max_epochs=1")
    done = ft.finetune(ds, genes=["G0"], fold=0, config=good, out=tmp_path, force=True)
    assert done.run_dir == tmp_path / "G0" / "fold0" and not (done.run_dir / "failed.json").exists()


def test_ism_and_analysis_refuse_runs_of_another_dataset(cohort, tmp_path):
    from baselines.run import run_baselines
    from variformer import finetune as ft
    from variformer.analysis.ism_of_models import ism_of_run, ism_of_runs
    from variformer.analysis.weights import collect_predictions

    gene = cohort["gene"]
    config = tiny_config("training.max_epochs=1", "training.early_stopping=false")
    run = ft.finetune(cohort["seed0"], genes=[gene], fold=0, config=config, out=tmp_path / "runs")
    run_baselines(cohort["seed0"], genes=[gene], folds=[0], out=tmp_path / "BL")
    other = open_dataset(cohort["seed1"])
    with pytest.raises(InputError, match=r"other splits.*score it with the dataset it was made"):
        ism_of_runs(tmp_path / "runs", other, tmp_path / "a.tsv")
    with pytest.raises(InputError, match="other splits"):
        ism_of_run(run.run_dir, other, tmp_path / "b.tsv")
    with pytest.raises(InputError, match=r"other splits.*analyze it with"):
        collect_predictions(tmp_path / "BL", dataset=other)
    with pytest.raises(InputError, match="other splits"):
        collect_predictions(tmp_path / "runs", model="variformer", dataset=other)
    assert not list(tmp_path.glob("*.tsv")) and not list(tmp_path.glob(".*.partial"))
    same = open_dataset(cohort["seed0"])
    assert len(collect_predictions(tmp_path / "BL", dataset=same)) > 0


def test_cross_cohort_warns_when_few_snvs_are_shared(cohort, tmp_path, capsys):
    """Another simulated cohort (other seed: other people, other SNVs) as the test cohort: the
    log gives the fraction of its SNVs the training cohort has, recomputed here from the
    datasets' variant tables."""
    from baselines.run import run_baselines
    from variformer.cli import main

    gene = cohort["gene"]
    other, _ = simulated_dataset(tmp_path, people=40, genes=1, seq_len=2048, seed=7)
    a, b = open_dataset(cohort["seed0"]), open_dataset(other)
    assert not set(a.samples) & set(b.samples)
    keys = ["chrom", "pos", "ref", "alt"]
    train = set(map(tuple, a.variants(gene)[keys].astype(str).itertuples(index=False)))
    test = set(map(tuple, b.variants(gene)[keys].astype(str).itertuples(index=False)))
    fraction = len(train & test) / len(test)
    assert fraction < 0.5
    run_baselines(cohort["seed0"], genes=[gene], folds=[0], out=tmp_path / "BL")
    argv = ["evaluate", "--dataset", str(cohort["seed0"]), "--baselines", str(tmp_path / "BL"),
            "--test-dataset", str(other), "--folds", "0", "--out", str(tmp_path / "E")]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"only {fraction:.0%} of {gene}'s {len(test)} SNVs in the test cohort" in err, err


def test_analyze_refuses_ism_tables_of_another_dataset_or_cut_short(cohort, tmp_path):
    from variformer import finetune as ft
    from variformer.analysis.ism_of_models import ism_of_runs
    from variformer.analysis.weights import collect_ism

    gene = cohort["gene"]
    config = tiny_config("training.max_epochs=1", "training.early_stopping=false")
    ft.finetune(cohort["seed0"], genes=[gene], fold=0, config=config, out=tmp_path / "runs")
    table = tmp_path / "ISM" / "variformer.tsv"
    table.parent.mkdir()
    ism_of_runs(tmp_path / "runs", open_dataset(cohort["seed0"]), table)
    record = json.loads((tmp_path / "ISM" / "variformer.tsv.json").read_text())
    assert record["n_rows"] == len(pd.read_csv(table, sep="\t")) > 0
    same = collect_ism(tmp_path / "ISM", dataset=open_dataset(cohort["seed0"]))
    assert len(same) == record["n_rows"]
    with pytest.raises(
        InputError, match=r"variformer.tsv was made from the dataset with other splits"
    ):
        collect_ism(tmp_path / "ISM", dataset=open_dataset(cohort["seed1"]))
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-1]) + "\n")  # one row lost
    with pytest.raises(InputError, match=rf"has {record['n_rows'] - 1} rows but was written with"):
        collect_ism(tmp_path / "ISM", dataset=open_dataset(cohort["seed0"]))
    (tmp_path / "ISM" / "variformer.tsv.json").unlink()
    notes: list[str] = []
    collect_ism(tmp_path / "ISM", dataset=open_dataset(cohort["seed0"]), notes=notes)
    assert notes == [
        "variformer.tsv has no record (variformer.tsv.json): not checked against --dataset"
    ]


def test_a_predictions_table_cut_short_is_refused(cohort, tmp_path):
    """Every reader of runs (evaluate, ism, analyze) goes through core.runs.read_run, which
    compares the rows per gene and split with the counts the run recorded."""
    from baselines.run import run_baselines
    from core.runs import find_runs, read_run

    gene = cohort["gene"]
    run_baselines(cohort["seed0"], genes=[gene], folds=[0], out=tmp_path / "BL")
    fit = tmp_path / "BL" / "elastic_net" / gene / "fold0"
    summary = json.loads((fit / "summary.json").read_text())
    table = pd.read_csv(fit / "predictions.tsv", sep="\t")
    assert (table["split"] == "test").sum() == summary["n_test"] > 1
    assert len(read_run(fit).predictions) == len(table)
    lines = (fit / "predictions.tsv").read_text().splitlines()
    (fit / "predictions.tsv").write_text("\n".join(lines[:-1]) + "\n")
    expected = (
        f"has {summary['n_test'] - 1} test rows of {gene} but the run recorded {summary['n_test']}"
    )
    with pytest.raises(InputError, match=expected):
        read_run(fit)
    with pytest.raises(InputError, match=expected):
        list(find_runs(tmp_path / "BL"))


def test_skip_finished_skips_only_a_run_of_the_same_inputs(cohort, tmp_path, capsys):
    """What a requeued or resubmitted SLURM task runs: `finetune --skip-finished`."""
    from variformer.cli import main

    gene, data = cohort["gene"], shutil.copytree(cohort["seed0"], tmp_path / "data")
    argv = ["finetune", "--dataset", str(data), "--gene", gene, "--fold", "0", "--config",
            "tiny", "--out", str(tmp_path / "runs"), "--skip-finished",
            "training.max_epochs=1"]  # fmt: skip
    assert main(argv) == 0
    best = tmp_path / "runs" / gene / "fold0" / "best.ckpt"
    before = _sha(best)
    capsys.readouterr()
    assert main(argv) == 0  # the same inputs: done
    assert "is finished, from the same inputs; nothing to do" in capsys.readouterr().out
    assert _sha(best) == before
    assert main([*argv[:-1], "training.max_epochs=2"]) == 2  # another config: refused
    err = capsys.readouterr().err
    assert "training.max_epochs differ" in err and "--force" in err
    shutil.rmtree(data)
    shutil.copytree(cohort["seed1"], data)  # the dataset rebuilt with other splits: refused
    assert main(argv) == 2 and "other splits" in capsys.readouterr().err
    assert _sha(best) == before
