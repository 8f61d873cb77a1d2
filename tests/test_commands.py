"""The finetune and demo commands as users meet them: help, presets, outputs, logs, datasets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from core.errors import InputError
from tests.fakes import ROOT
from variformer.cli import build_parser, main


@pytest.fixture
def dataset(small_dataset):
    return small_dataset


def _help(command: str) -> str:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


def test_finetune_help_says_what_the_default_downloads_and_names_the_cpu_preset():
    text = _help("finetune")
    assert (
        "downloads the pre-trained Enformer" in text
        and "EleutherAI/enformer-official-rough" in text
    )
    assert "--config tiny` is the CPU preset" in text
    for flag in ("--gene", "--genes", "--genes-file", "--progress", "--no-progress"):
        assert flag in text


def test_demo_help_explains_every_option():
    text = _help("demo")
    for phrase in (
        "--people PEOPLE people in the simulated cohort",
        "--genes N number of genes to simulate",
        "--fold FOLD cross-validation fold",
        "--seed SEED seed of the simulation",
    ):
        assert phrase in text


def test_config_names_a_packaged_preset(tmp_path):
    from variformer.config import load_config, resolve_config_path

    assert resolve_config_path("tiny") == ROOT / "configs" / "tiny.yaml"
    assert load_config("tiny") == load_config(ROOT / "configs" / "tiny.yaml")
    with pytest.raises(InputError, match=r"not a preset \(default, model_full, tiny\)"):
        load_config("tinyy")


@pytest.mark.parametrize("kind", ["under a file", "dangling symlink"])
def test_unwritable_out_is_refused_before_training(tmp_path, dataset, capsys, kind):
    if kind == "under a file":
        (tmp_path / "f").write_text("x")
        out, expected = tmp_path / "f" / "runs", "is a file"
    else:
        (tmp_path / "link").symlink_to(tmp_path / "gone")
        out, expected = tmp_path / "link", "dangling symlink"
    argv = ["finetune", "--dataset", str(dataset), "--gene", "BTNL3", "--fold", "0"]
    assert main([*argv, "--config", "tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "gone").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_out_is_refused_before_training(tmp_path, dataset, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        argv = ["finetune", "--dataset", str(dataset), "--gene", "BTNL3", "--fold", "0"]
        assert main([*argv, "--config", "tiny", "--out", str(out)]) == 2
        assert "cannot write" in capsys.readouterr().err
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("srun_on_path", [False, True], ids=["plain", "srun on PATH"])
def test_logs_are_one_line_per_epoch_without_lightning_chatter(tmp_path, dataset, srun_on_path):
    """Not a terminal: no progress bars, one line per epoch, no start-up noise or warnings.

    With ``srun`` on PATH (any cluster login node) but outside a SLURM job, Lightning's own
    environment detection would print its "srun is available but not used" hint first.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in [k for k in env if k.startswith("SLURM_")]:
        del env[name]
    if srun_on_path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        srun = bin_dir / "srun"
        srun.write_text("#!/bin/sh\necho fake srun must not be called >&2\nexit 1\n")
        srun.chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        assert shutil.which("srun", path=env["PATH"]) == str(srun)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "variformer.cli",
            "finetune",
            "--dataset",
            str(dataset),
            "--genes",
            "BTNL3",
            "ZFP57",
            "--fold",
            "1",
            "--config",
            "tiny",
            "--out",
            str(tmp_path / "runs"),
            "training.max_epochs=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], done.stderr
    assert "tune_r2_mean" in lines[0] and "\r" not in done.stderr
    for noise in ("GPU available", "TPU available", "Tip:", "| Name", "Warning", "warn", "srun"):
        assert noise not in done.stderr + done.stdout
    assert "test R2" in done.stdout
    assert (tmp_path / "runs").is_dir() and len(list((tmp_path / "runs").iterdir())) == 1


@pytest.mark.parametrize(
    "name", ["carriers.npz", "variants.tsv", "reference.npy", "splits.tsv", "genes.tsv"]
)
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_dataset_fails_on_open_before_training(tmp_path, dataset, name, damage):
    from data_prep import open_dataset
    from variformer.finetune import finetune

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    path = broken / name
    if damage == "missing":
        path.unlink()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="re-run `variformer prep`") as err:
        open_dataset(broken)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="re-run `variformer prep`"):
        finetune(broken, genes=["BTNL3"], fold=0, config=_tiny(), out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def _tiny():
    from variformer.config import load_config

    return load_config("tiny")


def test_read_only_out_is_refused_before_training_even_as_root(
    tmp_path, dataset, capsys, monkeypatch
):
    """Root ignores directory permissions, so the file system's refusal is simulated."""
    import pathlib

    real_touch = pathlib.Path.touch

    def read_only_touch(self, *args, **kwargs):
        if self.parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_touch(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "touch", read_only_touch)
    built = []
    monkeypatch.setattr(
        "variformer.finetune.build_model", lambda config: built.append(config) or 1 / 0
    )
    argv = ["finetune", "--dataset", str(dataset), "--gene", "BTNL3", "--fold", "0"]
    assert main([*argv, "--config", "tiny", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Permission denied" in err and not built
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "LightningEnvironment"),
        ({"SLURM_JOB_ID": "7"}, "LightningEnvironment"),  # sbatch without a job step
        (
            {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "bash"},
            "LightningEnvironment",
        ),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "vf"}, "SLURMEnvironment"),
    ],
)
def test_cluster_environment_is_slurm_only_inside_a_job_and_never_hints(
    tmp_path, monkeypatch, environ, expected
):
    """The environment Lightning gets: SLURM's (auto-requeue on SIGUSR1) inside a job step, the
    plain local one outside; with ``srun`` on PATH neither path warns."""
    import warnings

    from variformer.trainer import cluster_environment

    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = cluster_environment()
    assert type(env).__name__ == expected
    if expected == "SLURMEnvironment":
        # requeueing is ExactResume's (a step-boundary checkpoint), not Lightning's mid-step hpc_ckpt
        assert not env.auto_requeue and env.world_size() == 1
