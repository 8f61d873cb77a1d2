"""Inputs a command cannot work with end in one line and exit 2, never in a traceback.

Each case runs ``variformer.cli.main`` on small real inputs (the shared 3-gene dataset, elastic
nets of fold 0, a made-up ISM table) and checks: exit status 2, exactly one line on stderr,
no traceback, the line says what is wrong, and no output was created.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.errors import InputError
from variformer.cli import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture(scope="module")
def inputs(small_dataset, tmp_path_factory):
    """BL (elastic nets, fold 0), an ISM table, and copies with a non-finite prediction."""
    from baselines.run import run_baselines
    from data_prep import open_dataset

    root = tmp_path_factory.mktemp("refusals")
    run_baselines(small_dataset, out=root / "BL", folds=[0], progress=False)
    ds = open_dataset(small_dataset)
    tables = [ds.variants(g).assign(gene=g, fold=0, tss_distance=0, score=0.1) for g in ds.genes]
    cols = ["gene", "fold", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "score"]
    (root / "ISM").mkdir()
    pd.concat(tables)[cols].to_csv(root / "ISM" / "variformer.tsv", sep="\t", index=False)
    for bad in ("inf", "nan"):
        shutil.copytree(root / "BL", root / f"BL_{bad}")
        path = root / f"BL_{bad}" / "elastic_net" / ds.genes[0] / "fold0" / "predictions.tsv"
        table = pd.read_csv(path, sep="\t")
        table.loc[1, "predicted"] = np.inf if bad == "inf" else np.nan
        table.to_csv(path, sep="\t", index=False, na_rep="nan")
        shutil.copy(path, root / f"predictions_{bad}.tsv")
    (root / "AN_text").mkdir()
    (root / "AN_text" / "analysis.json").write_text('{"models": ["elastic_net"],')
    (root / "AN_list").mkdir()
    (root / "AN_list" / "analysis.json").write_text("[1, 2]\n")
    return {"root": root, "ds": str(small_dataset)}


def _argv(inputs, out: Path, words: list[str]) -> list[str]:
    root, ds = inputs["root"], inputs["ds"]
    return [w.format(root=root, ds=ds, out=out) for w in words]


EVALUATE = ["evaluate", "--dataset", "{ds}", "--out", "{out}"]
ANALYZE = ["analyze", "--dataset", "{ds}", "--ism", "{root}/ISM", "--out", "{out}",
           "--no-motifs", "--no-attributions"]  # fmt: skip
FINETUNE = ["finetune", "--dataset", "{ds}", "--gene", "BTNL3", "--fold", "0", "--config",
            "tiny", "--out", "{out}"]  # fmt: skip
BASELINES = ["baselines", "--dataset", "{ds}", "--gene", "BTNL3", "--fold", "0", "--out", "{out}"]
ISM = ["ism", "--runs", "{root}/runs", "--dataset", "{ds}", "--out", "{out}"]
DEMO = ["demo", "--out", "{out}"]

CASES = {
    # non-finite predictions read back
    "evaluate, inf prediction": (
        [*EVALUATE, "--baselines", "{root}/BL_inf"], "holds inf"),
    "evaluate, nan prediction": (
        [*EVALUATE, "--baselines", "{root}/BL_nan"], "holds nan"),
    "analyze, inf in --predictions": (
        [*ANALYZE, "--baselines", "{root}/BL", "--predictions", "m={root}/predictions_inf.tsv"],
        "holds inf"),
    "analyze, nan in baselines": ([*ANALYZE, "--baselines", "{root}/BL_nan"], "holds nan"),
    # --device / --accelerator this machine lacks
    "evaluate --device cuda": (
        [*EVALUATE, "--baselines", "{root}/BL", "--device", "cuda"], "CUDA is not available"),
    "ism --device cuda": ([*ISM, "--device", "cuda"], "CUDA is not available"),
    "analyze --device cuda": (
        [*ANALYZE, "--baselines", "{root}/BL", "--device", "cuda"], "CUDA is not available"),
    "evaluate --device cuda:99": (
        [*EVALUATE, "--baselines", "{root}/BL", "--device", "cuda:99"], "CUDA"),
    "ism --device banana": ([*ISM, "--device", "banana"], "not a torch device"),
    "finetune --accelerator gpu": (
        [*FINETUNE, "--accelerator", "gpu"], "CUDA is not available"),
    "finetune --accelerator tpu": ([*FINETUNE, "--accelerator", "tpu"], "--accelerator tpu"),
    "finetune --accelerator banana": (
        [*FINETUNE, "--accelerator", "banana"], "unknown --accelerator banana"),
    "finetune --devices 0": ([*FINETUNE, "--devices", "0"], "--devices must be"),
    "finetune --devices two": ([*FINETUNE, "--devices", "two"], "--devices must be"),
    # options out of range
    "finetune learning_rate=-1": (
        [*FINETUNE, "training.learning_rate=-1"], "training.learning_rate must be a number >= 0"),
    "finetune learning_rate=nan": (
        [*FINETUNE, "training.learning_rate=.nan"], "training.learning_rate"),
    "finetune weight_decay=-1": ([*FINETUNE, "training.weight_decay=-1"], "weight_decay"),
    "baselines --cv 1": ([*BASELINES, "--cv", "1"], "--cv must be between 2 and 20"),
    "baselines --cv 0": ([*BASELINES, "--cv", "0"], "--cv must be between 2 and 20"),
    "baselines --cv 21": ([*BASELINES, "--cv", "21"], "--cv must be between 2 and 20"),
    "baselines --l1-ratio 0": ([*BASELINES, "--l1-ratio", "0"], "--l1-ratio must be in (0, 1]"),
    "baselines --l1-ratio 2": ([*BASELINES, "--l1-ratio", "2"], "--l1-ratio must be in (0, 1]"),
    "baselines --l1-ratio nan": (
        [*BASELINES, "--l1-ratio", "nan"], "--l1-ratio must be in (0, 1]"),
    "baselines --l1-ratio -0.5": (
        [*BASELINES, "--l1-ratio", "-0.5"], "--l1-ratio must be in (0, 1]"),
    "slurm baselines --cv 1": (
        ["slurm", "baselines", "--dataset", "{ds}", "--gene", "BTNL3", "--out", "{out}", "--cv",
         "1"], "--cv must be"),
    # a damaged analysis.json
    "report, analysis.json not JSON": (
        ["report", "--analysis", "{root}/AN_text", "--out", "{out}"], "is not valid JSON"),
    "report, analysis.json a list": (
        ["report", "--analysis", "{root}/AN_list", "--out", "{out}"], "not an object"),
    # batch sizes < 1
    "evaluate --batch-size 0": (
        [*EVALUATE, "--baselines", "{root}/BL", "--batch-size", "0"], "--batch-size must be >= 1"),
    "ism --batch-size 0": ([*ISM, "--batch-size", "0"], "--batch-size must be >= 1"),
    "finetune data.batch_size=0": ([*FINETUNE, "data.batch_size=0"], "data.batch_size must be"),
    # demo options, before the first step
    "demo --fold 5": ([*DEMO, "--fold", "5"], "--fold 5: the demo's dataset has folds 0..2"),
    "demo --fold -1": ([*DEMO, "--fold", "-1"], "--fold -1"),
    "demo --people 29": ([*DEMO, "--people", "29"], "at least 30 people"),
    "demo --genes 0": ([*DEMO, "--genes", "0"], "--genes 0"),
    "demo --seq-len 1000": ([*DEMO, "--seq-len", "1000"], "multiple of 128"),
    "demo, bad override": ([*DEMO, "training.learning_rate=-1"], "training.learning_rate"),
}  # fmt: skip
NEEDS_NO_CUDA = {"evaluate --device cuda", "ism --device cuda", "analyze --device cuda",
                 "finetune --accelerator gpu"}  # fmt: skip


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=NO_CUDA if c in NEEDS_NO_CUDA else ()) for c in CASES]
)
def test_one_line_and_exit_2(inputs, tmp_path, capsys, case):
    words, expected = CASES[case]
    out = tmp_path / "out"
    assert main(_argv(inputs, out, words)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("variformer ") and ": error: " in lines[0]
    assert expected in lines[0], lines[0]
    assert not out.exists()  # refused before anything was written


def test_predict_refuses_a_batch_size_below_one():
    from variformer.predict import predict

    with pytest.raises(InputError, match="batch_size must be >= 1"):
        predict(torch.nn.Identity(), np.zeros((2, 8, 4), np.float32), batch_size=0)


def test_lasso_and_ridge_keep_ignoring_l1_ratio(inputs, tmp_path, capsys):
    # only the elastic net reads --l1-ratio; the contract of lasso and ridge is unchanged
    argv = _argv(inputs, tmp_path / "BL", [*BASELINES, "--model", "ridge", "--l1-ratio", "0"])
    assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
