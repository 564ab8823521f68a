"""The architecture, checked: dependencies point one way (core <- adapters <- pipeline <- cli)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mitosis"


def mitosis_imports(path: Path) -> set[str]:
    """Every ``mitosis.*`` module a file imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mitosis"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mitosis"))
    return found


def modules_in(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("path", modules_in("core"), ids=lambda p: p.name)
def test_the_core_imports_only_the_core(path: Path) -> None:
    allowed = ("mitosis.core", "mitosis.errors")
    assert all(name.startswith(allowed) for name in mitosis_imports(path)), mitosis_imports(path)


@pytest.mark.parametrize("path", modules_in("adapters"), ids=lambda p: p.name)
def test_adapters_import_no_other_adapter_and_nothing_above(path: Path) -> None:
    allowed = ("mitosis.core", "mitosis.errors", "mitosis.atomic", "mitosis.adapters")
    imports = {name for name in mitosis_imports(path) if name != "mitosis"}
    assert all(name.startswith(allowed) for name in imports), imports
    others = {name for name in imports if name.startswith("mitosis.adapters.")}
    assert others <= {f"mitosis.adapters.{path.stem}"}, others


def test_the_kernel_side_stays_light() -> None:
    allowed = ("mitosis.core", "mitosis.atomic", "mitosis.errors", "mitosis.adapters.usercode")
    imports = mitosis_imports(PACKAGE / "kernel_side.py")
    assert all(name.startswith(allowed) for name in imports), imports


def test_only_the_cli_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in {"cli.py", "__main__.py", "views.py", "progress.py"}:
            continue
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path} prints; printing belongs to the command line"
