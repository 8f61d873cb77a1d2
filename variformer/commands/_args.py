"""Options shared by several subcommands, so each flag means one thing everywhere.

- genes: ``--gene X``, ``--genes X Y ...`` or ``--genes-file F`` (one per line, ``#`` comments);
- folds: ``--fold FOLD`` (:func:`add_fold_argument`, in every command that takes one fold) or
  ``--folds 0 1 2`` (default: every fold of the dataset);
- ``--progress/--no-progress``: progress bars (default: only when stderr is a terminal).
"""

from __future__ import annotations

import argparse

__all__ = [
    "add_fold_argument",
    "add_fold_arguments",
    "add_gene_arguments",
    "add_progress_argument",
    "add_track_argument",
    "folds_from_args",
    "genes_from_args",
    "parse_devices",
]


def add_gene_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, what: str = "genes"
) -> None:
    """Add the mutually exclusive ``--gene``, ``--genes`` and ``--genes-file`` options."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--gene", metavar="GENE", help=f"one of the {what}")
    group.add_argument("--genes", nargs="+", metavar="GENE", help=f"{what}, space-separated")
    group.add_argument("--genes-file", metavar="FILE", help=f"{what}, one per line")


def genes_from_args(args: argparse.Namespace) -> list[str]:
    """The gene list of :func:`add_gene_arguments` options (order kept, duplicates dropped)."""
    from data_prep.listfile import read_list

    if getattr(args, "genes_file", None):
        genes = read_list(args.genes_file, what="genes")
    elif getattr(args, "genes", None):
        genes = list(args.genes)
    elif getattr(args, "gene", None):
        genes = [args.gene]
    else:
        genes = []
    return list(dict.fromkeys(genes))


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress`` (default None: bars only when stderr is a terminal)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: only when stderr is a terminal; otherwise one line per epoch)",
    )


def add_track_argument(parser: argparse.ArgumentParser) -> None:
    """``--track``: the Enformer human-head track summed over the 3 centre bins (one default)."""
    from variformer.config import ENFORMER_BLOOD_TRACK, ENFORMER_BRAIN_TRACK

    parser.add_argument(
        "--track",
        type=int,
        default=ENFORMER_BLOOD_TRACK,
        help=f"CAGE track of Enformer's human head, summed over the 3 centre bins "
        f"({ENFORMER_BLOOD_TRACK} blood, {ENFORMER_BRAIN_TRACK} brain; default {ENFORMER_BLOOD_TRACK})",
    )


def parse_devices(value: str) -> int | str | list[int]:
    """``--devices``: a count (``8``), device ids (``0,1``) or ``auto``."""
    if value.isdigit():
        return int(value)
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return value


def add_fold_argument(
    parser: argparse.ArgumentParser | argparse._ActionsContainer,
    help: str = "cross-validation fold",
    *,
    required: bool = False,
    default: int | None = None,
) -> None:
    """``--fold FOLD``: one cross-validation fold, the same flag in every command."""
    parser.add_argument("--fold", type=int, metavar="FOLD", required=required, default=default,
                        help=help)  # fmt: skip


def add_fold_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive ``--fold FOLD`` and ``--folds 0 1 2`` options."""
    group = parser.add_mutually_exclusive_group()
    add_fold_argument(group, "one cross-validation fold")
    group.add_argument(
        "--folds", nargs="+", type=int, metavar="K", help="folds (default: all of the dataset)"
    )


def folds_from_args(args: argparse.Namespace) -> list[int] | None:
    """The folds of :func:`add_fold_arguments` options; None when none were given."""
    if getattr(args, "fold", None) is not None:
        return [args.fold]
    return list(args.folds) if getattr(args, "folds", None) else None


def add_scoring_arguments(parser: argparse.ArgumentParser, *, unit: str) -> None:
    """``--method``, ``--precision``, ``--batch-size``, ``--device``, ``--out``, ``--force`` and
    progress: how ``ism`` and ``score-variants`` run their forwards (``unit`` per forward)."""
    parser.add_argument(
        "--method", choices=["fast", "naive"], default="fast",
        help="fast (default): recompute only the local layers around each changed stretch "
        "(an SNV, an MNP, the stretch an indel shifts), exact to float rounding; naive: one "
        "plain forward per edited window",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=["32", "bf16-mixed"], default="32",
        help="32-bit on every device (default), or bf16 autocast: faster on a GPU, but a "
        "score is a difference of two close predictions that bf16 can round away; recorded "
        "in the table's record <out>.json",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16, help=f"{unit} per forward")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: a GPU if there is one)")
    parser.add_argument("--out", required=True, help="the TSV to write")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    add_progress_argument(parser)
