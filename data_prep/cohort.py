"""The cohort's VCF/BCF files: opened, checked, and asked which file holds a contig.

A cohort is one or several bgzipped + indexed VCF/BCF files (e.g. one per chromosome) with the
same samples in the same order. Every problem a user can fix is an :class:`InputError`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import InputError
from data_prep._htslib import (
    check_bgzf_complete,
    check_index_fresh,
    check_sample_columns,
    htslib_errors,
    vcf_index,
)
from data_prep.genome import ContigMap
from data_prep.vcf_text import IndexedVcf, TextVcf

__all__ = ["Cohort"]


def _check_index(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"VCF/BCF not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"\x1f\x8b":
        raise InputError(
            f"{path} is not bgzip-compressed; compress it with `bgzip` and index it with `bcftools index`"
        )
    if vcf_index(path) is None:
        raise InputError(
            f"{path} has no index (.tbi or .csi); create one with `bcftools index {path}`"
        )


def _duplicate_header_sample(path: Path) -> str | None:
    """A duplicated sample id in a text VCF's #CHROM line (htslib refuses such headers)."""
    import gzip

    try:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                if line.startswith("#CHROM"):
                    names = line.rstrip("\n").split("\t")[9:]
                    seen: set[str] = set()
                    for name in names:
                        if name in seen:
                            return name
                        seen.add(name)
                    return None
                if not line.startswith("#"):
                    return None
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    return None


def _indexed_contigs(path: Path) -> list[str]:
    """Contigs that have records, as listed by the file's .tbi/.csi index."""
    import pysam

    try:
        with pysam.VariantFile(str(path)) as vf:
            return list(vf.index.keys())
    except (OSError, ValueError, AttributeError):
        return []


class Cohort:
    """One or several VCF/BCF files (e.g. one per chromosome) with the same samples.

    ``vcfs`` holds each file as a :class:`data_prep.vcf_text.IndexedVcf`: the cyvcf2.VCF, and
    for a text VCF the fast reader that :func:`data_prep.variants.read_window_variants` uses.
    """

    def __init__(self, paths: list[Path]):
        import cyvcf2

        if not paths:
            raise InputError("give at least one --vcf")
        self.paths = [Path(p) for p in paths]
        self.vcfs = []
        self.contigs: list[ContigMap] = []  # contigs named in each file's header (or index)
        self.indexed: list[ContigMap] = []  # contigs that have records, from each file's index
        for p in self.paths:
            _check_index(p)
            check_bgzf_complete(p)
            check_index_fresh(p)
            try:
                with htslib_errors(f"VCF {p}"):
                    # no decompression threads: with them a damaged block can hang htslib forever
                    vcf = cyvcf2.VCF(str(p), lazy=True, threads=None)
            except InputError:
                raise
            except Exception as err:
                dup = _duplicate_header_sample(p)
                if dup:
                    raise InputError(
                        f"{p} has duplicate sample id {dup!r}; rename it (bcftools reheader)"
                    ) from None
                raise InputError(f"cannot open {p} as VCF/BCF: {err}") from None
            if not len(vcf.samples):
                raise InputError(f"{p} has no samples (a sites-only VCF); prep needs genotypes")
            with htslib_errors(f"VCF {p}"):
                check_sample_columns(p, len(vcf.samples))
            # before the per-file record checks: a header for other people is the bigger mistake
            if self.vcfs and list(vcf.samples) != list(self.vcfs[0].samples):
                raise InputError(
                    f"{p} has different samples than {self.paths[0]}; all --vcf files must have the same samples in the same order"
                )
            indexed = _indexed_contigs(p)
            if not indexed:
                raise InputError(
                    f"{p} has no records (only a header); give the VCF with the genotypes"
                )
            # a bgzipped text VCF also gets the fast GT reader (data_prep.vcf_text); BCF: None
            self.vcfs.append(IndexedVcf(vcf, TextVcf.open(p, len(vcf.samples))))
            self.contigs.append(ContigMap(vcf.seqnames, source=f"VCF {p.name}"))
            self.indexed.append(ContigMap(indexed, source=f"index of {p.name}"))
        self.samples = list(self.vcfs[0].samples)
        dup = pd.Index(self.samples)[pd.Index(self.samples).duplicated()]
        if len(dup):
            raise InputError(
                f"{self.paths[0]} has duplicate sample id {dup[0]!r}; rename it (bcftools reheader)"
            )
        self.warnings: list[str] = []  # for the summary; the CLI prints them
        for p, vcf, indexed in zip(self.paths, self.vcfs, self.indexed):
            if "GT" in {
                h.info().get("ID")
                for h in vcf.header_iter()
                if h.info().get("HeaderType") == "FORMAT"
            }:
                continue
            if not _first_record_has_gt(vcf, indexed.names[0], p):
                raise InputError(
                    f"{p} has no GT FORMAT field (header and records); prep needs genotypes"
                )
            self.warnings.append(
                f"{p} lacks a ##FORMAT=<ID=GT> header line but its records carry GT; read as "
                "bcftools does (add the line with `bcftools annotate --header-lines`)"
            )

    def locate(self, contig: str) -> tuple[int, str] | None:
        """(file index, contig name as that file spells it) for a contig, or None.

        Per-chromosome files often share one header listing every contig, so the index (which
        lists only contigs with records) decides; a contig with records in no file falls back
        to a file whose header names it (see :meth:`has_records`).
        """
        with_records = [i for i, names in enumerate(self.indexed) if names.get(contig) is not None]
        if len(with_records) > 1:
            files = ", ".join(self.paths[i].name for i in with_records)
            raise InputError(
                f"contig {contig} has records in several VCFs ({files}); give each contig in one file only"
            )
        candidates = with_records or [
            i for i, cmap in enumerate(self.contigs) if cmap.get(contig) is not None
        ]
        if not candidates:
            return None
        i = candidates[0]
        return i, self.contigs[i].get(contig) or self.indexed[i].get(contig)

    def has_records(self, contig: str) -> bool:
        """Whether any file's index has records on ``contig``."""
        return any(names.get(contig) is not None for names in self.indexed)


def _first_record_has_gt(vcf, contig: str, path: Path) -> bool:
    """Whether the first record on ``contig`` carries GT (for a header without GT)."""
    import warnings

    with warnings.catch_warnings(), htslib_errors(f"VCF {path}"):
        warnings.simplefilter("ignore")
        for rec in vcf(contig):
            try:
                rec.genotype.array()
            except Exception:  # cyvcf2: "couldn't get genotypes for variant"
                return False
            return True
    return False
