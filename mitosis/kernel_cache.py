"""The kernel's half of the step cache: what a step's result depends on, read where the
step's code is imported.

Only the kernel can know it: it is the process that imports the user's code. The project's
modules are those found inside the repositories the steps come from; everything else a
module imports counts by its distribution's version.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from mitosis.core.cache_key import KeyParts
from mitosis.core.code_digest import (
    LocatedModule,
    digest_definition,
    digest_module,
    imported_names,
    project_closure,
)
from mitosis.core.fingerprint import fingerprint
from mitosis.errors import FingerprintError

__all__ = ["CacheUnavailable", "argument_digests", "repository_of", "step_key_parts"]


class CacheUnavailable(Exception):
    """The step's code cannot be read (no source file): it always runs."""


def step_key_parts(
    function: Callable[..., object],
    arguments: Mapping[str, str],
    lineage: Sequence[str],
    roots: Sequence[Path],
) -> KeyParts:
    """The key parts of a step that calls ``function`` with arguments whose fingerprints are
    ``arguments`` (defaults included), after steps whose keys are ``lineage``.

    ``roots`` are the repositories the steps come from. Raises ``CacheUnavailable``.
    """
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError) as error:
        raise CacheUnavailable(f"the source of {function!r} cannot be read ({error})") from None
    module = getattr(function, "__module__", None) or "__main__"
    resolved = tuple(root.resolve() for root in roots)
    found = project_closure([module], lambda name: _locate(name, resolved))
    packages: dict[str, str] = {}
    for name in _outside_names(module, found):
        packages.update(_distribution_of(name))
    return KeyParts(
        function=f"{module}:{getattr(function, '__qualname__', '?')}",
        function_digest=digest_definition(source),
        python=platform.python_version(),
        modules={name: digest_module(name, m.source).parts for name, m in found.items()},
        files={name: _shown(m.path, resolved) for name, m in found.items()},
        packages=packages,
        arguments=dict(arguments),
        lineage=tuple(lineage),
    )


def argument_digests(arguments: Mapping[str, object]) -> dict[str, str]:
    """Each argument's fingerprint; raises ``CacheUnavailable`` for a value without one."""
    digests = {}
    for name, value in arguments.items():
        try:
            digests[name] = fingerprint(value).digest
        except FingerprintError as error:
            raise CacheUnavailable(
                f"its argument {name!r} has no stable identity: {error}"
            ) from None
    return digests


def repository_of(file: Path) -> Path:
    """The git repository holding ``file`` (its folder if it is in none): the project whose
    modules count as the step's code."""
    for folder in file.parents:
        if (folder / ".git").exists():
            return folder
    return file.parent


def _locate(name: str, roots: tuple[Path, ...]) -> LocatedModule | None:
    """The module's file if it lies in one of ``roots``; never imports a package that is
    not the project's (finding ``numpy.linalg`` would import numpy)."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or _outside(_origin(top), roots):
        return None
    origin = _origin(name)
    if origin is None or origin.suffix != ".py" or _outside(origin, roots):
        return None
    return LocatedModule(origin, origin.read_text(encoding="utf-8"), origin.name == "__init__.py")


def _origin(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):  # a.b where a has no b, a broken a
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    return Path(spec.origin).resolve()


def _outside(path: Path | None, roots: tuple[Path, ...]) -> bool:
    return path is None or not any(path.is_relative_to(root) for root in roots)


def _shown(path: Path, roots: tuple[Path, ...]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def _outside_names(start: str, project: Mapping[str, LocatedModule]) -> set[str]:
    """The top-level names the project's modules import that are not the project's."""
    names = {start.partition(".")[0]} if start not in project else set()
    for name, module in project.items():
        for imported in imported_names(module.source, name, module.is_package):
            top = imported.partition(".")[0]
            if (
                imported not in project
                and top not in project
                and top not in sys.stdlib_module_names
            ):
                names.add(top)
    return names


@lru_cache(maxsize=1)
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distribution_of(top: str) -> dict[str, str]:
    """The installed distributions that provide the top-level module ``top``, by version."""
    same_name = _named_alike(top)
    if same_name is not None:
        return same_name
    found = {}
    for distribution in _distributions().get(top, []):  # a scan of every installed package
        try:
            found[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _named_alike(top: str) -> dict[str, str] | None:
    """The distribution named as the module, if it provides it (numpy, scipy, matplotlib):
    found without reading every installed package's metadata, which takes a tenth of a
    second in a trial's kernel."""
    try:
        distribution = importlib.metadata.distribution(top)
    except importlib.metadata.PackageNotFoundError:
        return None
    listed = distribution.read_text("top_level.txt")
    provides = (
        top in listed.split()
        if listed is not None
        else any(
            file.parts and file.parts[0] in (top, f"{top}.py") for file in distribution.files or ()
        )
    )
    return {distribution.metadata["Name"]: distribution.version} if provides else None
