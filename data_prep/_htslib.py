"""Guards around htslib (through cyvcf2/pysam), which reports some damage only on stderr."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from variformer.errors import InputError

# The 28-byte empty block that ends every complete BGZF file (SAM/BAM spec, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def check_bgzf_complete(path: Path) -> None:
    """Raise InputError if a BGZF file (.vcf.gz, .bcf) lacks its end-of-file block (truncated)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - len(BGZF_EOF)))
        tail = fh.read()
    if tail != BGZF_EOF:
        raise InputError(
            f"{path} is truncated (no BGZF end-of-file block); re-download or re-compress it with bgzip"
        )


@contextlib.contextmanager
def htslib_errors(what: str):
    """Run a block with file descriptor 2 captured; htslib error lines become an InputError.

    htslib (inside cyvcf2, pysam and pysam's bcftools) logs damage on stderr, sometimes without
    failing. An ``[E::`` line wins over the exception the block raised, as it names the cause.
    """
    failed: BaseException | None = None
    with tempfile.TemporaryFile(mode="w+b") as cap:
        saved = os.dup(2)
        os.dup2(cap.fileno(), 2)
        try:
            yield
        except Exception as err:
            failed = err
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            cap.seek(0)
            text = cap.read().decode(errors="replace")
    errors = [ln.strip() for ln in text.splitlines() if ln.startswith("[E::")]
    if errors and isinstance(failed, InputError):
        raise InputError(f"{failed} (htslib: {errors[0]})") from None
    if errors:
        raise InputError(_describe(what, errors[0])) from None
    if failed is not None:
        raise failed


def _describe(what: str, line: str) -> str:
    """One line for an htslib error line."""
    dup = re.search(r"Duplicated sample name '(.*)'", line)
    if dup:
        return f"{what} has duplicate sample id {dup.group(1)!r}; rename it (bcftools reheader)"
    if "vcf_parse" in line or "does not match the number of samples" in line:
        return f"{what} has a malformed record (htslib: {line}); fix or drop that record"
    return f"{what} is corrupt or truncated (htslib: {line})"
