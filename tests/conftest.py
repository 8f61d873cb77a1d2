"""Shared pytest set-up: tests marked ``gpu`` are skipped on machines without CUDA."""

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A real 3-gene dataset (simulate -> prep; BTNL3, ZFP57, PPIF; 3 folds), shared read-only.

    Its directory name has a space (paths must survive quoting).
    """
    from tests.datasets import prepared_dataset

    return prepared_dataset(tmp_path_factory.mktemp("small data"), genes=3)


@pytest.fixture()
def cohort(tmp_path):
    """The prep tests' two-contig cohort (:func:`tests.prep_cohort.two_gene_cohort`)."""
    from tests.prep_cohort import two_gene_cohort

    return two_gene_cohort(tmp_path)


@pytest.fixture(scope="module")
def ism_cohort(tmp_path_factory):
    """A simulated 2-gene dataset and one saved tiny fine-tuning run (fold 1, first gene,
    ``data.seq_len`` = :data:`tests.fakes.ISM_CROP`) for the ISM and attribution tests."""
    from tests.fakes import ism_cohort as build

    return build(tmp_path_factory.mktemp("ism_cohort"))
