"""A real SLURM cluster (``slurm/local_cluster.sh up`` starts one on this machine): a 2-gene x
2-fold tiny fine-tuning array and a baselines array, one task requeued mid-epoch with
``scontrol requeue``; then every task is done, ``evaluate`` reads every result, and the requeued
run's final weights equal those of the same run left alone.

Skipped when no cluster answers ``sinfo``, except under ``CI=true``, where CI started one and
its absence is a failure. The weights check is exact resume (``variformer.interrupts``) under a
real ``scontrol requeue``: bit for bit, no tolerance.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slurm

GENES = ["BTNL3", "ZFP57"]
EPOCHS = 4
DEADLINE_S = 900


def _sinfo_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=20, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and any(
        s.strip().rstrip("*") in ("idle", "mix", "alloc") for s in done.stdout.splitlines()
    )


def _variformer(*argv: str, cwd: Path) -> str:
    """Run the real CLI in a subprocess (as a user types it); returns its stdout."""
    done = subprocess.run([sys.executable, "-m", "variformer.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _queued(job_ids) -> list[str]:
    done = subprocess.run(["squeue", "-h", "-o", "%i %T", f"--jobs={','.join(job_ids)}"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.split("\n") if done.returncode == 0 and done.stdout.strip() else []


def _wait_for(predicate, what: str, deadline: float, logs: Path, poll_s: float = 1) -> None:
    while not predicate():
        if time.monotonic() > deadline:
            tails = "".join(
                f"\n--- {p}\n{p.read_text()[-1500:]}" for p in sorted(logs.rglob("*.out"))
            )
            pytest.fail(f"timed out waiting for {what}{tails}")
        time.sleep(poll_s)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Submit the arrays, requeue one task mid-epoch, wait for everything to end."""
    if not _sinfo_answers():
        if os.environ.get("CI") == "true":
            pytest.fail(
                "no SLURM cluster answers sinfo: CI starts one with `slurm/local_cluster.sh up`"
            )
        pytest.skip("no SLURM cluster answers sinfo (start one: sudo slurm/local_cluster.sh up)")
    from tests.datasets import prepared_dataset

    root = tmp_path_factory.mktemp("cluster")
    dataset = prepared_dataset(root, people=120, genes=2, seq_len=4096)
    common = ["--dataset", str(dataset), "--cpus", "1", "--submit", "--parsable"]
    tiny = ["--config", "tiny", f"training.max_epochs={EPOCHS}"]
    started = time.monotonic()
    ids = {
        "finetune": _variformer("slurm", "finetune", *common, "--genes", *GENES, "--folds", "0",
                                "1", "--out", "runs", *tiny, cwd=root),
        "reference": _variformer("slurm", "finetune", *common, "--gene", GENES[0], "--folds",
                                 "0", "--out", "runs_ref", *tiny, cwd=root),
        "baselines": _variformer("slurm", "baselines", *common, "--genes", *GENES, "--folds",
                                 "0", "1", "--genes-per-task", "1", "--out", "BL", cwd=root),
    }  # fmt: skip
    deadline = time.monotonic() + DEADLINE_S
    (log,) = [None]

    def epoch_one_saved():  # a checkpoint to resume from: the requeue lands in epoch 2 or 3
        nonlocal log
        log = next((root / "runs" / "slurm").rglob("*_0.out"), None)
        partial = root / "runs" / GENES[0] / "fold0.partial"
        return (
            log is not None
            and re.search(r"^epoch 1/", log.read_text(), re.M)
            and next(partial.rglob("*.ckpt"), None) is not None
        )

    try:
        _wait_for(epoch_one_saved, "the first epoch of task 0", deadline, root, poll_s=0.1)
        job = ids["finetune"].strip()
        requeued_at = log.read_text()
        subprocess.run(["scontrol", "requeue", f"{job}_0"], check=True, capture_output=True)
        all_ids = [i.strip() for i in ids.values()]
        _wait_for(lambda: not _queued(all_ids), "the jobs to end", deadline, root)
    finally:
        subprocess.run(["scancel", *[i.strip() for i in ids.values()]], capture_output=True)
    return {"root": root, "dataset": dataset, "ids": ids, "log": log,
            "requeued_at": requeued_at, "wall_s": time.monotonic() - started}  # fmt: skip


def test_submit_parsable_prints_only_the_job_id(workflow):
    for printed in workflow["ids"].values():
        assert re.fullmatch(r"\d+\n", printed), printed


def test_the_requeued_task_ran_twice_and_every_task_is_done(workflow):
    root = workflow["root"]
    log = workflow["log"].read_text()
    assert "### attempt 0 | " in log and "### attempt 1 | " in log, log
    last = log[log.index("### attempt 1 | ") :]
    assert re.search(r"^### exit 0 \| ", last, re.M), log
    # the requeue landed after the first epoch and before the last one ended
    assert (
        "epoch 1/" in workflow["requeued_at"] and f"epoch {EPOCHS}/" not in workflow["requeued_at"]
    )
    for job_dir, n in (("runs/slurm", 4), ("runs_ref/slurm", 1), ("BL/slurm", 4)):
        out = _variformer("slurm", "status", job_dir, cwd=root).splitlines()
        assert out[-1] == f"{n} tasks: {n} done, 0 running, 0 failed, 0 missing", out


def test_evaluate_reads_every_result(workflow):
    root = workflow["root"]
    _variformer("evaluate", "--dataset", str(workflow["dataset"]), "--runs", "runs",
                "--baselines", "BL", "--out", "EVAL", "--no-progress", cwd=root)  # fmt: skip
    metrics = pd.read_csv(root / "EVAL" / "metrics.tsv", sep="\t")
    found = metrics[metrics["split"] == "test"].groupby("model")
    expected = {(g, k) for g in GENES for k in (0, 1)}
    for model in ("elastic_net", "variformer"):
        pairs = set(zip(found.get_group(model)["gene"], found.get_group(model)["fold"]))
        assert pairs == expected, (model, pairs)


def test_the_requeued_run_ends_with_the_weights_of_an_uninterrupted_one(workflow):
    import torch

    root = workflow["root"]
    requeued = root / "runs" / GENES[0] / "fold0"
    alone = root / "runs_ref" / GENES[0] / "fold0"
    differ = []
    for name in ("last.ckpt", "best.ckpt"):
        a = torch.load(requeued / name, map_location="cpu", weights_only=True)["state_dict"]
        b = torch.load(alone / name, map_location="cpu", weights_only=True)["state_dict"]
        assert a.keys() == b.keys()
        differ += [f"{name}:{k}" for k in a if not torch.equal(a[k], b[k])]
    assert not differ, differ[:5]
