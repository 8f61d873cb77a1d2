"""Analyses of trained models and datasets: ISM, HSVs, drivers, motifs, enrichment, auROC.

``ism`` is imported lazily so that ``import variformer.analysis`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ism"]


def __getattr__(name: str) -> Any:
    if name == "ism":
        from variformer.analysis.ism import ism

        globals()["ism"] = ism
        return ism
    raise AttributeError(f"module 'variformer.analysis' has no attribute {name!r}")
