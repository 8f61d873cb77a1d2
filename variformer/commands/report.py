"""``variformer report``: one self-contained HTML page from evaluation and analysis tables."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--analysis", required=True, help="variformer analyze output (AN)")
    p.add_argument("--eval", help="variformer evaluate output (EVAL) for Fig. 1")
    p.add_argument("--out", required=True, help="report directory (new unless --force)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(args) -> int:
    from core.fileio import check_out_apart
    from variformer.report.html import build_report

    check_out_apart(args.out, {"--analysis": args.analysis, "--eval": args.eval})
    res = build_report(analysis=args.analysis, eval=args.eval, out=args.out, force=args.force)
    print(f"report -> {res.out / 'index.html'} ({len(res.figures)} figures)")
    for m in res.missing:
        print(f"not shown: {m}")
    return 0
