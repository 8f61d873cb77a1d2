"""The paper's path: run ``bcftools consensus`` (through ``pysam.bcftools``) for every person.

Per window: ``bcftools view`` (region, samples) -> ``bcftools norm -m -any`` (split
multi-allelic records) -> keep single-base ACGT SNV records -> for each person and haplotype
``bcftools consensus -H 1|2`` on the window's reference. The haplotype sequences are then
compared with the reference to recover which SNV allele each haplotype carries, so this engine
writes the very same dataset as the native one, only much more slowly. It exists for users who
want bcftools' own output and as the oracle the native engine is tested against.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pysam

from core.errors import InputError
from data_prep._htslib import htslib_errors
from data_prep.genome import encode
from data_prep.variants import (
    WindowVariants,
    carriers_from_alleles,
    classify_allele,
    empty_window_variants,
    finish_window_variants,
    record_genotypes,
)

SNV_FILTER = (
    'TYPE="snp" && strlen(REF)=1 && strlen(ALT)=1 && REF~"^[ACGTacgt]$" && ALT~"^[ACGTacgt]$"'
)


def _bcftools(cmd: str, *args: str, **kwargs) -> str:
    import pysam.bcftools

    try:
        return getattr(pysam.bcftools, cmd)(*args, **kwargs)
    except pysam.utils.SamtoolsError as err:
        raise InputError(f"bcftools {cmd} failed: {str(err).strip().splitlines()[-1]}") from None


def bcftools_window_variants(
    vcf_path,
    contig: str,
    start0: int,
    end0: int,
    reference: str,
    *,
    samples: list[str],
    sample_index=None,
    missing: str = "ref",
    ref_mismatch: str = "error",
    pass_only: bool = False,
    counts: Counter | None = None,
    mismatches: list | None = None,
) -> WindowVariants:
    """Same contract as :func:`data_prep.variants.read_window_variants`, computed by bcftools.

    Parameters
    ----------
    vcf_path : path
        bgzipped + indexed VCF/BCF.
    samples : list of str
        Sample ids in output order (``sample_index`` is accepted and ignored).
    """
    import cyvcf2

    counts = Counter() if counts is None else counts
    mismatches = [] if mismatches is None else mismatches
    lo = max(start0, 0)
    n = len(samples)
    empty = empty_window_variants(n)
    if end0 <= lo:
        return empty
    region = f"{contig}:{lo + 1}-{end0}"
    with tempfile.TemporaryDirectory(prefix="variformer-bcftools-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "samples.txt").write_text("\n".join(samples) + "\n")
        with htslib_errors(f"VCF {vcf_path}"):
            _bcftools(
                "view",
                "-r",
                region,
                "-S",
                str(tmp / "samples.txt"),
                "-Oz",
                "-o",
                str(tmp / "view.vcf.gz"),
                str(vcf_path),
                catch_stdout=False,
            )
        _bcftools(
            "norm",
            "-m",
            "-any",
            "-Oz",
            "-o",
            str(tmp / "split.vcf.gz"),
            str(tmp / "view.vcf.gz"),
            catch_stdout=False,
        )
        # skip-reason counts come from the split records, classified as the native engine does
        split = [
            (r.POS, r.REF, r.ALT[0] if r.ALT else ".")
            for r in cyvcf2.VCF(str(tmp / "split.vcf.gz"))
        ]
        for pos1, ref, alt in split:
            if pos1 - 1 < lo or pos1 - 1 >= end0:
                continue
            kind = classify_allele(ref, alt)
            if kind != "snv":
                counts[kind] += 1
        _bcftools(
            "view",
            "-i",
            SNV_FILTER,
            "-Oz",
            "-o",
            str(tmp / "all_snv.vcf.gz"),
            str(tmp / "split.vcf.gz"),
            catch_stdout=False,
        )
        records, haploid = _diploid_snv_vcf(
            tmp / "all_snv.vcf.gz",
            tmp / "snv.vcf",
            contig=contig,
            lo=lo,
            reference=reference,
            missing=missing,
            ref_mismatch=ref_mismatch,
            pass_only=pass_only,
            counts=counts,
            mismatches=mismatches,
        )
        if ref_mismatch == "error" and mismatches:
            return empty
        _count_overlaps(records, haploid, counts)
        pysam.tabix_compress(str(tmp / "snv.vcf"), str(tmp / "snv.vcf.gz"))
        _bcftools("index", str(tmp / "snv.vcf.gz"))
        # the window's reference, named as a region so consensus applies only its variants
        (tmp / "window.fa").write_text(f">{contig}:{lo + 1}-{end0}\n{reference}\n")
        haps = np.empty((2, n, len(reference)), dtype=np.uint8)
        for si, sample in enumerate(samples):
            for h in (1, 2):
                fa = _bcftools(
                    "consensus",
                    "-f",
                    str(tmp / "window.fa"),
                    "-s",
                    sample,
                    "-H",
                    str(h),
                    str(tmp / "snv.vcf.gz"),
                )
                seq = "".join(fa.split("\n")[1:])
                if len(seq) != len(reference):
                    raise InputError(
                        f"bcftools consensus changed the length of {region} for {sample}; is the VCF SNV-only?"
                    )
                haps[h - 1, si] = encode(seq)
    first: dict[tuple[int, str], int] = {}  # (pos, ALT) -> first record carrying it
    for i, (p, _, _, alt, _) in enumerate(records):
        first.setdefault((p, alt), i)
    pos_list, id_list, ref_list, alt_list, cols, haps_list = [], [], [], [], [], []
    for (p, alt), i in first.items():
        off = p - 1 - lo
        code = encode(alt)[0]
        col = carriers_from_alleles(haps[0, :, off] == code, haps[1, :, off] == code)
        if not col.any():
            counts["no_carrier"] += 1
            continue
        pos_list.append(p)
        id_list.append(records[i][1])
        ref_list.append(reference[off])
        alt_list.append(alt)
        cols.append(col)
        haps_list.append(haploid[i])
    if not cols:
        return empty
    return finish_window_variants(
        pos_list, id_list, ref_list, alt_list, np.stack(cols, axis=1), np.stack(haps_list, axis=1)
    )


def _diploid_snv_vcf(
    src: Path,
    dst: Path,
    *,
    contig,
    lo,
    reference,
    missing,
    ref_mismatch,
    pass_only,
    counts,
    mismatches,
) -> tuple[list, list]:
    """Write the GT-only text VCF that ``bcftools consensus`` applies, from split SNV records.

    Leaves out records whose FILTER is not PASS with ``pass_only``, records whose REF disagrees with the FASTA (collected in ``mismatches``) and
    records without GT (as bcftools consensus applies nothing for them). A haploid call is
    written as the homozygous diploid call (variants.py's documented rule), so ``-H 2`` applies
    it too.

    Returns
    -------
    records : list of (pos1, id, ref, alt, gt), gt an int array shape=(n, 2) (-1 missing)
    haploid : list of bool arrays, shape=(n,), one per record
    """
    import cyvcf2

    vcf = cyvcf2.VCF(str(src))
    header = [ln for ln in vcf.raw_header.splitlines() if ln.startswith("##contig")]
    header.insert(0, "##fileformat=VCFv4.2")
    header.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *vcf.samples]))  # fmt: skip
    lines, records, haploid = list(header), [], []
    n = len(vcf.samples)
    for r in vcf:
        if r.FILTER is not None:  # not PASS: applied as bcftools consensus does, or skipped
            if pass_only:
                counts["filter_not_pass"] += 1
                continue
            counts["applied_not_pass"] += 1
        ref, alt, base = r.REF.upper(), r.ALT[0].upper(), reference[r.POS - 1 - lo]
        if ref != base:
            counts["ref_mismatch"] += 1
            if ref_mismatch == "error":
                mismatches.append((contig, r.POS, r.REF, base))
            continue
        called = record_genotypes(r, np.arange(n), n)
        if called is None:
            if missing == "error":
                raise InputError(
                    f"record {contig}:{r.POS} has no GT in its FORMAT; use --missing ref to skip such "
                    "records, as bcftools consensus does"
                )
            counts["no_genotype"] += 1
            continue
        gt, hap = called
        if missing == "error" and (gt == -1).any():
            raise InputError(
                f"missing genotype at {contig}:{r.POS}; use --missing ref to treat missing alleles as reference"
            )
        calls = ["/".join("." if a < 0 else str(a) for a in row) for row in gt.tolist()]
        lines.append("\t".join([r.CHROM, str(r.POS), r.ID or ".", ref, alt, ".", ".", ".", "GT", *calls]))  # fmt: skip
        records.append((r.POS, r.ID or ".", ref, alt, gt))
        haploid.append(hap)
    dst.write_text("\n".join(lines) + "\n")
    return records, haploid


def _count_overlaps(records: list, haploid: list, counts: Counter) -> None:
    """Count haplotype alleles that bcftools consensus skips because an earlier one took the base.

    Only the summary's ``overlapping_allele`` count comes from here; the sequences are bcftools'.
    """
    claimed: dict[int, np.ndarray] = {}
    for p, _, _, _, gt in records:
        carried = ((gt[:, 0] == 1).astype(np.uint8)) | ((gt[:, 1] == 1).astype(np.uint8) << 1)
        taken = claimed.get(p)
        if taken is not None:
            n_over = int(np.count_nonzero(carried & taken))
            if n_over:
                counts["overlapping_allele"] += n_over
            claimed[p] = taken | carried
        else:
            claimed[p] = carried
