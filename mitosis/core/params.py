"""Parameters as the user writes them (``-p STEP.ARG=VARIANT``, ``-e STEP.ARG=LITERAL``).

Only variant *names* and literal *source text* live here: values are resolved inside the
kernel, because papermill turns tuples, sets and bytes into strings when it injects them.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mitosis.errors import ParameterError

ParamKind = Literal["lookup", "literal"]


@dataclass(frozen=True)
class ParamOption:
    """One ``-p``/``-e`` option as typed; ``texts`` has several entries for a sweep."""

    step: str | None
    arg: str
    kind: ParamKind
    texts: tuple[str, ...]
    tracked: bool


@dataclass(frozen=True)
class ParamChoice:
    """One parameter of one trial: a single variant name or literal source."""

    step: str
    arg: str
    kind: ParamKind
    text: str
    tracked: bool

    @property
    def label(self) -> str:
        """``step.arg=text``, as in the trial's variant string."""
        return f"{self.step}.{self.arg}={self.text}"


def parse_literal(text: str) -> object:
    """Evaluate a Python literal safely, or refuse with a hint on quoting."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if _is_expression(text) and not text.strip().isidentifier():
        raise ParameterError(
            f"-e value {text!r} is code, not a Python literal, and mitosis-nb never runs code "
            "from the command line; put the object in the lookup dictionary and pick it with "
            "-p, e.g. lookup_dict = {'solver': {'lsq': LinearSolver(tol=1e-8)}} and "
            "-p solver=lsq."
        )
    raise ParameterError(
        f"-e value {text!r} is not a Python literal; "
        "use numbers, quoted strings, lists, tuples, dicts or sets; quote a string for "
        "the shell too, as in -e \"name='abc'\"."
    )


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _canonical_literal(text: str) -> str:
    """The literal's canonical source, so ``-e a=4`` and ``-e a=0x4`` name one variant."""
    try:
        return _canonical(parse_literal(text))
    except ValueError:
        raise ParameterError(
            f"-e value {text!r} is infinite or not a number, which no literal can say; put it "
            "in the step's lookup dictionary and pass its variant name with -p."
        ) from None


def _canonical(value: object) -> str:
    # repr, but with a set's members in an order of their own: repr follows the string hash,
    # which differs in every process, and the variant name must not.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(value)
    if isinstance(value, (set, frozenset)):
        members = sorted(_canonical(member) for member in value)
        return "{" + ", ".join(members) + "}" if members else "set()"
    if isinstance(value, list):
        return "[" + ", ".join(_canonical(item) for item in value) + "]"
    if isinstance(value, tuple):
        items = [_canonical(item) for item in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, dict):
        pairs = (f"{_canonical(k)}: {_canonical(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, complex) and not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise ValueError(value)
    return repr(value)


def parse_option(option: str, kind: ParamKind) -> ParamOption:
    """Parse ``[+][STEP.]ARG=VALUE``; a ``-p`` value may list variants separated by commas."""
    flag = "-p" if kind == "lookup" else "-e"
    tracked = not option.startswith("+")
    body = option if tracked else option[1:]
    name, sep, value = body.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParameterError(f"{flag} {option!r} must look like [+][STEP.]ARG=VALUE.")
    step, _, arg = name.rpartition(".")
    if not arg.isidentifier() or (step and not step.isidentifier()):
        raise ParameterError(
            f"{flag} {option!r}: {name!r} is not STEP.ARG or ARG made of Python identifiers."
        )
    if kind == "lookup":
        texts = tuple(part.strip() for part in value.split(","))
        if any(not text for text in texts):
            raise ParameterError(f"-p {option!r} has an empty variant name.")
    else:
        texts = (_canonical_literal(value),)
    return ParamOption(step or None, arg, kind, texts, tracked)


def bind_steps(options: Iterable[ParamOption], steps: Sequence[str]) -> list[ParamOption]:
    """Give every option its step: ``STEP.`` may be left out when the trial has one step."""
    bound: list[ParamOption] = []
    for option in options:
        step = option.step
        if step is None:
            if len(steps) != 1:
                raise ParameterError(
                    f"parameter {option.arg!r} needs its step, as STEP.{option.arg}=..., "
                    f"because this trial runs several steps ({', '.join(steps)})."
                )
            step = steps[0]
        elif step not in steps:
            raise ParameterError(
                f"parameter {step}.{option.arg} names step {step!r}, which this trial does "
                f"not run; it runs: {', '.join(steps)}."
            )
        bound.append(ParamOption(step, option.arg, option.kind, option.texts, option.tracked))
    return bound


def expand_grid(options: Sequence[ParamOption]) -> list[tuple[ParamChoice, ...]]:
    """The cartesian product of every option's values: one tuple of choices per trial.

    Repeating an argument (``-e a=1 -e a=4``) adds values to its sweep; giving one argument
    both as a variant and as a literal is refused, since a trial can only take one.
    """
    values: dict[tuple[str, str], list[ParamChoice]] = {}
    kinds: dict[tuple[str, str], ParamKind] = {}
    for option in options:
        assert option.step is not None, "bind_steps() first"
        key = (option.step, option.arg)
        if kinds.setdefault(key, option.kind) != option.kind:
            raise ParameterError(
                f"{option.step}.{option.arg} is given both as a variant name (-p, params=) and "
                "as a literal (-e, literals=); choose one."
            )
        bucket = values.setdefault(key, [])
        for text in option.texts:
            choice = ParamChoice(option.step, option.arg, option.kind, text, option.tracked)
            if choice not in bucket:
                bucket.append(choice)
    return [tuple(combo) for combo in itertools.product(*values.values())]


def variant_label(choices: Iterable[ParamChoice]) -> str:
    """The trial's variant identity: its tracked parameters, sorted, comma-separated."""
    return ",".join(sorted(choice.label for choice in choices if choice.tracked))
