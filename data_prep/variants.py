"""SNVs of a window and each person's two haplotypes, exactly as ``bcftools consensus`` builds them.

Input contract: a bgzipped, indexed VCF/BCF with a ``GT`` field; phased or unphased. The two
haplotypes of a person are the first and second allele of ``GT`` (``bcftools consensus -H 1``
and ``-H 2``). Only SNV alleles are applied (REF and ALT single bases of ACGT); indel, MNP,
symbolic and ``*`` alleles are skipped and counted, and a haplotype carrying one keeps the
reference base. The bcftools rules reproduced here (checked against ``pysam.bcftools``):

- per haplotype, the first applied allele at a position wins; a later record at the same
  position is skipped for that haplotype ("overlaps with another variant");
- a missing allele (``.``) applies nothing and does not claim the position (``--missing ref``);
- a haploid genotype (``GT=1``) applies its allele to haplotype 1 only;
- the FASTA's case is irrelevant here (sequences are upper-cased before encoding).
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import NamedTuple

import numpy as np

from variformer.errors import InputError

BASES = "ACGT"
_SNV_BASES = frozenset(BASES)


class WindowVariants(NamedTuple):
    """SNV alleles of one window, one row per (site, ALT) allele, sorted by position.

    Attributes
    ----------
    pos1 : np.ndarray, shape=(V,), int64
        1-based positions.
    ids, refs, alts : list of str
        VCF ID (``.`` if none), REF and ALT base of each allele.
    carriers : np.ndarray, shape=(n_samples, V), uint8
        Bit 0 set: haplotype 1 carries the allele; bit 1 set: haplotype 2 carries it.
        Already resolved by the bcftools overlap rule, so it is what the consensus holds.
    """

    pos1: np.ndarray
    ids: list
    refs: list
    alts: list
    carriers: np.ndarray


def classify_allele(ref: str, alt: str) -> str:
    """Name the kind of a REF/ALT allele pair: 'snv' or the reason it is skipped."""
    if alt in ("*", "<*>", "<NON_REF>", ".") or alt.startswith("<") or "[" in alt or "]" in alt:
        return "symbolic"
    if len(ref) == 1 and len(alt) == 1:
        if ref.upper() in _SNV_BASES and alt.upper() in _SNV_BASES:
            return "snv" if ref.upper() != alt.upper() else "ref_equals_alt"
        return "non_acgt"
    if len(ref) == len(alt):
        return "mnp"
    return "indel"


def read_window_variants(
    vcf,
    contig: str,
    start0: int,
    end0: int,
    reference: str,
    *,
    sample_index: np.ndarray,
    missing: str = "ref",
    ref_mismatch: str = "error",
    counts: Counter | None = None,
    mismatches: list | None = None,
) -> WindowVariants:
    """Read the SNV alleles in ``[start0, end0)`` and resolve each person's haplotypes.

    Parameters
    ----------
    vcf : cyvcf2.VCF
        An open, indexed VCF/BCF.
    contig : str
        The contig name as the VCF spells it.
    start0, end0 : int
        0-based half-open window, may extend beyond the contig.
    reference : str
        The reference bases of ``[max(start0, 0), end0)`` (upper case, contig part only).
    sample_index : np.ndarray, shape=(n,), int
        Columns of the VCF's samples to keep, in output order.
    missing : {'ref', 'error'}
        A missing allele keeps the reference base (as bcftools does) or is an error.
    ref_mismatch : {'error', 'drop'}
        What to do with a record whose REF disagrees with the FASTA. With 'error' the
        mismatches are collected in ``mismatches`` and the caller raises once for all genes.
    counts : Counter, optional
        Incremented with skip reasons (``indel``, ``symbolic``, ``ref_mismatch`` ...).
    mismatches : list, optional
        Receives ``(contig, pos1, vcf_ref, fasta_base)`` for each REF mismatch.

    Returns
    -------
    WindowVariants
    """
    counts = Counter() if counts is None else counts
    mismatches = [] if mismatches is None else mismatches
    lo = max(start0, 0)
    n = len(sample_index)
    pos_list: list[int] = []
    ids: list[str] = []
    refs: list[str] = []
    alts: list[str] = []
    cols: list[np.ndarray] = []
    # claimed[p] -> uint8 mask of haplotypes that already hold an allele at position p
    claimed: dict[int, np.ndarray] = {}
    rows: dict[tuple[int, str], int] = {}
    first_id: dict[tuple[int, str], str] = {}
    region = f"{contig}:{lo + 1}-{end0}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cyvcf2 warns "no intervals found" for empty regions
            records = list(vcf(region))
    except Exception as err:  # cyvcf2 raises plain Exceptions for parse and index problems
        if "pars" in str(err):
            raise InputError(
                f"malformed VCF record in {region} ({err}); find it with `bcftools view {region}` and fix or drop it"
            ) from None
        raise InputError(
            f"cannot read {region} from the VCF ({err}); is it bgzipped and indexed (bcftools index)?"
        ) from None
    for rec in records:
        pos1 = rec.POS
        if pos1 - 1 < lo or pos1 - 1 >= end0:
            continue  # records overlapping the window start (long REF) are not SNVs here
        ref = rec.REF
        kinds = [classify_allele(ref, alt) for alt in rec.ALT]
        if not any(k == "snv" for k in kinds):
            for k in kinds or ["no_alt"]:
                counts[k] += 1
            continue
        fasta_base = reference[pos1 - 1 - lo]
        if ref.upper() != fasta_base:
            counts["ref_mismatch"] += 1
            if ref_mismatch == "error":
                mismatches.append((contig, pos1, ref, fasta_base))
            continue
        gt = rec.genotype.array()[sample_index, :-1] if n else np.zeros((0, 2), np.int16)
        if gt.shape[1] == 1:  # haploid records: a single allele column
            gt = np.concatenate([gt, np.full_like(gt, -2)], axis=1)
        gt = gt[:, :2]
        if missing == "error" and (gt == -1).any():
            s = int(np.nonzero((gt == -1).any(axis=1))[0][0])
            raise InputError(
                f"missing genotype at {contig}:{pos1} (sample #{s + 1}); use --missing ref to treat "
                "missing alleles as reference, as bcftools consensus does"
            )
        for a, kind in enumerate(kinds, start=1):
            if kind != "snv":
                counts[kind] += 1
                continue
            carried = ((gt[:, 0] == a).astype(np.uint8)) | ((gt[:, 1] == a).astype(np.uint8) << 1)
            taken = claimed.get(pos1)
            if taken is not None:
                overlap = carried & taken
                if overlap.any():
                    counts["overlapping_allele"] += int(np.count_nonzero(overlap))
                carried = carried & ~taken
                claimed[pos1] = taken | carried
            else:
                claimed[pos1] = carried.copy()
            alt = rec.ALT[a - 1].upper()
            first_id.setdefault(
                (pos1, alt), rec.ID or "."
            )  # bcftools engine reports the first ID too
            row = rows.get((pos1, alt))
            if row is not None:  # the same allele again in a later record: one row per (pos, ALT)
                cols[row] |= carried
                continue
            if not carried.any():
                counts["no_carrier"] += 1
                continue
            rows[(pos1, alt)] = len(cols)
            pos_list.append(pos1)
            ids.append(first_id[(pos1, alt)])
            refs.append(ref.upper())
            alts.append(alt)
            cols.append(carried)
    carriers = np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.uint8)
    pos = np.asarray(pos_list, dtype=np.int64)
    order = np.argsort(pos, kind="stable")  # VCFs are sorted; this only guards against ties
    return WindowVariants(
        pos[order],
        [ids[i] for i in order],
        [refs[i] for i in order],
        [alts[i] for i in order],
        carriers[:, order],
    )


def carriers_from_alleles(hap1: np.ndarray, hap2: np.ndarray) -> np.ndarray:
    """Pack two boolean haplotype matrices, shape=(n, V), into the uint8 ``carriers`` code."""
    return hap1.astype(np.uint8) | (hap2.astype(np.uint8) << 1)


def dosage_from_carriers(carriers: np.ndarray) -> np.ndarray:
    """ALT dosage 0/1/2 from ``carriers``, shape=(n, V) -> float32 (n, V)."""
    return ((carriers & 1) + ((carriers >> 1) & 1)).astype(np.float32)
