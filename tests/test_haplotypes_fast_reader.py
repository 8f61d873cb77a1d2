"""``prep --haplotypes`` through the fast text-VCF reader against the cyvcf2 reader.

Random phased VCFs with SNVs, MNPs and indels that overlap freely (the cohorts of
tests/haplotype_cohort.py), with now and then a call or a line the fast path does not take (a
haploid call, ``GT:DP``, an unphased homozygous call, an unphased heterozygous call that must
be refused, a record without GT, a non-PASS FILTER), are prepared twice: with the fast reader
(``VARIFORMER_VCF_READER=auto``) and with cyvcf2 only. Both must write the same bytes, or fail
with the same one line. (Whether the haplotypes are right is tests/test_haplotypes_prep.py's
and tests/test_haplotypes_oracle.py's job: against ``bcftools consensus``.)
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import cyvcf2
import numpy as np
import pysam
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from data_prep.haplotype_records import read_haplotype_records
from data_prep.prep import prep_dataset
from data_prep.vcf_text import READER_ENV, IndexedVcf, TextVcf
from tests.genomes import write_fasta
from tests.haplotype_cohort import cohorts

_TWISTS = ["none"] * 14 + ["gt_dp", "unphased_hom", "haploid", "no_gt", "filter", "unphased_het"]
_SEEN: Counter = Counter()


@st.composite
def phased_vcfs(draw):
    """``(reference, VCF text lines, samples, tss0)``."""
    seq, records, samples, tss0, _ = draw(cohorts(min_samples=3))
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID=chr1,length={len(seq)}>",
        '##FILTER=<ID=q10,Description="low quality">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"])
        + "\t"
        + "\t".join(samples),
    ]
    for chrom, pos1, vid, ref, alts, gts in sorted(records, key=lambda r: r[1]):
        twist = draw(st.sampled_from(_TWISTS))
        fmt, flt, fields = "GT", "PASS", list(gts)
        s = draw(st.integers(0, len(samples) - 1))
        if twist == "gt_dp":
            fmt, fields = "GT:DP", [f"{g}:{k}" for k, g in enumerate(fields)]
        elif twist == "unphased_hom":
            fields[s] = draw(st.sampled_from(["1/1", "0/0", "./."]))
        elif twist == "haploid":
            fields[s] = draw(st.sampled_from(["1", "0", "."]))
        elif twist == "no_gt":
            fmt, fields = "DP", [str(k) for k in range(len(fields))]
        elif twist == "filter":
            flt = "q10"
        elif twist == "unphased_het":
            fields[s] = "0/1"
        fixed = [chrom, str(pos1), vid, ref, ",".join(alts), ".", flt, ".", fmt]
        lines.append("\t".join([*fixed, *fields]))
    return seq, lines, samples, tss0


def _prep(tmp: Path, vcf: Path, fasta: Path, tss0: int, length: int, reader: str, **kw):
    annotation = tmp / "tss.tsv"
    annotation.write_text(
        "gene_name\tgene_id\tchrom\ttss\tstrand\n"
        f"G\tENSG00000000001.1\tchr1\t{tss0 + 1}\t+\nH\tENSG00000000002.1\tchr1\t{length // 2}\t-\n"
    )
    out = tmp / f"ds_{reader}"
    with mock.patch.dict(os.environ, {READER_ENV: reader}):
        try:
            prep_dataset(
                vcfs=[vcf], fasta=fasta, annotation=annotation, genes=["G", "H"], seq_len=128,
                out=out, n_folds=1, tune_fraction=0.3, test_fraction=0.3, progress=False,
                haplotypes=True, **kw,
            )  # fmt: skip
        except InputError as err:
            return str(err)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _records(vcf, start0: int, end0: int, n: int):
    """read_haplotype_records' region and records as plain values, or its error line."""
    try:
        rec, lo, hi = read_haplotype_records(vcf, "chr1", start0, end0, np.arange(n)[::-1])
    except InputError as err:
        return str(err)
    return lo, hi, rec.pos0.tolist(), rec.ids, rec.refs, rec.alts, rec.filter_pass.tolist(), \
        rec.gt.tolist(), rec.has_gt.tolist(), rec.haploid.tolist()  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    case=phased_vcfs(),
    pass_only=st.booleans(),
    missing=st.sampled_from(["ref", "ref", "error"]),
    regions=st.lists(
        st.tuples(st.integers(0, 99), st.integers(0, 4), st.integers(1, 60)), max_size=6
    ),
)
def _check_same_dataset(case, pass_only, missing, regions):
    seq, lines, _, tss0 = case
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
        plain = tmp / "r.vcf"
        plain.write_text("\n".join(lines) + "\n")
        vcf = tmp / "r.vcf.gz"
        pysam.tabix_compress(str(plain), str(vcf), force=True)
        pysam.tabix_index(str(vcf), preset="vcf", force=True)
        opts = dict(pass_only=pass_only, missing=missing)
        fast = _prep(tmp, vcf, fasta, tss0, len(seq), "auto", **opts)
        slow = _prep(tmp, vcf, fasta, tss0, len(seq), "cyvcf2", **opts)
        assert fast == slow
        _SEEN["error" if isinstance(fast, str) else "dataset"] += 1
        # regions that records stick out of (read_haplotype_records widens them)
        n = len(case[2])
        both = IndexedVcf(cyvcf2.VCF(str(vcf)), TextVcf.open(vcf, n))
        starts = [int(line.split("\t")[1]) - 1 for line in lines if not line.startswith("#")]
        for k, offset, length in regions:  # starting inside a record's REF, or after it
            start0 = starts[k % len(starts)] + offset
            fast = _records(both, start0, start0 + length, n)
            assert fast == _records(cyvcf2.VCF(str(vcf)), start0, start0 + length, n)
            _SEEN["widened"] += not isinstance(fast, str) and fast[0] < start0


def test_fast_reader_writes_the_cyvcf2_dataset():
    read_window = TextVcf.read_window

    def spy(self, *args, **kwargs):
        window = read_window(self, *args, **kwargs)
        if kwargs.get("overlapping"):
            _SEEN["fast" if window is not None else "fallback"] += 1
        return window

    _SEEN.clear()
    with mock.patch.object(TextVcf, "read_window", spy):
        _check_same_dataset()
    # both readers really ran, datasets were written and errors compared
    print(_SEEN)
    assert _SEEN["fast"] >= 20 and _SEEN["fallback"] >= 10, _SEEN
    assert _SEEN["dataset"] >= 15 and _SEEN["error"] >= 3 and _SEEN["widened"] >= 10, _SEEN
