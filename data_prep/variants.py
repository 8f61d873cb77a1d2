"""SNVs of a window and each person's two haplotypes, exactly as ``bcftools consensus`` builds them.

Input contract: a bgzipped, indexed VCF/BCF with a ``GT`` field; phased or unphased. The two
haplotypes of a person are the first and second allele of ``GT`` (``bcftools consensus -H 1``
and ``-H 2``). Only SNV alleles are applied (REF and ALT single bases of ACGT); indel, MNP,
symbolic and ``*`` alleles are skipped and counted, and a haplotype carrying one keeps the
reference base. The bcftools rules reproduced here (checked against ``pysam.bcftools``):

- per haplotype, the first applied allele at a position wins; a later record at the same
  position is skipped for that haplotype ("overlaps with another variant");
- a missing allele (``.``) applies nothing and does not claim the position (``--missing ref``);
- the FASTA's case is irrelevant here (sequences are upper-cased before encoding).

One deliberate difference: a haploid genotype (``GT=1``, e.g. a male's chrX outside the PARs)
is that person's only haplotype, so it is applied to both haplotypes (as if ``GT=1/1``): the
averaged one-hot shows the ALT base at full weight and the dosage is 2, like any person whose
every copy carries the ALT. ``bcftools consensus`` itself applies a haploid allele with ``-H 1``
only and leaves ``-H 2`` the reference, which would show a hemizygous ALT as a 0.5/0.5
heterozygote. ``ac``/``an`` count the alleles actually present: one per haploid call.

Row order is canonical (both engines): by position, then ALT base in A, C, G, T order; the ID is
that of the first record (in file order) carrying the allele.
"""

from __future__ import annotations

import warnings
from collections import Counter
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.vcf_text import fast_reader_enabled

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
        A haploid call sets both bits.
    ac : np.ndarray, shape=(V,), int64
        ALT alleles present in the people (a haploid carrier counts once).
    an : np.ndarray, shape=(V,), int64
        Alleles present (2 per diploid and 1 per haploid call; a missing allele counts, as REF).
    """

    pos1: np.ndarray
    ids: list
    refs: list
    alts: list
    carriers: np.ndarray
    ac: np.ndarray
    an: np.ndarray


def empty_window_variants(n_samples: int) -> WindowVariants:
    """A window without SNV alleles."""
    zero = np.zeros(0, np.int64)
    return WindowVariants(zero, [], [], [], np.zeros((n_samples, 0), np.uint8), zero, zero.copy())


def finish_window_variants(pos1, ids, refs, alts, carriers, haploid) -> WindowVariants:
    """Put rows in the canonical order and count alleles.

    Parameters
    ----------
    pos1 : array-like of int, shape=(V,)
    ids, refs, alts : list of str
    carriers : np.ndarray, shape=(n, V), uint8
    haploid : np.ndarray, shape=(n, V), bool
        Whether each person's call for the row's allele is haploid.
    """
    pos = np.asarray(pos1, dtype=np.int64)
    n = carriers.shape[0]
    if not len(pos):
        return empty_window_variants(n)
    order = np.lexsort((np.asarray([BASES.index(a) for a in alts]), pos))
    carriers, haploid = carriers[:, order], haploid[:, order]
    copies = (carriers & 1) + ((carriers >> 1) & 1)
    ac = np.where(haploid, copies > 0, copies).sum(axis=0).astype(np.int64)
    an = (2 * n - haploid.sum(axis=0)).astype(np.int64)
    return WindowVariants(
        pos[order],
        [ids[i] for i in order],
        [refs[i] for i in order],
        [alts[i] for i in order],
        np.ascontiguousarray(carriers),
        ac,
        an,
    )


@lru_cache(maxsize=4096)  # a handful of distinct pairs (A>G, C>T, ...) make most calls
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
    pass_only: bool = False,
    counts: Counter | None = None,
    mismatches: list | None = None,
    text_reader=None,
    sites: list | None = None,
) -> WindowVariants:
    """Read the SNV alleles in ``[start0, end0)`` and resolve each person's haplotypes.

    Parameters
    ----------
    vcf : cyvcf2.VCF or data_prep.vcf_text.IndexedVcf
        An open, indexed VCF/BCF (a :class:`~data_prep.vcf_text.IndexedVcf`, as
        :class:`~data_prep.cohort.Cohort` opens it, brings its fast text reader along).
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
    pass_only : bool
        Skip SNV alleles of records whose FILTER is not PASS (or ``.``), counted as
        ``filter_not_pass``; by default they are applied, as bcftools consensus does, and
        counted as ``applied_not_pass``.
    counts : Counter, optional
        Incremented with skip reasons (``indel``, ``symbolic``, ``ref_mismatch`` ...).
    mismatches : list, optional
        Receives ``(contig, pos1, vcf_ref, fasta_base)`` for each SNV allele with a REF mismatch.
    text_reader : data_prep.vcf_text.TextVcf, optional
        The fast reader of the same bgzipped text VCF (default: ``vcf.text_reader`` if any). A
        window it reads (the simple, common case, see :mod:`data_prep.vcf_text`) skips htslib's
        parsing of every FORMAT field; any other window, BCF, or ``VARIFORMER_VCF_READER=cyvcf2``
        reads through cyvcf2. Both give the same result.
    sites : list, optional
        Receives ``(pos1, ref, alt)`` of every SNV allele the VCF offers in the window after
        the FILTER and REF checks, carried by someone or not (what a model's SNV needs to be
        "found" in a cohort; alleles without a carrier get no row in the result).

    Returns
    -------
    WindowVariants
    """
    counts = Counter() if counts is None else counts
    mismatches = [] if mismatches is None else mismatches
    lo = max(start0, 0)
    n = len(sample_index)
    if text_reader is None:
        text_reader = getattr(vcf, "text_reader", None)  # a data_prep.vcf_text.IndexedVcf
    window = None
    if text_reader is not None and fast_reader_enabled():
        window = text_reader.read_window(contig, lo, end0, sample_index)
    if window is not None:
        done = _text_window_variants(
            window, contig, lo, reference, missing, ref_mismatch, pass_only, counts, mismatches,
            sites,
        )  # fmt: skip
        if done is not None:
            return done
        records = _text_records(window, n)
    else:
        records = _cyvcf2_records(vcf, contig, lo, end0, sample_index, n)
    rules = _Rules(contig, lo, reference, pass_only, ref_mismatch)
    # claimed[p] -> uint8 mask of haplotypes that already hold an allele at position p
    claimed: dict[int, np.ndarray] = {}
    rows: dict[tuple[int, str], int] = {}  # (pos, ALT) -> row
    ids: list[str] = []
    refs: list[str] = []
    cols: list[np.ndarray] = []
    haps: list[np.ndarray] = []
    for pos1, vid, ref, alt_list, filter_pass, genotypes in records:
        if pos1 - 1 < lo or pos1 - 1 >= end0:
            continue  # records overlapping the window start (long REF) are not SNVs here
        kinds = _screen(pos1, ref, alt_list, filter_pass, rules, counts, mismatches)
        if kinds is None:
            continue
        called = genotypes()
        if called is None:  # no GT in this record: bcftools consensus applies nothing
            if missing == "error":
                raise InputError(
                    f"record {contig}:{pos1} has no GT in its FORMAT; use --missing ref to skip "
                    "such records, as bcftools consensus does"
                )
            counts["no_genotype"] += kinds.count("snv")
            continue
        gt, haploid = called
        if missing == "error" and (gt == -1).any():
            s = int(np.nonzero((gt == -1).any(axis=1))[0][0])
            raise InputError(
                f"missing genotype at {contig}:{pos1} (sample #{s + 1}); use --missing ref to treat "
                "missing alleles as reference, as bcftools consensus does"
            )
        for a, kind in enumerate(kinds, start=1):
            if kind != "snv":
                continue
            # bool -> uint8 as a view (no copies): bit 0 haplotype 1, bit 1 haplotype 2
            carried = (gt[:, 0] == a).view(np.uint8) | ((gt[:, 1] == a).view(np.uint8) << 1)
            taken = claimed.get(pos1)
            if taken is not None:
                overlap = carried & taken
                if overlap.any():
                    counts["overlapping_allele"] += int(np.count_nonzero(overlap))
                carried = carried & ~taken
                claimed[pos1] = taken | carried
            else:
                claimed[pos1] = carried.copy()
            key = (pos1, alt_list[a - 1].upper())
            row = rows.get(key)
            if row is not None:  # the same allele again in a later record: one row per (pos, ALT)
                cols[row] |= carried
                continue
            rows[key] = len(cols)
            ids.append(vid)  # the first record's ID (the bcftools engine does the same)
            refs.append(ref.upper())
            cols.append(carried)
            haps.append(haploid)
    any_carrier = np.stack(cols, axis=1).any(axis=0) if cols else np.zeros(0, bool)
    keep = np.flatnonzero(any_carrier).tolist()
    counts["no_carrier"] += len(cols) - len(keep)
    if not counts["no_carrier"]:
        del counts["no_carrier"]
    keys = list(rows)
    if sites is not None:
        sites.extend((pos, refs[i], alt) for i, (pos, alt) in enumerate(keys))
    return finish_window_variants(
        [keys[i][0] for i in keep],
        [ids[i] for i in keep],
        [refs[i] for i in keep],
        [keys[i][1] for i in keep],
        np.stack([cols[i] for i in keep], axis=1) if keep else np.zeros((n, 0), np.uint8),
        np.stack([haps[i] for i in keep], axis=1) if keep else np.zeros((n, 0), bool),
    )


def _cyvcf2_records(vcf, contig: str, lo: int, end0: int, sample_index: np.ndarray, n: int):
    """The window's records read by cyvcf2, as the tuples :func:`read_window_variants` takes.

    Each tuple: ``(pos1, id, ref, alts, filter_pass, genotypes)`` with ``id`` ``.`` for none,
    ``alts`` a list (empty for ALT ``.``), ``filter_pass`` True for FILTER PASS or ``.``, and
    ``genotypes()`` giving ``(gt, haploid)`` (see :func:`record_genotypes`) or None without GT.
    """
    # every sample in VCF order (the usual case): a view instead of a fancy-index copy per record
    n_vcf = len(vcf.samples)
    identity = n == n_vcf and bool(np.array_equal(sample_index, np.arange(n_vcf)))
    rows_sel = slice(None) if identity else np.asarray(sample_index)
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
    return [
        (
            rec.POS,
            rec.ID or ".",
            rec.REF,
            rec.ALT,
            rec.FILTER is None,  # cyvcf2: None for PASS and "."
            partial(record_genotypes, rec, rows_sel, n),
        )
        for rec in records
    ]


class _Rules(NamedTuple):
    """The window and the options that decide whether a record's SNV alleles are applied."""

    contig: str
    lo: int  # 0-based start of ``reference`` on the contig
    reference: str
    pass_only: bool
    ref_mismatch: str


def _screen(pos1, ref, alt_list, filter_pass, rules: _Rules, counts, mismatches) -> list | None:
    """Each ALT's kind (:func:`classify_allele`) if the record's SNV alleles are to be applied.

    Counts the skipped alleles (non-SNV kinds, FILTER, REF mismatch) in ``counts`` and REF
    mismatches in ``mismatches``; None when the record applies nothing.
    """
    kinds = [classify_allele(ref, alt) for alt in alt_list]
    for k in kinds or ["no_alt"]:
        if k != "snv":
            counts[k] += 1
    n_snv = kinds.count("snv")
    if not n_snv:
        return None
    if not filter_pass:
        if rules.pass_only:
            counts["filter_not_pass"] += n_snv
            return None
        counts["applied_not_pass"] += n_snv
    fasta_base = rules.reference[pos1 - 1 - rules.lo]
    if ref.upper() != fasta_base:
        counts["ref_mismatch"] += n_snv  # one per SNV allele, as after `bcftools norm -m -any`
        if rules.ref_mismatch == "error":
            mismatches.extend([(rules.contig, pos1, ref, fasta_base)] * n_snv)
        return None
    return kinds


def _text_window_variants(
    window, contig, lo, reference, missing, ref_mismatch, pass_only, counts, mismatches,
    sites=None,
) -> WindowVariants | None:  # fmt: skip
    """The record loop of :func:`read_window_variants` done for all records at once, or None.

    Only for the fast reader's windows (every call diploid) in which no two records share a
    position and no record names one ALT twice: then no haplotype can be claimed twice, so the
    bcftools overlap rule and the merging of repeated (position, ALT) rows have nothing to do,
    and every SNV allele is one row. With ``missing='error'`` (whose message names the first
    offending record) or any shared position, None: the caller runs the loop.
    """
    if missing == "error" or len(set(window.pos1)) != len(window.pos1):
        return None
    rules = _Rules(contig, lo, reference, pass_only, ref_mismatch)
    rec_of, allele_of, pos_of, ids, refs, alts = [], [], [], [], [], []
    bumps: Counter = Counter()  # counts and mismatches are kept apart until the window is done:
    found: list = []  # a None return leaves them to the record loop
    for r, (pos1, vid, ref, alt_list, filter_pass) in enumerate(
        zip(window.pos1, window.ids, window.refs, window.alts, window.filter_pass)
    ):
        snvs = [alt.upper() for alt in alt_list if classify_allele(ref, alt) == "snv"]
        if len(set(snvs)) != len(snvs):
            return None  # one ALT twice in a record: the loop merges the rows
        kinds = _screen(pos1, ref, alt_list, filter_pass, rules, bumps, found)
        if kinds is None:
            continue
        for a, kind in enumerate(kinds, start=1):
            if kind == "snv":
                rec_of.append(r)
                allele_of.append(a)
                pos_of.append(pos1)
                ids.append(vid)
                refs.append(ref.upper())
                alts.append(alt_list[a - 1].upper())
    counts.update(bumps)
    mismatches.extend(found)
    if sites is not None:
        sites.extend(zip(pos_of, refs, alts))
    n = window.gt.shape[1]
    if not rec_of:
        return finish_window_variants(
            [], [], [], [], np.zeros((n, 0), np.uint8), np.zeros((n, 0), bool)
        )
    gt = window.gt[np.asarray(rec_of)]  # (K, n, 2)
    a = np.asarray(allele_of, dtype=gt.dtype)[:, None]
    # bool -> uint8 views: bit 0 haplotype 1, bit 1 haplotype 2; (K, n)
    carried = (gt[:, :, 0] == a).view(np.uint8) | ((gt[:, :, 1] == a).view(np.uint8) << 1)
    keep = np.flatnonzero(carried.any(axis=1))
    if len(keep) < len(rec_of):
        counts["no_carrier"] += len(rec_of) - len(keep)
    rows = keep.tolist()
    return finish_window_variants(
        [pos_of[i] for i in rows],
        [ids[i] for i in rows],
        [refs[i] for i in rows],
        [alts[i] for i in rows],
        np.ascontiguousarray(carried[keep].T),
        np.zeros((n, len(rows)), bool),
    )


def _text_records(window, n: int):
    """The fast reader's window (a :class:`data_prep.vcf_text.TextWindow`) as the same tuples.

    Every call is diploid here (the fast path takes no haploid call), so ``haploid`` is all False.
    """
    diploid = np.zeros(n, bool)
    gt = window.gt
    return [
        (pos1, vid, ref, alts, ok, partial(_pair, gt[r], diploid))
        for r, (pos1, vid, ref, alts, ok) in enumerate(
            zip(window.pos1, window.ids, window.refs, window.alts, window.filter_pass)
        )
    ]


def _pair(gt: np.ndarray, haploid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return gt, haploid


def record_genotypes(rec, rows, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Allele indexes, shape=(n, 2) (-1 missing), and haploid mask, shape=(n,); None without GT.

    ``rows``: the VCF sample rows to keep (an index array, or ``slice(None)`` for all). A
    haploid call is copied to the second haplotype (see the module docstring). (cyvcf2's
    ``Variant.FORMAT`` can crash the interpreter, so GT's absence is learnt from ``genotype``.)
    """
    try:
        arr = rec.genotype.array()
        gt = arr[:, :-1] if isinstance(rows, slice) else arr.take(rows, axis=0)[:, :-1]
    except Exception as err:  # cyvcf2: "couldn't get genotypes for variant"
        if "genotype" in str(err):
            return None
        raise
    if gt.shape[1] == 1:  # every call of the record is haploid
        return np.concatenate([gt, gt], axis=1), np.ones(n, bool)
    gt = np.array(gt[:, :2])
    haploid = gt[:, 1] == -2  # htslib's vector end: no second allele
    gt[haploid, 1] = gt[haploid, 0]
    return gt, haploid


def carriers_from_alleles(hap1: np.ndarray, hap2: np.ndarray) -> np.ndarray:
    """Pack two boolean haplotype matrices, shape=(n, V), into the uint8 ``carriers`` code."""
    return hap1.astype(np.uint8) | (hap2.astype(np.uint8) << 1)
