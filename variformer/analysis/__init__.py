"""Analyses of trained models and datasets: ISM, HSVs, drivers, motifs, enrichment, auROC.

``ism`` (the function, from :mod:`variformer.analysis.mutagenesis`) is imported lazily so that
``import variformer.analysis`` stays cheap. No submodule is named ``ism``: importing it would
rebind the package attribute to the module, and ``from variformer.analysis import ism`` would
then return a module or a function depending on what was imported first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ism"]


def __getattr__(name: str) -> Any:
    if name == "ism":
        from variformer.analysis.mutagenesis import ism

        globals()["ism"] = ism
        return ism
    raise AttributeError(f"module 'variformer.analysis' has no attribute {name!r}")
