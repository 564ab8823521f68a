"""What `lint-imports` (the import-linter contracts in pyproject.toml) cannot check.

The layers themselves (core <- adapters <- the trial's life <- the command line), the
independence of the adapters and the light kernel side are import-linter contracts, run by
.ci/run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mitosis"
PRINTERS = {"views.py", "progress.py", "__main__.py"}  # and the command line, mitosis/cli/


def test_only_the_cli_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in PRINTERS or path.parent.name == "cli":
            continue
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path} prints; printing belongs to the command line"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_only_the_standard_library(path: Path) -> None:
    outside = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
            else []
        )
        for name in names:
            top = name.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in ("mitosis", "__future__"):
                outside.add(name)
    assert not outside, f"{path.name} imports {sorted(outside)}; the core is the standard library's"


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_and_functions_stay_small_enough_to_read(path: Path) -> None:
    # ruff's C901 bounds their complexity; this bounds their length.
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path} is two modules"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: {', '.join(long)} should each be two functions"
