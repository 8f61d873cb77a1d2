"""ISM speed: fast (cached local stages) vs naive (one plain forward per SNV) vs tangermeme.

Full-size Enformer architecture (dim 1536, depth 11, heads 8, random weights) in a Variformer,
one 49,152 bp window, a few SNVs near the TSS, fp32, side by side in one process:

- ``naive``: :func:`variformer.analysis.ism` with ``method="naive"`` (batched plain forwards
  through ``variformer.predict.predict``);
- ``fast``: the same with ``method="fast"``;
- ``tangermeme``: ``tangermeme.variant_effect.substitution_effect`` on the same model and SNVs
  (one copy of the window per SNV, one substitution each; it predicts before and after), if
  tangermeme is installed (``pip install --no-deps tangermeme numba``).

Every method pays one reference forward per window, which a real gene (200-1,000 SNVs)
amortises; the table therefore also gives the marginal cost per SNV (total minus one
reference forward, divided by the SNVs) and the projected time for a 500-SNV gene.

    python benchmarks/bench_ism.py [--snvs 2] [--seq-len 49152] [--no-tangermeme]

``--indels K`` measures instead the ISM of indels (:func:`variformer.analysis.mutagenesis.
edit_effects`): K deletions upstream and K insertions downstream of the TSS at each of several
distances, each window re-anchored at the TSS, so that an indel at distance x shifts a stretch
of L/2 - x bp; fast against naive, per indel (total minus one reference forward, over 2K).

    python benchmarks/bench_ism.py --indels 2 --dim 384 --depth 4 --heads 4 --dim-divisible-by 8
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snvs", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=49152)
    p.add_argument("--dim", type=int, default=1536)
    p.add_argument("--depth", type=int, default=11)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim-divisible-by", type=int, default=128, help="8 for small --dim")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-tangermeme", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--indels", type=int, default=0, help="indels per distance (0: SNV table)")
    args = p.parse_args()

    from enformer_pytorch.modeling_enformer import Attention

    from variformer.analysis import ism
    from variformer.model import Variformer

    torch.manual_seed(args.seed)
    model = Variformer.from_hparams(
        dim=args.dim, depth=args.depth, heads=args.heads, dim_divisible_by=args.dim_divisible_by
    ).eval()
    for m in model.modules():  # enformer-pytorch zero-initialises these: bins would not mix
        if isinstance(m, Attention):
            torch.nn.init.normal_(m.to_out.weight, std=m.to_out.in_features**-0.5)
    # BatchNorm statistics from a short random sequence: with the initial ones the signal fades
    # through the tower and every score would be float noise (~1e-7), hiding any mismatch
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model.forward_tower(
            torch.from_numpy(
                np.eye(4, dtype=np.float32)[np.random.default_rng(1).integers(0, 4, (1, 4096))]
            )
        )
    model.eval()
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    rng = np.random.default_rng(args.seed)
    L = args.seq_len
    seq = np.eye(4, dtype=np.float32)[rng.integers(0, 4, L)]
    pos0 = np.sort(rng.choice(np.arange(L // 2 - 2000, L // 2 + 2000), args.snvs, replace=False))
    alt = (seq[pos0].argmax(1) + rng.integers(1, 4, args.snvs)) % 4
    variants = pd.DataFrame({"pos0": pos0, "alt": [("ACGT")[a] for a in alt]})
    dev = torch.device(args.device)
    if args.indels:
        return indel_table(model, args, dev, n_params)
    ref_s = header(model, seq, args, dev, n_params, f"{args.snvs} SNVs")
    with torch.no_grad():
        h = model.to(dev).forward_tower(torch.from_numpy(seq[None]).to(dev))
        t0 = time.perf_counter()
        model.forward_from_tower(h)
        tail_s = time.perf_counter() - t0
    print(f"transformer + head of one window: {tail_s:.1f} s", flush=True)

    rows, scores = [], {}
    for method in ("fast", "naive"):
        t0 = time.perf_counter()
        scores[method] = ism(
            model, seq, variants, method=method, batch_size=args.batch_size, device=dev
        )
        rows.append((method, time.perf_counter() - t0, 1))
        print(f"{method}: {rows[-1][1]:.1f} s", flush=True)
    if not args.no_tangermeme:
        try:
            from tangermeme.variant_effect import substitution_effect
        except ImportError as err:
            print(f"tangermeme not available ({err}); skipped")
        else:

            class ChannelsFirst(torch.nn.Module):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    return self.inner(x.transpose(1, 2))[:, None]

            X = torch.from_numpy(np.repeat(seq.T[None], args.snvs, axis=0))
            subs = torch.tensor(np.c_[np.arange(args.snvs), pos0, alt])
            t0 = time.perf_counter()
            res = substitution_effect(
                ChannelsFirst(model),
                X,
                subs,
                batch_size=args.batch_size,
                device=dev,
                verbose=False,
            )
            rows.append(("tangermeme", time.perf_counter() - t0, 2))
            scores["tangermeme"] = (res.y_after - res.y_before)[:, 0].numpy()
            print(f"tangermeme: {rows[-1][1]:.1f} s", flush=True)

    naive = scores["naive"]
    scale = float(np.abs(naive).max())
    naive_s = next(r[1] for r in rows if r[0] == "naive")
    naive_marginal = (naive_s - ref_s) / args.snvs
    table = []
    for method, total, refs in rows:
        # tangermeme predicts the unedited window once per SNV (refs counted per SNV)
        marginal = (total - (ref_s if refs == 1 else 0)) / args.snvs
        table.append(
            {
                "method": method,
                "total_s": round(total, 1),
                "per_snv_s": round(marginal, 1),
                "speedup_per_snv_vs_naive": round(naive_marginal / marginal, 2),
                "projected_500_snvs_min": round(
                    ((ref_s if refs == 1 else 0) + 500 * marginal) / 60, 1
                ),
                "max_abs_diff_vs_naive / max|naive|": float(
                    np.abs(scores[method] - naive).max() / scale
                ),
            }
        )
    print()
    print(pd.DataFrame(table).to_string(index=False))
    print(f"\nmax |naive score| = {scale:.3g}; reference forward {ref_s:.1f} s")


def header(model, seq, args, dev, n_params: float, what: str) -> float:
    """Print the machine and model line, time one reference forward and return its seconds."""
    from variformer.predict import predict

    print(
        f"# {platform.node()}: {torch.get_num_threads()} torch threads, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, device {dev}; "
        f"Variformer dim={args.dim} depth={args.depth} heads={args.heads} "
        f"({n_params:.0f}M parameters), {len(seq)} bp, {what}, fp32",
        flush=True,
    )
    t0 = time.perf_counter()
    predict(model, seq[None], batch_size=1, device=dev)
    ref_s = time.perf_counter() - t0
    print(f"reference forward: {ref_s:.1f} s", flush=True)
    return ref_s


def reanchored_indels(rng, L: int, distances, per: int):
    """A reference window and, per distance x from the TSS (L // 2), ``per`` deletions at
    x upstream and ``per`` insertions at x downstream (1-30 bp), each window re-anchored at
    the TSS: a deletion pulls ``d`` more upstream bases in at the left end, an insertion pushes
    ``d`` bases out at the right end. -> (base (L, 4), [(distance, window (L, 4))])."""
    pad = 64
    ext = np.eye(4, dtype=np.float32)[rng.integers(0, 4, L + 2 * pad)]
    base = ext[pad : pad + L]
    out = []
    for x in distances:
        for _ in range(per):
            d = int(rng.integers(1, 31))
            win = base.copy()
            p = L // 2 - x  # deletion of d bases ending at window row p
            win[:p] = ext[pad - d : pad - d + p]
            out.append((x, win))
            win = base.copy()
            p = L // 2 + x  # insertion of d random bases before window row p
            win[p + d :] = ext[pad + p : pad + L - d]
            win[p : p + d] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, d)]
            out.append((x, win))
    return base, out


def indel_table(model, args, dev, n_params: float) -> None:
    from variformer.analysis.mutagenesis import FAST_SPAN_LIMIT, edit_effects, window_edits

    L = args.seq_len
    distances = [L // 2 - 512, L // 2 - 4096, L // 4, L // 8, 2000, 200]
    base, indels = reanchored_indels(np.random.default_rng(args.seed), L, distances, args.indels)
    ref_s = header(model, base, args, dev, n_params, f"{len(indels)} indels")
    rows = []
    for x in distances:
        starts, values = window_edits(base, [w for d, w in indels if d == x])
        got, secs = {}, {}
        for method in ("naive", "fast"):
            t0 = time.perf_counter()
            got[method] = edit_effects(
                model, base, starts, values, method=method, batch_size=args.batch_size, device=dev
            )
            secs[method] = (time.perf_counter() - t0 - ref_s) / len(starts)
        scale = float(np.abs(got["naive"]).max())
        rows.append({
            "distance_to_tss": x,
            "shifted_stretch_bp": int(max(len(v) for v in values)),
            "path": "fast" if max(len(v) for v in values) <= FAST_SPAN_LIMIT * L else "naive",
            "naive_s_per_indel": round(secs["naive"], 2),
            "fast_s_per_indel": round(secs["fast"], 2),
            "speedup": round(secs["naive"] / secs["fast"], 2),
            "max|fast-naive|/max|naive|": float(np.abs(got["fast"] - got["naive"]).max() / scale),
        })  # fmt: skip
        print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
