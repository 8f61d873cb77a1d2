"""What a fine-tuning run is built from: its data module, network and training system.

:func:`variformer.finetune.finetune` calls these in order; they read the run's
:class:`~variformer.config.Config` and nothing else, so that DDP workers, SLURM array tasks and
tests build the same objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InputError
from variformer.config import Config

if TYPE_CHECKING:
    from data_prep.dataset import GeneDatasetLike

__all__ = [
    "apply_model_options",
    "build_datamodule",
    "build_model",
    "build_system",
    "with_resolved_haplotypes",
]


def build_datamodule(
    dataset: str | Path | GeneDatasetLike, *, genes: Sequence[str], fold: int, config: Config
):
    """The :class:`~variformer.data.VariformerDataModule` that ``config.data`` describes."""
    from variformer.data import VariformerDataModule

    d, t = config.data, config.training
    return VariformerDataModule(
        dataset,
        genes=genes,
        fold=fold,
        batch_size=d.batch_size,
        accumulate_grad_batches=t.accumulate_grad_batches,
        train_fraction=d.train_fraction,
        reference_genome=d.reference_genome,
        tune_genes=d.tune_genes,
        seq_len=d.seq_len,
        eval_batch_size=d.eval_batch_size,
        num_workers=d.num_workers,
        seed=t.seed,
        haplotypes=d.haplotypes,
    )


def with_resolved_haplotypes(config: Config, dm) -> Config:
    """``config`` with ``data.haplotypes`` as the set-up data module resolved it (a bool):
    the value written to the run's ``config.yaml`` and ``summary.json``."""
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, haplotypes=dm.haplotypes)
    )


def build_model(config: Config):
    """The network to fine-tune: pretrained Enformer weights, or random ones from hparams."""
    from variformer.model import Variformer

    m = config.model
    if m.pretrained:
        return Variformer.from_pretrained(
            m.pretrained, freeze_trunk=m.freeze_trunk, train_batchnorm=m.train_batchnorm
        )
    return Variformer.from_hparams(
        freeze_trunk=m.freeze_trunk, train_batchnorm=m.train_batchnorm, **m.hparams
    )


def build_system(model, dm, config: Config):
    """The :class:`~variformer.system.VariformerSystem` training ``model`` on ``dm``'s genes."""
    from variformer.system import VariformerSystem

    t = config.training
    return VariformerSystem(
        model,
        gene_names=dm.genes,
        heldout_gene_names=dm.tune_genes,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        # the pairwise term needs people of one gene in a batch; reference batches mix genes
        alpha=1.0 if config.data.reference_genome else t.alpha,
    )


def apply_model_options(config: Config, *, pretrained: str | None, random_init: bool) -> Config:
    """``config`` with the command line's ``--pretrained PATH`` / ``--random-init`` applied."""
    if pretrained and random_init:
        raise InputError("give either --pretrained or --random-init, not both")
    if pretrained or random_init:
        model = dataclasses.replace(
            config.model, pretrained=None if random_init else str(pretrained)
        )
        config = dataclasses.replace(config, model=model)
    return config
