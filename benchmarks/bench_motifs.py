"""Speed of the motif-disruption scan (`variformer motifs`); prints a markdown table.

All JASPAR 2024 CORE vertebrate matrices (pyjaspar) over a few hundred SNVs of a random
49,152-bp window: cold (p-value tables built) and warm (tables cached), uniform and window
backgrounds, and side by side with per-SNV scoring through Biopython's ``PSSM.calculate``
(scores only, no p-values) on the same SNVs.

    python benchmarks/bench_motifs.py [--snvs 300] [--bio-snvs 30]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

from variformer.analysis.motifs.matrices import load_jaspar
from variformer.analysis.motifs.pvalues import background_probs, cached_table, prepared
from variformer.analysis.motifs.scan import motif_disruption


def _snvs(rng, seq: np.ndarray, n: int) -> pd.DataFrame:
    pos0 = np.sort(rng.choice(seq.shape[0], n, replace=False))
    ref = seq[pos0]
    alt = (ref + rng.integers(1, 4, n)) % 4
    letters = np.array(list("ACGT"))
    return pd.DataFrame({"pos": pos0 + 1, "ref": letters[ref], "alt": letters[alt]})


def _biopython(seq: str, v: pd.DataFrame, motifs) -> float:
    """Seconds to score REF and ALT, both strands, every overlapping window, with Biopython."""
    from Bio import motifs as bm
    from Bio.Seq import Seq

    pssms = []
    for m in motifs:
        counts = {b: list(m.counts[:, i]) for i, b in enumerate("ACGT")}
        pwm = bm.matrix.FrequencyPositionMatrix("ACGT", counts).normalize(pseudocounts=0.2)
        p = pwm.log_odds()
        pssms.append((p, p.reverse_complement(), m.width))
    t0 = time.perf_counter()
    for r in v.itertuples():
        i = r.pos - 1
        for p, rc, w in pssms:
            lo, hi = max(0, i - w + 1), min(len(seq), i + w)
            for allele in (r.ref, r.alt):
                sub = Seq(seq[lo:i] + allele + seq[i + 1 : hi])
                max(np.atleast_1d(p.calculate(sub)))
                max(np.atleast_1d(rc.calculate(sub)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--snvs", type=int, default=300)
    ap.add_argument("--bio-snvs", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    seq = rng.choice(4, 49152, p=[0.3, 0.2, 0.2, 0.3])
    seq_str = "".join(np.array(list("ACGT"))[seq])
    v = _snvs(rng, seq, args.snvs)
    t0 = time.perf_counter()
    motifs = load_jaspar(2024)
    t_load = time.perf_counter() - t0
    rows = [
        (
            "load JASPAR2024 CORE vertebrates (pyjaspar)",
            f"{t_load:.2f} s",
            f"{len(motifs)} matrices",
        )
    ]
    for bg in ("uniform", "window"):
        cached_table.cache_clear()
        t0 = time.perf_counter()
        hits = motif_disruption(seq, v, motifs, background=bg)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        motif_disruption(seq, v, motifs, background=bg)
        warm = time.perf_counter() - t0
        bg_p = background_probs(bg, seq)
        n_sf = sum(prepared(m, bg_p, 0.8, 0.01)[2].sf.size for m in motifs)
        rows.append(
            (
                f"{args.snvs} SNVs x {len(motifs)} matrices, {bg}, cold",
                f"{cold:.2f} s",
                f"{len(hits)} hits; tables {n_sf * 8 / 2**20:.0f} MiB",
            )
        )
        rows.append(
            (
                f"{args.snvs} SNVs x {len(motifs)} matrices, {bg}, warm (tables cached)",
                f"{warm:.2f} s",
                f"{args.snvs * len(motifs) / warm:,.0f} SNV x matrix / s",
            )
        )
    sub = v.iloc[: args.bio_snvs]
    t0 = time.perf_counter()
    motif_disruption(seq, sub, motifs)
    ours = time.perf_counter() - t0
    bio = _biopython(seq_str, sub, motifs)
    rows.append((f"{len(sub)} SNVs: this module (scores + p-values), warm", f"{ours:.2f} s", ""))
    rows.append(
        (
            f"{len(sub)} SNVs: Biopython PSSM.calculate per SNV (scores only)",
            f"{bio:.2f} s",
            f"ratio {bio / ours:.0f}x",
        )
    )
    # accuracy of the 0.01-bit tables against 0.001-bit ones, on the same SNVs
    a = motif_disruption(seq, v, motifs, show_neutral=True)
    b = motif_disruption(seq, v, motifs, granularity=0.001, show_neutral=True)
    both = a.merge(b, on=["pos", "alt", "matrix_id", "strand"], suffixes=("", "_fine"))
    err = np.abs(np.log10(both[["ref_p", "alt_p"]].to_numpy(float)))
    err = np.abs(err - np.abs(np.log10(both[["ref_p_fine", "alt_p_fine"]].to_numpy(float))))
    rows.append(
        (
            "p-values at 0.01 vs 0.001 bits: median / max abs log10 ratio",
            f"{np.median(err):.4f} / {err.max():.3f}",
            f"hits {len(a)} vs {len(b)}, {len(both)} in both",
        )
    )
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}\n")
    print("| measurement | value | note |\n|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
