"""Steps as registered under ``[tool.mitosis.steps]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
