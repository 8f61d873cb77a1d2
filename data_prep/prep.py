"""``variformer prep``: VCF/BCF + FASTA + GTF (+ expression) -> a gene dataset directory.

Per gene: the TSS-centred reference window and its SNV alleles with who carries them on which
haplotype; nothing per person is materialized. See :mod:`data_prep.dataset` for the layout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from data_prep._htslib import htslib_errors
from data_prep.annotation import drop_close_tss, read_annotation, resolve_genes
from data_prep.dataset import publish, write_dataset
from data_prep.expression import match_expression, read_expression_bed
from data_prep.genome import ContigMap, encode, fetch_window, tss_window
from data_prep.listfile import read_list
from data_prep.splits import make_splits
from data_prep.variants import dosage_from_carriers, read_window_variants
from variformer.errors import InputError

ENGINES = ("native", "bcftools")


class PrepSummary(NamedTuple):
    """What ``prep`` wrote: the dataset path, its size and why SNV alleles were skipped."""

    out: Path
    n_genes: int
    n_samples: int
    n_variants: int
    skipped: dict
    dropped_genes: dict
    dropped_samples: dict
    seconds: float


def _check_index(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"VCF/BCF not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"\x1f\x8b":
        raise InputError(
            f"{path} is not bgzip-compressed; compress it with `bgzip` and index it with `bcftools index`"
        )
    if not any(Path(str(path) + ext).is_file() for ext in (".tbi", ".csi")):
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
    """One or several VCF/BCF files (e.g. one per chromosome) with the same samples."""

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
            try:
                with htslib_errors(f"VCF {p}"):
                    vcf = cyvcf2.VCF(str(p), lazy=True, threads=1)
            except InputError:
                raise
            except Exception as err:
                dup = _duplicate_header_sample(p)
                if dup:
                    raise InputError(
                        f"{p} has duplicate sample id {dup!r}; rename it (bcftools reheader)"
                    ) from None
                raise InputError(f"cannot open {p} as VCF/BCF: {err}") from None
            self.vcfs.append(vcf)
            self.contigs.append(ContigMap(vcf.seqnames, source=f"VCF {p.name}"))
            self.indexed.append(ContigMap(_indexed_contigs(p), source=f"index of {p.name}"))
        self.samples = list(self.vcfs[0].samples)
        dup = pd.Index(self.samples)[pd.Index(self.samples).duplicated()]
        if len(dup):
            raise InputError(
                f"{self.paths[0]} has duplicate sample id {dup[0]!r}; rename it (bcftools reheader)"
            )
        for p, vcf in zip(self.paths[1:], self.vcfs[1:]):
            if list(vcf.samples) != self.samples:
                raise InputError(
                    f"{p} has different samples than {self.paths[0]}; all --vcf files must have the same samples in the same order"
                )
        if "GT" not in {
            h.info().get("ID")
            for h in self.vcfs[0].header_iter()
            if h.info().get("HeaderType") == "FORMAT"
        }:
            raise InputError(f"{self.paths[0]} has no GT FORMAT field; genotypes are needed")

    def locate(self, contig: str) -> tuple[int, str] | None:
        """(file index, contig name as that file spells it) for a contig, or None.

        Per-chromosome files often share one header listing every contig, so the index (which
        lists only contigs with records) decides; a contig with records in no file falls back
        to a file whose header names it (it simply has no variants).
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


def _select_samples(cohort_samples, *, samples_file, expression) -> list[str]:
    vcf_set = set(cohort_samples)
    if samples_file is not None:
        wanted = read_list(samples_file, what="samples", unique=True)
        missing = [s for s in wanted if s not in vcf_set]
        if missing:
            raise InputError(
                f"{len(missing)} samples from {samples_file} are not in the VCF (first: {missing[0]})"
            )
        if expression is not None:
            no_expr = [s for s in wanted if s not in set(expression.columns)]
            if no_expr:
                raise InputError(
                    f"{len(no_expr)} samples from {samples_file} have no expression column (first: {no_expr[0]})"
                )
        return wanted
    if expression is None:
        return list(cohort_samples)
    expr_set = set(expression.columns)
    chosen = [s for s in cohort_samples if s in expr_set]
    if not chosen:
        raise InputError(
            "no sample id is both in the VCF and in the expression file "
            f"(VCF: {cohort_samples[0]} ..., expression: {expression.columns[0]} ...); check the id format"
        )
    return chosen


def prep_dataset(
    *,
    vcfs: list,
    fasta,
    annotation,
    out,
    genes: list[str] | None = None,
    expression=None,
    samples_file=None,
    test_samples_file=None,
    seq_len: int = 49152,
    engine: str = "native",
    missing: str = "ref",
    ref_mismatch: str = "error",
    protein_coding_only: bool = False,
    drop_close_tss_bp: int | None = None,
    n_folds: int = 3,
    tune_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> PrepSummary:
    """Build a gene dataset: TSS-centred windows, SNVs and haplotypes, expression, splits.

    Parameters
    ----------
    vcfs : list of path
        bgzipped + indexed VCF/BCF files with the same samples (e.g. one per chromosome).
    fasta : path
        Reference FASTA with a ``.fai`` index.
    annotation : path
        GENCODE GTF or TSS table (see :func:`data_prep.annotation.read_annotation`).
    out : path
        Dataset directory to create.
    genes : list of str
        Symbols or Ensembl ids (with or without version).
    expression : path, optional
        GTEx-style expression BED; samples are restricted to those with genotypes and expression.
    seq_len : int
        Window length, a multiple of 128 (Enformer's bin size).
    engine : {'native', 'bcftools'}
        'bcftools' runs ``bcftools consensus`` (pysam) per person and haplotype; same dataset, slower.
    missing : {'ref', 'error'}
    ref_mismatch : {'error', 'drop'}
    protein_coding_only : bool
    drop_close_tss_bp : int, optional
        Drop genes whose TSS is within this many bp of another gene's TSS (paper: 64).

    Returns
    -------
    PrepSummary

    Raises
    ------
    InputError
        For every user-fixable problem; nothing is left at ``out`` in that case.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if seq_len <= 0 or seq_len % 128:
        raise InputError(
            f"--seq-len must be a positive multiple of 128 (Enformer bins are 128 bp), got {seq_len}"
        )
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}")
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    if not genes:
        raise InputError("no genes given; use --genes or --genes-file")
    ann = read_annotation(annotation)
    selected = resolve_genes(ann, genes)
    dropped_genes: dict[str, list[str]] = {}
    if protein_coding_only:
        pc = selected["gene_type"] == "protein_coding"
        dropped_genes["not_protein_coding"] = list(selected.loc[~pc, "gene_name"])
        selected = selected[pc].reset_index(drop=True)
    if drop_close_tss_bp is not None:
        selected, close = drop_close_tss(selected, ann, within=drop_close_tss_bp)
        dropped_genes[f"tss_within_{drop_close_tss_bp}bp"] = close
    if selected.empty:
        raise InputError(f"no genes left after filtering ({dropped_genes}); relax the gene filters")

    fasta_path = Path(fasta)
    if not fasta_path.is_file():
        raise InputError(f"FASTA not found: {fasta_path}")
    if not Path(str(fasta_path) + ".fai").is_file():
        raise InputError(
            f"{fasta_path} has no .fai index; create one with `samtools faidx {fasta_path}`"
        )
    import pysam

    try:
        fa = pysam.FastaFile(str(fasta_path))
    except Exception as err:
        raise InputError(f"cannot open FASTA {fasta_path}: {err}") from None
    fa_contigs = ContigMap(fa.references, source=f"FASTA {fasta_path.name}")
    cohort = Cohort([Path(v) for v in vcfs])

    expr_all = read_expression_bed(expression) if expression is not None else None
    samples = _select_samples(cohort.samples, samples_file=samples_file, expression=expr_all)
    kept = set(samples)
    dropped_samples = {  # people left out, by reason (reported, never silent)
        "genotyped_without_expression": sum(s not in kept for s in cohort.samples)
        if samples_file is None
        else 0,
        "expression_without_genotypes": 0
        if expr_all is None
        else sum(s not in set(cohort.samples) for s in expr_all.columns),
    }
    sample_index = np.asarray([cohort.samples.index(s) for s in samples], dtype=np.int64)
    expr = (
        match_expression(expr_all, selected, expression)[samples] if expr_all is not None else None
    )
    test_samples = (
        read_list(test_samples_file, what="test samples", unique=True)
        if test_samples_file
        else None
    )

    counts: Counter = Counter()
    mismatches: list = []
    gene_rows, ref_rows, var_frames, carrier_list = [], [], [], []
    var_start = 0
    from tqdm.auto import tqdm

    bar = tqdm(
        selected.itertuples(index=False),
        total=len(selected),
        desc="prep genes",
        unit="gene",
        disable=not progress,
        file=sys.stderr,
    )
    for g in bar:
        win = tss_window(g.chrom, g.tss0, g.strand, seq_len)
        ref_seq, wv = _window_variants(
            g, win, fa=fa, fa_contigs=fa_contigs, cohort=cohort, engine=engine, samples=samples,
            sample_index=sample_index, missing=missing, ref_mismatch=ref_mismatch, counts=counts,
            mismatches=mismatches,
        )  # fmt: skip
        var_frames.append(_variant_table(g, wv, n_samples=len(samples)))
        carrier_list.append(wv.carriers)
        ref_rows.append(encode(ref_seq))
        nv = len(wv.pos1)
        gene_rows.append(
            dict(gene=g.gene_name, gene_id=g.gene_id, chrom=g.chrom, start0=win.start0, end0=win.end0,
                 tss0=win.tss0, strand=g.strand, n_variants=nv, var_start=var_start)
        )  # fmt: skip
        var_start += nv
    if mismatches:
        first = "; ".join(f"{c}:{p} REF={r} FASTA={b}" for c, p, r, b in mismatches[:3])
        raise InputError(
            f"{len(mismatches)} SNVs have a REF that disagrees with the FASTA (first: {first}); check that the VCF and "
            "FASTA use the same genome build, or pass --drop-ref-mismatch to skip them"
        )

    splits = make_splits(
        samples,
        n_folds=n_folds,
        tune_fraction=tune_fraction,
        test_fraction=test_fraction,
        test_samples=test_samples,
        seed=seed,
    )
    variants = pd.concat(var_frames, ignore_index=True) if var_frames else pd.DataFrame()
    skipped = {k: int(v) for k, v in sorted(counts.items())}
    info = {
        "engine": engine,
        "inputs": {
            "vcf": [str(p) for p in cohort.paths],
            "fasta": str(fasta_path),
            "annotation": str(annotation),
            "expression": str(expression) if expression else None,
        },
        "options": {
            "missing": missing,
            "ref_mismatch": ref_mismatch,
            "protein_coding_only": protein_coding_only,
            "drop_close_tss_bp": drop_close_tss_bp,
            "tune_fraction": tune_fraction,
            "test_fraction": test_fraction,
            "seed": seed,
        },
        "summary": {
            "skipped_alleles": skipped,
            "dropped_genes": dropped_genes,
            "dropped_samples": dropped_samples,
        },
    }
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_dataset(
            tmp,
            seq_len=seq_len,
            samples=samples,
            genes=pd.DataFrame(gene_rows),
            reference=np.stack(ref_rows),
            variants=variants,
            carriers=carrier_list,
            expression=expr,
            splits=splits,
            n_folds=n_folds,
            info=info,
        )
        publish(tmp, out, force=force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PrepSummary(
        out,
        len(gene_rows),
        len(samples),
        var_start,
        skipped,
        dropped_genes,
        dropped_samples,
        time.perf_counter() - t0,
    )


def _window_variants(g, win, *, fa, fa_contigs, cohort, engine, samples, sample_index, **kw):
    """The gene's N-padded reference window and its SNV alleles (native or bcftools engine)."""
    fa_contig = fa_contigs.require(g.chrom)
    contig_len = fa.get_reference_length(fa_contig)
    ref_seq = fetch_window(fa, fa_contig, win.start0, win.end0, contig_len)
    located = cohort.locate(g.chrom)
    if located is None:
        raise InputError(
            f"contig {g.chrom} (gene {g.gene_name}) is in none of the VCFs; add the VCF that covers it"
        )
    vi, vcf_contig = located
    lo = max(win.start0, 0)
    hi = max(lo, min(win.end0, contig_len))
    in_contig = ref_seq[lo - win.start0 : hi - win.start0]  # the part of the window on the contig
    if engine == "native":
        with htslib_errors(f"VCF {cohort.paths[vi]}"):
            wv = read_window_variants(
                cohort.vcfs[vi],
                vcf_contig,
                win.start0,
                hi,
                in_contig,
                sample_index=sample_index,
                **kw,
            )
    else:
        from data_prep.bcftools_engine import bcftools_window_variants

        wv = bcftools_window_variants(
            cohort.paths[vi], vcf_contig, win.start0, hi, in_contig, samples=samples, **kw
        )
    return ref_seq, wv


def _variant_table(g, wv, *, n_samples: int) -> pd.DataFrame:
    """variants.tsv rows of one gene; AC/AF/MAF over the dataset's people (ALT count / 2n)."""
    ac = dosage_from_carriers(wv.carriers).sum(axis=0)
    af = ac / (2 * n_samples) if n_samples else np.zeros(len(wv.pos1))
    return pd.DataFrame(
        {
            "gene": g.gene_name,
            "chrom": g.chrom,
            "pos": wv.pos1,
            "id": wv.ids,
            "ref": wv.refs,
            "alt": wv.alts,
            "ac": ac.astype(np.int64),
            "af": np.round(af, 8),
            "maf": np.round(np.minimum(af, 1 - af), 8),
        }
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vcf",
        action="append",
        required=True,
        help="bgzipped + indexed VCF/BCF (repeat for per-chromosome files)",
    )
    p.add_argument("--fasta", required=True, help="reference FASTA with .fai")
    p.add_argument("--annotation", required=True, help="GENCODE GTF (.gtf/.gtf.gz) or TSS table")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--genes", nargs="+", help="gene symbols or Ensembl ids")
    g.add_argument("--genes-file", help="file with one gene per line")
    p.add_argument(
        "--expression", help="GTEx-style expression BED (#chr start end gene_id samples...)"
    )
    p.add_argument("--samples", help="file with the sample ids to use, one per line")
    p.add_argument(
        "--test-samples", help="external test cohort: these samples are the test set of every fold"
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=49152,
        help="window length, a multiple of 128 (default 49152)",
    )
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="native",
        help="native (fast) or bcftools (bcftools consensus via pysam)",
    )
    p.add_argument(
        "--missing",
        choices=("ref", "error"),
        default="ref",
        help="missing genotypes: reference allele (as bcftools) or error",
    )
    p.add_argument(
        "--drop-ref-mismatch",
        action="store_true",
        help="skip SNVs whose REF disagrees with the FASTA instead of failing",
    )
    p.add_argument(
        "--protein-coding-only", action="store_true", help="keep only gene_type protein_coding"
    )
    p.add_argument(
        "--drop-close-tss",
        type=int,
        nargs="?",
        const=64,
        default=None,
        metavar="BP",
        help="drop genes whose TSS is within BP (default 64) of another gene's TSS",
    )
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds (default 3)")
    p.add_argument("--tune-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    genes = args.genes if args.genes else read_list(args.genes_file, what="genes")
    s = prep_dataset(
        vcfs=args.vcf,
        fasta=args.fasta,
        annotation=args.annotation,
        out=args.out,
        genes=genes,
        expression=args.expression,
        samples_file=args.samples,
        test_samples_file=args.test_samples,
        seq_len=args.seq_len,
        engine=args.engine,
        missing=args.missing,
        ref_mismatch="drop" if args.drop_ref_mismatch else "error",
        protein_coding_only=args.protein_coding_only,
        drop_close_tss_bp=args.drop_close_tss,
        n_folds=args.folds,
        tune_fraction=args.tune_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        force=args.force,
        progress=not args.quiet,
    )
    skipped = ", ".join(f"{k} {v}" for k, v in s.skipped.items()) or "none"
    dropped = ", ".join(f"{k}: {' '.join(v)}" for k, v in s.dropped_genes.items() if v) or "none"
    people = (
        ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.dropped_samples.items() if v) or "none"
    )
    print(
        f"wrote {s.out}: {s.n_genes} genes, {s.n_samples} people, {s.n_variants} SNV alleles kept "
        f"({s.seconds:.1f} s)\n  skipped alleles: {skipped}\n  dropped genes: {dropped}\n  people left out: {people}"
    )
    return 0
