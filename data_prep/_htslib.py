"""Guards around htslib (through cyvcf2/pysam), which reports some damage only on stderr."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import tempfile
from pathlib import Path

from core.errors import InputError

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


def vcf_index(path: Path) -> Path | None:
    """The VCF/BCF's index beside it: ``<path>.tbi``, else ``<path>.csi``, else None."""
    return next(
        (Path(f"{path}{ext}") for ext in (".tbi", ".csi") if Path(f"{path}{ext}").is_file()), None
    )


def is_bcf(path: Path) -> bool:
    """Whether a bgzipped file holds BCF (binary) rather than VCF text (gzip's errors pass)."""
    with gzip.open(path, "rb") as fh:
        return fh.read(3) == b"BCF"


def check_index_fresh(path: Path) -> None:
    """Raise InputError if the VCF/BCF's .tbi/.csi index is older than the file (stale).

    Records added after indexing are invisible through a stale index (htslib only warns).
    """
    path = Path(path)
    for ext in (".tbi", ".csi"):
        index = Path(f"{path}{ext}")
        if index.is_file() and index.stat().st_mtime < path.stat().st_mtime:
            tool = "tabix -f -p vcf" if ext == ".tbi" else "bcftools index -f"
            raise InputError(
                f"the index {index.name} is older than {path} (the VCF changed after indexing, so "
                f"records may be missed); re-index it with `{tool} {path}`"
            )


def check_sample_columns(path: Path, n_samples: int) -> None:
    """Raise InputError if a bgzipped text VCF's records have another number of sample columns
    than its ``#CHROM`` header names (a sample name lost from, or added to, the header shifts
    every genotype onto the wrong person, and htslib does not notice extra columns).

    Reads the first record of every contig in the .tbi or .csi index (or the file's first record
    when tabix cannot open the index). BCF stores both together: nothing to check.
    """
    import pysam

    path = Path(path)
    if is_bcf(path):
        return
    with gzip.open(path, "rt", errors="replace") as fh:
        first = [next((ln for ln in fh if not ln.startswith("#")), "")]
    index = vcf_index(path)
    try:
        with pysam.TabixFile(str(path), index=str(index) if index else None) as tbx:
            first += [next(iter(tbx.fetch(c)), "") for c in tbx.contigs]
    except (OSError, ValueError):
        pass  # tabix cannot open the index: the first record is checked
    for line in first:
        fields = line.rstrip("\r\n").split("\t")
        if line and len(fields) != 9 + n_samples:
            raise InputError(
                f"{path}: the record at {fields[0]}:{fields[1] if len(fields) > 1 else '?'} has "
                f"{len(fields) - 9} sample columns but the #CHROM header names {n_samples} samples; "
                "a sample name is missing from (or extra in) the header, which would put "
                "genotypes on the wrong people: fix the header (bcftools reheader)"
            )
