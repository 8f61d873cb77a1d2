"""The package layers: ``core <- data_prep <- baselines <- variformer``, and tests stay apart.

Every ``import`` statement of every module (top level or inside a function) is read with
``ast``; a package may import only itself and the packages below it. Test files may import the
helper modules of ``tests/`` but never another test file (shared fixtures live in conftest.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fakes import ROOT

LAYERS = ["core", "data_prep", "baselines", "variformer"]


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_package_imports_a_layer_above_it(package):
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _imported_modules(path)
        if name.split(".")[0] in above
    ]
    assert not upward, "\n".join(upward)


def test_the_layers_are_real_packages_and_core_is_imported_by_all():
    users = {
        package: any(
            name.split(".")[0] == "core"
            for path in (ROOT / package).rglob("*.py")
            for _, name in _imported_modules(path)
        )
        for package in LAYERS[1:]
    }
    assert all((ROOT / p / "__init__.py").is_file() for p in LAYERS)
    assert users == dict.fromkeys(LAYERS[1:], True)


def test_no_test_file_imports_another():
    offenders = [
        f"{path.name}:{line} imports {name}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for line, name in _imported_modules(path)
        if name.startswith("tests.test_")
    ]
    assert not offenders, "\n".join(offenders)


def test_the_ism_function_is_never_shadowed_by_a_module():
    """``from variformer.analysis import ism`` is the function whatever was imported before."""
    import subprocess
    import sys

    code = (
        "import variformer.analysis.gene_ism, variformer.analysis.attributions\n"
        "from variformer.analysis import ism\n"
        "import inspect; print(inspect.isfunction(ism), ism.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["True", "ism"]
