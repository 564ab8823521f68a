"""The investigation's shared vocabulary: its steps, their arguments and variant names.

What ``mitosis-nb experiments`` shows: for every registered step, the arguments of its
callable (with defaults), the variant names its lookup dictionary offers for each, and,
where the trials folder's registry has locked a variant, the locked value and its trial.
Reads only; importing the user's modules is its one side effect.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mitosis.adapters import registry, usercode
from mitosis.adapters.config import InvestigationConfig
from mitosis.core.fingerprint import fingerprint
from mitosis.core.record import summarize_value
from mitosis.core.steps import StepConfig
from mitosis.errors import FingerprintError, MitosisError

_ARGUMENT_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


@dataclass(frozen=True)
class VariantEntry:
    """One variant name of one argument."""

    name: str
    value: str | None
    """The lookup dictionary's value, rendered; None when the name is no longer in it."""
    locked: str | None
    """The value the registry locked this name to, rendered; None when never claimed."""
    trial: str | None
    """The trial that claimed the name."""
    changed: bool
    """The lookup's value differs from the locked one: a trial using it would be refused."""


@dataclass(frozen=True)
class ArgumentEntry:
    """One argument of a step's callable, or of its lookup dictionary."""

    name: str
    default: str | None
    """The default, rendered; None when the argument has none."""
    in_signature: bool
    variants: tuple[VariantEntry, ...]


@dataclass(frozen=True)
class StepEntry:
    """One registered step and everything it can be asked for."""

    name: str
    run: str
    lookup: str | None
    arguments: tuple[ArgumentEntry, ...]
    problem: str | None
    """Why the callable or lookup dictionary could not be read, if it could not."""

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return asdict(self)


def _render(value: object) -> tuple[str, str | None]:
    """The value's rendering and fingerprint digest (None if it has no stable identity)."""
    try:
        found = fingerprint(value)
    except FingerprintError:
        return str(summarize_value(value, 120)), None
    return found.rendering, found.digest


_Signature = list[tuple[str, str | None]]  # (argument name, rendered default or None)


def _signature(function: Callable[..., Any]) -> _Signature:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return []
    return [
        (p.name, None if p.default is p.empty else _render(p.default)[0])
        for p in parameters
        if p.kind in _ARGUMENT_KINDS
    ]


def _variants(
    step: str,
    arg: str,
    offered: Mapping[str, Any],
    claims: Mapping[tuple[str, str, str], registry.Claim],
) -> tuple[VariantEntry, ...]:
    entries = []
    for name, value in offered.items():
        rendering, digest = _render(value)
        locked = claims.get((step, arg, str(name)))
        entries.append(
            VariantEntry(
                name=str(name),
                value=rendering,
                locked=locked.rendering if locked else None,
                trial=locked.trial if locked else None,
                changed=locked is not None and digest is not None and locked.fingerprint != digest,
            )
        )
    # Names claimed once but since removed from the lookup stay taken: show them too.
    gone = sorted(v for (s, a, v) in claims if (s, a) == (step, arg) and v not in offered)
    for name in gone:
        locked = claims[(step, arg, name)]
        entries.append(VariantEntry(name, None, locked.rendering, locked.trial, False))
    return tuple(entries)


def _read_step(step: StepConfig) -> tuple[_Signature, Mapping[str, Any], str | None]:
    """The callable's arguments, the lookup dictionary, and a problem reading either."""
    try:
        function = usercode.import_callable(step.run)
        lookup: Mapping[str, Any] = usercode.import_lookup(step.lookup).tables
    except MitosisError as error:
        return [], {}, error.message
    # A module namespace serves many steps: each lists only the tables its callable takes.
    taken, any_keyword = usercode.accepted_arguments(function, False)
    if not any_keyword:
        lookup = {name: table for name, table in lookup.items() if name in taken}
    return _signature(function), lookup, None


def _describe_step(
    step: StepConfig, claims: Mapping[tuple[str, str, str], registry.Claim]
) -> StepEntry:
    """One step's arguments and variants, with the registry's ``claims`` of them."""
    signature, lookup, problem = _read_step(step)
    names = [name for name, _ in signature]
    defaults = dict(signature)
    claimed_args = sorted(a for (s, a, _) in claims if s == step.name)
    for name in [*map(str, lookup), *claimed_args]:
        if name not in names:
            names.append(name)
    arguments = tuple(
        ArgumentEntry(
            name=name,
            default=defaults.get(name),
            in_signature=name in defaults,
            variants=_variants(step.name, name, lookup.get(name, {}), claims),
        )
        for name in names
    )
    return StepEntry(step.name, step.run, step.lookup, arguments, problem)


def describe_investigation(
    config: InvestigationConfig, trials_folder: Path | None = None
) -> list[StepEntry]:
    """Every registered step of ``config``, with the locks in ``trials_folder``'s registry."""
    usercode.ensure_importable(config.root)
    folder = trials_folder or config.trials_folder
    claims = {(c.step, c.arg, c.variant): c for c in registry.list_claims(folder)}
    return [_describe_step(step, claims) for step in config.steps.values()]


def _variant_line(variant: VariantEntry) -> str:
    if variant.value is None:
        gone = "no longer in the lookup"
        return f"    {variant.name}  locked to {variant.locked} by {variant.trial}; {gone}"
    line = f"    {variant.name} = {variant.value}"
    if variant.changed:
        return f"{line}  CHANGED: locked to {variant.locked} by {variant.trial}; trials refused"
    return f"{line}  locked by {variant.trial}" if variant.trial else line


def describe_as_text(entries: list[StepEntry]) -> str:
    """The vocabulary as an indented listing, one step after another."""
    lines = []
    for step in entries:
        lookup = f"  lookup {step.lookup}" if step.lookup else ""
        lines.append(f"{step.name}: {step.run}{lookup}")
        if step.problem:
            lines.append(f"  cannot read it: {step.problem}")
        for argument in step.arguments:
            default = "" if argument.default is None else f" (default {argument.default})"
            lines.append(f"  {argument.name}{default}")
            lines += [_variant_line(variant) for variant in argument.variants]
    return "\n".join(lines)
