"""The gene dataset: written once by ``variformer prep``, opened lazily by everything else.

Nothing per person is materialized on disk. Per gene the directory holds the reference
window and the SNV alleles with a sparse carrier matrix; a person's averaged one-hot
sequence is built on demand from those. Layout::

    dataset.json    format, version, seq_len, samples, folds, inputs, summary
    genes.tsv       gene, gene_id, chrom, start0, end0, tss0, strand, n_variants, var_start
    reference.npy   uint8 (n_genes, seq_len): A,C,G,T = 0..3, N = 4
    variants.tsv    gene, chrom, pos (1-based), id, ref, alt, ac, af, maf
    carriers.npz    CSR over variants: indptr (V+1), sample (nnz, int32), code (nnz, uint8:
                    bit 0 = haplotype 1 carries ALT, bit 1 = haplotype 2)
    expression.tsv  optional: genes x samples targets (rows in genes.tsv order)
    splits.tsv      sample, fold<k> (train/tune/test/-), train_rank<k> (nested downsampling order)

A haplotype-mode dataset (``variformer prep --haplotypes``, version 3) adds spans.npy and span
columns, and keeps carrier codes per haplotype in memory-mapped ``carriers_*.npy`` instead of
carriers.npz; see :mod:`data_prep.haplotype_dataset` (version 2 datasets are still read).

Written by :func:`data_prep.dataset_writer.write_dataset`; read by :class:`GeneDataset`, whose
person-major carrier index (:mod:`data_prep.person_index`) builds sequences batch by batch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from core.errors import InputError
from core.manifest import digest_files, digest_value
from data_prep.genome import ONE_HOT, Window
from data_prep.haplotype_dataset import HAPLOTYPE_MODE, HAPLOTYPE_VERSIONS, HaplotypeMethods
from data_prep.person_index import PersonIndex, person_index

FORMAT = "variformer-dataset"
VERSION = 1
SPLIT_NAMES = ("train", "tune", "test")

# one-hot rows as single 16-byte items (np.take moves a whole row per base)
_ONE_HOT_ROWS = np.ascontiguousarray(ONE_HOT).view(np.complex128).ravel()
# the mean one-hot of haplotype codes a and b, as one 16-byte item at index 5 * a + b
_PAIR_ROWS = (
    np.ascontiguousarray(((ONE_HOT[:, None] + ONE_HOT[None, :]) / 2).reshape(25, 4))
    .view(np.complex128)
    .ravel()
)


@runtime_checkable
class GeneDatasetLike(Protocol):
    """What fine-tuning, prediction and the baselines need from a gene dataset.

    :class:`GeneDataset` (from :func:`open_dataset`) is the implementation; an in-memory
    stand-in (e.g. ``tests.fakes.FakeDataset``) works wherever this type is accepted.
    Sequences are float32 one-hot A, C, G, T on the forward strand, TSS at ``seq_len // 2``.
    """

    genes: list[str]  # gene symbols, in dataset order
    samples: list[str]  # sample ids, in dataset order
    seq_len: int  # window length (bp)
    n_folds: int
    has_expression: bool

    def window(self, gene: str) -> Window:
        """chrom, start0, end0 (0-based half-open), tss0 (0-based), strand."""
        ...

    def reference(self, gene: str) -> np.ndarray:
        """Reference one-hot, float32, shape=(seq_len, 4)."""
        ...

    def sequences(
        self, gene: str, samples: Sequence[str], *, start: int = 0, end: int | None = None
    ) -> np.ndarray:
        """Averaged consensus one-hot, float32, shape=(n, end - start, 4); 0-based window offsets."""
        ...

    def variants(self, gene: str) -> pd.DataFrame:
        """chrom, pos (1-based), id, ref, alt, af, maf; one row per SNV allele."""
        ...

    def dosages(self, gene: str, samples: Sequence[str] | None = None) -> np.ndarray:
        """ALT dosage 0/1/2, float32, shape=(n_samples, n_variants)."""
        ...

    def expression(self, gene: str) -> pd.Series:
        """Expression target of the people who have one, indexed by sample id."""
        ...

    def split(self, fold: int, *, train_fraction: float = 1.0) -> dict[str, list[str]]:
        """{'train', 'tune', 'test'} -> sample ids of a cross-validation fold."""
        ...


def open_dataset(path) -> GeneDataset:
    """Open a dataset directory written by ``variformer prep`` (lazily: arrays load on first use).

    Raises
    ------
    InputError
        If ``path`` is not a complete dataset (an interrupted prep leaves none).
    """
    return GeneDataset(path)


class GeneDataset(HaplotypeMethods):
    """Per-gene personal-genome sequences, variants, dosages, expression and splits.

    Sequences are float32 one-hot with columns A, C, G, T, the average of a person's two
    consensus haplotypes (het = 0.5/0.5, hom-alt = 1, N = all zeros), on the forward strand,
    with the TSS at index ``seq_len // 2``.
    """

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / "dataset.json"
        if not meta_path.is_file():
            raise InputError(
                f"{self.path} is not a variformer dataset (no dataset.json); run `variformer prep` first"
            )
        meta = json.loads(meta_path.read_text())
        known = {VERSION: None, **dict.fromkeys(HAPLOTYPE_VERSIONS, HAPLOTYPE_MODE)}
        version = meta.get("version")
        if (
            meta.get("format") != FORMAT
            or version not in known
            or meta.get("mode") != known[version]
        ):
            raise InputError(
                f"{self.path}: unsupported dataset format {meta.get('format')} v{meta.get('version')}"
            )
        self.meta = meta
        self.haplotype_mode: bool = meta.get("mode") == HAPLOTYPE_MODE
        self._fingerprints: dict[str, str] | None = None
        self.seq_len: int = int(meta["seq_len"])
        self.samples: list[str] = list(meta["samples"])
        self.n_folds: int = int(meta["n_folds"])
        self._genes = self._checked(self._read_genes, "genes.tsv")
        self.genes: list[str] = list(self._genes["gene"])
        self._gene_row = {g: i for i, g in enumerate(self.genes)}
        for i, gid in enumerate(self._genes["gene_id"]):  # Ensembl ids, with or without version
            self._gene_row.setdefault(gid, i)
            self._gene_row.setdefault(gid.split(".")[0], i)
        self._sample_idx = {s: i for i, s in enumerate(self.samples)}
        self.has_expression: bool = (self.path / "expression.tsv").is_file()
        # a missing or truncated file must stop here, not after training has started
        self._checked(self._check_reference, "reference.npy")
        self._checked(self._check_variants, "variants.tsv")
        self._check_carrier_files()  # carriers.npz, or a haplotype dataset's carriers_*.npy
        self._checked(lambda: self._read_splits(), "splits.tsv")
        if self.haplotype_mode:
            self._checked(self._check_spans, "spans.npy")

    @property
    def fingerprints(self) -> dict[str, str]:
        """Content fingerprints of the dataset's parts (:mod:`core.manifest`), computed once.

        ``windows`` (genes.tsv, reference.npy, variants.tsv, the carriers: every person's
        sequence), ``samples`` (the people, in order), ``splits`` (splits.tsv), ``targets``
        (expression.tsv), ``config`` (seq_len, folds, engine and prep options) and
        ``dataset`` (all of them). A run, a baseline or an ISM table records these; a later
        step refuses inputs whose fingerprints no longer match.
        """
        if self._fingerprints is None:
            # in the order a mismatch is best explained by (core.manifest.check_same)
            parts = {
                "splits": digest_files(self.path, ["splits.tsv"]),
                "samples": digest_value(self.samples),
                "targets": digest_files(self.path, ["expression.tsv"]),
                "windows": digest_files(
                    self.path,
                    ["genes.tsv", "reference.npy", "variants.tsv", *self._carrier_files]
                    + (["spans.npy"] if self.haplotype_mode else []),
                ),
                "config": digest_value(
                    {k: self.meta.get(k) for k in ("seq_len", "n_folds", "engine", "options")}
                ),
            }
            self._fingerprints = {**parts, "dataset": digest_value(parts)}
        return dict(self._fingerprints)

    # ---- checks on open: every file is there and has the size its neighbours imply ----
    def _checked(self, check, name: str):
        """Run ``check``; any failure becomes one line naming the file and the fix."""
        path = self.path / name
        if not path.is_file():
            raise InputError(f"{self.path} lacks {name}; re-run `variformer prep` to rebuild it")
        try:
            return check()
        except InputError:
            raise
        except Exception as err:  # truncated/corrupt files fail in many ways (pandas, zip, npy)
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(
                f"{path} is truncated or corrupt ({detail}); re-run `variformer prep` to rebuild the dataset"
            ) from None

    def _read_genes(self) -> pd.DataFrame:
        genes = pd.read_csv(self.path / "genes.tsv", sep="\t", dtype={"chrom": str})
        need = ["gene", "gene_id", "chrom", "start0", "tss0", "strand", "n_variants", "var_start"]
        if genes.empty or genes[need].isna().any().any():
            raise ValueError("empty, or rows with missing fields")
        n, start = genes["n_variants"].to_numpy(), genes["var_start"].to_numpy()
        if (start[1:] != start[:-1] + n[:-1]).any():
            raise ValueError("var_start and n_variants disagree")
        return genes

    def _check_reference(self) -> None:
        ref = np.load(self.path / "reference.npy", mmap_mode="r")  # a short file fails here
        if ref.shape != (len(self.genes), self.seq_len):
            raise ValueError(f"shape {ref.shape}, expected {(len(self.genes), self.seq_len)}")
        self._ref_mm = ref

    def _check_variants(self) -> None:
        with open(self.path / "variants.tsv", "rb") as fh:
            data = fh.read()
        expected = int(self._genes["n_variants"].sum()) + 1  # + header
        lines = data.count(b"\n")
        if not data.endswith(b"\n") or lines != expected:
            raise ValueError(f"{lines} lines, expected {expected}")

    def _check_carriers(self) -> None:
        indptr, sample, code = self._carriers
        n_variants = int(self._genes["n_variants"].sum())
        if len(indptr) != n_variants + 1:
            raise ValueError(f"{len(indptr) - 1} variants, expected {n_variants}")
        if len(sample) != len(code) or int(indptr[-1]) != len(sample):
            raise ValueError("carrier arrays of different lengths")

    def _read_splits(self) -> pd.DataFrame:
        if not hasattr(self, "_splits"):
            splits = pd.read_csv(self.path / "splits.tsv", sep="\t", dtype={"sample": str})
            need = [f"fold{k}" for k in range(self.n_folds)]
            need += [f"train_rank{k}" for k in range(self.n_folds)]
            missing = [c for c in ["sample", *need] if c not in splits.columns]
            if missing:
                raise ValueError(f"no column {missing[0]}")
            if sorted(splits["sample"]) != sorted(self.samples) or splits[need].isna().any().any():
                raise ValueError("its people differ from the dataset's, or rows are incomplete")
            self._splits = splits
        return self._splits

    def __repr__(self) -> str:
        return f"GeneDataset({str(self.path)!r}, genes={len(self.genes)}, samples={len(self.samples)}, seq_len={self.seq_len})"

    # ---- lazily loaded whole-dataset arrays ----
    @property
    def _reference(self) -> np.ndarray:
        if not hasattr(self, "_ref_mm"):
            self._ref_mm = np.load(self.path / "reference.npy", mmap_mode="r")
        return self._ref_mm

    @property
    def _variants(self) -> pd.DataFrame:
        if not hasattr(self, "_var_df"):
            self._var_df = pd.read_csv(
                self.path / "variants.tsv",
                sep="\t",
                dtype={"chrom": str, "id": str, "ref": str, "alt": str, "gene": str},
                keep_default_na=False,
            )
        return self._var_df

    @property
    def _carriers(self):
        if not hasattr(self, "_car"):
            with np.load(self.path / "carriers.npz") as z:
                self._car = (z["indptr"], z["sample"], z["code"])
        return self._car

    def _row(self, gene: str) -> int:
        try:
            return self._gene_row[gene]
        except KeyError:
            raise InputError(
                f"gene {gene!r} is not in the dataset {self.path} (it has {', '.join(self.genes[:8])}{' ...' if len(self.genes) > 8 else ''})"
            ) from None

    def _sample_rows(self, samples) -> np.ndarray:
        try:
            return np.fromiter((self._sample_idx[s] for s in samples), dtype=np.int64)
        except KeyError as err:
            raise InputError(f"sample {err.args[0]!r} is not in the dataset {self.path}") from None

    @property
    def _index(self) -> PersonIndex:
        if not hasattr(self, "_person_index"):
            self._person_index = person_index(
                self._carriers,
                var_start=self._genes["var_start"].to_numpy(np.int64),
                n_variants=self._genes["n_variants"].to_numpy(np.int64),
                start0=self._genes["start0"].to_numpy(np.int64),
                pos1=self._variants["pos"].to_numpy(np.int64),
                alt=self._variants["alt"],
                reference=self._reference,
                n_samples=len(self.samples),
            )
        return self._person_index

    # ---- public API ----
    def prepare(self) -> GeneDataset:
        """Build the lazy person-major index now (e.g. before DataLoader workers fork, so they
        share it instead of each rebuilding it). Returns ``self``."""
        if self.haplotype_mode:
            self._haplotype_codes(self.genes[0], [])  # builds the haplotype store instead
        else:
            self._index  # noqa: B018 (the property builds and caches the index)
        return self

    def window(self, gene: str) -> Window:
        """The gene's window: chrom, start0, end0 (0-based half-open), tss0 (0-based), strand."""
        g = self._genes.iloc[self._row(gene)]
        return Window(
            str(g["chrom"]), int(g["start0"]), int(g["end0"]), int(g["tss0"]), str(g["strand"])
        )

    def gene_id(self, gene: str) -> str:
        """The gene's id in the annotation (an Ensembl id such as ``ENSG00000123456.7``)."""
        return str(self._genes["gene_id"].iloc[self._row(gene)])

    def reference(self, gene: str) -> np.ndarray:
        """Reference one-hot of the gene's window, float32, shape=(seq_len, 4)."""
        return ONE_HOT[self._reference[self._row(gene)]]

    def sequence(self, gene: str, sample: str) -> np.ndarray:
        """A person's averaged consensus one-hot, float32, shape=(seq_len, 4).

        In a haplotype-mode dataset: the mean of :meth:`haplotypes`."""
        return self.sequences(gene, [sample])[0]

    def sequences(
        self,
        gene: str,
        samples,
        *,
        start: int = 0,
        end: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Averaged consensus one-hot of several people, float32, shape=(n, end - start, 4).

        Parameters
        ----------
        gene : str
        samples : sequence of str
        start, end : int
            Window positions (0-based, half-open, relative to the window start) to build; the
            default is the whole window. A centre crop of length ``c`` keeps the TSS at
            ``c // 2`` with ``start = seq_len // 2 - c // 2``.
        out : np.ndarray, shape=(n, end - start, 4), float32, optional
            Buffer to fill (saves an allocation in training loops).
        """
        row = self._row(gene)
        end = self.seq_len if end is None else end
        if not 0 <= start < end <= self.seq_len:
            raise InputError(f"positions [{start}, {end}) are outside the {self.seq_len}-bp window")
        idx = self._sample_rows(samples)
        n, length = len(idx), end - start
        if out is None:
            out = np.empty((n, length, 4), dtype=np.float32)
        # write into a C-contiguous array (the scatter below works on its flat view)
        fill = out if out.flags.c_contiguous else np.empty((n, length, 4), dtype=np.float32)
        if n and self.haplotype_mode:  # the mean of the two haplotypes: one gather per base
            codes = self._haplotype_codes(gene, samples)[:, :, start:end]
            pair = codes[:, 0] * np.uint8(5) + codes[:, 1]
            np.take(_PAIR_ROWS, pair, out=fill.view(np.complex128).reshape(n, length), mode="clip")
        elif n:
            codes = np.ascontiguousarray(self._reference[row, start:end])
            # one 16-byte gather (a whole one-hot row per base) for the first person, then a
            # broadcast copy whose source stays in cache for the others
            np.take(
                _ONE_HOT_ROWS, codes, out=fill[0].view(np.complex128).reshape(length), mode="clip"
            )
            fill[1:] = fill[0]
            self._index.add_alleles_(fill, row, idx, start=start)
        if fill is not out:
            out[...] = fill
        return out

    def variants(self, gene: str) -> pd.DataFrame:
        """SNV alleles of the window: chrom, pos (1-based), id, ref, alt, af, maf; one row per ALT.

        In a haplotype-mode dataset: every applied allele of the span (SNVs, MNPs, indels),
        one row per (pos, REF, ALT), REF and ALT as in the VCF."""
        g = self._genes.iloc[self._row(gene)]
        v0, nv = int(g["var_start"]), int(g["n_variants"])
        return self._variants.iloc[v0 : v0 + nv][
            ["chrom", "pos", "id", "ref", "alt", "af", "maf"]
        ].reset_index(drop=True)

    def dosages(self, gene: str, samples=None) -> np.ndarray:
        """ALT dosage 0/1/2, float32, shape=(n_samples, n_variants), rows in ``samples`` order."""
        g = self._genes.iloc[self._row(gene)]
        dense = self._carrier_codes.codes(int(g["var_start"]), int(g["n_variants"]))
        c = dense if samples is None else dense[self._sample_rows(samples)]
        return ((c & 1) + ((c >> 1) & 1)).astype(np.float32)

    def expression(self, gene: str) -> pd.Series:
        """Expression target of the samples that have one, indexed by sample id."""
        if not self.has_expression:
            raise InputError(
                f"{self.path} has no expression; re-run `variformer prep` with --expression"
            )
        if not hasattr(self, "_expr"):
            self._expr = pd.read_csv(self.path / "expression.tsv", sep="\t", index_col=0)
            self._expr.index = self._expr.index.astype(str)
        series = self._expr.iloc[self._row(gene)].dropna().astype(np.float64)
        series.name = self.genes[self._row(gene)]
        return series

    def split(self, fold: int, *, train_fraction: float = 1.0) -> dict[str, list[str]]:
        """Train/tune/test sample ids of a cross-validation fold.

        Parameters
        ----------
        fold : int
            0 <= fold < n_folds.
        train_fraction : float
            In (0, 1]: keep the first ``ceil(train_fraction * n_train)`` train people in the
            fold's stored random order, so smaller fractions nest inside larger ones.
            Tune and test people are never downsampled.
        """
        if not 0 <= fold < self.n_folds:
            raise InputError(
                f"fold {fold} does not exist; the dataset has folds 0..{self.n_folds - 1}"
            )
        if not 0 < train_fraction <= 1:
            raise InputError(f"train_fraction must be in (0, 1], got {train_fraction}")
        s = self._read_splits()
        col = s[f"fold{fold}"]
        result = {name: list(s.loc[col == name, "sample"]) for name in SPLIT_NAMES}
        train = s.loc[col == "train"].sort_values(f"train_rank{fold}")
        keep = math.ceil(train_fraction * len(train) - 1e-9)
        result["train"] = list(train["sample"].iloc[:keep])
        return result
