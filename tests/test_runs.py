"""core.runs: the run-directory contract (plan, partial, publish, read back, find)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from core import runs
from core.errors import InputError
from core.tables import predictions_table, write_predictions


def _write_run(root, name, fold, *, kind="baseline", force=False):
    paths = runs.plan_run(root, name, fold, force=force)
    work = runs.open_partial(paths)
    table = predictions_table(
        ["s1", "s2", "s3"], gene=name, split="test", observed=[1.0, 2.0, 3.0], predicted=[1, 2, 2]
    )
    write_predictions(table, work / runs.PREDICTIONS)
    runs.write_config(work, {"model": {"alpha": 0.5}})
    runs.write_summary(
        work, {"kind": kind, "name": name, "fold": fold, "r2": float("nan"), "n": np.int64(3)}
    )
    return runs.publish_run(paths, force=force), table


def test_layout_publish_and_read_back(tmp_path):
    paths = runs.plan_run(tmp_path, "BTNL3", 2)
    assert paths.final == tmp_path / "BTNL3" / "fold2"
    assert paths.partial == tmp_path / "BTNL3" / "fold2.partial" and not paths.resuming
    assert list(tmp_path.iterdir()) == []  # planning creates nothing
    final, table = _write_run(tmp_path, "BTNL3", 2)
    assert final == paths.final and not paths.partial.exists()
    run = runs.read_run(final)
    assert (run.kind, run.name, run.fold) == ("baseline", "BTNL3", 2)
    assert run.summary["r2"] is None and run.summary["n"] == 3  # NaN -> null, numpy -> int
    assert run.config == {"model": {"alpha": 0.5}}
    assert run.predictions["predicted"].tolist() == table["predicted"].tolist()


def test_finished_run_needs_force_and_force_replaces_it(tmp_path):
    final, _ = _write_run(tmp_path, "G", 0)
    (final / "marker").write_text("old")
    with pytest.raises(InputError, match="--force"):
        runs.plan_run(tmp_path, "G", 0)
    _write_run(tmp_path, "G", 0, force=True)
    assert not (final / "marker").exists() and (final / runs.SUMMARY).is_file()


def test_interrupted_run_is_resumed_and_never_found(tmp_path):
    _write_run(tmp_path, "A", 0)
    paths = runs.plan_run(tmp_path, "A", 1)
    runs.open_partial(paths)
    (paths.partial / "last.ckpt").write_bytes(b"x")
    again = runs.plan_run(tmp_path, "A", 1)
    assert again.resuming and runs.open_partial(again) == paths.partial
    assert (paths.partial / "last.ckpt").read_bytes() == b"x"  # reused, not emptied
    with pytest.raises(InputError, match="not finished"):
        runs.publish_run(again)
    with pytest.raises(InputError, match="unfinished run"):
        runs.read_run(paths.partial)
    # a summary in a partial or hidden directory does not make a complete run
    runs.write_summary(paths.partial, {"kind": "baseline", "name": "A", "fold": 1})
    hidden = tmp_path / "A" / ".fold3.tmp-1"
    hidden.mkdir()
    runs.write_summary(hidden, {"kind": "baseline", "name": "A", "fold": 3})
    _write_run(tmp_path / "nested", "B", 0, kind="finetune")
    found = list(runs.find_runs(tmp_path))
    assert [(r.name, r.fold) for r in found] == [("A", 0), ("B", 0)]
    assert [r.name for r in runs.find_runs(tmp_path, kind="finetune")] == ["B"]


def test_read_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        runs.read_run(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match=r"has no summary\.json"):
        runs.read_run(tmp_path / "x")
    (tmp_path / "x" / runs.SUMMARY).write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        runs.read_run(tmp_path / "x")
    with pytest.raises(InputError, match="plain directory name"):
        runs.plan_run(tmp_path, "a/b", 0)


def test_unwritable_locations_are_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        runs.plan_run(blocker / "runs", "G", 0)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing-target")
    with pytest.raises(InputError, match="dangling symlink"):
        runs.plan_run(dangling, "G", 0)
    with pytest.raises(InputError, match="dangling symlink"):
        runs.plan_run(dangling / "deeper", "G", 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "file"]


def test_provenance_fingerprints_inputs(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    (data / "dataset.json").write_text('{"format": 1}')
    vcf = tmp_path / "a.vcf"
    vcf.write_bytes(b"##fileformat=VCFv4.2\n")
    prov = runs.provenance({"dataset": data, "vcf": vcf, "memory": object()})
    assert prov["inputs"]["dataset"]["sha256"] == hashlib.sha256(b'{"format": 1}').hexdigest()
    assert prov["inputs"]["vcf"]["sha256"] == hashlib.sha256(vcf.read_bytes()).hexdigest()
    assert prov["inputs"]["memory"] == {"path": None, "type": "object", "sha256": None}
    assert {"python", "numpy", "scikit-learn"} <= set(prov["versions"])
    json.dumps(prov)


def test_run_name():
    assert runs.run_name(["BTNL3"]) == "BTNL3"
    assert runs.run_name(["A", "B"], name="pair") == "pair"
    digest = hashlib.sha1(b"A\nB").hexdigest()[:8]
    assert runs.run_name(["A", "B"]) == f"2genes-{digest}"
