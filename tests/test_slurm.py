"""``variformer slurm finetune``: the array script resolves each task's gene and fold."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shlex
import shutil
import subprocess

import pytest

from core.errors import InputError
from variformer import slurm
from variformer.commands import slurm as slurm_command

GENES = ["BTNL3", "ZFP57", "PPIF"]


@pytest.fixture
def dataset(small_dataset):
    return small_dataset


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


@pytest.fixture
def job(tmp_path, capsys, dataset):
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(GENES) + "\n")
    args = parse(
        [
            "finetune",
            "--dataset",
            str(dataset),
            "--genes-file",
            str(genes_file),
            "--folds",
            "0",
            "2",
            "--job-dir",
            str(tmp_path / "jobs"),
            "--out",
            str(tmp_path / "runs"),
            "--partition",
            "gpu",
            "--time",
            "04:00:00",
            "--gpus",
            "1",
            "--mem",
            "64G",
            "training.max_epochs=3",
        ]
    )
    assert slurm_command.main(args) == 0
    printed = capsys.readouterr().out
    return tmp_path, printed


def test_script_and_tasks_are_written_and_printed(job):
    tmp_path, printed = job
    script = tmp_path / "jobs" / "finetune_array.sbatch"
    text = script.read_text()
    assert text in printed
    assert "#SBATCH --array=0-5\n" in text  # 3 genes x 2 folds
    for line in (
        "#SBATCH --requeue",
        "#SBATCH --signal=SIGUSR1@90",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --mem=64G",
    ):
        assert line in text.splitlines()
    assert "{{" not in text
    tasks = (tmp_path / "jobs" / "tasks.tsv").read_text().splitlines()
    assert tasks == [
        "gene\tfold",
        "BTNL3\t0",
        "BTNL3\t2",
        "ZFP57\t0",
        "ZFP57\t2",
        "PPIF\t0",
        "PPIF\t2",
    ]
    assert (tmp_path / "jobs" / "logs").is_dir()


@pytest.mark.parametrize(
    ("task", "gene", "fold"), [(0, "BTNL3", "0"), (3, "ZFP57", "2"), (4, "PPIF", "0")]
)
def test_task_id_resolves_gene_and_fold(job, task, gene, fold):
    tmp_path, _ = job
    done = run_task(tmp_path / "jobs" / "finetune_array.sbatch", task)
    assert done.returncode == 0, done.stderr
    command = done.stdout.strip().splitlines()[-1].split()
    assert command[0] == "finetune"
    assert command[command.index("--gene") + 1] == gene
    assert command[command.index("--fold") + 1] == fold
    assert command[command.index("--out") + 1] == str(tmp_path / "runs")
    # the dataset path with a space survives quoting as one argument
    assert done.stdout.count("small data") == 1
    assert command[-1] == "training.max_epochs=3"


def test_finished_runs_are_left_to_skip_finished_and_bad_ids_fail(job):
    """Whether a finished run is done is decided by `finetune --skip-finished`, which checks
    the inputs it was made from (a bare summary.json is no longer taken as done)."""
    tmp_path, _ = job
    script = tmp_path / "jobs" / "finetune_array.sbatch"
    run_dir = tmp_path / "runs" / "ZFP57" / "fold2"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text("{}")
    done = run_task(script, 3)
    command = done.stdout.strip().splitlines()[-1].split()
    assert done.returncode == 0 and "--skip-finished" in command and "--gene" in command
    assert run_task(script, 6).returncode != 0  # only tasks 0..5 exist
    no_id = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=no_id, check=False
    )
    assert done.returncode != 0 and "SLURM_ARRAY_TASK_ID" in done.stderr


def test_multi_gpu_tasks_run_ddp(tmp_path, dataset):
    job = slurm.write_finetune_array(
        tmp_path,
        runs=tmp_path / "runs",
        dataset=dataset,
        genes=["ZFP57"],
        folds=[0],
        gpus=4,
        max_parallel=10,
    )
    assert "#SBATCH --array=0-0%10" in job.text and "#SBATCH --ntasks-per-node=4" in job.text
    assert "--devices 4 --strategy ddp" in job.text


def test_submit_needs_sbatch(job, monkeypatch):
    tmp_path, _ = job
    script = tmp_path / "jobs" / "finetune_array.sbatch"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="sbatch is not on PATH"):
        slurm.submit(script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text('#!/bin/sh\necho "Submitted batch job 42 ($1)"\n')
    fake.chmod(0o755)
    monkeypatch.setenv(
        "PATH", f"{bin_dir}{os.pathsep}{os.path.dirname(shutil.which('bash') or '/bin/bash')}"
    )
    assert slurm.submit(script) == f"Submitted batch job 42 ({script})"


def test_bad_config_overrides_fail_before_writing(tmp_path, dataset):
    args = parse(
        [
            "finetune",
            "--dataset",
            str(dataset),
            "--genes",
            "BTNL3",
            "--out",
            str(tmp_path / "runs"),
            "training.nope=1",
        ]
    )
    with pytest.raises(InputError, match="unknown config key"):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--genes", "BTNL3", "NOPE"], "not in the dataset"),
        (
            ["--genes", "BTNL3", "--folds", "7"],
            r"fold 7 does not exist; the dataset has folds 0\.\.2",
        ),
    ],
)
def test_unknown_genes_and_folds_fail_before_writing(tmp_path, dataset, extra, message):
    args = parse(["finetune", "--dataset", str(dataset), "--out", str(tmp_path / "runs"), *extra])
    with pytest.raises(InputError, match=message):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_fails_before_writing(tmp_path):
    args = parse(
        [
            "finetune",
            "--dataset",
            str(tmp_path / "nope"),
            "--gene",
            "BTNL3",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    with pytest.raises(InputError, match="nope"):
        slurm_command.main(args)
    assert not (tmp_path / "runs").exists()


def test_script_runs_this_variformer_by_absolute_path(tmp_path, dataset, capsys):
    """A batch job does not see the venv's PATH: the script names the interpreter itself."""
    args = parse(
        ["finetune", "--dataset", str(dataset), "--gene", "PPIF", "--out", str(tmp_path / "runs")]
    )
    assert slurm_command.main(args) == 0
    script = tmp_path / "runs" / "slurm" / "finetune_array.sbatch"  # job dir under the runs root
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
    # --command overrides it
    args = parse(
        [
            "finetune",
            "--dataset",
            str(dataset),
            "--gene",
            "PPIF",
            "--out",
            str(tmp_path / "runs"),
            "--command",
            "'/opt/my env/bin/variformer'",  # shell words: quote a path with a space
        ]
    )
    assert slurm_command.main(args) == 0
    done = run_task(script, 0, VARIFORMER="")
    assert done.returncode != 0 and "/opt/my env/bin/variformer" in done.stderr
