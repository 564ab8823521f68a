"""Steps as registered under ``[tool.mitosis.steps]``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OBJECT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_object_path(text: str) -> bool:
    """Whether ``text`` looks like ``package.module:qualname``."""
    return bool(_OBJECT_PATH.match(text))


@dataclass(frozen=True)
class StepConfig:
    """One registered step: a local alias for a callable and its lookup dictionary."""

    name: str
    run: str
    lookup: str | None
    cache: bool = True  # false in its step table: it draws fresh randomness or reads the world

    @property
    def module(self) -> str:
        """The module that defines the callable."""
        return self.run.partition(":")[0]

    @property
    def qualname(self) -> str:
        """The callable's qualified name inside its module."""
        return self.run.partition(":")[2]


def load_object(path: str) -> object:
    """Import ``module:qualname`` and return the object (errors propagate unchanged)."""
    import importlib

    module_name, _, qualname = path.partition(":")
    target: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def early_import_code(modules: Sequence[str]) -> str:
    """Code for the kernel that will check a request to run as soon as it is up: import the
    steps' ``modules`` (and mitosis's side of the check), binding no name in the trial's
    namespace. A module that fails is not imported again: the check reports that failure."""
    return (
        "try:\n"
        "    __import__('mitosis.kernel_side')\n"
        "    __import__('mitosis.adapters.usercode', fromlist=['import_early'])"
        f".import_early({list(modules)!r})\n"
        "except BaseException:\n"
        "    pass\n"
    )


@dataclass(frozen=True)
class LookupTables:
    """A lookup dictionary as a trial reads it: the tables of variants, by argument name,
    and the entries that are not tables (a module namespace holds modules, functions and
    constants beside its tables), by name with their type's name."""

    tables: dict[str, Mapping[Any, Any]]
    others: dict[str, str]


def lookup_tables(lookup: Mapping[Any, Any]) -> LookupTables:
    """Split ``lookup`` into its tables and the rest, as the original mitosis reads it (only
    ``lookup[arg][variant]``): ``lookup_dict = vars(config)`` works. Private names
    (a leading ``_``, ``__builtins__`` among them) are left out altogether."""
    tables: dict[str, Mapping[Any, Any]] = {}
    others: dict[str, str] = {}
    for name, entry in lookup.items():
        if not isinstance(name, str) or name.startswith("_"):
            continue
        if isinstance(entry, Mapping):
            tables[name] = entry
        else:
            others[name] = type(entry).__name__
    return LookupTables(tables, others)
