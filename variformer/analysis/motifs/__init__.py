"""Motif disruption without R: which SNVs break or create transcription-factor motifs.

A Python re-implementation of motifbreakR (Coetzee et al. 2015; Bioconductor ``motifbreakR``,
``R/scoreMotif.R``) with ``filterp=TRUE``, as the paper's motif analysis ran it (its Methods:
"MotifbreakR analysis", motifbreakR's default method, HOCOMOCO v11, p < 5e-5):

1. Matrices: JASPAR CORE vertebrate position frequency matrices from the offline ``pyjaspar``
   database (release selectable; the offline default), or any MEME motif file (HOCOMOCO v11
   and v12 ship one). Each matrix records its ``database``; :func:`motif_database_name` names
   a set of them for a report.
2. Scoring ``method`` (:func:`scoring_matrix`): ``default`` (motifbreakR's default and the
   paper's: probabilities ``(ppm * nsites + 0.25) / (nsites + 1)``, each column weighted by
   its max - min), ``ic`` (weighted by the column's relative entropy) or ``log`` (log2-odds in
   bits, TFBSTools' pseudocount 0.8; this package's original scan). The background is uniform
   or the strand-symmetrized base composition of the window (A = T, C = G, so both strands
   share one null distribution; on a 0.005 grid so similar windows share tables).
3. Exact p-values: the scoring matrix is rounded to ``granularity`` and the exact distribution
   of the sum over independent background bases is built by dynamic programming (TFMPvalue's
   method at a fixed granularity); ``p = P(S >= s)``. One table per matrix, method and
   background, cached.
4. Both strands; for REF and ALT the best-scoring of the ``w`` windows that overlap the SNV
   (motifbreakR's ``scoreSeqWindows`` + ``maxThresholdWindows``).
5. A hit is a SNV and matrix (``default``, ``ic``: the best strand, as motifbreakR reports) or
   a SNV, matrix and strand (``log``) where either allele reaches ``p < pvalue``.
6. ``effect``: for ``default`` / ``ic``, motifbreakR 2.x's ``varEff`` on ``delta = alt_score
   - ref_score`` (its ``alleleDiff``): ``|d| >= 0.7`` strong, ``> 0.4`` weak, else neutral
   (dropped unless ``show_neutral``). For ``log``, motifbreakR 1.x's ``snpEff`` on the
   probability difference at the SNV's motif column, ``allele_diff = P[ref] - P[alt]``:
   ``>= 0.7`` strong, ``>= 0.4`` weak. The relative scores ``(s - min) / (max - min)``
   (``ref_pct``, ``alt_pct``) and ``allele_effect_size = delta / max`` are motifbreakR's too.

Sequences are integer codes ``A, C, G, T, N = 0, 1, 2, 3, 4`` (``data_prep.genome``); windows
that contain an N are not scored. Variant positions are 1-based; ``start0`` is the 0-based
genome coordinate of the sequence's first base.

Modules (this package re-exports their public names):

- :mod:`~variformer.analysis.motifs.matrices` -- :class:`MotifMatrix`, JASPAR (``pyjaspar``)
  and MEME files (step 1);
- :mod:`~variformer.analysis.motifs.scoring` -- the methods' scoring matrices (step 2);
- :mod:`~variformer.analysis.motifs.pvalues` -- exact p-value tables (step 3);
- :mod:`~variformer.analysis.motifs.windows` -- best windows per allele and strand (step 4);
- :mod:`~variformer.analysis.motifs.scan` -- the disruption scan of a window or a dataset
  (steps 4-6);
- :mod:`~variformer.analysis.motifs.variants` -- variant tables in (TSV, SNVs only);
- :mod:`~variformer.analysis.motifs.summary` -- per-model summary of the hits at HSVs.
"""

from __future__ import annotations

from variformer.analysis.motifs.matrices import (
    MotifMatrix,
    load_jaspar,
    load_motifs,
    motif_database_name,
    read_meme,
)
from variformer.analysis.motifs.pvalues import (
    PValueTable,
    background_probs,
    encode_sequence,
    pvalue_table,
)
from variformer.analysis.motifs.scan import COLUMNS, dataset_motif_disruption, motif_disruption
from variformer.analysis.motifs.scoring import (
    METHODS,
    log_odds,
    motif_probabilities,
    score_range,
    scoring_matrix,
)
from variformer.analysis.motifs.summary import summarize_disruption
from variformer.analysis.motifs.variants import is_snv, read_variant_table

__all__ = [
    "COLUMNS",
    "METHODS",
    "MotifMatrix",
    "PValueTable",
    "background_probs",
    "dataset_motif_disruption",
    "encode_sequence",
    "is_snv",
    "load_jaspar",
    "load_motifs",
    "log_odds",
    "motif_database_name",
    "motif_disruption",
    "motif_probabilities",
    "pvalue_table",
    "read_meme",
    "read_variant_table",
    "score_range",
    "scoring_matrix",
    "summarize_disruption",
]
