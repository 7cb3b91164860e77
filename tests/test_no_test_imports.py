"""Tests never import other test modules: shared helpers live in ``tests/harness/``.

A static check (``ast``, nothing is imported): no Python file of the repository imports a
``tests/test_*.py`` module, by absolute (``tests.test_x``), relative (``.test_x``) or bare
(``test_x``, via ``sys.path``) name.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_MODULES = {p.stem for p in (REPO / "tests").glob("test_*.py")}
SKIP_DIRS = {".git", ".lab", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}


def _python_files() -> list[Path]:
    files = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        files.append(path)
    return files


def test_imports(source: str, filename: str = "<string>") -> list[str]:
    """The test modules a source imports (``tests.test_x`` or ``.test_x`` or ``test_x``)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] if base else []
            if base in ("tests", "") or (node.level and not base):
                names += [alias.name for alias in node.names]  # from tests import test_x
        for name in names:
            parts = name.split(".")
            if parts[-1] in TEST_MODULES or any(p in TEST_MODULES for p in parts):
                found.append(f"{filename}:{node.lineno}: imports {name}")
    return found


test_imports.__test__ = False  # a helper, not a test


def test_the_checker_sees_every_form_of_import() -> None:
    a_test = next(iter(sorted(TEST_MODULES)))
    for source in (f"import tests.{a_test}\n", f"from tests.{a_test} import x\n",
                   f"from tests import {a_test}\n", f"from .{a_test} import x\n",
                   f"from . import {a_test}\n", f"import {a_test}\n"):
        assert test_imports(source), source
    assert not test_imports("from tests.harness.openwrt_host import OpenWrtHost\n")
    assert not test_imports("import tests.lab.macs\nfrom tests import harness\n")


def test_no_module_imports_a_test_module() -> None:
    files = _python_files()
    assert len(files) > 50  # the repository, not an empty directory
    offenders = [line for path in files
                 for line in test_imports(path.read_text(encoding="utf-8"),
                                          str(path.relative_to(REPO)))]
    assert not offenders, "move shared helpers to tests/harness/:\n" + "\n".join(offenders)
