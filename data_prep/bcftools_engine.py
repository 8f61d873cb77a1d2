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

from data_prep.genome import encode
from data_prep.variants import WindowVariants, carriers_from_alleles, classify_allele
from variformer.errors import InputError

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
    empty = WindowVariants(np.zeros(0, np.int64), [], [], [], np.zeros((n, 0), np.uint8))
    if end0 <= lo:
        return empty
    region = f"{contig}:{lo + 1}-{end0}"
    with tempfile.TemporaryDirectory(prefix="variformer-bcftools-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "samples.txt").write_text("\n".join(samples) + "\n")
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
            str(tmp / "snv.vcf.gz"),
            str(tmp / "split.vcf.gz"),
            catch_stdout=False,
        )
        records = [
            (r.POS, r.ID or ".", r.REF.upper(), r.ALT[0].upper())
            for r in cyvcf2.VCF(str(tmp / "snv.vcf.gz"))
        ]
        bad = [(p, ref) for p, _, ref, _ in records if ref != reference[p - 1 - lo]]
        if bad:
            counts["ref_mismatch"] += len(bad)
            if ref_mismatch == "error":
                mismatches.extend((contig, p, ref, reference[p - 1 - lo]) for p, ref in bad)
                return empty
            (tmp / "exclude.tsv").write_text("".join(f"{contig}\t{p}\n" for p, _ in bad))
            _bcftools(
                "view",
                "-T",
                "^" + str(tmp / "exclude.tsv"),
                "-Oz",
                "-o",
                str(tmp / "keep.vcf.gz"),
                str(tmp / "snv.vcf.gz"),
                catch_stdout=False,
            )
            (tmp / "keep.vcf.gz").replace(tmp / "snv.vcf.gz")
            bad_pos = {p for p, _ in bad}
            records = [r for r in records if r[0] not in bad_pos]
        if missing == "error":
            for r in cyvcf2.VCF(str(tmp / "snv.vcf.gz")):
                if (r.genotype.array()[:, :-1] == -1).any():
                    raise InputError(
                        f"missing genotype at {contig}:{r.POS}; use --missing ref to treat missing alleles as reference"
                    )
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
    keys = list(dict.fromkeys((p, alt) for p, _, _, alt in records))
    ids = {}
    for p, vid, _, alt in records:
        ids.setdefault((p, alt), vid)
    pos_list, id_list, ref_list, alt_list, cols = [], [], [], [], []
    for p, alt in keys:
        off = p - 1 - lo
        code = encode(alt)[0]
        col = carriers_from_alleles(haps[0, :, off] == code, haps[1, :, off] == code)
        if not col.any():
            counts["no_carrier"] += 1
            continue
        pos_list.append(p)
        id_list.append(ids[(p, alt)])
        ref_list.append(reference[off])
        alt_list.append(alt)
        cols.append(col)
    carriers = np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.uint8)
    return WindowVariants(np.asarray(pos_list, np.int64), id_list, ref_list, alt_list, carriers)
