"""Motif disruption without R: which SNVs break or create transcription-factor motifs.

A Python re-implementation of what motifbreakR (Coetzee et al. 2015) does with
``method="log"`` and ``filterp=TRUE``, the paper's motif analysis (its Methods: "MotifbreakR
analysis", HOCOMOCO v11, p < 5e-5):

1. Matrices: JASPAR CORE vertebrate position frequency matrices from the offline ``pyjaspar``
   database (release selectable), or any MEME motif file (HOCOMOCO ships one).
2. Log-odds: ``log2(p / bg)`` in bits, with ``p = (count + pseudocount * bg) / (n + pseudocount)``
   (TFBSTools' ``toPWM`` convention, pseudocount 0.8) and a background that is uniform or the
   strand-symmetrized base composition of the window (A = T, C = G, so both strands share one
   null distribution; on a 0.005 grid so similar windows share tables).
3. Exact p-values: the log-odds matrix is rounded to ``granularity`` bits and the exact
   distribution of the sum over independent background bases is built by dynamic programming
   (TFMPvalue's method at a fixed granularity); ``p = P(S >= s)``. One table per matrix and
   background, cached.
4. Both strands; for REF and ALT the best-scoring of the ``w`` windows that overlap the SNV,
   per strand (motifbreakR's ``scoreAllWindows`` + ``maxThresholdWindows``).
5. A hit is a (SNV, matrix, strand) where either allele reaches ``p < pvalue``.
6. ``effect`` follows motifbreakR's ``snpEff``: at the SNV's column of the hit window, the
   probability difference of the two alleles ``allele_diff = P[ref] - P[alt]``; ``|d| >= 0.7``
   is ``strong``, ``0.4 <= |d| < 0.7`` is ``weak`` and smaller is ``neutral`` (dropped unless
   ``show_neutral``). A difference of 0.7 needs one base with probability >= 0.7, i.e. a
   high-information column (>= 0.62 bits against a uniform background); its information
   content is reported as ``ic``.

Sequences are integer codes ``A, C, G, T, N = 0, 1, 2, 3, 4`` (``data_prep.genome``); windows
that contain an N are not scored. Variant positions are 1-based; ``start0`` is the 0-based
genome coordinate of the sequence's first base.

Modules (this package re-exports their public names):

- :mod:`~variformer.analysis.motifs.matrices` -- :class:`MotifMatrix`, JASPAR (``pyjaspar``)
  and MEME files (step 1);
- :mod:`~variformer.analysis.motifs.pvalues` -- log-odds matrices and exact p-value tables
  (steps 2-3);
- :mod:`~variformer.analysis.motifs.scan` -- the disruption scan of a window or a dataset
  (steps 4-6);
- :mod:`~variformer.analysis.motifs.variants` -- variant tables in (TSV, SNVs only);
- :mod:`~variformer.analysis.motifs.summary` -- per-model summary of the hits at HSVs.
"""

from __future__ import annotations

from variformer.analysis.motifs.matrices import MotifMatrix, load_jaspar, load_motifs, read_meme
from variformer.analysis.motifs.pvalues import (
    PValueTable,
    background_probs,
    encode_sequence,
    log_odds,
    pvalue_table,
)
from variformer.analysis.motifs.scan import COLUMNS, dataset_motif_disruption, motif_disruption
from variformer.analysis.motifs.summary import summarize_disruption
from variformer.analysis.motifs.variants import is_snv, read_variant_table

__all__ = [
    "COLUMNS",
    "MotifMatrix",
    "PValueTable",
    "background_probs",
    "dataset_motif_disruption",
    "encode_sequence",
    "is_snv",
    "load_jaspar",
    "load_motifs",
    "log_odds",
    "motif_disruption",
    "pvalue_table",
    "read_meme",
    "read_variant_table",
    "summarize_disruption",
]
