"""What the trial's kernel learns from the user's code before the trial runs.

The runner never imports the steps' modules itself: the kernel that will run the trial
imports them (it needs them anyway), and answers with these facts. The runner checks the
request against them and locks the variants in; then the same kernel runs the notebook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mitosis.core.fingerprint import fingerprint
from mitosis.core.record import summarize_value
from mitosis.errors import FingerprintError


@dataclass(frozen=True)
class StepQuestion:
    """What the runner asks the kernel about one step's code: its callable (a later step's
    gets the data before it first, ``skip_first``) and lookup dictionary, and the variants
    whose values it needs, by argument."""

    name: str
    run: str
    lookup: str | None
    skip_first: bool
    wanted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def questions_to_json(questions: Sequence[StepQuestion]) -> str:
    """The runner's questions as JSON text, to cross into the kernel."""
    return json.dumps(
        [
            {
                "name": question.name,
                "run": question.run,
                "lookup": question.lookup,
                "skip_first": question.skip_first,
                "wanted": {arg: list(names) for arg, names in question.wanted.items()},
            }
            for question in questions
        ]
    )


def questions_from_json(text: str) -> tuple[StepQuestion, ...]:
    """Read the runner's questions back in the kernel (the inverse of ``questions_to_json``)."""
    return tuple(
        StepQuestion(
            name=entry["name"],
            run=entry["run"],
            lookup=entry["lookup"],
            skip_first=bool(entry["skip_first"]),
            wanted={str(arg): tuple(names) for arg, names in entry["wanted"].items()},
        )
        for entry in json.loads(text)
    )


@dataclass(frozen=True)
class ValueFacts:
    """One variant's value: its fingerprint, or why it has none, and how it reads."""

    fingerprint: str | None
    rendering: str
    problem: str | None = None


def value_facts(value: Any) -> ValueFacts:
    """``value``'s fingerprint and rendering, or why it cannot be fingerprinted."""
    try:
        found = fingerprint(value)
    except FingerprintError as error:
        return ValueFacts(None, summarize_value(value, 120), error.message)
    return ValueFacts(found.digest, found.rendering)


@dataclass(frozen=True)
class StepFacts:
    """One step's callable and lookup dictionary, as imported in the kernel.

    ``problem`` says why they could not be imported; everything else is then empty.
    ``values`` holds only the variants the request names, by argument and variant name.
    """

    problem: str | None = None
    arguments: tuple[str, ...] = ()
    any_keyword: bool = False
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, ValueFacts]] = field(default_factory=dict)
    run_file: str | None = None
    lookup_file: str | None = None
    required: tuple[str, ...] = ()  # the callable's parameters without a default
    takes_input: bool = True  # a later step's callable can take the data before it
    not_tables: dict[str, str] = field(default_factory=dict)  # lookup entries by type name

    def accepts(self, argument: str) -> bool:
        """Whether the step's callable takes ``argument`` as a keyword."""
        return self.any_keyword or argument in self.arguments


@dataclass(frozen=True)
class InterpreterFacts:
    """The Python a named kernel runs, which need not be the runner's own."""

    python: str  # its version
    interpreter: str  # its executable
    path: tuple[str, ...]  # its sys.path: where its installed packages are found

    def to_json(self) -> str:
        """As JSON text, to cross from the kernel to the runner."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> InterpreterFacts:
        """Read ``to_json``'s text back."""
        entry = json.loads(text)
        return cls(str(entry["python"]), str(entry["interpreter"]), tuple(entry["path"]))


def facts_to_json(facts: dict[str, StepFacts]) -> str:
    """The kernel's answer, by step name, as JSON text."""
    return json.dumps({name: asdict(step) for name, step in facts.items()})


def facts_from_json(text: str) -> dict[str, StepFacts]:
    """Read the kernel's answer back (the inverse of ``facts_to_json``)."""
    return {name: _step_from(entry) for name, entry in json.loads(text).items()}


def _step_from(entry: dict[str, Any]) -> StepFacts:
    return StepFacts(
        problem=entry["problem"],
        arguments=tuple(entry["arguments"]),
        any_keyword=entry["any_keyword"],
        variants={arg: tuple(names) for arg, names in entry["variants"].items()},
        values={
            arg: {name: ValueFacts(**value) for name, value in by_name.items()}
            for arg, by_name in entry["values"].items()
        },
        run_file=entry["run_file"],
        lookup_file=entry["lookup_file"],
        required=tuple(entry["required"]),
        takes_input=bool(entry.get("takes_input", True)),
        not_tables={str(k): str(v) for k, v in entry.get("not_tables", {}).items()},
    )
