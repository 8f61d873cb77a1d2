"""Thin ``variformer`` subcommands: argparse and printing over importable functions."""
