"""Tells, in one sentence, when the ``mitosis`` package is not mitosis-nb's own and whole.

The original mitosis (PyPI ``mitosis``) installs the same import package. Installed after
mitosis-nb (as a dependency of an investigation's own package, say), it overwrites
``mitosis/__init__.py`` and ``__main__.py`` and leaves a package of two halves, whose errors
are baffling. mitosis-nb's ``mitosis_nb_guard.pth`` imports this module at every start of the
environment's Python; it only puts a finder in front of the others, which looks at the
``mitosis`` package once, the first time something imports it, and costs nothing else.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MARKER = '__distribution__ = "mitosis-nb"'
# Files only a whole mitosis-nb has: the two the original also ships, and some of its own.
OWN_FILES = ("__init__.py", "__main__.py", "cli/__init__.py", "original_cli.py", "kernel_side.py")


def _package_folder() -> str | None:
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("mitosis")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def _owners(relative: str) -> list[str]:
    """The installed distributions, besides mitosis-nb, whose files include ``relative``."""
    from importlib.metadata import distributions

    found = []
    for dist in distributions():
        name = dist.metadata["Name"] or "?"
        if name.lower() in ("mitosis-nb", "mitosis_nb"):
            continue
        if any(str(file) == relative for file in dist.files or ()):
            found.append(f"{name} {dist.version}")
    return found


def _repair() -> str:
    """The command that puts mitosis-nb's own package back."""
    import json
    from importlib.metadata import PackageNotFoundError, distribution

    python = sys.executable
    try:
        dist = distribution("mitosis-nb")
    except PackageNotFoundError:
        return f"{python} -m pip install --force-reinstall --no-deps mitosis-nb"
    source = f"mitosis-nb=={dist.version}"
    text = dist.read_text("direct_url.json")
    if text:
        url = json.loads(text).get("url", "")
        source = url.removeprefix("file://") if url.startswith("file://") else url or source
    return f"{python} -m pip install --force-reinstall --no-deps {source}"


def problem() -> str | None:
    """Why the ``mitosis`` package on the path is not mitosis-nb's whole package, or None."""
    folder = _package_folder()
    if folder is None:
        return None  # not installed here (a source checkout on PYTHONPATH): nothing to guard
    missing = [
        name for name in OWN_FILES if not os.path.isfile(os.path.join(folder, *name.split("/")))
    ]
    try:
        with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as init:
            ours = MARKER in init.read()
    except (OSError, UnicodeDecodeError):
        ours = False
    if ours and not missing:
        return None
    others = _owners("mitosis/__init__.py")
    uninstall = "".join(f"{sys.executable} -m pip uninstall -y {o.split()[0]} && " for o in others)
    if others:
        what = f"the package 'mitosis' in {folder} was overwritten by {', '.join(others)}"
    else:
        what = f"the package 'mitosis' in {folder} is not mitosis-nb's whole package"
        what += f" (missing {', '.join(missing)})" if missing else ""
    return (
        f"{what}, which installs the same import package (the original mitosis, perhaps as a "
        f"dependency of your own package); repair it with: {uninstall}{_repair()}"
    )


def _in_a_command() -> bool:
    # A console script (`mitosis`, `mitosis-nb`) or `python -m mitosis` being started.
    started = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return started in ("mitosis", "mitosis-nb", "-m")


class _Guard:
    """A meta path finder that checks the ``mitosis`` package the first time it is imported,
    then steps aside for the finders that import it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name != "mitosis":
            return None
        uninstall()
        found = problem()
        if found is None:
            return None
        if _in_a_command():
            sys.stderr.write(f"mitosis-nb: {found}\n")
            raise SystemExit(2)
        raise ImportError(found)


_GUARD = _Guard()


def install() -> None:
    """Put the guard in front of the import system (from ``mitosis_nb_guard.pth``)."""
    if _GUARD not in sys.meta_path:
        sys.meta_path.insert(0, _GUARD)


def uninstall() -> None:
    """Take the guard out again: the package is looked at once per process."""
    if _GUARD in sys.meta_path:
        sys.meta_path.remove(_GUARD)
