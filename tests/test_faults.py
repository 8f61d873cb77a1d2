"""Faults: kill -9 anywhere, a second writer, a full disk.

Truth: the same command run without interruption. After a kill -9 at a random moment, nothing
that looks finished is incomplete, and running the same command again gives byte-identical
results; a second process on the same output is refused with one line; a full disk is one line
and leaves the previous output as it was.
"""

from __future__ import annotations

import errno
import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.fileio import output_lock
from variformer.cli import main as cli_main

VARIFORMER = [sys.executable, "-m", "variformer.cli"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from data_prep.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("faults")
    sim = simulate_cohort(root / "cohort", people=400, genes=6, seq_len=8192, seed=3)
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    prep = ["prep", "--vcf", str(sim.vcf), "--fasta", str(sim.fasta), "--annotation",
            str(sim.gtf), "--expression", str(sim.expression), "--genes", *genes,
            "--seq-len", "8192", "--quiet"]  # fmt: skip
    assert cli_main([*prep, "--out", str(root / "ds")]) == 0
    return {"root": root, "sim": sim, "genes": genes, "prep": prep, "ds": root / "ds"}


def _kill_when(argv, ready, *, cwd, timeout=300.0) -> bool:
    """Start ``variformer argv``, kill -9 it as soon as ``ready()``; True if it was killed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*VARIFORMER, *argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.wait(timeout=timeout)
    return False


def _finished_then_killed(argv, ref: Path, out: Path, ready, *, cwd) -> bool:
    """``variformer argv --out ref`` run to the end, then ``--out out`` killed -9 at ``ready()``."""
    assert cli_main([*argv, "--out", str(ref)]) == 0
    return _kill_when([*argv, "--out", str(out)], ready, cwd=cwd)


def _same_tree(a: Path, b: Path, *, skip=()) -> None:
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in skip)
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name not in skip)
    assert fa == fb
    for rel in fa:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


@pytest.mark.slow
def test_prep_killed_while_writing_then_rerun_is_identical(cohort, tmp_path):
    from data_prep import open_dataset

    out = tmp_path / "ds"
    killed = _kill_when(
        [*cohort["prep"], "--out", str(out)],
        lambda: any(tmp_path.glob(".ds.tmp-*")),
        cwd=tmp_path,
    )
    if out.exists():  # it finished first: then it is complete
        open_dataset(out)
    else:
        assert killed
    assert cli_main([*cohort["prep"], "--out", str(out), "--force"]) == 0
    assert not list(tmp_path.glob(".ds.*"))  # the killed writer's leftovers are gone
    _same_tree(out, cohort["ds"], skip={"dataset.json"})


@pytest.mark.slow
def test_baselines_killed_then_rerun_is_identical(cohort, tmp_path):
    argv = ["baselines", "--dataset", str(cohort["ds"]), "--folds", "0", "1", "2", "--no-progress"]
    ref, out = tmp_path / "ref", tmp_path / "bl"
    ready = lambda: any(out.glob("elastic_net/*/fold*/summary.json"))  # noqa: E731
    assert _finished_then_killed(argv, ref, out, ready, cwd=tmp_path)
    # what looks finished is complete: every published gene-fold has all its files
    for fold_dir in out.glob("elastic_net/*/fold*"):
        if not fold_dir.name.endswith(".partial"):
            names = {p.name for p in fold_dir.iterdir()}
            assert {"summary.json", "predictions.tsv", "coefficients.tsv"} <= names
    assert cli_main([*argv, "--out", str(out)]) == 0
    for rel in ("predictions.tsv", "coefficients.tsv"):
        for p in ref.glob(f"elastic_net/*/fold*/{rel}"):
            assert filecmp.cmp(p, out / p.relative_to(ref), shallow=False), p
    cols = ["gene", "fold", "model", "test_r2", "test_pcc", "n_nonzero"]
    a = pd.read_csv(ref / "elastic_net" / "summary.tsv", sep="\t")[cols]
    b = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")[cols]
    key = ["gene", "fold"]
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    )
    assert not list(out.rglob("*.partial")) and not list(out.rglob(".fold*.lock"))


@pytest.mark.slow
def test_ism_killed_then_rerun_is_identical(cohort, tmp_path):
    import json

    import torch
    import yaml

    from tests.fakes import tiny_hparams
    from variformer.model import Variformer

    torch.manual_seed(0)
    model = Variformer.from_hparams(**tiny_hparams())
    runs = tmp_path / "runs"
    for gene in cohort["genes"]:
        run = runs / gene / "fold0"
        run.mkdir(parents=True)
        model.save(run)
        (run / "summary.json").write_text(json.dumps({"fold": 0, "genes": [gene]}))
        (run / "config.yaml").write_text(yaml.safe_dump({"data": {"seq_len": 4096}}))
    argv = ["ism", "--runs", str(runs), "--fold", "0", "--dataset", str(cohort["ds"]), "--no-progress"]  # fmt: skip
    ref, out = tmp_path / "ref.tsv", tmp_path / "ism.tsv"
    ready = lambda: any(tmp_path.glob(".ism.tsv.partial/0000*.tsv"))  # noqa: E731
    assert _finished_then_killed(argv, ref, out, ready, cwd=tmp_path)
    assert not out.exists()  # nothing that looks finished
    assert cli_main([*argv, "--out", str(out)]) == 0
    assert filecmp.cmp(ref, out, shallow=False)
    assert not list(tmp_path.glob(".ism.tsv.*"))


def test_second_writer_is_refused_with_one_line(cohort, tmp_path, capsys):
    """Another live process holding an output: prep, baselines, ism and finetune refuse it."""
    ds = cohort["ds"]
    cases = {
        "prep": ([*cohort["prep"], "--out", str(tmp_path / "ds2")], tmp_path / "ds2"),
        "baselines": (
            [
                "baselines",
                "--dataset",
                str(ds),
                "--gene",
                cohort["genes"][0],
                "--fold",
                "0",
                "--out",
                str(tmp_path / "bl"),
            ],
            tmp_path / "bl" / "elastic_net" / cohort["genes"][0] / "fold0",
        ),
        "finetune": (
            [
                "finetune",
                "--dataset",
                str(ds),
                "--gene",
                cohort["genes"][0],
                "--fold",
                "0",
                "--config",
                "tiny",
                "--out",
                str(tmp_path / "runs"),
                "training.max_epochs=1",
            ],
            tmp_path / "runs" / cohort["genes"][0] / "fold0",
        ),
    }
    for name, (argv, target) in cases.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time; from core.fileio import output_lock\n"
             "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
             str(target)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "locked"
            assert cli_main(argv) == 2, name
            err = capsys.readouterr().err.strip()
            assert "is being written by pid" in err and len(err.splitlines()) == 1, (name, err)
            assert not target.exists() and not list(target.parent.glob(f"{target.name}.partial"))
        finally:
            holder.kill()  # like kill -9: the lock dies with its process
            holder.wait()
        assert cli_main(argv) == 0, name  # the stale lock file does not block the rerun
        capsys.readouterr()


def test_full_disk_is_one_line_and_keeps_the_previous_output(cohort, tmp_path, capsys, monkeypatch):  # fmt: skip
    import numpy as np

    out = tmp_path / "ds"
    assert cli_main([*cohort["prep"], "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_save = np.save

    def full(file, *a, **k):
        real_save(file, *a, **k)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))

    monkeypatch.setattr(np, "save", full)
    assert cli_main([*cohort["prep"], "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".ds.*"))


def test_lock_is_exclusive_and_released(tmp_path):
    from core.errors import InputError

    target = tmp_path / "x"
    with output_lock(target) as lock:
        assert lock.is_file() and f"pid {os.getpid()}" in lock.read_text()
        with pytest.raises(InputError, match="is being written by pid"), output_lock(target):
            pass
    assert not lock.exists()
    with output_lock(target):  # free again
        pass
