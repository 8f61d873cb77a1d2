"""File writers of the simulated cohort: FASTA, GTF, VCF, expression BED, truth tables, eQTLs,
ChromHMM.

Each writes one file (plus its index) into the directory :func:`simulate_cohort` publishes.
Coordinates: VCF/GTF/TSV ``pos`` 1-based, BED 0-based half-open.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pysam
from scipy import stats

from data_prep.simulate.layout import contig_order

if TYPE_CHECKING:
    from data_prep.simulate.genetics import Sites
    from data_prep.simulate.layout import Gene

# Columns of the truth tables (pos is 1-based; dist_to_tss is strand-aware, negative upstream).
TRUTH_COLUMNS = (
    "gene", "gene_id", "chrom", "pos", "ref", "alt", "beta", "maf", "dist_to_tss", "motif",
    "motif_effect", "h2",
)  # fmt: skip
TRUTH_GENE_COLUMNS = (
    "gene", "gene_id", "chrom", "tss0", "strand", "h2_target", "h2_realized", "n_causal",
)  # fmt: skip
MOTIF_COLUMNS = (
    "gene", "chrom", "start0", "end0", "strand", "matrix_id", "tf", "element", "causal_pos1",
)  # fmt: skip


def _tsv(path: Path, header, rows) -> None:
    with open(path, "w") as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join(_fmt(v) for v in row) + "\n")


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:.6g}"
    return str(v)


def write_fasta(path: Path, refs: dict[str, np.ndarray]) -> None:
    """Plain FASTA, 60 bases a line, plus ``.fai`` (pysam.faidx)."""

    lut = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as fh:
        for chrom, codes in refs.items():
            seq = lut[codes].tobytes()
            fh.write(f">{chrom}\n".encode())
            fh.write(b"".join(seq[i : i + 60] + b"\n" for i in range(0, len(seq), 60)))
    pysam.faidx(str(path))


def write_gtf(path: Path, gene_list: list[Gene], rng) -> None:
    """GENCODE-style gene, transcript and exon records (exons listed in transcript order)."""
    order = contig_order(g.chrom for g in gene_list)
    lines = [
        "##description: simulated cohort annotation (variformer simulate), GENCODE layout",
        "##provider: GENCODE",
        "##format: gtf",
    ]
    for i, g in enumerate(sorted(gene_list, key=lambda g: (order[g.chrom], g.start1))):
        tid = f"ENST{600000 + 13 * i:011d}.{1 + i % 4}"
        base = f'gene_id "{g.gene_id}"; '
        gattr = f'gene_type "{g.gene_type}"; gene_name "{g.name}"; '
        tattr = f'transcript_id "{tid}"; {gattr}transcript_type "{g.gene_type}"; transcript_name "{g.name}-201"; '
        n_exons = int(rng.integers(2, 9)) if g.end1 - g.start1 > 2000 else 2
        cuts = np.sort(
            rng.choice(np.arange(g.start1 + 1, g.end1), size=2 * n_exons - 2, replace=False)
        )
        bounds = np.concatenate([[g.start1], cuts, [g.end1]]).reshape(-1, 2)
        bounds[1:, 0] += 1  # introns are at least one base
        if g.strand == "-":
            bounds = bounds[::-1]
        rec = f"{g.chrom}\tHAVANA\t{{}}\t{{}}\t{{}}\t.\t{g.strand}\t.\t"
        lines.append(rec.format("gene", g.start1, g.end1) + base + gattr + "level 2;")
        tags = 'level 2; tag "basic"; tag "Ensembl_canonical";'
        lines.append(rec.format("transcript", g.start1, g.end1) + base + tattr + tags)
        for n, (s1, e1) in enumerate(bounds, 1):
            eid = f'exon_id "ENSE{700000 + 97 * i + n:011d}.1"'
            lines.append(
                rec.format("exon", s1, e1) + base + tattr + f"exon_number {n}; {eid}; level 2;"
            )
    path.write_text("\n".join(lines) + "\n")


def vcf_ids(n: int, rng) -> list[str]:
    """The ID column of ``n`` VCF records: increasing ``rs`` numbers, ``.`` for ~15% of them."""
    rs = 1_000_000 + np.cumsum(rng.integers(1, 30_000, size=n))
    no_id = rng.random(n) < 0.15
    return ["." if missing else f"rs{r}" for r, missing in zip(rs, no_id)]


def write_vcf(
    path: Path,
    sites: dict[str, Sites],
    lengths: dict[str, int],
    samples: list[str],
    rng,
    *,
    ids: list[str] | None = None,
    phased: bool = False,
) -> int:
    """bgzipped + tabix-indexed VCFv4.2 with unphased GT; returns the number of records.

    ``ids``: the ID column, one per record in file order (default: :func:`vcf_ids` drawn
    from ``rng``). ``phased``: phased GT ``a|b`` instead, ``a`` the person's first haplotype
    (``Sites.hap`` column ``2i``), ``b`` the second (``2i + 1``), as ``bcftools consensus
    -H 1`` / ``-H 2`` read them.
    """

    plain = path.with_suffix("")  # cohort.vcf
    header = [
        "##fileformat=VCFv4.2",
        "##source=variformer simulate (msprime coalescent; REF = ancestral allele = reference base)",
        "##reference=ref.fa",
        *(f"##contig=<ID={c},length={n}>" for c, n in lengths.items()),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    if ids is None:
        ids = vcf_ids(sum(len(s.pos0) for s in sites.values()), rng)
    n = 0
    with open(plain, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode())
        for chrom, st in sites.items():
            a, b = st.hap[:, 0::2], st.hap[:, 1::2]
            # Fixed-width "x/y\t" cells: unphased, smaller allele first as bcftools writes them.
            cells = np.empty((*a.shape, 4), dtype=np.uint8)
            cells[..., 0] = ord("0") + (a if phased else np.minimum(a, b))
            cells[..., 1] = ord("|" if phased else "/")
            cells[..., 2] = ord("0") + (b if phased else np.maximum(a, b))
            cells[..., 3] = ord("\t")
            cells[:, -1, 3] = ord("\n")
            for k in range(len(st.pos0)):
                vid = ids[n]
                alleles = st.alleles[k]
                fh.write(
                    f"{chrom}\t{st.pos0[k] + 1}\t{vid}\t{alleles[0]}\t{','.join(alleles[1:])}\t.\tPASS\t.\tGT\t".encode()
                )
                fh.write(cells[k].tobytes())
                n += 1
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return n


def write_expression(path: Path, expressed: list[Gene], samples: list[str], values: dict) -> None:
    """GTEx normalized-expression BED (``#chr start end gene_id <samples>``), bgzipped + tabix."""

    plain = path.with_suffix("")
    order = contig_order(g.chrom for g in expressed)
    with open(plain, "w") as fh:
        fh.write("\t".join(["#chr", "start", "end", "gene_id", *samples]) + "\n")
        for g in sorted(expressed, key=lambda g: (order[g.chrom], g.tss0)):
            cells = "\t".join(f"{v:.6f}" for v in values[g.name])
            fh.write(f"{g.chrom}\t{g.tss0}\t{g.tss0 + 1}\t{g.gene_id}\t{cells}\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(
        str(path), seq_col=0, start_col=1, end_col=2, meta_char="#", zerobased=True, force=True
    )


def write_tables(tmp: Path, truth_rows, gene_rows, planted, contigs: list[str]) -> None:
    _tsv(tmp / "truth.tsv", TRUTH_COLUMNS, (r[:12] for r in truth_rows))
    _tsv(tmp / "truth_genes.tsv", TRUTH_GENE_COLUMNS, gene_rows)
    order = contig_order(contigs)
    rows = sorted(planted, key=lambda r: (order[r[1]], r[2]))
    _tsv(tmp / "planted_motifs.tsv", MOTIF_COLUMNS, rows)


def write_finemap(
    path: Path, truth_rows, expressed: list[Gene], sites: dict[str, Sites], seq_len: int, rng
) -> None:
    """Fine-mapped eQTLs in GTEx's CAVIAR high-confidence layout, derived from the truth.

    Realistic misses: power grows with sqrt(n * variance explained), so weak and rare causal
    SNVs are often missed; a detected SNV shares its posterior with tight LD proxies, and a
    missed one is sometimes replaced by a proxy (a false positive).
    """
    rows = []
    for g in expressed:
        mine = [r for r in truth_rows if r[0] == g.name]
        if not mine:
            continue
        st = sites[g.chrom]
        lo = g.tss0 - seq_len // 2
        sel = np.flatnonzero((st.pos0 >= lo) & (st.pos0 < lo + seq_len) & (st.hap.max(axis=1) == 1))
        dos = (st.hap[sel, 0::2] + st.hap[sel, 1::2]).T.astype(np.float64)
        sd = dos.std(axis=0)
        z = (dos - dos.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        n = dos.shape[0]
        probs: dict[int, float] = {}
        for r in mine:
            c = int(np.searchsorted(sel, r[12]))
            r2 = (z[:, c] @ z / n) ** 2
            r2[c] = 0.0
            var_explained = r[6] ** 2 * dos[:, c].var()
            power = np.sqrt(n * var_explained / max(1e-6, 1 - var_explained))
            p_detect = 0.95 if power >= 6 else 0.7 if power >= 4 else 0.2
            if rng.random() < p_detect:
                proxies = [int(i) for i in np.argsort(-r2, kind="stable")[:4] if r2[i] >= 0.8]
                w = np.array([1.0] + [r2[i] ** 2 * rng.uniform(0.2, 0.9) for i in proxies])
                w = w / w.sum() * rng.uniform(0.75, 0.99)
                for i, wi in zip([c, *proxies], w):
                    probs[i] = max(probs.get(i, 0.0), float(wi))
            elif rng.random() < 0.35 and r2.max() >= 0.3:
                i = int(r2.argmax())
                probs[i] = max(probs.get(i, 0.0), float(rng.uniform(0.1, 0.4)))
        chrom = g.chrom.removeprefix("chr")
        for i in sorted(probs):
            if probs[i] >= 0.1:  # GTEx's high-confidence cut
                pos1 = int(st.pos0[sel[i]]) + 1
                rows.append(("Whole_Blood", g.gene_id, f"{chrom}_{pos1}", chrom, pos1, probs[i]))
    _tsv(path, ["TISSUE", "GENE", "eQTL", "CHROM", "POS", "Probability"], rows)


# GTEx v8 ``*.signif_variant_gene_pairs.txt.gz`` columns, in GTEx's order.
SIGNIF_COLUMNS = (
    "variant_id", "gene_id", "tss_distance", "ma_samples", "ma_count", "maf", "pval_nominal",
    "slope", "slope_se", "pval_nominal_threshold", "min_pval_nominal", "pval_beta",
)  # fmt: skip
#: A pair is significant when its nominal p-value is below this (the same for every gene).
EQTL_PVALUE = 1e-3


def as_written(values) -> np.ndarray:
    """Expression values exactly as :func:`write_expression` writes them (6 decimals)."""
    return np.array([float(f"{v:.6f}") for v in values])


def marginal_ols(dos: np.ndarray, y: np.ndarray):
    """Ordinary least squares of ``y`` on each column of ``dos`` alone, with an intercept.

    Parameters
    ----------
    dos : np.ndarray, shape=(n, m)
        ALT dosages (columns must not be constant).
    y : np.ndarray, shape=(n,)

    Returns
    -------
    slope, se, t, pvalue : np.ndarray, shape=(m,) each
        Slope, its standard error, ``t = slope / se`` and the two-sided p-value of the t
        test with ``n - 2`` degrees of freedom (``scipy.stats.linregress``'s).
    """
    n = len(y)
    gc, yc = dos - dos.mean(axis=0), y - y.mean()
    sxx, sxy = (gc**2).sum(axis=0), gc.T @ yc
    slope = sxy / sxx
    sse = np.maximum(yc @ yc - slope * sxy, 0.0)
    se = np.sqrt(sse / (n - 2) / sxx)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = slope / se
    pval = 2 * stats.t.sf(np.abs(t), n - 2)
    return slope, se, t, pval


def write_eqtls(
    path: Path, expressed: list[Gene], sites: dict[str, Sites], values: dict, seq_len: int
) -> int:
    """Significant variant-gene pairs in GTEx's ``signif_variant_gene_pairs`` layout (gzip).

    Every biallelic SNV of a gene's window ``[tss0 - seq_len // 2, tss0 - seq_len // 2 +
    seq_len)`` is tested by ordinary least squares of the expression (as written in
    ``expression.bed.gz``) on the ALT dosage 0/1/2 across all people, no covariates, as
    FastQTL's nominal pass does: ``slope``, ``slope_se`` and the two-sided t-test
    ``pval_nominal`` with ``n - 2`` degrees of freedom. Pairs with ``pval_nominal <``
    :data:`EQTL_PVALUE` (1e-3, one threshold for every gene, written as
    ``pval_nominal_threshold``) are kept. Unlike GTEx there is no MAF >= 1% filter, so every SNV
    of ``finemap.txt`` was tested and is in the file whenever it is significant.

    ``variant_id`` is ``{chrom}_{pos1}_{ref}_{alt}_b38`` with the cohort's contig names;
    ``gene_id`` the GTF's versioned id. ``tss_distance`` is FastQTL's ``pos1 - (tss0 + 1)``:
    variant position minus the 1-based TSS (the expression BED's ``start + 1``), *not*
    strand-corrected, as in GTEx's files (the simulator's ``dist_to_tss`` is the
    strand-aware one). ``ma_samples`` / ``ma_count`` count the people carrying / copies of
    the minor allele, ``maf = ma_count / (2 n)``. Per gene, ``min_pval_nominal`` is the
    smallest p over its tested SNVs and ``pval_beta`` (no permutations here) its Bonferroni
    correction, ``min(1, n_tested * min_pval_nominal)``.

    Returns the number of pairs written.
    """
    rows = []
    for g in expressed:
        st = sites[g.chrom]
        lo = g.tss0 - seq_len // 2
        sel = np.flatnonzero((st.pos0 >= lo) & (st.pos0 < lo + seq_len) & (st.hap.max(axis=1) == 1))
        dos = (st.hap[sel, 0::2] + st.hap[sel, 1::2]).T.astype(np.float64)  # (people, snvs)
        keep = dos.std(axis=0) > 0
        sel, dos = sel[keep], dos[:, keep]
        if not len(sel):
            continue
        y = as_written(values[g.name])
        n = len(y)
        slope, se, _, pval = marginal_ols(dos, y)
        count = dos.sum(axis=0)  # ALT copies
        alt_minor = count <= n
        ma_count = np.where(alt_minor, count, 2 * n - count)
        ma_samples = np.where(alt_minor, (dos > 0).sum(axis=0), (dos < 2).sum(axis=0))
        p_min = float(pval.min())
        p_beta = min(1.0, len(sel) * p_min)
        for k in np.flatnonzero(pval < EQTL_PVALUE):
            i = sel[k]
            pos1 = int(st.pos0[i]) + 1
            ref, alt = st.alleles[i]
            rows.append(
                (f"{g.chrom}_{pos1}_{ref}_{alt}_b38", g.gene_id, pos1 - (g.tss0 + 1),
                 int(ma_samples[k]), int(ma_count[k]), ma_count[k] / (2 * n), pval[k], slope[k],
                 se[k], EQTL_PVALUE, p_min, p_beta)
            )  # fmt: skip
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(("\t".join(SIGNIF_COLUMNS) + "\n").encode())
        for row in rows:
            fh.write(("\t".join(_fmt(v) for v in row) + "\n").encode())
    return len(rows)


_STATES_18 = (
    "1_TssA", "2_TssFlnk", "3_TssFlnkU", "4_TssFlnkD", "5_Tx", "6_TxWk", "7_EnhG1", "8_EnhG2", "9_EnhA1",
    "10_EnhA2", "11_EnhWk", "12_ZNF/Rpts", "13_Het", "14_TssBiv", "15_EnhBiv", "16_ReprPC", "17_ReprPCWk", "18_Quies",
)  # fmt: skip
CHROMHMM_BIN = 200


def write_chromhmm(
    path: Path, lengths: dict[str, int], gene_list: list[Gene], elements, rng
) -> None:
    """ChromHMM 18-state segmentation (Roadmap/Epimap mnemonics) in 200-bp bins.

    Promoter states sit on the TSSs, active or weak enhancer states on the planted enhancers,
    transcription states on gene bodies; the rest is quiescent with some repressed blocks.
    """
    state = {s: i for i, s in enumerate(_STATES_18)}
    rows = []
    for chrom, length in lengths.items():
        nb = -(-length // CHROMHMM_BIN)
        bins = np.full(nb, state["18_Quies"], dtype=np.int8)

        def paint(lo0, hi0, name, bins=bins, nb=nb):
            lo, hi = max(0, lo0 // CHROMHMM_BIN), min(nb, -(-hi0 // CHROMHMM_BIN))
            if hi > lo:
                bins[lo:hi] = state[name]

        repressed = ["13_Het", "16_ReprPC", "17_ReprPCWk", "12_ZNF/Rpts"]
        for _ in range(1 + length // 40_000):
            lo0 = int(rng.integers(0, length))
            paint(lo0, lo0 + int(rng.integers(1000, 10_000)), str(rng.choice(repressed)))
        genes = [g for g in gene_list if g.chrom == chrom]
        for g in genes:
            paint(g.start1 - 1, g.end1, "6_TxWk")
            third = (g.end1 - g.start1) // 3  # strong transcription near the TSS
            paint(g.tss0 - third * (g.strand == "-"), g.tss0 + third * (g.strand == "+"), "5_Tx")
        for g in genes:
            sign = 1 if g.strand == "+" else -1
            paint(*sorted((g.tss0, g.tss0 - 2000 * sign)), "3_TssFlnkU")
            paint(*sorted((g.tss0, g.tss0 + 2000 * sign)), "4_TssFlnkD")
            flank = "2_TssFlnk" if g.gene_type == "protein_coding" else "14_TssBiv"
            paint(g.tss0 - 600, g.tss0 + 600, flank)
        for c, lo0, hi0, kind, role in elements:
            if c != chrom or kind != "enhancer":
                continue
            in_body = any(g.start1 - 1 <= (lo0 + hi0) // 2 < g.end1 for g in genes)
            if role == "decoy":
                name = str(rng.choice(["8_EnhG2" if in_body else "10_EnhA2", "11_EnhWk"]))
            else:  # weakly active for rare causal SNVs, as the paper's rare ZFP57 HSV
                name = "11_EnhWk" if role == "rare" else "7_EnhG1" if in_body else "9_EnhA1"
            paint(lo0 - 100, hi0 + 100, name)
        for c, lo0, hi0, kind, _ in elements:
            if c == chrom and kind == "promoter":
                paint(lo0 - 100, hi0 + 100, "1_TssA")
        change = np.flatnonzero(np.diff(bins)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [nb]])
        for s, e in zip(starts, ends):
            end0 = min(e * CHROMHMM_BIN, length)
            rows.append(f"{chrom}\t{s * CHROMHMM_BIN}\t{end0}\t{_STATES_18[bins[s]]}\n")
    path.write_text("".join(rows))
