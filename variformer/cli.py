"""``variformer`` command line: a thin shell over importable functions.

Each subcommand lives in the module that does the work; that module exposes
``add_arguments(parser)`` and ``main(args) -> int``. Errors the user can fix
(:class:`core.errors.InputError`) print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from core.errors import InputError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prep": (
        "variformer.commands.prep",
        "build per-gene personal-genome datasets from VCF/BCF + FASTA + GTF",
    ),
    "simulate": (
        "variformer.commands.simulate",
        "write a simulated cohort with known truth in real file formats",
    ),
    "normalize": (
        "variformer.commands.normalize",
        "TPM + read counts -> GTEx-normalized expression BED",
    ),
    "finetune": (
        "variformer.commands.finetune",
        "fine-tune Enformer on personal genomes (Lightning)",
    ),
    "slurm": ("variformer.commands.slurm", "write (and optionally submit) SLURM array jobs"),
    "demo": (
        "variformer.commands.demo",
        "run the whole pipeline on the embedded simulated cohort",
    ),
    "motifs": (
        "variformer.commands.motifs",
        "TF motifs that SNVs break or create (motifbreakR-style)",
    ),
    "analyze": (
        "variformer.commands.analyze",
        "HSVs, drivers, signs, motifs, chromatin, eQTL auROC",
    ),
    "report": ("variformer.commands.report", "one self-contained HTML page from result tables"),
    "ism": ("variformer.commands.ism", "in-silico mutagenesis of every observed SNV, to one TSV"),
    "score-variants": (
        "variformer.commands.score_variants",
        "the effect of any listed variant (SNV, MNP, indel) on trained runs, to one TSV",
    ),
    "baselines": (
        "variformer.commands.baselines",
        "elastic net / lasso / ridge per gene and fold on the dataset's splits",
    ),
    "select-genes": (
        "variformer.commands.select_genes",
        "the paper's train and test genes from elastic-net R2",
    ),
    "export": (
        "variformer.commands.export",
        "models as PredictDB files (weights .db + SNP covariance) for TWAS",
    ),
    "twas": (
        "variformer.commands.twas",
        "S-PrediXcan (pytwas) of GWAS summary statistics on an exported model, inputs checked",
    ),
    "evaluate": (
        "variformer.commands.evaluate",
        "fine-tuned runs, baselines and pre-trained Enformer in one table (HOP/HOGP) + figures",
    ),
    "predict": (
        "variformer.commands.predict",
        "impute expression for a genotype-only cohort with trained runs or baselines",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (keeps ``variformer prep`` free of torch)."""
    parser = argparse.ArgumentParser(
        prog="variformer",
        description="Predict gene expression from personal genomes (Variformer).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_module=module)
    return parser


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("variformer"))
        return 0
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args._module.main(args) or 0)
    except InputError as err:
        print(f"variformer {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"variformer {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk or quota: the user's to fix, not a traceback
        if err.errno not in _DISK_ERRORS:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(
            f"variformer {args.command}: error: {os.strerror(err.errno)}{where}; free space or "
            "write elsewhere, then run the same command again (finished outputs are unchanged)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
