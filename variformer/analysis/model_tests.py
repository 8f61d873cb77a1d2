"""Between-model tests behind the significance stars of the paper's Figs. 3a, 3b, 3d and S8.

Fig. 3: "Significance: **** = adjusted p-value < 1e-4, ** < 1e-2, ns = not statistically
significant". :func:`model_tests` writes one tidy table (``model_tests.tsv``, :data:`COLUMNS`),
one row per test:

- ``motif_rate`` (Fig. 3b, 4g): the share of a model's HSVs (``variants = hsv``) or selected
  variants (``driver``: drivers of the ISM models, non-zero coefficients of the linear ones, as
  in ``motif_summary.tsv``; a variant selected in several folds counts once) with at least one
  hit in ``motifs.tsv``. Model a against model b: Fisher's exact test, two-sided, on the 2x2
  table (with / without a hit x a / b); ``statistic`` = its odds ratio. ``motif_test="chi2"``
  takes the chi-squared test with Yates's correction instead (``statistic`` = chi2).
- ``hsv_maf`` (Fig. 3d) and ``hsv_tss_distance`` (Fig. 2b): MAF and |TSS distance| of the HSVs,
  two-sided Mann-Whitney U (``statistic`` = U of model a); ``value`` = the median.
- ``chromatin`` (Fig. 3a): per ChromHMM state, a permutation test over the SNVs of the windows.

**Matched genes.** A pairwise test uses only the genes where both models have variants of the
group after the MAF filter (``n_genes``); ``n_a`` and ``n_b`` count their variants there.

**MAF filters** (Fig. S8: the analyses repeated "after removing HSVs with MAFs < 1% or < 5%"):
every test is run once per ``maf_filter`` with the variants whose MAF is below it removed first
(0 keeps all). In the chromatin test the window SNVs the null draws from pass the same filter.

**Chromatin.** A variant's occupancy of a state is the share of annotation samples that place it
in that state (:func:`variformer.analysis.chromatin.state_occupancy`); summed over a model's HSVs
it is ``chromatin.tsv``'s ``observed``. Genes no sample annotates take no part.

- model against its windows (``model_b = "window_snvs"``): statistic T = the occupancy summed
  over the model's HSVs of every gene; null: in each gene, the model's number of HSVs drawn
  uniformly without replacement from the SNVs observed in that gene's window (the dataset's
  variants), independently per gene. ``value_a`` = T, ``value_b`` = E = its exact null mean
  (sum over genes of n_g x the mean occupancy of the gene's SNVs), ``statistic`` = T / E (the
  enrichment over random SNVs of the same windows), ``n_b`` = the SNVs drawn from.
- model a against model b: statistic D = T_a / n_a - T_b / n_b (the difference of the shares of
  their HSVs in the state); null: within each gene the pooled HSVs of both (an SNV that is an
  HSV of both counts twice) are re-labelled at random, n_a,g to a and n_b,g to b.
  ``value`` = T / n.

Both are two-sided about the exact null mean mu: p = (1 + #{|null - mu| >= |observed - mu|}) /
(1 + n_permutations). The smallest p is 1 / (1 + n_permutations): with the default 1000 a
chromatin row reaches ``***`` at most; pass 10,000 or more for ``****``. One set of draws serves
every state of a test, from a generator seeded by ``seed`` and the test's own name (the models
and the filter), so adding a model does not change the other tests.

**Adjusted p.** ``p_adj``: Benjamini-Hochberg within each (``analysis``, ``variants``,
``maf_filter``) family, over its rows with a p-value (``scipy.stats.false_discovery_control``);
``stars``: ``****`` p_adj < 1e-4, ``***`` < 1e-3, ``**`` < 1e-2, ``*`` < 0.05, else ``ns``; ""
where no test could be run (a model without variants there).
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from variformer.analysis import chromatin

__all__ = [
    "COLUMNS",
    "MAF_FILTERS",
    "adjust",
    "dataset_model_tests",
    "maf_filtered",
    "model_tests",
    "significance_stars",
]

COLUMNS = (
    "analysis", "variants", "maf_filter", "state", "model_a", "model_b", "n_genes", "n_a", "n_b",
    "value_a", "value_b", "test", "statistic", "p", "p_adj", "stars",
)  # fmt: skip
MAF_FILTERS = (0.0, 0.01, 0.05)
WINDOW_SNVS = "window_snvs"  # model_b of a chromatin row that tests one model against its windows
ANALYSES = ("motif_rate", "chromatin", "hsv_maf", "hsv_tss_distance")
_KEYS = ["gene", "chrom", "pos", "ref", "alt"]
_STARS = ((1e-4, "****"), (1e-3, "***"), (1e-2, "**"), (0.05, "*"))


def significance_stars(p_adj: float) -> str:
    """``****`` < 1e-4, ``***`` < 1e-3, ``**`` < 1e-2, ``*`` < 0.05, ``ns``; "" for NaN."""
    if p_adj is None or not np.isfinite(p_adj):
        return ""
    return next((s for cut, s in _STARS if p_adj < cut), "ns")


def adjust(tests: pd.DataFrame) -> pd.DataFrame:
    """``p_adj`` (Benjamini-Hochberg within each analysis x variants x maf_filter family, over
    the rows with a p-value) and ``stars`` of a table of tests with a ``p`` column."""
    out = tests.assign(p_adj=np.nan)
    for _, fam in out.groupby(["analysis", "variants", "maf_filter"], sort=False):
        have = fam.index[fam["p"].notna()]
        if len(have):
            p = out.loc[have, "p"].to_numpy(float)
            out.loc[have, "p_adj"] = stats.false_discovery_control(p, method="bh")
    return out.assign(stars=[significance_stars(p) for p in out["p_adj"]])


def maf_filtered(variants: pd.DataFrame, maf_filter: float) -> pd.DataFrame:
    """The variants with MAF >= ``maf_filter`` (those below it removed; 0 keeps all)."""
    return variants if maf_filter <= 0 else variants[variants["maf"] >= maf_filter]


def _matched(variants: pd.DataFrame, a: str, b: str):
    """(genes where both a and b have variants, a's rows there, b's rows there)."""
    ga = set(variants.loc[variants["model"] == a, "gene"])
    genes = sorted(ga & set(variants.loc[variants["model"] == b, "gene"]))
    on = variants["gene"].isin(genes)
    return genes, variants[on & (variants["model"] == a)], variants[on & (variants["model"] == b)]


def _row(analysis, variants, maf_filter, a, b, n_genes, n_a, n_b, **rest) -> dict:
    row = {"analysis": analysis, "variants": variants, "maf_filter": float(maf_filter)}
    row |= {"state": "", "model_a": a, "model_b": b, "n_genes": n_genes, "n_a": n_a, "n_b": n_b}
    return row | {"value_a": np.nan, "value_b": np.nan, "test": "", "statistic": np.nan} | rest


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    k = df.copy()
    k["gene"], k["chrom"] = k["gene"].astype(str), k["chrom"].astype(str)
    k["pos"] = k["pos"].astype(np.int64)
    return k


def _motif_rate_tests(variants, hits, name, maf_filter, test) -> list[dict]:
    """Fisher's exact (or chi-squared) test of the motif-hit share, every pair of models."""
    v = _keyed(maf_filtered(variants, maf_filter)).drop_duplicates(["model", *_KEYS])
    hit = pd.MultiIndex.from_frame(_keyed(hits)[_KEYS]) if len(hits) else None
    v = v.assign(hit=False if hit is None else pd.MultiIndex.from_frame(v[_KEYS]).isin(hit))
    rows = []
    for a, b in itertools.combinations(sorted(variants["model"].unique()), 2):
        genes, x, y = _matched(v, a, b)
        row = _row("motif_rate", name, maf_filter, a, b, len(genes), len(x), len(y), test=test)
        if len(x) and len(y):
            ha, hb = int(x["hit"].sum()), int(y["hit"].sum())
            table = [[ha, len(x) - ha], [hb, len(y) - hb]]
            if test == "fisher":
                res = stats.fisher_exact(table, alternative="two-sided")
                stat, p = float(res.statistic), float(res.pvalue)
            elif min(ha + hb, len(x) + len(y) - ha - hb) == 0:  # chi2 is undefined: no contrast
                stat, p = 0.0, 1.0
            else:
                stat, p = (float(r) for r in stats.chi2_contingency(table, correction=True)[:2])
            row |= {"value_a": ha / len(x), "value_b": hb / len(y), "statistic": stat, "p": p}
        rows.append(row)
    return rows


def _distribution_tests(hsvs, analysis: str, column: str, maf_filter) -> list[dict]:
    """Two-sided Mann-Whitney U of the HSVs' ``column`` (``maf`` or ``abs_tss_distance``),
    every pair of models."""
    h = maf_filtered(hsvs, maf_filter)
    h = h.assign(abs_tss_distance=h["tss_distance"].abs())
    rows = []
    for a, b in itertools.combinations(sorted(hsvs["model"].unique()), 2):
        genes, x, y = _matched(h, a, b)
        x, y = x[column].to_numpy(float), y[column].to_numpy(float)
        row = _row(analysis, "hsv", maf_filter, a, b, len(genes), len(x), len(y))
        row["test"] = "mannwhitney"
        if len(x) and len(y):
            mw = stats.mannwhitneyu(x, y, alternative="two-sided")
            row |= {"value_a": float(np.median(x)), "value_b": float(np.median(y))}
            row |= {"statistic": float(mw.statistic), "p": float(mw.pvalue)}
        rows.append(row)
    return rows


def _rng(seed: int, *parts) -> np.random.Generator:
    """A generator of its own per test: seeded by ``seed`` and the test's name."""
    name = "|".join(str(p) for p in parts).encode()
    return np.random.default_rng([int(seed), zlib.crc32(name)])


def _kinds(occupancy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``occupancy`` and each row's index among them."""
    kinds, inverse = np.unique(occupancy, axis=0, return_inverse=True)
    return kinds, inverse.reshape(-1)


def _subset_sums(kinds: np.ndarray, counts: np.ndarray, n: int, n_perm: int, rng) -> np.ndarray:
    """Column sums of ``n`` rows drawn without replacement from a table holding ``counts[i]``
    copies of ``kinds[i]``, ``n_perm`` times: shape=(n_perm, n_states).

    Equal rows are exchangeable, so a uniform n-subset is a multivariate hypergeometric draw
    over the distinct rows (``Generator.multivariate_hypergeometric``): the distribution of a
    shuffle, at a cost that grows with n, not with the rows drawn from.
    """
    if n >= counts.sum():  # every row, every time (more cannot arise: HSVs are window SNVs)
        return np.broadcast_to(counts @ kinds, (n_perm, kinds.shape[1])).copy()
    if n == 0:
        return np.zeros((n_perm, kinds.shape[1]))
    draws = rng.multivariate_hypergeometric(counts, n, size=n_perm, method="count")
    return draws @ kinds


def _two_sided_p(null: np.ndarray, observed: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """(1 + #{|null - mu| >= |observed - mu|}) / (1 + n_perm), per column (float-rounding
    tolerant: a draw equal to the observation counts)."""
    dev = np.abs(observed - mu) - 1e-9 * np.maximum(1.0, np.abs(observed))
    return (1 + (np.abs(null - mu) >= dev).sum(axis=0)) / (1 + len(null))


class _Occupancy:
    """The state occupancy of every window SNV and every HSV, computed once for all filters."""

    def __init__(self, hsvs, snvs, windows, annotations):
        self.states = chromatin.state_order(s for a in annotations.values() for s in a["state"])
        self.background = {}  # gene -> (distinct occupancies, kind of each SNV, their MAF)
        for gene, v in snvs.groupby("gene", sort=True):
            if gene in windows:
                occ, annotated = chromatin.state_occupancy(
                    annotations, windows[gene], v["pos"], self.states
                )
                if annotated:
                    self.background[gene] = (*_kinds(occ), v["maf"].to_numpy(float))
        self.hsvs = hsvs[hsvs["gene"].isin(self.background)].reset_index(drop=True)
        self.hsv_occ = np.zeros((len(self.hsvs), len(self.states)))
        for gene, h in self.hsvs.groupby("gene", sort=False):
            self.hsv_occ[h.index] = chromatin.state_occupancy(
                annotations, windows[gene], h["pos"], self.states
            )[0]


def _chromatin_rows(base: dict, states, values=None, p=None) -> list[dict]:
    """One row per state; ``values`` = (value_a, value_b, statistic) arrays (None: untested)."""
    if values is None:
        return [base | {"state": s, "p": np.nan} for s in states]
    a, b, stat = values
    return [
        base | {"state": s, "value_a": a[j], "value_b": b[j], "statistic": stat[j], "p": p[j]}
        for j, s in enumerate(states)
    ]


def _against_windows(occ: _Occupancy, by: dict, m: str, maf_filter, n_perm, seed) -> list[dict]:
    """Per state: model ``m``'s HSVs against random SNVs of the same windows (same filter)."""
    n_states = len(occ.states)
    genes = sorted(g for mm, g in by if mm == m)
    rng, null = _rng(seed, "chromatin", maf_filter, m), np.zeros((n_perm, n_states))
    observed, mu, n_a, n_b = np.zeros(n_states), np.zeros(n_states), 0, 0
    for g in genes:
        kinds, kind, maf = occ.background[g]
        counts = np.bincount(kind[maf >= maf_filter], minlength=len(kinds))
        mine = by[(m, g)]
        null += _subset_sums(kinds, counts, len(mine), n_perm, rng)
        observed += mine.sum(axis=0)
        mu += len(mine) * (counts @ kinds) / counts.sum()
        n_a, n_b = n_a + len(mine), n_b + int(counts.sum())
    base = _row("chromatin", "hsv", maf_filter, m, WINDOW_SNVS, len(genes), n_a, n_b)
    base["test"] = "permutation"
    if not genes:
        return _chromatin_rows(base, occ.states)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = observed / mu
    return _chromatin_rows(
        base, occ.states, (observed, mu, ratio), _two_sided_p(null, observed, mu)
    )


def _between(occ: _Occupancy, by: dict, a: str, b: str, maf_filter, n_perm, seed) -> list[dict]:
    """Per state: the share of a's HSVs in it minus b's, labels permuted within genes."""
    n_states = len(occ.states)
    genes = sorted({g for m, g in by if m == a} & {g for m, g in by if m == b})
    rng = _rng(seed, "chromatin", maf_filter, a, b)
    null_a, pooled = np.zeros((n_perm, n_states)), np.zeros(n_states)
    obs_a, mu_a, n_a, n_b = np.zeros(n_states), np.zeros(n_states), 0, 0
    for g in genes:
        pool = np.vstack([by[(a, g)], by[(b, g)]])
        k = len(by[(a, g)])
        kinds, kind = _kinds(pool)
        null_a += _subset_sums(kinds, np.bincount(kind, minlength=len(kinds)), k, n_perm, rng)
        obs_a += by[(a, g)].sum(axis=0)
        mu_a += k * pool.mean(axis=0)
        pooled += pool.sum(axis=0)
        n_a, n_b = n_a + k, n_b + len(by[(b, g)])
    base = _row("chromatin", "hsv", maf_filter, a, b, len(genes), n_a, n_b)
    base["test"] = "permutation"
    if not genes:
        return _chromatin_rows(base, occ.states)
    share_a, share_b = obs_a / n_a, (pooled - obs_a) / n_b
    d_null = null_a / n_a - (pooled - null_a) / n_b  # D = T_a / n_a - T_b / n_b
    d_mu = mu_a / n_a - (pooled - mu_a) / n_b
    p = _two_sided_p(d_null, share_a - share_b, d_mu)
    return _chromatin_rows(base, occ.states, (share_a, share_b, share_a - share_b), p)


def _chromatin_tests(occ: _Occupancy, maf_filter, n_perm: int, seed: int) -> list[dict]:
    """Per state: each model against its windows' SNVs, then every pair of models."""
    keep = (occ.hsvs["maf"] >= maf_filter).to_numpy() if maf_filter > 0 else None
    h = occ.hsvs if keep is None else occ.hsvs[keep]
    o = occ.hsv_occ if keep is None else occ.hsv_occ[keep]
    by = {(m, g): o[idx] for (m, g), idx in h.groupby(["model", "gene"]).indices.items()}
    models = sorted(occ.hsvs["model"].unique())
    rows = []
    for m in models:
        rows += _against_windows(occ, by, m, maf_filter, n_perm, seed)
    for a, b in itertools.combinations(models, 2):
        rows += _between(occ, by, a, b, maf_filter, n_perm, seed)
    return rows


def model_tests(
    hsvs: pd.DataFrame,
    *,
    selected: pd.DataFrame | None = None,
    hits: pd.DataFrame | None = None,
    snvs: pd.DataFrame | None = None,
    windows: dict | None = None,
    annotations: dict | None = None,
    maf_filters=MAF_FILTERS,
    n_permutations: int = 1000,
    motif_test: str = "fisher",
    seed: int = 0,
) -> pd.DataFrame:
    """Every between-model test, at every MAF filter, with BH-adjusted p-values and stars.

    Parameters
    ----------
    hsvs : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt, maf, tss_distance`` (``hsvs.tsv``; pos 1-based).
    selected : pd.DataFrame, optional
        The ``driver`` group: ``model, gene, chrom, pos, ref, alt, maf`` (drivers, and the
        linear models' HSVs); None or empty: no ``driver`` rows.
    hits : pd.DataFrame, optional
        ``motifs.tsv`` (``gene, chrom, pos, ref, alt``, a row per hit) for every variant of
        ``hsvs`` and ``selected``; None: no ``motif_rate`` rows.
    snvs : pd.DataFrame, optional
        Every SNV of each window: ``gene, pos, maf`` (the null of the chromatin test).
    windows : dict, optional
        gene -> window (``chrom, start0, end0``; 0-based half-open).
    annotations : dict, optional
        sample -> ChromHMM segmentation (:func:`~variformer.analysis.chromatin.read_chromhmm`);
        with ``snvs`` and ``windows`` -> ``chromatin`` rows.
    maf_filters : sequence of float, default (0, 0.01, 0.05)
        Each test is run once per filter, variants with MAF below it removed first.
    n_permutations : int, default 1000
        Draws of each chromatin permutation test.
    motif_test : {"fisher", "chi2"}, default "fisher"
    seed : int, default 0

    Returns
    -------
    pd.DataFrame
        :data:`COLUMNS`, by analysis (:data:`ANALYSES` order), variants and filter.

    Raises
    ------
    InputError
        A filter outside [0, 0.5], ``n_permutations`` < 1, or an unknown ``motif_test``.
    """
    if any(not 0 <= f <= 0.5 for f in maf_filters):
        raise InputError(f"MAF filters must lie in [0, 0.5], got {list(maf_filters)}")
    if int(n_permutations) < 1:
        raise InputError(f"the permutation tests need at least 1 draw, got {n_permutations}")
    if motif_test not in ("fisher", "chi2"):
        raise InputError(f"motif_test must be 'fisher' or 'chi2', got {motif_test!r}")
    maf_filters = [float(f) for f in maf_filters]
    groups = {"hsv": hsvs}
    if selected is not None and len(selected):
        groups["driver"] = selected
    occ = None
    if annotations and snvs is not None and windows is not None:
        occ = _Occupancy(hsvs, snvs, windows, annotations)
    rows = []
    for name, variants in groups.items():
        for f in maf_filters if hits is not None else ():
            rows += _motif_rate_tests(variants, hits, name, f, motif_test)
    for f in maf_filters if occ is not None else ():
        rows += _chromatin_tests(occ, f, int(n_permutations), seed)
    for analysis, column in (("hsv_maf", "maf"), ("hsv_tss_distance", "abs_tss_distance")):
        for f in maf_filters:
            rows += _distribution_tests(hsvs, analysis, column, f)
    df = pd.DataFrame(rows, columns=list(COLUMNS[:-2]))
    return adjust(df)[list(COLUMNS)]


def dataset_model_tests(
    ds, genes, hsvs, *, selected=None, hits=None, annotations=None, **options
) -> pd.DataFrame:
    """:func:`model_tests` with the window SNVs and windows of a dataset's ``genes``
    (``options``: ``maf_filters``, ``n_permutations``, ``motif_test``, ``seed``)."""
    snvs = windows = None
    if annotations:
        windows = {g: ds.window(g) for g in genes}
        snvs = pd.concat(
            [ds.variants(g)[["chrom", "pos", "maf"]].assign(gene=g) for g in genes],
            ignore_index=True,
        ) if genes else pd.DataFrame(columns=["chrom", "pos", "maf", "gene"])  # fmt: skip
    return model_tests(
        hsvs, selected=selected, hits=hits, snvs=snvs, windows=windows, annotations=annotations,
        **options,
    )  # fmt: skip
