"""Torch dataset and Lightning data module over a gene dataset (``data_prep.open_dataset``).

Items are (gene, person) pairs; a person's sequence is built on demand by the gene dataset,
a whole same-gene batch at a time (``__getitems__``). In haplotype mode (issue #24) an item's
``x`` is the person's two haplotype windows, shape (2, L, 4); the system averages the model's
two predictions. Train genes get gene indices
``0 .. n_genes - 1``; held-out tune genes (monitored by PCC, never trained on) follow them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from core.errors import InputError
from data_prep.genome import crop_bounds
from variformer.config import resolve_haplotypes
from variformer.sampler import SameGeneBatchSampler

#: pseudo sample id of reference-genome items
REFERENCE = "reference"


class Items(NamedTuple):
    """Flat list of (gene, person) items; arrays of the same length n."""

    gene_index: np.ndarray  # int64 (n,), index into the module's gene list
    sample: list  # str (n,), sample id or REFERENCE
    target: np.ndarray  # float32 (n,)


class GeneSampleDataset(Dataset):
    """(gene, sample) items -> ``(x, y, gene_index)``.

    ``x`` : torch.Tensor float32, shape=(L, 4), or (2, L, 4) with ``haplotypes`` (haplotype 1,
    haplotype 2; the reference item is the reference twice); ``y`` : float32 scalar;
    ``gene_index`` : int64. Sequences are center-cropped to ``seq_len`` around the TSS (index
    ``L // 2`` stays the TSS).

    Parameters
    ----------
    ds : gene dataset (``data_prep.open_dataset``)
    genes : list of str
        Gene names; ``items.gene_index`` indexes this list.
    items : Items
    seq_len : int, optional
        Crop length; ``None`` keeps ``ds.seq_len``.
    haplotypes : bool
        Each person's two haplotypes (``ds.haplotype_sequences``) instead of their mean.
    """

    def __init__(
        self,
        ds: Any,
        genes: Sequence[str],
        items: Items,
        *,
        seq_len: int | None = None,
        haplotypes: bool = False,
    ):
        self.ds = ds
        self.genes = list(genes)
        self.items = items
        self.haplotypes = haplotypes
        # keep the TSS (index window // 2) at index seq_len // 2 of the crop
        self.crop0, end = crop_bounds(int(ds.seq_len), seq_len)
        self.seq_len = end - self.crop0

    def __len__(self) -> int:
        return len(self.items.sample)

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list:
        """Fetch several items with one ``ds.sequences`` call per gene (DataLoader uses this)."""
        indices = [int(i) for i in indices]
        shape = (2, self.seq_len, 4) if self.haplotypes else (self.seq_len, 4)
        x = np.empty((len(indices), *shape), dtype=np.float32)
        by_gene: dict[int, list[int]] = {}
        for pos, i in enumerate(indices):
            by_gene.setdefault(int(self.items.gene_index[i]), []).append(pos)
        for g, positions in by_gene.items():
            gene = self.genes[g]
            samples = [self.items.sample[indices[p]] for p in positions]
            start, end = self.crop0, self.crop0 + self.seq_len
            if samples[0] == REFERENCE:
                x[positions] = self.ds.reference(gene)[start:end]  # both haplotypes alike
            elif self.haplotypes:
                x[positions] = self.ds.haplotype_sequences(gene, samples, start=start, end=end)
            else:  # only the crop is built, not the whole window
                x[positions] = self.ds.sequences(gene, samples, start=start, end=end)
        return [
            (
                torch.from_numpy(x[pos]),
                torch.tensor(self.items.target[i], dtype=torch.float32),
                torch.tensor(self.items.gene_index[i], dtype=torch.int64),
            )
            for pos, i in enumerate(indices)
        ]


def group_by_gene(gene_index: np.ndarray, n_genes: int) -> list[np.ndarray]:
    """Item indices of every gene, in item order (one pass: no per-gene scans of all items).

    Parameters
    ----------
    gene_index : np.ndarray, shape=(n,)
        Gene of every item, in ``0 .. n_genes - 1``.
    n_genes : int

    Returns
    -------
    list of np.ndarray
        ``n_genes`` int64 arrays (empty for genes without items).
    """
    order = np.argsort(gene_index, kind="stable")
    bounds = np.searchsorted(gene_index[order], np.arange(n_genes + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_genes)]


def eval_batches(
    gene_index: np.ndarray, *, batch_size: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Same-gene evaluation batches of one rank (each item on exactly one rank, no padding).

    Parameters
    ----------
    gene_index : np.ndarray, shape=(n,)
        Gene of every item.
    batch_size, rank, world_size : int

    Returns
    -------
    list of list of int
        Batches of item indices; ranks may get different numbers of batches, but every rank
        gets at least one (a rank without a batch would skip the metric gathering).

    Raises
    ------
    InputError
        If there are fewer items than ranks.
    """
    n_genes = int(gene_index.max()) + 1 if len(gene_index) else 0
    batches = []
    for ix in group_by_gene(gene_index, n_genes):
        batches.extend(ix[i : i + batch_size].tolist() for i in range(0, len(ix), batch_size))
    if len(batches) < world_size:
        # tiny tune sets: one item per batch so that every rank has some
        batches = [[i] for i in range(len(gene_index))]
        if len(batches) < world_size:
            raise InputError(
                f"{len(batches)} tune items cannot be shared by {world_size} processes; use fewer devices"
            )
    return batches[rank::world_size]


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position in the epoch is saved in checkpoints (Lightning's
    ``_Stateful`` protocol): a run resumed from a mid-epoch checkpoint skips the micro-batches
    it already trained on, so it sees exactly the rest of the interrupted epoch."""

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.load_state_dict(state)


class VariformerDataModule(L.LightningDataModule):
    """Train/tune/test people of one fold, for one or more genes.

    Parameters
    ----------
    dataset : str, Path or an opened gene dataset
        Opened lazily in :meth:`setup` when a path (so DDP workers open their own).
    genes : sequence of str
        Train genes.
    fold : int
        Cross-validation fold of ``ds.split``.
    batch_size, accumulate_grad_batches : int
        Micro-batch size and micro-batches per optimizer step (see :class:`SameGeneBatchSampler`).
    train_fraction : float
        Donor downsampling of the train people (nested, ``ds.split``).
    reference_genome : bool
        Train on each gene's reference sequence with the mean expression of the train people
        as target (tune: reference with the tune people's mean).
    tune_genes : sequence of str
        Held-out genes evaluated on the tune people (monitored by PCC), never trained on.
    seq_len : int, optional
        Center crop around the TSS.
    eval_batch_size : int, optional
        Batch size for tune evaluation (default ``batch_size``).
    num_workers : int
    seed : int
        Seeds the train sampler's order.
    haplotypes : {"auto", True, False}
        ``data.haplotypes``; resolved against the dataset in :meth:`setup`
        (:func:`variformer.config.resolve_haplotypes`), after which :attr:`haplotypes` is a bool.
    """

    def __init__(
        self,
        dataset: str | Path | Any,
        *,
        genes: Sequence[str],
        fold: int,
        batch_size: int = 32,
        accumulate_grad_batches: int = 4,
        train_fraction: float = 1.0,
        reference_genome: bool = False,
        tune_genes: Sequence[str] = (),
        seq_len: int | None = None,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        haplotypes: bool | str = False,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.genes = list(genes)
        self.tune_genes = [g for g in tune_genes if g not in set(self.genes)]
        self.fold = fold
        self.batch_size = batch_size
        self.accumulate_grad_batches = accumulate_grad_batches
        self.train_fraction = train_fraction
        self.reference_genome = reference_genome
        self.seq_len = seq_len
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.haplotypes = haplotypes
        self.ds: Any = None

    def __getstate__(self) -> dict:
        # ddp_spawn pickles the module; an opened dataset holds caches that need not travel
        state = self.__dict__.copy()
        if isinstance(self.dataset, (str, Path)):
            state["ds"] = None
        return state

    @property
    def all_genes(self) -> list[str]:
        """Train genes then held-out tune genes; gene indices index this list."""
        return self.genes + self.tune_genes

    def setup(self, stage: str | None = None) -> None:
        if self.ds is not None:
            return
        if isinstance(self.dataset, (str, Path)):
            from data_prep import open_dataset

            self.ds = open_dataset(self.dataset)
        else:
            self.ds = self.dataset
        ds = self.ds
        self.haplotypes = resolve_haplotypes(self.haplotypes, ds)
        if not self.genes:
            raise InputError("no train genes given; pass --gene or --genes-file")
        missing = [g for g in self.all_genes if g not in set(ds.genes)]
        if missing:
            raise InputError(
                f"{len(missing)} gene(s) not in the dataset (first: {missing[0]}); check the gene list"
            )
        if not ds.has_expression:
            raise InputError(
                "the dataset has no expression targets; prepare it with expression to fine-tune"
            )
        self.split = ds.split(self.fold, train_fraction=self.train_fraction)
        self.expression = {g: ds.expression(g) for g in self.all_genes}
        if self.num_workers > 0 and callable(getattr(ds, "prepare", None)):
            ds.prepare()  # build the carrier index once, before the workers fork and share it

    def people(self, gene: str, split: str) -> list[str]:
        """Sample ids of ``split`` that have expression for ``gene`` (split order)."""
        expr = self.expression[gene]
        return [s for s in self.split[split] if s in expr.index]

    def items(
        self, split: str, *, genes: Sequence[str] | None = None, reference: bool = False
    ) -> Items:
        """Items of ``split`` for ``genes`` (default: train genes), gene-major order.

        With ``reference`` there is one item per gene: the reference sequence with the mean
        expression of the split's people.
        """
        genes = self.genes if genes is None else genes
        position = {gene: g for g, gene in enumerate(self.all_genes)}
        gidx, samples, targets = [], [], []
        for gene in genes:
            g = position[gene]
            people = self.people(gene, split)
            if not people:
                raise InputError(
                    f"gene {gene} has no {split} people with expression in fold {self.fold}"
                )
            values = self.expression[gene].loc[people].to_numpy(np.float64)
            if reference:
                gidx.append(g)
                samples.append(REFERENCE)
                targets.append(values.mean())
            else:
                gidx.extend([g] * len(people))
                samples.extend(people)
                targets.extend(values)
        return Items(np.asarray(gidx, np.int64), samples, np.asarray(targets, np.float32))

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        items = self.items("train", reference=self.reference_genome)
        dataset = GeneSampleDataset(
            self.ds, self.all_genes, items, seq_len=self.seq_len, haplotypes=self.haplotypes
        )
        rank, world = self._rank_world()
        # a resumed run starts at the restored epoch; Lightning calls set_epoch only later
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if self.reference_genome:
            # one item per gene: batches of different genes (MSE only, no pairwise term)
            sampler = DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.seed
            )
            sampler.set_epoch(epoch)
            return DataLoader(
                dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers
            )
        per_gene = group_by_gene(items.gene_index, len(self.genes))
        batch_sampler = SameGeneBatchSampler(
            per_gene,
            batch_size=self.batch_size,
            accumulate_grad_batches=self.accumulate_grad_batches,
            shuffle=True,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )
        batch_sampler.set_epoch(epoch)
        return ResumableDataLoader(
            dataset, batch_sampler=batch_sampler, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        items = self.items("tune", reference=self.reference_genome)
        if self.tune_genes:
            held = self.items("tune", genes=self.tune_genes)
            items = Items(
                np.concatenate([items.gene_index, held.gene_index]),
                items.sample + held.sample,
                np.concatenate([items.target, held.target]),
            )
        dataset = GeneSampleDataset(
            self.ds, self.all_genes, items, seq_len=self.seq_len, haplotypes=self.haplotypes
        )
        rank, world = self._rank_world()
        batches = eval_batches(
            items.gene_index, batch_size=self.eval_batch_size, rank=rank, world_size=world
        )
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.num_workers)
