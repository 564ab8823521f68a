"""What differs between two trial records: the pure logic behind ``mitosis-nb compare``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mitosis.core.verify import same_result

# The order sections are shown in: what the trial was, what it gave, where and how it ran.
SECTIONS = (
    "trial",
    "params",
    "main",
    "metrics",
    "commit",
    "sources",
    "submodules",
    "patch",
    "environment",
    "packages",
    "vcs_packages",
    "variables",
)


@dataclass(frozen=True)
class Difference:
    """One field that differs; ``None`` on a side means the field is absent there."""

    section: str
    name: str
    a: Any
    b: Any


@dataclass(frozen=True)
class Comparison:
    """Everything that differs between trials ``a`` and ``b``, in ``SECTIONS`` order."""

    a: str
    b: str
    differences: tuple[Difference, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"a": id, "b": id, "differences": {section: {name: [a, b]}}}``, for ``--json``."""
        sections: dict[str, dict[str, list[Any]]] = {}
        for difference in self.differences:
            sections.setdefault(difference.section, {})[difference.name] = [
                difference.a,
                difference.b,
            ]
        return {"a": self.a, "b": self.b, "differences": sections}


# Variables that say where the shell has been, not what the trial ran with: two trials of
# one variant differ in them for no reason worth a line of ``compare``.
_SHELL_STATE = frozenset({"OLDPWD", "SHLVL", "_"})


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _param_text(param: Mapping[str, Any]) -> str:
    untracked = "" if param.get("tracked", True) else " (untracked)"
    if param.get("kind") == "lookup":
        return f"{param.get('variant')} = {param.get('value')}{untracked}"
    return f"{param.get('source', param.get('value'))}{untracked}"


def _params(record: Mapping[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    steps = record.get("steps")
    for step in steps if isinstance(steps, list) else []:
        step = _mapping(step)
        for arg, param in _mapping(step.get("params")).items():
            params[f"{step.get('name')}.{arg}"] = _param_text(_mapping(param))
        for arg, value in _mapping(step.get("defaults")).items():
            params[f"{step.get('name')}.{arg}"] = f"{value!r} (default)"
    return params


def _source_text(entry: Mapping[str, Any]) -> str | None:
    if not entry:
        return None
    if not entry.get("repo"):
        return f"{entry.get('file')} (not in a git repository)"
    dirty = " (dirty)" if entry.get("dirty") else ""
    return f"{entry.get('file')} @ {entry.get('commit')} in {entry.get('repo')}{dirty}"


def _sources(record: Mapping[str, Any]) -> dict[str, str | None]:
    """Where each step's callable and lookup dictionary came from: file, commit, repository."""
    sources: dict[str, str | None] = {}
    steps = record.get("steps")
    for step in steps if isinstance(steps, list) else []:
        step = _mapping(step)
        source = _mapping(step.get("source"))
        for part in ("run", "lookup"):
            if part in source:
                sources[f"{step.get('name')}.{part}"] = _source_text(_mapping(source[part]))
    return sources


def _vcs_packages(environment: Mapping[str, Any]) -> dict[str, str]:
    packages = _mapping(environment.get("vcs_packages"))
    return {
        str(name): f"{_mapping(origin).get('url')} @ {_mapping(origin).get('commit')}"
        for name, origin in packages.items()
    }


def _sections(record: Mapping[str, Any], patch: str | None) -> dict[str, Mapping[str, Any]]:
    git = _mapping(record.get("git"))
    environment = _mapping(record.get("environment"))
    return {
        "trial": {
            key: record.get(key)
            for key in ("experiment", "variant", "status", "debug", "note", "reproduces")
        },
        "params": _params(record),
        "main": {"main": record.get("main")},
        "metrics": _mapping(record.get("metrics")),
        "commit": {key: git.get(key) for key in ("commit", "branch", "dirty")},
        "sources": _sources(record),
        "submodules": _mapping(git.get("submodules")),
        "patch": {"uncommitted.patch": patch},
        "environment": {
            key: environment.get(key) for key in ("python", "platform", "hostname", "kernel")
        },
        "packages": _mapping(environment.get("packages")),
        "vcs_packages": _vcs_packages(environment),
        "variables": {
            name: value
            for name, value in _mapping(environment.get("variables")).items()
            if name not in _SHELL_STATE
        },
    }


def _differences(section: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> Iterator[Difference]:
    for name in sorted(set(a) | set(b), key=str):
        if not same_result(a.get(name), b.get(name), rtol=0.0) or (name in a) != (name in b):
            yield Difference(section, str(name), a.get(name), b.get(name))


def compare_records(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    patch_a: str | None = None,
    patch_b: str | None = None,
) -> Comparison:
    """Only what differs between two records (and their ``uncommitted.patch`` texts)."""
    sections_a, sections_b = _sections(a, patch_a), _sections(b, patch_b)
    differences = tuple(
        difference
        for section in SECTIONS
        for difference in _differences(section, sections_a[section], sections_b[section])
    )
    return Comparison(str(a.get("id")), str(b.get("id")), differences)
