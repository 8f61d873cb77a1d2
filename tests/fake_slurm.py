"""Fake ``sbatch``, ``squeue``, ``sinfo`` and ``scancel`` on PATH, for the SLURM tests that
need no cluster.

:func:`install` writes them into a directory and returns a :class:`FakeSlurm` that sets what
they answer: ``sinfo`` prints :attr:`FakeSlurm.sinfo` lines (``node|partition|cpus|mem|gres``),
``squeue`` prints :attr:`FakeSlurm.queue` lines (``jobid|task|STATE|reason``), ``sbatch
--test-only`` fails when :attr:`FakeSlurm.refuse` is set, and ``sbatch`` records each call
(``calls()``) and answers job ids 100, 101, ...
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SBATCH = """#!/bin/bash
dir=$(dirname "$0")
echo "$@" >> "$dir/sbatch.calls"
for a in "$@"; do
    if [ "$a" = "--test-only" ]; then
        if [ -s "$dir/refuse" ]; then cat "$dir/refuse" >&2; exit 1; fi
        echo "sbatch: Job 1 to start at now using 1 processors on nodes n1 in partition p" >&2
        exit 0
    fi
done
n=$(cat "$dir/next" 2>/dev/null || echo 100)
echo $((n + 1)) > "$dir/next"
echo "$n;cluster"
"""

CAT = """#!/bin/bash
dir=$(dirname "$0")
echo "$@" >> "$dir/{name}.calls"
cat "$dir/{name}.out" 2>/dev/null
exit 0
"""


class FakeSlurm:
    """The answers of the fake tools in :attr:`bin`."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir

    def _set(self, name: str, lines) -> None:
        (self.bin / name).write_text("".join(f"{x}\n" for x in lines))

    @property
    def sinfo(self):
        return (self.bin / "sinfo.out").read_text().splitlines()

    @sinfo.setter
    def sinfo(self, lines) -> None:
        self._set("sinfo.out", lines)

    @property
    def queue(self):
        return (self.bin / "squeue.out").read_text().splitlines()

    @queue.setter
    def queue(self, lines) -> None:
        self._set("squeue.out", lines)

    @property
    def refuse(self) -> str:
        return (self.bin / "refuse").read_text()

    @refuse.setter
    def refuse(self, message: str) -> None:
        (self.bin / "refuse").write_text(message)

    def down(self) -> None:
        """``squeue`` fails from now on, as when the controller cannot be reached."""
        (self.bin / "squeue").write_text(
            "#!/bin/bash\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\n"
            "exit 1\n"
        )

    def calls(self, name: str = "sbatch") -> list[list[str]]:
        """Each call's arguments (``--test-only`` calls of sbatch left out)."""
        path = self.bin / f"{name}.calls"
        lines = path.read_text().splitlines() if path.is_file() else []
        return [x.split() for x in lines if "--test-only" not in x.split()]


def install(directory: Path, monkeypatch) -> FakeSlurm:
    """Write the fakes into ``directory``, put it first on PATH; one 16-CPU node, empty queue."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sbatch").write_text(SBATCH)
    for name in ("squeue", "sinfo", "scancel"):
        (directory / name).write_text(CAT.format(name=name))
    for name in ("sbatch", "squeue", "sinfo", "scancel"):
        (directory / name).chmod(0o755)
    fake = FakeSlurm(directory)
    fake.sinfo = ["n1|cpu*|16|64000|(null)"]
    fake.queue = []
    bash = os.path.dirname(shutil.which("bash") or "/bin/bash")
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{bash}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return fake
