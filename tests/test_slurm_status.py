"""``variformer slurm status``, ``resubmit-failed`` and ``all`` against a fake SLURM
(:mod:`tests.fake_slurm`): task states from run directories, logs and the queue; resubmitting
just the failed and missing tasks; a chain's stages and their dependencies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests import fake_slurm
from variformer import cli, slurm_status

GENES = ["BTNL3", "ZFP57", "PPIF"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return fake_slurm.install(tmp_path / "fakebin", monkeypatch)


def write_log(sub, index, *attempts, job_id="100"):
    """A task's appended log: each attempt is (printed lines, exit status or None)."""
    text = ""
    for n, (lines, status) in enumerate(attempts):
        text += f"### attempt {n} | host n1 | 2025-01-01T00:00:00 | job {job_id}_{index} | x\n"
        text += "".join(f"{x}\n" for x in lines)
        if status is not None:
            text += f"### exit {status} | 2025-01-01T00:01:00\n"
    path = sub / "logs" / f"variformer-finetune_{job_id}_{index}.out"
    path.write_text(text)
    return path


def finish(runs, gene, fold):
    run = runs / gene / f"fold{fold}"
    run.mkdir(parents=True)
    (run / "summary.json").write_text("{}")


def submitted(tmp_path, dataset, capsys, *more):
    argv = ["slurm", "finetune", "--dataset", str(dataset), "--genes", *GENES, "--folds", "0",
            "1", "--out", str(tmp_path / "runs"), "--job-dir", str(tmp_path / "jobs"),
            "--submit", "--parsable", *more]  # fmt: skip
    assert cli.main(argv) == 0
    job_id = capsys.readouterr().out.strip()
    return next((tmp_path / "jobs").glob("*-finetune")), job_id


def status(tmp_path, capsys) -> tuple[dict, str]:
    assert cli.main(["slurm", "status", str(tmp_path / "jobs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["what", "gene", "fold", "state"]
    rows = {}
    for line in out[1:-1]:
        _, gene, fold, state, *detail = line.split(maxsplit=4)
        rows[(gene, fold)] = (state, detail[0] if detail else "")
    return rows, out[-1]


def test_status_reads_runs_logs_and_the_queue(tmp_path, small_dataset, fake, capsys):
    sub, job_id = submitted(tmp_path, small_dataset, capsys)
    assert job_id == "100"
    finish(tmp_path / "runs", "BTNL3", 0)  # done: its run is finished
    script = sub / "finetune_array.sbatch"
    fake.queue = [f"100|1|RUNNING|n1|{script}", "100|2|PENDING|(Resources)"]
    write_log(sub, 1, (["epoch 1/5"], None), (["epoch 2/5"], None))  # requeued once
    # failed twice over: a requeued attempt that then ran out of memory; only the last counts
    write_log(sub, 3, (["killed", "slurmstepd: error: *** JOB 100 CANCELLED DUE TO JOB REQUEUE"],
                       None), (["epoch 1/5", "variformer finetune: error: out of memory on "
                                "the GPU; lower the batch size", "bye"], 2))  # fmt: skip
    write_log(sub, 4, (["epoch 1/5", "slurmstepd: error: *** JOB 100 ON n1 CANCELLED AT x "
                        "DUE TO TIME LIMIT ***", "variformer finetune: stopped by SIGTERM",
                        "srun: error: n1: task 0: Exited with exit code 143"], None))  # fmt: skip
    # a reused job id (the controller restarted) running another script is not this task
    fake.queue = [*fake.queue, "100|5|RUNNING|n2|/elsewhere/20250101-000000-finetune/x.sbatch"]
    rows, summary = status(tmp_path, capsys)
    assert rows[("BTNL3", "0")] == ("done", "")
    assert (
        rows[("BTNL3", "1")][0] == "running"
        and "RUNNING on n1, job 100_1, attempt 1" in rows[("BTNL3", "1")][1]
    )
    assert rows[("ZFP57", "0")][0] == "running" and "PENDING" in rows[("ZFP57", "0")][1]
    state, detail = rows[("ZFP57", "1")]
    assert state == "failed" and detail.startswith(
        "exit 2: variformer finetune: error: out of memory"
    )
    state, detail = rows[("PPIF", "0")]
    assert state == "failed" and "DUE TO TIME LIMIT" in detail and "stopped without" in detail
    fake.queue = [*fake.queue, f"100|4|TIMEOUT|(TimeLimit)|{script}"]  # squeue --states=all
    rows, _ = status(tmp_path, capsys)
    assert rows[("PPIF", "0")][1].startswith("TIMEOUT: slurmstepd: error: *** JOB 100")
    assert rows[("PPIF", "1")] == ("missing", "")
    assert summary == "6 tasks: 1 done, 2 running, 2 failed, 1 missing"
    # once the queue forgets the running task, a log without an end line is a failure
    fake.queue = []
    rows, _ = status(tmp_path, capsys)
    assert (
        rows[("BTNL3", "1")][0] == "failed"
        and "stopped without finishing" in rows[("BTNL3", "1")][1]
    )


def test_without_squeue_a_fresh_log_is_running(tmp_path, small_dataset, fake, capsys):
    sub, _ = submitted(tmp_path, small_dataset, capsys)
    fake.down()  # squeue cannot reach the controller
    log = write_log(sub, 0, (["epoch 1/5"], None))
    states = {(s.gene, s.fold): s for s in slurm_status.job_status(tmp_path / "jobs")}
    assert states[("BTNL3", "0")].state == "running"
    old = time.time() - 2 * slurm_status.FRESH_S
    os.utime(log, (old, old))
    assert slurm_status.job_status(tmp_path / "jobs")[0].state == "failed"


def test_a_written_but_unsubmitted_array_is_missing_and_says_how(
    tmp_path, small_dataset, capsys, monkeypatch
):
    argv = ["slurm", "finetune", "--dataset", str(small_dataset), "--gene", "PPIF", "--folds",
            "0", "--out", str(tmp_path / "runs"), "--job-dir", str(tmp_path / "jobs")]  # fmt: skip
    assert cli.main(argv) == 0
    capsys.readouterr()
    rows, summary = status(tmp_path, capsys)
    assert rows[("PPIF", "0")][0] == "missing" and "sbatch " in rows[("PPIF", "0")][1]
    assert summary == "1 tasks: 0 done, 0 running, 0 failed, 1 missing"
    # submitted by hand: the log's name gives the job id that squeue knows it by
    fake = fake_slurm.install(tmp_path / "fakebin", monkeypatch)
    fake.queue = ["345|0|RUNNING|n1"]
    write_log(next((tmp_path / "jobs").iterdir()), 0, (["epoch 1/5"], None), job_id="345")
    rows, _ = status(tmp_path, capsys)
    assert rows[("PPIF", "0")] == ("running", "RUNNING on n1, job 345_0")


def test_resubmit_failed_submits_just_the_failed_and_missing_tasks(
    tmp_path, small_dataset, fake, capsys
):
    first, _ = submitted(tmp_path, small_dataset, capsys, "--mem", "8G", "--config", "tiny")
    for gene, fold in (("BTNL3", 0), ("BTNL3", 1), ("ZFP57", 0)):
        finish(tmp_path / "runs", gene, fold)
    fake.queue = ["100|3|RUNNING|n1"]
    write_log(first, 4, (["Traceback (most recent call last):", "ValueError: bad"], 1))
    assert cli.main(["slurm", "resubmit-failed", str(tmp_path / "jobs"), "--dry-run"]) == 0
    assert capsys.readouterr().out == "would resubmit finetune\n"
    assert len(list((tmp_path / "jobs").iterdir())) == 1
    assert cli.main(["slurm", "resubmit-failed", str(tmp_path / "jobs"), "--parsable"]) == 0
    assert capsys.readouterr().out == "101\n"
    second = next(p for p in (tmp_path / "jobs").iterdir() if p != first)
    assert (second / "tasks.tsv").read_text() == "gene\tfold\nPPIF\t0\nPPIF\t1\n"
    text = (second / "finetune_array.sbatch").read_text()
    assert "#SBATCH --mem=8G" in text and "tiny.yaml" in text and "#SBATCH --array=0-1\n" in text
    assert fake.calls()[-1] == ["--parsable", str(second / "finetune_array.sbatch")]
    # the new submission now speaks for PPIF: its tasks are queued, not failed
    fake.queue = ["100|3|RUNNING|n1", "101|0|PENDING|(Priority)", "101|1|PENDING|(Priority)"]
    rows, summary = status(tmp_path, capsys)
    assert rows[("PPIF", "0")][0] == "running" and "job 101_0" in rows[("PPIF", "0")][1]
    assert summary == "6 tasks: 3 done, 3 running, 0 failed, 0 missing"
    assert cli.main(["slurm", "resubmit-failed", str(tmp_path / "jobs")]) == 0
    assert capsys.readouterr().out.startswith("nothing to resubmit")


CHAIN_ARGS = ["--args", "analyze=--truth truth.tsv", "--stage", "finetune:gpus=1,time=24:00:00",
              "--stage", "ism:gpus=1,sbatch=constraint=a100", "--time", "01:00:00",
              "training.max_epochs=2"]  # fmt: skip


def _what(script):
    return json.loads((Path(script).parent / "submission.json").read_text())["what"]


def chain_argv(tmp_path, dataset, *more):
    names = {"--baselines": "BL", "--selection": "genes", "--runs": "runs", "--eval": "EVAL",
             "--ism": "ISM", "--analysis": "AN", "--report": "REPORT"}  # fmt: skip
    argv = ["slurm", "all", "--dataset", str(dataset), "--genes", *GENES, "--folds", "0", "1",
            "--job-dir", str(tmp_path / "jobs"), "--config", "tiny"]  # fmt: skip
    for flag, name in names.items():
        argv += [flag, str(tmp_path / name)]
    return argv + list(more)


def test_all_chains_every_stage_on_its_own_resources(tmp_path, small_dataset, fake, capsys):
    fake.sinfo = ["g1|gpu*|32|256000|gpu:4"]
    assert cli.main(chain_argv(tmp_path, small_dataset, "--submit", "--parsable", *CHAIN_ARGS)) == 0
    assert capsys.readouterr().out == "107\n"  # the report's job: wait for the whole chain
    subs = {
        json.loads(p.read_text())["what"]: p.parent
        for p in (tmp_path / "jobs").rglob("submission.json")
    }
    order = [
        "elastic_net",
        "ridge",
        "select-genes",
        "finetune",
        "evaluate",
        "ism",
        "analyze",
        "report",
    ]
    assert sorted(subs) == sorted(order)
    calls = {c[-1]: c for c in fake.calls()}
    ids = {what: str(100 + i) for i, what in enumerate(order)}
    expected = {"elastic_net": None, "ridge": None, "select-genes": "afterok:100",
                "finetune": "afterok:102", "evaluate": "afterok:103:100:101",
                "ism": "afterok:103", "analyze": "afterok:105:100:101", "report": "afterok:104:106"}  # fmt: skip
    for what, dependency in expected.items():
        sub = subs[what]
        call = calls[str(next(sub.glob("*.sbatch")))]
        assert (f"--dependency={dependency}" in call) == (dependency is not None), (what, call)
        if dependency is None:
            assert not any(a.startswith("--dependency") for a in call)
        assert json.loads((sub / "submission.json").read_text())["job_id"] == ids[what]
    scripts = {what: next(sub.glob("*.sbatch")).read_text() for what, sub in subs.items()}
    assert (
        "#SBATCH --gpus-per-node=1" in scripts["finetune"]
        and "#SBATCH --time=24:00:00" in scripts["finetune"]
    )
    assert (
        "#SBATCH --constraint=a100" in scripts["ism"]
        and "#SBATCH --time=01:00:00" in scripts["ism"]
    )
    assert "gpus" not in scripts["evaluate"] and "#SBATCH --cpus-per-task=32" in scripts["evaluate"]
    assert "--device cpu" in scripts["evaluate"] and "--device" not in scripts["ism"]
    assert "--truth truth.tsv" in scripts["analyze"] and "--force" in scripts["report"]
    assert str(tmp_path / "genes" / "train_genes.txt") in scripts["finetune"]
    pool = (subs["select-genes"] / "pool_genes.txt").read_text()
    assert (
        pool == "".join(f"{g}\n" for g in GENES)
        and str(subs["select-genes"]) in scripts["select-genes"]
    )


def test_a_chains_unselected_genes_are_skipped_and_left_out_of_status(
    tmp_path, small_dataset, fake, capsys
):
    assert cli.main(chain_argv(tmp_path, small_dataset, "--models", "elastic_net", "--submit")) == 0
    capsys.readouterr()
    finetune = next((tmp_path / "jobs").glob("*-finetune"))
    (tmp_path / "genes").mkdir()
    (tmp_path / "genes" / "train_genes.txt").write_text("ZFP57\n")
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "VARIFORMER": "echo", "VARIFORMER_LAUNCH": ""}
    done = subprocess.run(["bash", str(finetune / "finetune_array.sbatch")], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and "BTNL3 is not among the selected genes" in done.stdout
    states = slurm_status.job_status(tmp_path / "jobs")
    assert {s.gene for s in states if s.what == "finetune"} == {"ZFP57"}


def test_resubmitting_a_chain_reruns_the_stages_stuck_behind_a_failure(
    tmp_path, small_dataset, fake, capsys
):
    argv = chain_argv(tmp_path, small_dataset, "--models", "elastic_net", "--no-select", "--submit")
    assert cli.main(argv) == 0  # elastic_net 100, finetune 101, evaluate 102, ism 103, ...
    capsys.readouterr()
    for gene in GENES:
        for fold in (0, 1):
            finish(tmp_path / "BL" / "elastic_net", gene, fold)
            if gene != "PPIF" or fold == 0:
                finish(tmp_path / "runs", gene, fold)
    finetune = next((tmp_path / "jobs").glob("*-finetune"))
    write_log(finetune, 5, (["variformer finetune: error: disk quota"], 2), job_id="101")
    fake.queue = ["102|0|PENDING|(DependencyNeverSatisfied)", "103|0|PENDING|(DependencyNeverSatisfied)",
                  "104|0|PENDING|(Dependency)", "105|0|PENDING|(Dependency)"]  # fmt: skip
    rows, summary = status(tmp_path, capsys)
    assert rows[("PPIF", "1")][0] == "failed" and "disk quota" in rows[("PPIF", "1")][1]
    assert summary == "16 tasks: 11 done, 2 running, 3 failed, 0 missing"
    assert cli.main(["slurm", "resubmit-failed", str(tmp_path / "jobs")]) == 0
    out = capsys.readouterr().out
    for what, job_id in (("finetune", 106), ("evaluate", 107), ("ism", 108), ("analyze", 109),
                         ("report", 110)):  # fmt: skip
        assert f"resubmitted {what} as job {job_id}\n" in out
    cancelled = sorted(j for c in fake.calls("scancel") for j in c)
    assert cancelled == ["102", "103", "104", "105"]
    deps = {_what(c[-1]): c[1] for c in fake.calls()[-5:]}
    assert deps["evaluate"] == "--dependency=afterok:106"  # elastic_net is done
    assert (
        deps["analyze"] == "--dependency=afterok:108"
        and deps["report"] == "--dependency=afterok:107:109"
    )
    newest = sorted((tmp_path / "jobs").glob("*-finetune*"))[-1]
    assert (newest / "tasks.tsv").read_text() == "gene\tfold\nPPIF\t1\n"
    assert re.search(r"#SBATCH --array=0-0\n", (newest / "finetune_array.sbatch").read_text())
