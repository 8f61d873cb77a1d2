"""An output never overlaps an input: ``core.fileio.check_out_apart`` and every command's use.

Table-driven: every command x every input path it reads, given as its ``--out`` (the same
path, a symlink to it, a ``..`` path, the directory holding it, a new path under a symlink
into it), with and without ``--force``. Each is refused with exit 2 and one line naming the
input, and nothing under the test's directory changes (a hash of the whole tree).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from core.errors import InputError
from core.fileio import check_out_apart
from variformer.cli import main

# ------------------------------------------------------------------ the helper itself


@pytest.fixture()
def data(tmp_path):
    d = tmp_path / "a" / "data"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x.tsv").write_text("x\n")
    return d


@pytest.mark.parametrize(
    ("out", "relation"),
    [
        ("a/data", "is the same path as"),
        ("a/data/", "is the same path as"),
        ("a/data/sub/new.tsv", "lies inside"),  # does not exist yet
        ("a/data/new/deeper", "lies inside"),
        ("a", "contains"),
        (".", "contains"),
        ("a/other/../data", "is the same path as"),
        ("a/data/sub/..", "is the same path as"),
    ],
)
def test_overlap_is_refused_with_both_paths(tmp_path, data, monkeypatch, out, relation):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        check_out_apart(out, {"--dataset": "a/data"})
    msg = str(err.value)
    assert "\n" not in msg
    assert f"--out {out}" in msg and relation in msg and "--dataset a/data" in msg


def test_symlinks_are_resolved(tmp_path, data):
    link = tmp_path / "link"
    link.symlink_to(data, target_is_directory=True)
    for out in (link, link / "new", link / "sub" / "x.tsv"):
        with pytest.raises(InputError, match=r"\(= .*a/data"):
            check_out_apart(out, {"--dataset": data})
    # an input given through a link is the place the link points at
    with pytest.raises(InputError, match="same path"):
        check_out_apart(data, {"--dataset": link})
    # a link beside the input, pointing elsewhere, is apart
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "a" / "out").symlink_to(elsewhere, target_is_directory=True)
    check_out_apart(tmp_path / "a" / "out", {"--dataset": data})


def test_siblings_missing_inputs_and_names_are_apart(tmp_path, data):
    (tmp_path / "a" / "data2").mkdir()
    check_out_apart(tmp_path / "a" / "data2", {"--dataset": data})  # a common name prefix
    check_out_apart(tmp_path / "a" / "data.out", {"--dataset": data})
    check_out_apart(tmp_path / "a" / "da", {"--dataset": data})
    check_out_apart(data, {"--runs": tmp_path / "missing", "--x": None})  # nothing to destroy
    check_out_apart(data, {"--enformer": "EleutherAI/enformer-official-rough"})  # a hub id
    check_out_apart(data, {})


def test_every_path_of_a_list_is_checked(tmp_path, data):
    vcfs = [tmp_path / "v1.vcf.gz", data / "sub" / "x.tsv"]
    vcfs[0].write_text("")
    with pytest.raises(InputError, match=r"--vcf .*x\.tsv"):
        check_out_apart(data, {"--vcf": vcfs, "--fasta": None})


def test_the_flag_is_named(tmp_path, data):
    with pytest.raises(InputError, match=r"^--job-dir .* give --job-dir a path"):
        check_out_apart(data / "slurm", {"--dataset": data}, flag="--job-dir")


# ------------------------------------------------------------------ every command

#: stand-in inputs, each in its own directory (so "the directory holding it" holds only it)
FILES = {
    "vcf": "cohort.vcf.gz", "fasta": "ref.fa", "gtf": "genes.gtf",
    "expression": "expression.bed.gz", "finemap": "finemap.txt", "chromhmm": "chromhmm.bed",
    "truth": "truth.tsv", "samples": "samples.txt", "test_samples": "test_samples.txt",
    "genes": "genes.txt", "genes2": "genes2.txt", "tpm": "tpm.gct", "counts": "counts.gct",
    "predictions": "predictions.tsv", "meme": "motifs.meme", "variants": "variants.tsv",
    "config": "my.yaml", "db": "model.db", "covariance": "model.txt.gz", "gwas": "gwas.tsv",
    "ismtable": "variformer.tsv",
}  # fmt: skip
DIRS = {
    "dataset": "data", "dataset2": "data2", "runs": "runs", "run": "run", "baselines": "BL",
    "ism": "ISM", "analysis": "AN", "eval": "EVAL", "enformer": "weights",
}  # fmt: skip

#: command -> (argv head, [(flag, input, format)], extra args, output flag)
SPECS = {
    "prep": (["prep"], [("--vcf", "vcf"), ("--fasta", "fasta"), ("--annotation", "gtf"),
             ("--expression", "expression"), ("--samples", "samples"),
             ("--test-samples", "test_samples"), ("--genes-file", "genes")], [], "--out"),
    "normalize": (["normalize"], [("--tpm", "tpm"), ("--counts", "counts"),
                  ("--annotation", "gtf"), ("--samples", "samples")], [], "--out"),
    "finetune": (["finetune"], [("--dataset", "dataset")],
                 ["--gene", "BTNL3", "--fold", "0", "--config", "tiny"], "--out"),
    "slurm finetune": (["slurm", "finetune"], [("--dataset", "dataset")], ["--gene", "BTNL3"],
                       "--out"),
    "slurm finetune --job-dir": (["slurm", "finetune"], [("--dataset", "dataset")],
                                 ["--gene", "BTNL3", "--out", "{tmp}/runs_out"], "--job-dir"),
    "slurm baselines": (["slurm", "baselines"], [("--dataset", "dataset")],
                        ["--gene", "BTNL3"], "--out"),
    "slurm all": (["slurm", "all"], [("--dataset", "dataset"), ("--genes-file", "genes")], [],
                  "--runs"),
    "baselines": (["baselines"], [("--dataset", "dataset")], [], "--out"),
    "select-genes": (["select-genes"], [("--baselines", "baselines"),
                     ("--pool-genes-file", "genes"), ("--test-pool-genes-file", "genes2")], [],
                     "--out"),
    "evaluate": (["evaluate"], [("--dataset", "dataset"), ("--test-dataset", "dataset2"),
                 ("--runs", "runs"), ("--baselines", "baselines"), ("--enformer", "enformer"),
                 ("--genes-file", "genes")], [], "--out"),
    "ism --run": (["ism"], [("--run", "run"), ("--dataset", "dataset"),
                  ("--genes-file", "genes")], [], "--out"),
    "ism --runs": (["ism"], [("--runs", "runs"), ("--dataset", "dataset")], [], "--out"),
    "score-variants": (["score-variants"], [("--runs", "runs"), ("--vcf", "vcf"),
                       ("--dataset", "dataset"), ("--genes-file", "genes")], [], "--out"),
    "ism --enformer": (["ism"], [("--enformer", "enformer"), ("--dataset", "dataset")], [],
                       "--out"),
    "motifs": (["motifs"], [("--dataset", "dataset"), ("--analysis", "analysis"),
               ("--variants", "variants"), ("--meme", "meme"), ("--genes-file", "genes")], [],
               "--out"),
    "analyze": (["analyze"], [("--dataset", "dataset"), ("--ism", "ism"),
                ("--baselines", "baselines"), ("--runs", "runs"),
                ("--predictions", "predictions", "m={}"), ("--finemap", "finemap"),
                ("--chromhmm", "chromhmm"), ("--truth", "truth"), ("--meme", "meme"),
                ("--genes-file", "genes")], [], "--out"),
    "report": (["report"], [("--analysis", "analysis"), ("--eval", "eval")], [], "--out"),
    "demo": (["demo"], [("--config", "config")], [], "--out"),
    "export predictdb --baselines": (["export", "predictdb"], [("--dataset", "dataset"),
                                     ("--baselines", "baselines"), ("--genes-file", "genes")], [],
                                     "--out"),
    "export predictdb --ism": (["export", "predictdb"], [("--dataset", "dataset"),
                               ("--ism", "ismtable")], [], "--out"),
    "twas": (["twas"], [("--db", "db"), ("--covariance", "covariance"), ("--gwas", "gwas"),
             ("--genes-file", "genes")], [], "--out"),
    "predict --runs": (["predict"], [("--runs", "runs"), ("--vcf", "vcf"), ("--dataset", "dataset"),
                       ("--genes-file", "genes")], [], "--out"),
    "predict --baselines": (["predict"], [("--baselines", "baselines"), ("--vcf", "vcf")], [],
                            "--out"),
}  # fmt: skip

WAYS = ["same", "symlink", "dotdot", "holding dir", "under a linked dir"]
NO_FORCE = {"slurm"}  # writes a script and a task list beside existing runs: no --force

CASES = [
    pytest.param(command, item[0], way, force, id=f"{command} {item[0]} {way}{' --force' * force}")
    for command, (head, items, _, _) in SPECS.items()
    for item in items
    for way in WAYS
    if not (way == "under a linked dir" and item[1] in FILES)
    for force in (False, True)
    if not (force and head[0] in NO_FORCE)
]


def _inputs(tmp: Path, small_dataset: Path) -> dict[str, Path]:
    """Every stand-in input under ``tmp``: the real small dataset and cohort files, copied."""
    cohort = small_dataset.parent / "cohort"
    paths = {}
    for key, name in FILES.items():
        path = tmp / f"in_{key}" / name
        path.parent.mkdir()
        src = cohort / name
        if src.is_file():
            shutil.copy(src, path)
        else:
            path.write_text(f"{key}\n")
        paths[key] = path
    for key, name in DIRS.items():
        path = tmp / f"in_{key}" / name
        if key.startswith("dataset"):
            shutil.copytree(small_dataset, path)
        else:
            (path / "sub").mkdir(parents=True)
            (path / "sub" / "summary.json").write_text("{}\n")
        paths[key] = path
    return paths


def _tree_hash(root: Path) -> str:
    """Names, file bytes and link targets of everything under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            h.update(str(p.relative_to(root)).encode())
            if p.is_symlink():
                h.update(b"->" + os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def _out(way: str, target: Path, tmp: Path) -> str:
    if way == "same":
        return str(target)
    if way == "symlink":
        link = tmp / "link"
        link.symlink_to(target, target_is_directory=target.is_dir())
        return str(link)
    if way == "dotdot":  # through another input's directory and back
        return str(tmp / "in_samples" / ".." / target.parent.name / target.name)
    if way == "holding dir":
        return str(target.parent)
    link = tmp / "linked"  # a new path whose parent is a symlink into the input
    link.symlink_to(target, target_is_directory=True)
    return str(link / "new")


@pytest.mark.parametrize(("command", "flag", "way", "force"), CASES)
def test_an_out_overlapping_an_input_is_refused(
    tmp_path, small_dataset, capsys, command, flag, way, force
):
    head, items, extra, out_flag = SPECS[command]
    paths = _inputs(tmp_path, small_dataset)
    argv = list(head)
    for flag_, key, *fmt in items:
        argv += [flag_, (fmt[0] if fmt else "{}").format(paths[key])]
    argv += [a.format(tmp=tmp_path) for a in extra]
    key = {f: k for f, k, *_ in items}[flag]
    argv += [out_flag, _out(way, paths[key], tmp_path)] + ["--force"] * force
    before = _tree_hash(tmp_path)

    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f" {flag} {paths[key]}" in lines[0] and f"give {out_flag} a path" in lines[0], err
    assert _tree_hash(tmp_path) == before


def test_every_command_with_inputs_is_in_the_table():
    from variformer.cli import COMMANDS

    # simulate reads no input path: its --out cannot overlap one
    assert {s.split()[0] for s in SPECS} | {"simulate"} == set(COMMANDS)


# ------------------------------------------------------------------ runs roots stay allowed


def test_a_runs_root_may_exist_and_accumulate(tmp_path, small_dataset, capsys):
    runs = tmp_path / "runs"
    (runs / "OTHER" / "fold0").mkdir(parents=True)
    argv = ["slurm", "finetune", "--dataset", str(small_dataset), "--gene", "BTNL3",
            "--folds", "0", "--out", str(runs)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert (runs / "OTHER" / "fold0").is_dir() and (runs / "slurm").is_dir()
    bl = tmp_path / "BL"
    (bl / "lasso").mkdir(parents=True)
    argv = ["baselines", "--dataset", str(small_dataset), "--gene", "BTNL3", "--fold", "0",
            "--out", str(bl), "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert (bl / "lasso").is_dir() and (bl / "elastic_net" / "BTNL3" / "fold0").is_dir()
