"""Thin subcommands of ``variformer`` (see :mod:`variformer.cli`): argparse + printing only.

Each module exposes ``add_arguments(parser)`` and ``main(args) -> int`` and calls importable
library functions; shared option groups live in :mod:`variformer.commands._args`.
"""
