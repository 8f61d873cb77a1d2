"""The simulated cohort (``variformer simulate``): known truth, written in the formats real users have.

Real cohorts (GTEx, ROSMAP) are controlled-access, so the toolkit ships its own: a reference
whose gene neighbourhoods carry JASPAR motifs planted at promoters and enhancers, GENCODE-style
genes, coalescent genotypes (msprime: human-like LD and allele-frequency spectrum), GTEx-style
normalized expression driven by a few causal SNVs at a chosen cis-heritability, and the truth.

Files written to ``out`` (coordinates: VCF/GTF/TSV ``pos`` 1-based, BED 0-based half-open):

- ``ref.fa`` + ``ref.fa.fai``; ``genes.gtf``; ``cohort.vcf.gz`` + ``.tbi`` (unphased GT, REF =
  ancestral = reference base, multi-allelic sites kept; with ``indels``: phased GT and
  indels, some causal, :mod:`~data_prep.simulate.indels`); ``expression.bed.gz`` + ``.tbi``;
- ``truth.tsv`` (causal SNVs), ``truth_genes.tsv`` (per-gene TSS and h2), ``finemap.txt``
  (GTEx CAVIAR high-confidence layout), ``signif_variant_gene_pairs.txt.gz`` (GTEx v8
  significant eQTL layout: marginal OLS of expression on each biallelic SNV's dosage over all
  people, kept at ``pval_nominal < 1e-3``; ``tss_distance`` = ``pos - (tss0 + 1)``, not
  strand-corrected, as GTEx writes it), ``chromhmm.bed`` (18-state mnemonics, 200-bp bins),
  ``planted_motifs.tsv`` (every planted motif instance);
- ``gwas.tsv`` (summary statistics of a trait driven by one gene's true genetic expression:
  every ALT of the VCF, OLS t statistic and its t-test p-value), ``gwas_trait.tsv`` (the
  trait) and ``gwas_truth.json`` (the causal gene and the trait's h2); see
  :mod:`~data_prep.simulate.gwas`.

Gene TSS (0-based) is GTF ``start - 1`` on + and ``end - 1`` on -; all causal SNVs lie in
``[tss0 - seq_len // 2, tss0 - seq_len // 2 + seq_len)``. The same seed writes byte-identical files.

Modules: :mod:`~data_prep.simulate.layout` (genes, contigs, background reference),
:mod:`~data_prep.simulate.genetics` (genotypes, causal SNVs, phenotypes),
:mod:`~data_prep.simulate.motifs` (JASPAR load/scan/plant), :mod:`~data_prep.simulate.write`
(file writers), :mod:`~data_prep.simulate.gwas` (the simulated GWAS),
:mod:`~data_prep.simulate.indels` (``--indels``: causal motif deletions and background indels)
and :mod:`~data_prep.simulate.cohort` (:func:`simulate_cohort`, tying them together).
"""

from data_prep.simulate.cohort import SimulationSummary, default_h2, simulate_cohort

__all__ = ["SimulationSummary", "default_h2", "simulate_cohort"]
