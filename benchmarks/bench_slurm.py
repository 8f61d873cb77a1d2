"""Time per gene and throughput per node of ``variformer slurm finetune`` on a real cluster.

Simulates a cohort and preps it (the README walkthrough's size by default: 120 people, 3 genes,
4,096-bp windows), then for each ``--cpus`` value submits one array of genes x folds with the
tiny config (``variformer slurm finetune --config tiny --submit --parsable``), waits for it, and
reads every task's log: its wall time (from its ``### attempt`` line to its ``### exit`` line),
the node's throughput (tasks per hour from the first start to the last end) and how long the
tasks waited in the queue. Prints a markdown table.

Needs a cluster answering ``sinfo`` (``sudo slurm/local_cluster.sh up`` starts one here).

Examples
--------
python benchmarks/bench_slurm.py --cpus 1 2
python benchmarks/bench_slurm.py --people 300 --genes 5 --folds 0 1 2 --epochs 5 --cpus 2
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def variformer(*argv: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "variformer.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def wait(job_id: str) -> None:
    while True:
        done = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if done.returncode != 0 or not done.stdout.strip():
            return
        time.sleep(2)


def stamps(log: Path) -> tuple[datetime, datetime]:
    """The first attempt's start and the last exit line's time of a task log."""
    lines = log.read_text().splitlines()
    start = next(x for x in lines if x.startswith("### attempt")).split(" | ")[2]
    end = [x for x in lines if x.startswith("### exit")][-1].split(" | ")[1]
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=120)
    p.add_argument("--genes", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--cpus", type=int, nargs="+", default=[1, 2], help="CPUs per task to try")
    p.add_argument("--keep", help="work in this directory (default: a temporary one)")
    a = p.parse_args()
    from tests.datasets import prepared_dataset

    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_slurm_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = prepared_dataset(work, people=a.people, genes=a.genes, seq_len=a.seq_len)
    from data_prep import open_dataset

    genes = list(open_dataset(dataset).genes)
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %m"], capture_output=True,
                          text=True, check=True).stdout.split("\n")[0]  # fmt: skip
    print(f"{platform.node()}, node `{node}` (name CPUs MB), {len(genes)} genes x "
          f"{len(a.folds)} folds, {a.people} people, {a.seq_len} bp, tiny config, "
          f"{a.epochs} epochs\n")  # fmt: skip
    print("| CPUs per task | tasks | per task (mean, min-max) | first start to last end "
          "| throughput per node | queue wait (mean) | submit |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for cpus in a.cpus:
        runs = work / f"runs_cpus{cpus}"
        t0 = time.monotonic()
        job = variformer("slurm", "finetune", "--dataset", str(dataset), "--genes", *genes,
                         "--folds", *map(str, a.folds), "--config", "tiny", "--out", str(runs),
                         "--cpus", str(cpus), "--submit", "--parsable",
                         f"training.max_epochs={a.epochs}", cwd=work).strip()  # fmt: skip
        submitted_s = time.monotonic() - t0
        submitted = datetime.now().astimezone()
        wait(job)
        logs = sorted((runs / "slurm").rglob(f"*_{job}_*.out"))
        times = [stamps(x) for x in logs]
        per = [(e - s).total_seconds() for s, e in times]
        span = (max(e for _, e in times) - min(s for s, _ in times)).total_seconds()
        waits = [(s - submitted).total_seconds() for s, _ in times]
        print(f"| {cpus} | {len(per)} | {sum(per) / len(per):.0f} s ({min(per):.0f}-"
              f"{max(per):.0f}) | {span:.0f} s | {3600 * len(per) / span:.0f} tasks/h | "
              f"{sum(waits) / len(waits):.0f} s | {submitted_s:.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
