"""A step's cache key: everything its result depends on, each part digested and kept.

The parts go in the record beside the key, so that a step that ran although an earlier
trial ran the same step can be explained: which function, module, package, argument, earlier
step or Python changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mitosis.core.code_digest import MODULE_LEVEL

__all__ = ["KeyParts", "explain_change"]

# Bump when what goes into a key changes, so that old and new keys never match by accident.
_SCHEME = "mitosis-step-cache/1"


@dataclass(frozen=True)
class KeyParts:
    """What a step's result depends on.

    ``modules`` maps each project module the step's code imports (transitively) to its
    digests per top-level definition (``MODULE_LEVEL`` for the rest); ``files`` names their
    files for people; ``packages`` maps the distributions they import to their versions;
    ``arguments`` maps every argument the step receives (defaults included) to its
    fingerprint; ``lineage`` holds the keys of the steps before it, in order.
    """

    function: str  # module:qualname
    function_digest: str
    python: str
    modules: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, str] = field(default_factory=dict)
    arguments: Mapping[str, str] = field(default_factory=dict)
    lineage: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The digest of every part: equal keys, equal results (for deterministic steps)."""
        canonical = json.dumps([_SCHEME, self.as_record()], sort_keys=True, ensure_ascii=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def as_record(self) -> dict[str, Any]:
        """The parts as the record keeps them (plain YAML-able values)."""
        return {
            "function": self.function,
            "function_digest": self.function_digest,
            "python": self.python,
            "modules": {name: dict(parts) for name, parts in self.modules.items()},
            "files": dict(self.files),
            "packages": dict(self.packages),
            "arguments": dict(self.arguments),
            "lineage": list(self.lineage),
        }

    @classmethod
    def from_record(cls, entry: Mapping[str, Any]) -> KeyParts:
        """The parts a record kept; raises ``KeyError`` or ``TypeError`` if it is damaged."""
        return cls(
            function=str(entry["function"]),
            function_digest=str(entry["function_digest"]),
            python=str(entry["python"]),
            modules={str(k): dict(v) for k, v in dict(entry.get("modules") or {}).items()},
            files=dict(entry.get("files") or {}),
            packages=dict(entry.get("packages") or {}),
            arguments=dict(entry.get("arguments") or {}),
            lineage=tuple(entry.get("lineage") or ()),
        )


def explain_change(before: KeyParts, now: KeyParts) -> list[str]:
    """What differs between two steps' key parts, one sentence each; empty if the keys match."""
    reasons: list[str] = []
    if before.function != now.function:
        reasons.append(f"the step now runs {now.function}, not {before.function}")
    elif before.function_digest != now.function_digest:
        reasons.append(f"the function {now.function} changed")
    reasons += _module_changes(before, now)
    reasons += _mapping_changes("package", before.packages, now.packages)
    reasons += _mapping_changes("argument", before.arguments, now.arguments, values=False)
    if before.lineage != now.lineage:
        reasons.append("a step before it changed, so its input may differ")
    if before.python != now.python:
        reasons.append(f"Python changed from {before.python} to {now.python}")
    return reasons


def _module_changes(before: KeyParts, now: KeyParts) -> list[str]:
    reasons = []
    for name in sorted({*before.modules, *now.modules}):
        where = f"{name} ({now.files.get(name) or before.files.get(name) or '?'})"
        old, new = before.modules.get(name), now.modules.get(name)
        if old is None:
            reasons.append(f"the module {where} is now imported")
        elif new is None:
            reasons.append(f"the module {where} is no longer imported")
        else:
            for part in sorted({*old, *new}):
                if old.get(part) != new.get(part):
                    what = "its module-level code" if part == MODULE_LEVEL else part
                    state = _state(old.get(part), new.get(part))
                    reasons.append(f"in the module {where}, {what} {state}")
    return reasons


def _state(old: str | None, new: str | None) -> str:
    return "is new" if old is None else "was removed" if new is None else "changed"


def _mapping_changes(
    kind: str, before: Mapping[str, str], now: Mapping[str, str], values: bool = True
) -> list[str]:
    reasons = []
    for name in sorted({*before, *now}):
        old, new = before.get(name), now.get(name)
        if old == new:
            continue
        if old is None or new is None:
            reasons.append(f"the {kind} {name} {_state(old, new)}")
        elif values:
            reasons.append(f"the {kind} {name} changed from {old} to {new}")
        else:
            reasons.append(f"the {kind} {name} has another value")
    return reasons
