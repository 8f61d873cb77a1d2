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
