"""``variformer slurm finetune`` and ``baselines``: frozen submissions, the array script, the
resources it asks for, ``--parsable`` and the refusal of runs made from other inputs.

SLURM itself is faked (:mod:`tests.fake_slurm`); tests/test_slurm_cluster.py runs a real one.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess

import pytest

from core import manifest
from core.errors import InputError
from tests import fake_slurm
from variformer import cli, slurm
from variformer.commands import slurm as slurm_command
from variformer.slurm_cluster import Resources

GENES = ["BTNL3", "ZFP57", "PPIF"]


@pytest.fixture
def dataset(small_dataset):
    return small_dataset


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return fake_slurm.install(tmp_path / "fakebin", monkeypatch)


def parse(argv):
    parser = argparse.ArgumentParser()
    slurm_command.add_arguments(parser)
    return parser.parse_args(argv)


def run_task(script, task_id, **env):
    """Execute the array script like SLURM would for one task, with `echo` as variformer."""
    full_env = {
        **os.environ,
        "SLURM_ARRAY_TASK_ID": str(task_id),
        "VARIFORMER": "echo",
        "VARIFORMER_LAUNCH": "",
        **env,
    }
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=full_env, check=False
    )


def only_submission(job_dir, what="finetune"):
    found = sorted(job_dir.glob(f"*-{what}*"))
    assert len(found) == 1, found
    return found[0]


def finetune_argv(dataset, tmp_path, *more):
    return ["finetune", "--dataset", str(dataset), "--job-dir", str(tmp_path / "jobs"),
            "--out", str(tmp_path / "runs"), *more]  # fmt: skip


@pytest.fixture
def job(tmp_path, capsys, dataset, fake):
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(GENES) + "\n")
    more = ["--genes-file", str(genes_file), "--folds", "0", "2", "--partition", "gpu",
            "--time", "04:00:00", "--gpus", "1", "--mem", "64G", "training.max_epochs=3"]  # fmt: skip
    args = parse(finetune_argv(dataset, tmp_path, *more))
    assert slurm_command.main(args) == 0
    printed = capsys.readouterr().out
    return only_submission(tmp_path / "jobs"), printed


def test_script_and_tasks_are_written_and_printed(job):
    sub, printed = job
    text = (sub / "finetune_array.sbatch").read_text()
    assert text in printed
    assert "#SBATCH --array=0-5\n" in text  # 3 genes x 2 folds
    for line in (
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        "#SBATCH --signal=SIGUSR1@90",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --mem=64G",
        f"#SBATCH --output={sub.resolve()}/logs/%x_%A_%a.out",
    ):
        assert line in text.splitlines()
    assert "{{" not in text
    tasks = (sub / "tasks.tsv").read_text().splitlines()
    assert tasks == ["gene\tfold", "BTNL3\t0", "BTNL3\t2", "ZFP57\t0", "ZFP57\t2", "PPIF\t0",
                     "PPIF\t2"]  # fmt: skip
    assert (sub / "logs").is_dir()
    record = json.loads((sub / "submission.json").read_text())
    assert record["kind"] == "finetune" and record["job_id"] is None and record["n_tasks"] == 6


def test_each_call_is_a_new_submission_and_a_queued_one_keeps_its_tasks(job, tmp_path, dataset):
    """A second call with the same job directory never rewrites the first's task list."""
    first, _ = job
    before = (first / "tasks.tsv").read_text()
    args = parse(finetune_argv(dataset, tmp_path, "--gene", "PPIF", "--folds", "1"))
    assert slurm_command.main(args) == 0
    subs = sorted((tmp_path / "jobs").iterdir())
    assert len(subs) == 2 and (first / "tasks.tsv").read_text() == before
    second = next(s for s in subs if s != first)
    assert (second / "tasks.tsv").read_text() == "gene\tfold\nPPIF\t1\n"
    # each script reads its own task list
    for sub in subs:
        assert (
            f"tasks={shlex.quote(str((sub / 'tasks.tsv').resolve()))}"
            in (sub / "finetune_array.sbatch").read_text()
        )
    done = run_task(first / "finetune_array.sbatch", 5)
    command = done.stdout.strip().splitlines()[-2].split()
    assert command[command.index("--gene") + 1] == "PPIF" and command[-1] == "training.max_epochs=3"


@pytest.mark.parametrize(
    ("task", "gene", "fold"), [(0, "BTNL3", "0"), (3, "ZFP57", "2"), (4, "PPIF", "0")]
)
def test_task_id_resolves_gene_and_fold(job, tmp_path, task, gene, fold):
    sub, _ = job
    done = run_task(sub / "finetune_array.sbatch", task)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    command = lines[-2].split()
    assert command[0] == "finetune"
    assert command[command.index("--gene") + 1] == gene
    assert command[command.index("--fold") + 1] == fold
    assert command[command.index("--out") + 1] == str(tmp_path / "runs")
    # the dataset path with a space survives quoting as one argument
    assert done.stdout.count("small data") == 1
    assert command[-1] == "training.max_epochs=3"


def test_each_attempt_starts_with_a_header_and_a_finished_one_ends_with_its_status(job):
    sub, _ = job
    script = sub / "finetune_array.sbatch"
    done = run_task(script, 2, SLURM_RESTART_COUNT="3", SLURM_ARRAY_JOB_ID="77")
    lines = done.stdout.strip().splitlines()
    header = lines[0].split(" | ")
    assert header[0] == "### attempt 3" and header[1].startswith("host ")
    assert header[3] == "job 77_2" and header[4] == "ZFP57 fold 0"
    assert lines[-1].startswith("### exit 0 | ")
    failed = run_task(script, 2, VARIFORMER="false")
    assert failed.returncode == 1 and failed.stdout.strip().splitlines()[-1].startswith(
        "### exit 1"
    )
    first = run_task(script, 0)
    assert first.stdout.startswith("### attempt 0 | ")  # SLURM_RESTART_COUNT unset: attempt 0


def test_finished_runs_are_left_to_skip_finished_and_bad_ids_fail(job):
    sub, _ = job
    script = sub / "finetune_array.sbatch"
    done = run_task(script, 3)
    command = done.stdout.strip().splitlines()[-2].split()
    assert done.returncode == 0 and "--skip-finished" in command and "--force" not in command
    assert run_task(script, 6).returncode != 0  # only tasks 0..5 exist
    no_id = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=no_id, check=False
    )
    assert done.returncode != 0 and "SLURM_ARRAY_TASK_ID" in done.stderr


def test_resources_default_to_a_cpu_task_with_the_nodes_cpus(tmp_path, dataset, fake, capsys):
    args = parse(finetune_argv(dataset, tmp_path, "--gene", "PPIF", "--folds", "0",
                               "--qos", "long", "--account", "lab", "--sbatch=--constraint=a100",
                               "--sbatch", "exclusive"))  # fmt: skip
    assert slurm_command.main(args) == 0
    text = (only_submission(tmp_path / "jobs") / "finetune_array.sbatch").read_text()
    lines = text.splitlines()
    assert "#SBATCH --cpus-per-task=16" in lines  # the fake sinfo's node
    assert not any("gpus" in x or "gres" in x for x in lines if x.startswith("#SBATCH"))
    assert "--accelerator cpu" in text
    for line in ("--qos=long", "--account=lab", "--constraint=a100", "--exclusive"):
        assert f"#SBATCH {line}" in lines
    # nodes with GPUs: a task asking for one gets its share of the node's CPUs
    fake.sinfo = ["g1|gpu*|32|256000|gpu:a100:4(S:0-1)", "g2|gpu*|64|256000|gpu:8"]
    job = slurm.write_finetune_array(
        tmp_path / "jobs2", runs=tmp_path / "runs", dataset=dataset, tasks=[("PPIF", 0)],
        resources=Resources(gpus=1),
    )  # fmt: skip
    assert "#SBATCH --cpus-per-task=8" in job.text and "--accelerator" not in job.text
    # without sinfo there is no default: SLURM's own applies
    fake.sinfo = []
    job = slurm.write_finetune_array(
        tmp_path / "jobs3", runs=tmp_path / "runs", dataset=dataset, tasks=[("PPIF", 0)]
    )
    assert "#SBATCH --cpus-per-task" not in job.text


@pytest.mark.parametrize(
    ("limit", "seconds", "signal"),
    [("04:00:00", 14400, True), ("2", 120, False), ("4:59", 299, False), ("1-0", 86400, True),
     ("2-12:30", 217800, True), (None, None, True)],
)  # fmt: skip
def test_no_early_signal_under_a_short_time_limit(tmp_path, dataset, fake, limit, seconds, signal):
    """SLURM may send the signal up to 60 s early: under 5 minutes Lightning would get it at
    once, checkpoint and requeue, attempt after attempt."""
    from variformer.slurm_cluster import time_limit_s

    assert time_limit_s(limit) == seconds
    job = slurm.write_finetune_array(
        tmp_path, runs=tmp_path / "runs", dataset=dataset, tasks=[("ZFP57", 0)],
        resources=Resources(time=limit),
    )  # fmt: skip
    assert ("#SBATCH --signal=SIGUSR1@90" in job.text.splitlines()) == signal


def test_multi_gpu_tasks_run_ddp(tmp_path, dataset, fake):
    fake.sinfo = ["g1|gpu*|32|256000|gpu:4"]
    job = slurm.write_finetune_array(
        tmp_path, runs=tmp_path / "runs", dataset=dataset, tasks=[("ZFP57", 0)],
        resources=Resources(gpus=4, max_parallel=10),
    )  # fmt: skip
    assert "#SBATCH --array=0-0%10" in job.text and "#SBATCH --ntasks-per-node=4" in job.text
    assert "--devices 4 --strategy ddp" in job.text
    assert "#SBATCH --cpus-per-task=8" in job.text  # the node's 32 CPUs over its 4 GPUs


def test_submit_parsable_prints_only_the_job_id(tmp_path, dataset, fake, capsys):
    argv = ["slurm", *finetune_argv(dataset, tmp_path, "--gene", "PPIF", "--folds", "0",
                                    "--submit", "--parsable")]  # fmt: skip
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "100\n"
    sub = only_submission(tmp_path / "jobs")
    assert json.loads((sub / "submission.json").read_text())["job_id"] == "100"
    assert fake.calls() == [["--parsable", str(sub / "finetune_array.sbatch")]]
    assert cli.main([*argv[:-2], "--parsable"]) == 2  # --parsable without --submit
    assert "add --submit" in capsys.readouterr().err


def test_a_request_that_fits_no_node_is_refused_in_one_line(tmp_path, dataset, fake, capsys):
    fake.refuse = "allocation failure: Requested node configuration is not available"
    argv = ["slurm", *finetune_argv(dataset, tmp_path, "--gene", "PPIF", "--cpus", "64",
                                    "--submit")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cpus 64" in err[0] and "Requested node configuration" in err[0]
    assert fake.calls() == [] and list((tmp_path / "jobs").iterdir()) == []


def test_submit_needs_sbatch(job, monkeypatch, tmp_path):
    sub, _ = job
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="sbatch is not on PATH"):
        slurm.submit(sub / "finetune_array.sbatch", test=False)


def _finish(run_dir, inputs):
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text('{"kind": "finetune", "name": "x", "fold": 0}')
    manifest.record_inputs(run_dir, inputs)


def test_runs_made_with_another_config_are_refused_or_set_aside(tmp_path, dataset, capsys):
    from variformer.slurm_inputs import task_config

    config = task_config("tiny", ["training.max_epochs=3"])
    fingerprints = manifest.dataset_fingerprints(__import__("data_prep").open_dataset(dataset))
    current = {"dataset": fingerprints, "genes": ["PPIF"], "fold": 0}
    _finish(tmp_path / "runs" / "PPIF" / "fold0", {**current, "config": config.to_dict()})
    other = task_config("tiny", ["training.max_epochs=4"]).to_dict()
    _finish(tmp_path / "runs" / "PPIF" / "fold1", {**current, "fold": 1, "config": other})
    argv = ["slurm", *finetune_argv(dataset, tmp_path, "--gene", "PPIF", "--folds", "0", "1",
                                    "--config", "tiny", "training.max_epochs=3")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "fold1 was made with another config (training.max_epochs differ)" in err
    assert "--force" in err and not (tmp_path / "jobs").exists()
    assert cli.main([*argv, "--force"]) == 0
    sub = only_submission(tmp_path / "jobs")
    assert (sub / ".replaced" / "PPIF" / "fold1" / "summary.json").is_file()
    assert not (tmp_path / "runs" / "PPIF" / "fold1").exists()
    assert (tmp_path / "runs" / "PPIF" / "fold0" / "summary.json").is_file()  # same inputs: kept
    assert "--force" not in (sub / "finetune_array.sbatch").read_text().split("finetune \\")[-1]


def test_bad_config_overrides_fail_before_writing(tmp_path, dataset):
    args = parse(finetune_argv(dataset, tmp_path, "--gene", "BTNL3", "training.nope=1"))
    with pytest.raises(InputError, match="unknown config key"):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "jobs").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--genes", "BTNL3", "NOPE"], "not in the dataset"),
        (["--genes", "BTNL3", "--folds", "7"], r"fold 7 does not exist; the dataset has folds 0\.\.2"),
        (["--genes", "BTNL3", "--gpus", "-1"], "--gpus must be >= 0"),
    ],
)  # fmt: skip
def test_unknown_genes_and_folds_fail_before_writing(tmp_path, dataset, extra, message):
    args = parse(["finetune", "--dataset", str(dataset), "--out", str(tmp_path / "runs"), *extra])
    with pytest.raises(InputError, match=message):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists()


def test_script_runs_this_variformer_by_absolute_path(tmp_path, dataset, fake):
    """A batch job does not see the venv's PATH: the script names the interpreter itself."""
    args = parse(
        ["finetune", "--dataset", str(dataset), "--gene", "PPIF", "--out", str(tmp_path / "runs")]
    )
    assert slurm_command.main(args) == 0
    script = only_submission(tmp_path / "runs" / "slurm") / "finetune_array.sbatch"
    line = next(x for x in script.read_text().splitlines() if x.strip().startswith("variformer=("))
    assert os.path.isabs(shlex.split(line.strip()[len("variformer=(") : -1])[0])
    # with an empty PATH (no venv, no `variformer` on it) the command still runs
    done = subprocess.run(
        [shutil.which("bash"), "-c", f'{line.strip()}\n"${{variformer[@]}}" --version'],
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == importlib.metadata.version("variformer")
    # --command overrides it (shell words: quote a path with a space)
    args = parse(["finetune", "--dataset", str(dataset), "--gene", "PPIF", "--out",
                  str(tmp_path / "runs2"), "--command", "'/opt/my env/bin/variformer'"])  # fmt: skip
    assert slurm_command.main(args) == 0
    script = only_submission(tmp_path / "runs2" / "slurm") / "finetune_array.sbatch"
    done = run_task(script, 0, VARIFORMER="")
    assert done.returncode != 0 and "/opt/my env/bin/variformer" in done.stderr


def test_missing_dataset_fails_before_writing(tmp_path):
    args = parse(["finetune", "--dataset", str(tmp_path / "nope"), "--gene", "BTNL3", "--out",
                  str(tmp_path / "runs")])  # fmt: skip
    with pytest.raises(InputError, match="nope"):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists()
