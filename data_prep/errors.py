"""User-facing errors.

Anything a user can fix (a wrong path, a missing index, a REF that disagrees with the FASTA)
is raised as :class:`InputError`. The command line prints its message as a single line and
exits with status 2; a Python caller gets an ordinary exception with the same message.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input that the user can fix; the message says what is wrong and what to do."""
