"""Digests of Python code as code: comments, docstrings and layout do not change them.

A step's cache key (issue 17) names the code the step runs. Editing a comment or a docstring,
or reformatting, must not make a step run again; changing what the code does must. So code
is digested through its syntax tree, without docstrings, never as text. Each module is also
digested per top-level definition, so that a changed key can say which function changed.
"""

from __future__ import annotations

import ast
import hashlib
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MODULE_LEVEL",
    "LocatedModule",
    "ModuleDigest",
    "digest_definition",
    "digest_module",
    "imported_names",
    "project_closure",
]

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# What the rest of a module is listed as beside its definitions: imports, constants, code.
MODULE_LEVEL = "<module>"


@dataclass(frozen=True)
class LocatedModule:
    """A project module found on the path: its file, its text, and whether it is a package."""

    path: Path
    source: str
    is_package: bool = False


@dataclass(frozen=True)
class ModuleDigest:
    """One module's code: a digest of the whole and one per top-level definition."""

    name: str
    digest: str
    parts: dict[str, str] = field(default_factory=dict)  # qualname or MODULE_LEVEL -> digest


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, *_DEFINITIONS)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def _digest(node: ast.AST) -> str:
    dumped = ast.dump(node, annotate_fields=False, include_attributes=False)
    return "sha256:" + hashlib.sha256(dumped.encode()).hexdigest()


def digest_module(name: str, source: str) -> ModuleDigest:
    """The digest of module ``name`` whose text is ``source``.

    Raises ``SyntaxError`` for source that does not parse (it would not import either).
    """
    tree = _without_docstrings(ast.parse(source))
    assert isinstance(tree, ast.Module)
    parts: dict[str, str] = {}
    rest: list[ast.stmt] = []
    for statement in tree.body:
        if isinstance(statement, _DEFINITIONS):
            parts[statement.name] = _digest(statement)
        else:
            rest.append(statement)
    parts[MODULE_LEVEL] = _digest(ast.Module(body=rest, type_ignores=[]))
    return ModuleDigest(name, _digest(tree), parts)


def digest_definition(source: str) -> str:
    """The digest of one function or class, from its source (as ``inspect.getsource`` gives
    it: possibly indented, decorators included).

    Raises ``SyntaxError`` for source that does not parse.
    """
    tree = _without_docstrings(ast.parse(textwrap.dedent(source)))
    assert isinstance(tree, ast.Module)
    return _digest(tree.body[0] if len(tree.body) == 1 else tree)


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module name that ``source`` (module ``module``) may import, anywhere in it.

    ``from a import b`` yields both ``a`` and ``a.b``, since ``b`` may be a submodule; the
    caller keeps those that exist. Relative imports are resolved against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base is None:
                continue
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def _absolute(name: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return name
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None  # beyond the top of the package: it would not import either
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([name] if name else [])]) or None


def project_closure(
    start: Iterable[str], locate: Callable[[str], LocatedModule | None]
) -> dict[str, LocatedModule]:
    """The project modules ``start`` imports, transitively.

    ``locate`` finds a module by name, or answers None when it is not the project's (the
    standard library, an installed package) or does not exist; the walk does not enter those.
    """
    found: dict[str, LocatedModule] = {}
    waiting = list(start)
    while waiting:
        name = waiting.pop()
        if name in found:
            continue
        located = locate(name)
        if located is None:
            continue
        found[name] = located
        # Importing a.b.c runs a and a.b first: their code is part of it too.
        waiting += [name.rsplit(".", depth)[0] for depth in range(1, name.count(".") + 1)]
        waiting += sorted(imported_names(located.source, name, located.is_package))
    return found
