"""What runs inside the trial's kernel: resolve parameters, call steps, keep their results.

Imports only the pure core, ``atomic``, ``errors`` and ``usercode`` so that a kernel's start
stays cheap. Before the trial, ``describe_steps`` imports the steps' code here (the runner
never imports it) and tells the runner what it needs to check and lock the trial in. Values
are resolved here, from variant names and literal source text, because papermill would turn
tuples, sets and bytes into strings if values were injected directly.
"""

from __future__ import annotations

import ast
import logging
import pickle
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mitosis.adapters.usercode import (
    accepted_arguments,
    default_arguments,
    import_callable,
    import_lookup,
    module_file,
    required_arguments,
    takes_positional,
)
from mitosis.atomic import write_atomic
from mitosis.core.code_facts import (
    InterpreterFacts,
    StepFacts,
    StepQuestion,
    facts_to_json,
    questions_from_json,
    value_facts,
)
from mitosis.core.fingerprint import fingerprint
from mitosis.core.kernel_protocol import (
    KernelParam,
    KernelStep,
    StepSummary,
    steps_from_notebook,
    summary_to_display,
)
from mitosis.core.metrics import collect_metrics
from mitosis.core.record import summarize_metrics, summarize_value
from mitosis.core.steps import load_object
from mitosis.errors import UserCodeError
from mitosis.kernel_steps import StepCache

LOG_NAME = "experiment.log"


class StepResultError(Exception):
    """A step returned something other than the dict mitosis expects."""


class ValueChangedError(Exception):
    """A variant resolved to a different value in the kernel than when it was locked in."""


def results_name(index: int) -> str:
    """The file holding step ``index``'s returned dict."""
    return f"results_{index}.pkl"


class KernelTrial:
    """One trial as seen from inside its kernel."""

    def __init__(self, trial_dir: str, steps: Sequence[KernelStep]) -> None:
        self.folder = Path(trial_dir)
        self.steps = {step.name: step for step in steps}
        self.order = [step.name for step in steps]
        self._defaults: dict[str, dict[str, Any]] = {}
        self._cache = StepCache(self.folder, steps)
        self._attach_log()

    def _attach_log(self) -> None:
        handler = logging.FileHandler(self.folder / LOG_NAME, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def arguments(self, name: str) -> dict[str, Any]:
        """The keyword arguments of step ``name``, resolved and checked against the registry."""
        step = self.steps[name]
        lookup: Any = load_object(step.lookup) if step.lookup else {}
        resolved: dict[str, Any] = {}
        for param in step.params:
            if param.kind == "lookup":
                value = lookup[param.arg][param.text]
            else:
                value = ast.literal_eval(param.text)
            if param.fingerprint:
                self._check_unchanged(name, param, value, param.fingerprint)
            resolved[param.arg] = value
        # What the step runs with beyond what was given: its defaults, as this kernel has them.
        if step.run:
            later = self.order.index(name) > 0
            self._defaults[name] = default_arguments(load_object(step.run), later, resolved)
        return resolved

    @staticmethod
    def _check_unchanged(name: str, param: KernelParam, value: Any, expected: str) -> None:
        # The lookup module was imported again in this kernel: a value computed from a
        # clock, a random source or the process id differs here from what was locked in.
        found = fingerprint(value)
        if found.digest == expected:
            return
        raise ValueChangedError(
            f"{name}.{param.arg}={param.text} is {found.rendering} in the trial's kernel "
            f"but was {param.rendering} when another process locked it in; the lookup "
            "dictionary must compute the same value in every process (no clock, random "
            "numbers or process id in it), or mark the parameter untracked with '+'."
        )

    def run(self, name: str, function: Callable[..., Any], *inputs: Any, **arguments: Any) -> Any:
        """Step ``name``: ``function(*inputs, **arguments)``, recorded, unless the step cache
        holds the result of the same code on the same arguments after the same steps."""
        cache = self._cache.prepare(name, function, {**self._defaults.get(name, {}), **arguments})
        index = self.order.index(name)
        if cache.take(self.folder / results_name(index)):
            return self._check(name, index, cache.result, cache.summary())
        with cache.computing():
            result = self.record(name, function(*inputs, **arguments), cache.summary())
            cache.computed(self.folder / results_name(index))
        return result

    def record(self, name: str, result: Any, cache: Mapping[str, Any] | None = None) -> Any:
        """Save step ``name``'s returned value, then check it and show its main result and
        metrics: nothing a step computed is lost to a check of its shape."""
        index = self.order.index(name)
        self._save(name, index, result)
        return self._check(name, index, result, cache)

    def _check(self, name: str, index: int, result: Any, cache: Mapping[str, Any] | None) -> Any:
        saved = results_name(index)
        kept = f"what it returned is saved in {saved}"
        if not isinstance(result, Mapping):
            raise StepResultError(
                f"step {name!r} returned {type(result).__name__}, not a dict with 'main'; {kept}."
            )
        if "main" not in result:
            raise StepResultError(
                f"step {name!r} returned no 'main' key; return a dict with the step's main "
                f"result under 'main' ({kept})."
            )
        if index < len(self.order) - 1 and "data" not in result:
            following = self.order[index + 1]
            raise StepResultError(
                f"step {name!r} returned no 'data' key; every step but the last must return "
                f"'data', which step {following!r} receives as its first argument ({kept})."
            )
        metrics = collect_metrics(name, result, saved)
        summary = StepSummary(
            step=name,
            index=index,
            main=summarize_value(result["main"]),
            metrics=summarize_metrics(metrics.values),
            defaults=summarize_metrics(self._defaults.get(name, {})),
            warnings=tuple(metrics.warnings),
            cache=cache,
        )
        self._show(summary)
        return result

    def _save(self, name: str, index: int, result: Any) -> None:
        value = dict(result) if isinstance(result, Mapping) else result
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise StepResultError(
                f"step {name!r} returned a value that cannot be pickled: {error}; return "
                "objects of importable classes (or convert them) to keep them."
            ) from None
        write_atomic(self.folder / results_name(index), payload)

    @staticmethod
    def _show(summary: StepSummary) -> None:
        from IPython.display import display

        bundle = summary_to_display(summary)
        display(bundle, raw=True)  # type: ignore[no-untyped-call]  # IPython ships no types


def start(trial_dir: str, steps: Sequence[Mapping[str, Any]]) -> KernelTrial:
    """Set up the kernel for a trial: logging to ``experiment.log``, the repo importable.

    ``steps`` is the ``mitosis_steps`` papermill injected (``steps_to_notebook``'s list).
    """
    if "" not in sys.path:
        sys.path.insert(0, "")
    return KernelTrial(trial_dir, steps_from_notebook(steps))


def describe_steps(request: str) -> str:
    """Import each asked step's callable and lookup dictionary, and describe them as JSON.

    ``request`` is ``core.code_facts.questions_to_json``'s text; the answer is its
    ``facts_to_json``, by step name.
    """
    return facts_to_json({step.name: _describe_step(step) for step in questions_from_json(request)})


def describe_interpreter() -> str:
    """This kernel's Python, as ``InterpreterFacts`` JSON: the record names it."""
    return InterpreterFacts(platform.python_version(), sys.executable, tuple(sys.path)).to_json()


def _describe_step(step: StepQuestion) -> StepFacts:
    try:
        entries = import_lookup(step.lookup)
        function = import_callable(step.run)
    except UserCodeError as error:
        return StepFacts(problem=error.message)
    lookup = entries.tables
    names, any_keyword = accepted_arguments(function, step.skip_first)
    values = {
        arg: {name: value_facts(lookup[arg][name]) for name in wanted if name in lookup[arg]}
        for arg, wanted in step.wanted.items()
        if arg in lookup
    }
    return StepFacts(
        arguments=tuple(sorted(names)),
        any_keyword=any_keyword,
        variants={str(arg): tuple(map(str, variants)) for arg, variants in lookup.items()},
        values=values,
        run_file=_file_of(step.run),
        lookup_file=_file_of(step.lookup),
        required=required_arguments(function, step.skip_first),
        takes_input=not step.skip_first or takes_positional(function),
        not_tables=entries.others,
    )


def _file_of(path: str | None) -> str | None:
    file = module_file(path) if path else None
    return str(file) if file else None
