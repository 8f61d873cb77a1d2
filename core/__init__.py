"""The shared bottom layer every package may import: ``core <- data_prep <- baselines <- variformer``.

- :mod:`core.errors`: :class:`~core.errors.InputError`, the one exception for bad input;
- :mod:`core.fileio`: atomic output (publish a directory or file whole), one-writer locks,
  writability checks, text input that may be gzipped;
- :mod:`core.metrics`: R2 / PCC and the per-person predictions schema;
- :mod:`core.runs`: the run-directory contract (layout, ``.partial`` -> publish, manifests,
  provenance and fingerprints, reading runs back);
- :mod:`core.tables`: every table written and read back, with one schema and one validating
  reader each.

Nothing here imports ``data_prep``, ``baselines`` or ``variformer``.
"""
