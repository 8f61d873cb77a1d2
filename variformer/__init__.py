"""Variformer: fine-tune Enformer on personal genomes to predict gene expression across people.

The names below are imported lazily, so ``import variformer`` (and the CLI's startup) stays
cheap and does not load torch until a model, loss or ``predict`` is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from variformer.loss import pairwise_difference_loss, variformer_loss
    from variformer.model import Variformer
    from variformer.predict import CenterBins, predict, predict_people

__all__ = [
    "CenterBins",
    "Variformer",
    "pairwise_difference_loss",
    "predict",
    "predict_people",
    "variformer_loss",
]

_LAZY = {
    "Variformer": "variformer.model",
    "predict": "variformer.predict",
    "predict_people": "variformer.predict",
    "CenterBins": "variformer.predict",
    "variformer_loss": "variformer.loss",
    "pairwise_difference_loss": "variformer.loss",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'variformer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
