"""Training throughput and peak memory of full-size Variformer fine-tuning at 49,152 bp.

Runs a handful of optimizer steps (AdamW, gradient-norm clip 0.05 and the Variformer loss, as
in the paper) on random one-hot sequences with the official Enformer size (dim 1536, depth 11,
heads 8, 7 downsamplings; random weights, which cost the same as the pre-trained ones), and
prints samples/s, seconds/step and peak memory. Warm-up steps are excluded from the timing.

On CUDA it measures, in the same run, plain fp32 training steps (enformer-pytorch as is, the
baseline) and bf16-mixed steps (``torch.autocast(bfloat16)``, what Lightning's
``precision="bf16-mixed"`` does and what ``variformer finetune`` uses on GPUs), and reports the
speed-up and a per-gene wall time: ``epochs x (train people / train samples/s + tune people /
inference samples/s)``, to compare with the paper's ~30 min per gene on one H100.

Examples
--------
python3 benchmarks/bench_finetune.py --device cpu --steps 2 --warmup 1 --batch-size 1
python3 benchmarks/bench_finetune.py --device cuda --batch-size 32        # fp32 vs bf16-mixed
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from variformer.loss import variformer_loss
from variformer.model import Variformer

FULL_ENFORMER = {
    "dim": 1536,
    "depth": 11,
    "heads": 8,
    "attn_dim_key": 64,
    "num_downsamples": 7,
    "dim_divisible_by": 128,
}
PAPER_MINUTES_PER_GENE = 30.0  # "fine-tuning takes only ~30 min per gene on a single GPU" (H100)


class ModeResult(NamedTuple):
    mode: str
    batch_size: int
    steps: int
    seconds_per_step: float
    train_samples_per_s: float
    eval_samples_per_s: float
    peak_memory_gib: float
    note: str


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    # ru_maxrss is in KiB on Linux (bytes on macOS); the process-wide peak so far
    scale = 1 if platform.system() == "Darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def _batch(
    batch_size: int, seq_len: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 4, (batch_size, seq_len), generator=g)
    x = torch.nn.functional.one_hot(idx, 4).float().to(device)
    return x, torch.randn(batch_size, generator=g).to(device)


def measure(
    model: Variformer,
    *,
    mode: str,
    device: torch.device,
    batch_size: int,
    seq_len: int,
    steps: int,
    warmup: int,
    eval_steps: int,
    learning_rate: float = 5e-6,
    gradient_clip: float = 0.05,
) -> ModeResult:
    """Time ``steps`` training steps (after ``warmup``) and ``eval_steps`` inference batches."""
    use_bf16 = mode.startswith("bf16")
    x, y = _batch(batch_size, seq_len, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = variformer_loss(model(x), y, alpha=0.5)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, gradient_clip)
        optimizer.step()

    model.train()
    for _ in range(warmup):
        train_step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    _sync(device)
    train_s = time.perf_counter() - start
    optimizer.zero_grad(set_to_none=True)
    optimizer.state.clear()  # free the AdamW moments before the inference timing

    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        model(x)  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(eval_steps):
            model(x)
        _sync(device)
    eval_s = time.perf_counter() - start
    return ModeResult(
        mode=mode,
        batch_size=batch_size,
        steps=steps,
        seconds_per_step=train_s / steps,
        train_samples_per_s=batch_size * steps / train_s,
        eval_samples_per_s=batch_size * eval_steps / eval_s if eval_steps else float("nan"),
        peak_memory_gib=_peak_memory_gib(device),
        note="",
    )


def measure_fitting(model: Variformer, *, batch_size: int, **kwargs) -> ModeResult:
    """:func:`measure`, halving the batch on CUDA out-of-memory (fp32 at batch 32 may not fit)."""
    first_oom = None
    while True:
        try:
            result = measure(model, batch_size=batch_size, **kwargs)
            return result._replace(note=f"out of memory at batch {first_oom}" if first_oom else "")
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            first_oom = first_oom or batch_size
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            batch_size //= 2


def per_gene_minutes(
    r: ModeResult, *, epochs: int, train_people: int, tune_people: int
) -> tuple[float, float]:
    """(minutes per epoch, minutes per gene) estimated from the measured throughputs."""
    epoch_s = train_people / r.train_samples_per_s + tune_people / r.eval_samples_per_s
    return epoch_s / 60, epochs * epoch_s / 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: 32 on CUDA (the paper's), 1 on CPU"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed training steps (default: 10 on CUDA, 2 on CPU)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed warm-up steps (default: 3 on CUDA, 1 on CPU)",
    )
    parser.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help="timed inference batches (default: 5 on CUDA, 1 on CPU)",
    )
    parser.add_argument("--seq-len", type=int, default=49152)
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16-mixed", "both"],
        default="auto",
        help="auto: fp32 and bf16-mixed on CUDA, fp32 on CPU",
    )
    parser.add_argument(
        "--checkpointing", action="store_true", help="activation checkpointing of the transformer"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile(model) under bf16-mixed"
    )
    parser.add_argument(
        "--epochs", type=int, default=40, help="epochs assumed for the per-gene estimate"
    )
    parser.add_argument(
        "--train-people", type=int, default=512, help="train people per epoch (paper: 512)"
    )
    parser.add_argument(
        "--tune-people", type=int, default=67, help="tune people evaluated per epoch (10%% of 670)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    batch_size = args.batch_size or (32 if cuda else 1)
    steps = args.steps or (10 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    eval_steps = args.eval_steps if args.eval_steps is not None else (5 if cuda else 1)
    modes = {
        "auto": ["fp32", "bf16-mixed"] if cuda else ["fp32"],
        "both": ["fp32", "bf16-mixed"],
    }.get(args.precision, [args.precision])

    torch.manual_seed(0)
    built = time.perf_counter()
    model = Variformer.from_hparams(**FULL_ENFORMER, use_checkpointing=args.checkpointing).to(
        device
    )
    n_params = sum(p.numel() for p in model.parameters())
    hardware = (
        torch.cuda.get_device_name(device)
        if cuda
        else f"{platform.processor() or platform.machine()} CPU"
    )
    print(
        f"# Variformer fine-tuning benchmark: {n_params / 1e6:.1f} M parameters, {args.seq_len:,} bp "
        f"({args.seq_len // 128} bins), {hardware}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, model built in {time.perf_counter() - built:.1f} s"
    )
    if cuda:
        print(
            f"# fp32 baseline uses PyTorch defaults: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
            f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}"
        )
    common = dict(
        device=device, seq_len=args.seq_len, steps=steps, warmup=warmup, eval_steps=eval_steps
    )
    results = [measure_fitting(model, mode=m, batch_size=batch_size, **common) for m in modes]
    if args.compile:
        compiled = torch.compile(model)
        results.append(
            measure_fitting(compiled, mode="bf16-mixed+compile", batch_size=batch_size, **common)
        )

    print(
        f"# {steps} timed steps after {warmup} warm-up; per-gene = {args.epochs} epochs x "
        f"({args.train_people} train + {args.tune_people} tune people)"
    )
    mem_label = "peak GPU mem (GiB)" if cuda else "peak RSS (GiB)"
    header = [
        "mode",
        "batch",
        "s/step",
        "train samples/s",
        "infer samples/s",
        mem_label,
        "min/epoch",
        "min/gene",
        "note",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        per_epoch, per_gene = per_gene_minutes(
            r, epochs=args.epochs, train_people=args.train_people, tune_people=args.tune_people
        )
        row = [
            r.mode, str(r.batch_size), f"{r.seconds_per_step:.2f}", f"{r.train_samples_per_s:.3f}",
            f"{r.eval_samples_per_s:.3f}", f"{r.peak_memory_gib:.1f}", f"{per_epoch:.1f}", f"{per_gene:.0f}", r.note,
        ]  # fmt: skip
        print("| " + " | ".join(row) + " |")
    by_mode = {r.mode: r for r in results}
    if "fp32" in by_mode and "bf16-mixed" in by_mode:
        speedup = by_mode["bf16-mixed"].train_samples_per_s / by_mode["fp32"].train_samples_per_s
        print(f"# bf16-mixed / fp32 training throughput: {speedup:.2f}x (target >= 3x)")
    best = max(results, key=lambda r: r.train_samples_per_s)
    _, best_gene = per_gene_minutes(
        best, epochs=args.epochs, train_people=args.train_people, tune_people=args.tune_people
    )
    print(
        f"# fastest mode {best.mode}: ~{best_gene:.0f} min per gene vs the paper's ~{PAPER_MINUTES_PER_GENE:.0f} min on one H100"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
