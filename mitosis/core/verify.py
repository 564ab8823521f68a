"""Did a re-run reproduce a trial? The pure logic behind ``mitosis-nb reproduce``.

A record holds everything needed to ask for the same trial again (step names, variant
names, literal source text, which parameters were untracked, the debug flag) and the
results to check the new trial against (``main`` and every metric).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mitosis.core.params import ParamOption
from mitosis.errors import ParameterError, RecordError

DEFAULT_RTOL = 1e-9
# A memory address in a repr (`<function lorenz at 0x7fab12345678>`): it differs in every
# process, and says nothing about the result.
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{4,}\b")


@dataclass(frozen=True)
class RecordedRequest:
    """What a record says was asked for: enough to ask for it again."""

    steps: tuple[str, ...]
    options: tuple[ParamOption, ...]
    debug: bool
    commit: str
    kernel: str | None
    # A template given with --template: relative to the investigation's root, or absolute.
    template: str | None = None


@dataclass(frozen=True)
class RecordedSource:
    """A module a step came from, as recorded: its repository, commit and file in it."""

    repo: str
    commit: str
    file: str
    module: str

    @property
    def import_root(self) -> str | None:
        """The folder, relative to the repository, that ``sys.path`` needs to import the module.

        ``src/pkg/mod.py`` defining ``pkg.mod`` gives ``src``; None if they do not match.
        """
        path = PurePosixPath(self.file)
        parts = self.module.split(".")
        inner = parts if path.name == "__init__.py" else parts[:-1]
        folders = path.parent.parts
        if (
            path.stem not in (parts[-1], "__init__")
            or list(folders[len(folders) - len(inner) :]) != inner
        ):
            return None
        return PurePosixPath(*folders[: len(folders) - len(inner)]).as_posix()


@dataclass(frozen=True)
class Mismatch:
    """One result that differs between the original trial and its re-run."""

    name: str
    original: Any
    new: Any


@dataclass(frozen=True)
class Verdict:
    """Whether the re-run reproduced the original, and what differs."""

    original: str
    trial: str
    rtol: float
    reproduced: bool
    mismatches: tuple[Mismatch, ...]
    compared: tuple[str, ...]
    packages: tuple[Mismatch, ...]
    ignored: tuple[str, ...] = ()  # left out on request (``--ignore``)
    addresses: tuple[str, ...] = ()  # equal once memory addresses are set aside

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, for ``reproduce --json``."""
        return {
            "original": self.original,
            "trial": self.trial,
            "reproduced": self.reproduced,
            "rtol": self.rtol,
            "compared": list(self.compared),
            "differences": {m.name: [m.original, m.new] for m in self.mismatches},
            "packages": {m.name: [m.original, m.new] for m in self.packages},
            "ignored": list(self.ignored),
            "addresses_ignored": list(self.addresses),
        }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _option(step: str, arg: str, param: Mapping[str, Any], trial: str) -> ParamOption:
    kind = param.get("kind")
    text = param.get("variant") if kind == "lookup" else param.get("source")
    if kind not in ("lookup", "literal") or not isinstance(text, str):
        raise RecordError(
            f"trial {trial} records parameter {step}.{arg} without its variant name or literal "
            "source, so it cannot be asked for again; re-run it with mitosis-nb run instead."
        )
    return ParamOption(step, arg, kind, (text,), bool(param.get("tracked", True)))


def recorded_request(record: Mapping[str, Any]) -> RecordedRequest:
    """The steps, parameters, debug flag, commit and kernel a record was run with."""
    trial = str(record.get("id"))
    steps = record.get("steps")
    commit = _mapping(record.get("git")).get("commit")
    if not isinstance(steps, list) or not steps or not isinstance(commit, str):
        raise RecordError(f"trial {trial} records no steps or no commit; it cannot be re-run.")
    names: list[str] = []
    options: list[ParamOption] = []
    for step in map(_mapping, steps):
        name = str(step.get("name"))
        names.append(name)
        for arg, param in _mapping(step.get("params")).items():
            options.append(_option(name, str(arg), _mapping(param), trial))
    kernel = _mapping(record.get("environment")).get("kernel")
    template = record.get("template")
    return RecordedRequest(
        steps=tuple(names),
        options=tuple(options),
        debug=bool(record.get("debug")),
        commit=commit,
        kernel=kernel if isinstance(kernel, str) else None,
        template=template if isinstance(template, str) else None,
    )


def recorded_sources(record: Mapping[str, Any]) -> tuple[RecordedSource, ...]:
    """Every module a record traces to a git repository, once each."""
    found: list[RecordedSource] = []
    steps = record.get("steps")
    for step in map(_mapping, steps if isinstance(steps, list) else []):
        source = _mapping(step.get("source"))
        for part in ("run", "lookup"):
            entry, target = _mapping(source.get(part)), step.get(part)
            repo, commit, file = entry.get("repo"), entry.get("commit"), entry.get("file")
            if all(isinstance(field, str) for field in (repo, commit, file, target)):
                module = str(target).partition(":")[0]
                traced = RecordedSource(str(repo), str(commit), str(file), module)
                if traced not in found:
                    found.append(traced)
    return tuple(found)


def changed_sources(record: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The ``(repository, file)`` of each step module that was modified when the trial ran."""
    found: list[tuple[str, str]] = []
    steps = record.get("steps")
    for step in map(_mapping, steps if isinstance(steps, list) else []):
        source = _mapping(step.get("source"))
        for part in ("run", "lookup"):
            entry = _mapping(source.get(part))
            if entry.get("dirty") and isinstance(entry.get("repo"), str):
                pair = (str(entry["repo"]), str(entry.get("file")))
                if pair not in found:
                    found.append(pair)
    return tuple(found)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same_result(original: Any, new: Any, rtol: float) -> bool:
    """Equal, with numbers equal within the relative tolerance ``rtol`` (NaN equals NaN)."""
    if _is_number(original) and _is_number(new):
        if math.isnan(original) and math.isnan(new):
            return True
        return math.isclose(original, new, rel_tol=rtol, abs_tol=0.0)
    if isinstance(original, (list, tuple)) and isinstance(new, (list, tuple)):
        return len(original) == len(new) and all(
            same_result(a, b, rtol) for a, b in zip(original, new, strict=True)
        )
    if isinstance(original, Mapping) and isinstance(new, Mapping):
        return set(original) == set(new) and all(
            same_result(original[key], new[key], rtol) for key in original
        )
    return bool(original == new)


def _without_addresses(value: Any) -> Any:
    """``value`` with every memory address in its text (``0x7fab…``) replaced by ``0x…``."""
    if isinstance(value, str):
        return _ADDRESS.sub("0x…", value)
    if isinstance(value, (list, tuple)):
        return [_without_addresses(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _without_addresses(item) for key, item in value.items()}
    return value


def _results(record: Mapping[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"status": record.get("status"), "main": record.get("main")}
    for name, value in _mapping(record.get("metrics")).items():
        results[f"metrics.{name}"] = value
    # The last step's results are the trial's own, above; the steps before it count too.
    steps = record.get("steps")
    for step in steps[:-1] if isinstance(steps, list) else []:
        step = _mapping(step)
        if "main" in step:
            results[f"{step.get('name')}.main"] = step["main"]
        for name, value in _mapping(step.get("metrics")).items():
            results[f"{step.get('name')}.metrics.{name}"] = value
    return results


def _changed_packages(original: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Mismatch, ...]:
    """Packages whose version differs between two records (``None``: not installed)."""
    a = _mapping(_mapping(original.get("environment")).get("packages"))
    b = _mapping(_mapping(new.get("environment")).get("packages"))
    return tuple(
        Mismatch(name, a.get(name), b.get(name))
        for name in sorted(set(a) | set(b), key=str.lower)
        if a.get(name) != b.get(name)
    )


def _compared_fields(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The names ``verify`` compares for a record: ``main``, ``metrics.NAME``, and for each
    step before the last, ``STEP.main`` and ``STEP.metrics.NAME``."""
    return tuple(name for name in _results(record) if name != "status")


def check_ignored(record: Mapping[str, Any], ignore: Sequence[str]) -> None:
    """Refuse an ``--ignore`` that names no compared field (a typo would ignore nothing)."""
    fields = _compared_fields(record)
    for name in ignore:
        if not any(_covers(name, field) for field in fields):
            raise ParameterError(
                f"--ignore {name!r} names no result of trial {record.get('id')}; it has "
                f"{', '.join(fields) or 'none'} (a prefix such as 'metrics' covers all under it)."
            )


def _covers(ignored: str, field: str) -> bool:
    return field == ignored or field.startswith(f"{ignored}.")


def verify(
    original: Mapping[str, Any],
    new: Mapping[str, Any],
    rtol: float = DEFAULT_RTOL,
    ignore: Sequence[str] = (),
) -> Verdict:
    """Compare the re-run ``new`` with ``original``: status, ``main`` and every metric.

    Fields named in ``ignore`` (or under them: ``metrics`` covers ``metrics.runtime``) are
    left out; text that differs only in memory addresses counts as equal, and is listed.
    """
    expected, found = _results(original), _results(new)
    names = tuple(sorted(set(expected) | set(found), key=lambda n: (n != "status", n != "main", n)))
    ignored = tuple(n for n in names if n != "status" and any(_covers(i, n) for i in ignore))
    compared = tuple(name for name in names if name not in ignored)
    mismatches: list[Mismatch] = []
    addresses: list[str] = []
    for name in compared:
        a, b = expected.get(name), found.get(name)
        if (name in expected) == (name in found) and same_result(a, b, rtol):
            continue
        if (name in expected) == (name in found) and same_result(
            _without_addresses(a), _without_addresses(b), rtol
        ):
            addresses.append(name)
            continue
        mismatches.append(Mismatch(name, a, b))
    return Verdict(
        original=str(original.get("id")),
        trial=str(new.get("id")),
        rtol=rtol,
        reproduced=not mismatches and new.get("status") == "succeeded",
        mismatches=tuple(mismatches),
        compared=compared,
        packages=_changed_packages(original, new),
        ignored=ignored,
        addresses=tuple(addresses),
    )
