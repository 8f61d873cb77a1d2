"""Does data loading starve the model? Multi-gene loader throughput against the training step rate.

Usage::

    python benchmarks/bench_loader.py --dataset DS [--genes 300] [--crops 49152,4096]
                                      [--workers 0,2] [--batches 40]

``DS`` is a prepared dataset with expression (e.g. ``bench_prep.py --workdir W`` leaves one in
``W/native``). For every crop length it measures, side by side in one run:

- the loader alone: ``VariformerDataModule.train_dataloader()`` over all ``--genes`` genes
  (same-gene micro-batches of the tiny preset's size, genes in random order, i.e. a gene
  switch at nearly every batch), with 0 and with N worker processes;
- the tiny model alone (``configs/tiny.yaml``): one training step (forward, Variformer loss,
  backward, AdamW) on a batch of the same shape;
- both together, as training runs them: the step loop fed by the loader, and the share of
  the wall time the loop spends waiting for the next batch (0% = the model never starves).

Prints markdown tables; record them with the machine in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from variformer.data import VariformerDataModule
from variformer.loss import variformer_loss
from variformer.model import Variformer

ROOT = Path(__file__).resolve().parents[1]


def _tiny_model() -> Variformer:
    preset = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())["model"]
    torch.manual_seed(0)
    return Variformer.from_hparams(train_batchnorm=True, **preset["hparams"])


def _loader(dataset, genes, *, crop: int, batch_size: int, workers: int):
    dm = VariformerDataModule(
        dataset,
        genes=genes,
        fold=0,
        batch_size=batch_size,
        accumulate_grad_batches=1,
        seq_len=crop,
        num_workers=workers,
        seed=0,
    )
    dm.setup("fit")
    return dm.train_dataloader()


def _loader_rate(loader, n_batches: int) -> float:
    """Samples/s of the loader alone (worker start-up and the first batch excluded)."""
    it = iter(loader)
    next(it)
    t0, n = time.perf_counter(), 0
    for _ in range(n_batches):
        x, _, _ = next(it)
        n += len(x)
    return n / (time.perf_counter() - t0)


def _train_step_fn(model: Variformer):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = variformer_loss(model(x), y, alpha=0.5)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    return step


def _model_rate(step, x, y, n_steps: int) -> float:
    step(x, y)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step(x, y)
    return n_steps * len(x) / (time.perf_counter() - t0)


def _together(loader, step, n_batches: int) -> tuple[float, float]:
    """(samples/s, share of the time waiting for data) of the loop training from the loader."""
    it = iter(loader)
    x, y, _ = next(it)
    step(x, y)
    waited, n = 0.0, 0
    t0 = time.perf_counter()
    for _ in range(n_batches):
        t = time.perf_counter()
        x, y, _ = next(it)
        waited += time.perf_counter() - t
        step(x, y)
        n += len(x)
    total = time.perf_counter() - t0
    return n / total, waited / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--genes", type=int, default=300, help="train on the first N genes")
    ap.add_argument("--crops", default="49152,4096", help="crop lengths around the TSS")
    ap.add_argument("--workers", default="0,2", help="DataLoader worker processes to compare")
    ap.add_argument("--batch-size", type=int, default=16, help="micro-batch (tiny preset: 16)")
    ap.add_argument("--batches", type=int, default=40, help="batches per measurement")
    ap.add_argument("--steps", type=int, default=10, help="model-only steps per crop")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from data_prep import open_dataset

    ds = open_dataset(args.dataset)
    genes = list(ds.genes[: args.genes])
    model = _tiny_model()
    step = _train_step_fn(model)
    workers = [int(w) for w in args.workers.split(",")]
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )
    print(
        f"dataset: {len(ds.samples)} people, {len(genes)} train genes, {ds.seq_len}-bp windows; "
        f"tiny model {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"micro-batch {args.batch_size}\n"
    )
    print(
        "| crop (bp) | model alone (samples/s) | workers | loader alone (samples/s) "
        "| loader / model | training from the loader (samples/s) | waiting for data |"
    )
    print("|---|---|---|---|---|---|---|")
    for crop in [int(c) for c in args.crops.split(",")]:
        loader = _loader(ds, genes, crop=crop, batch_size=args.batch_size, workers=0)
        x, y, _ = next(iter(loader))
        model_rate = _model_rate(step, x, y, args.steps)
        for w in workers:
            # the loader opens the dataset by path in every worker (as training does)
            src = args.dataset if w else ds
            rate = _loader_rate(
                _loader(src, genes, crop=crop, batch_size=args.batch_size, workers=w), args.batches
            )
            both, wait = _together(
                _loader(src, genes, crop=crop, batch_size=args.batch_size, workers=w),
                step,
                args.batches,
            )
            print(
                f"| {crop:,} | {model_rate:,.1f} | {w} | {rate:,.0f} | {rate / model_rate:,.1f}x "
                f"| {both:,.1f} | {wait:.0%} |"
            )


if __name__ == "__main__":
    main()
