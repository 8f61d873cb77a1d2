"""Inputs -> gene datasets: windows, SNVs, haplotypes, reference, expression and splits.

``data_prep`` knows genomes and cohorts and nothing about neural networks. Its dataset is
written once by ``variformer prep`` and opened lazily with :func:`open_dataset`.
"""

from core.errors import InputError
from data_prep.dataset import GeneDataset, GeneDatasetLike, open_dataset
from data_prep.genome import Window

__all__ = [
    "GeneDataset",
    "GeneDatasetLike",
    "InputError",
    "Window",
    "open_dataset",
    "prep_dataset",
]


def __getattr__(name):
    if name == "prep_dataset":
        from data_prep.prep import prep_dataset

        return prep_dataset
    raise AttributeError(name)
