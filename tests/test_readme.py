"""The README's commands work as printed: its walkthrough block runs on the small cohort, and
every other `variformer ...` line in its shell blocks parses (flags that exist, values that fit)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _commands(block: str) -> list[str]:
    """Logical lines (backslash continuations joined), comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.split(" # ")[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _variformer_argvs(text: str) -> list[list[str]]:
    argvs = []
    for block in _bash_blocks(text):
        for line in _commands(block):
            for part in line.split("&&"):
                words = shlex.split(part)
                if words and Path(words[0]).name == "variformer":
                    argvs.append(words[1:])
    return argvs


def test_every_readme_command_parses():
    from variformer.cli import COMMANDS, build_parser

    argvs = _variformer_argvs(README.read_text())
    assert len(argvs) >= 20  # the walkthrough, the real workflow, the quickstart demo
    for argv in argvs:
        # brace expansion as bash does it (`chr{1..22}`): one path is enough to parse
        argv = [re.sub(r"\{(\d+)\.\.\d+\}", r"\1", a) for a in argv]
        assert argv[0] in COMMANDS, argv
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit as err:  # argparse's exit on an unknown flag or a bad value
            pytest.fail(f"README command does not parse: variformer {shlex.join(argv)} ({err})")


@pytest.mark.slow
def test_walkthrough_runs_exactly_as_printed(tmp_path):
    text = README.read_text()
    block = re.search(
        r"<!-- walkthrough:begin -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", text, re.S
    )
    assert block, "the README lost its walkthrough block"
    script = "set -euo pipefail\n" + block.group(1)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for path in ("data/splits.tsv", "BL/elastic_net/summary.tsv", "runs/BTNL3/fold0/summary.json",
                 "EVAL/metrics.tsv", "ISM/variformer.tsv", "AN/hsvs.tsv", "AN/truth_auroc.tsv",
                 "AN/attributions.tsv", "REPORT/index.html"):  # fmt: skip
        assert (tmp_path / path).is_file(), path


def test_offline_weights_recipe_runs_as_printed(tmp_path):
    """The README's one-line download-and-save of Enformer's weights, with the hub download
    swapped for a tiny Enformer (no network here): it saves, and `load_enformer` reads it back."""
    lines = [
        line
        for block in _bash_blocks(README.read_text())
        for line in _commands(block)
        if "save_pretrained" in line
    ]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    assert words[:2] == ["python", "-c"]
    hub = "Enformer.from_pretrained('EleutherAI/enformer-official-rough')"
    assert hub in words[2]
    tiny = (
        "Enformer.from_hparams(dim=48, depth=1, heads=2, attn_dim_key=8, dim_divisible_by=4, "
        "output_heads={'human': 6}, target_length=-1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", words[2].replace(hub, tiny)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    from variformer.enformer import load_enformer

    enformer = load_enformer(tmp_path / "weights" / "enformer")
    assert enformer.dim == 48 and dict(enformer.config.output_heads) == {"human": 6}
