"""User-facing errors, one home for every layer (data_prep, variformer, baselines).

Anything a user can fix (a wrong path, a missing index, a REF that disagrees with the FASTA,
an unknown config key) is raised as :class:`InputError`. The command line prints its message
as a single line and exits with status 2; a Python caller gets an ordinary exception with the
same message. This module imports nothing heavy, so ``data_prep`` and ``baselines`` import it
without loading torch.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(Exception):
    """Bad input that the user can fix; the message says what is wrong and what to do."""
