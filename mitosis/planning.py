"""From a request to checked plans: everything a trial needs is resolved and checked here,
and nothing is written.

The steps' code is imported by the kernel the first trial will run in, never by this process;
its answer (``StepFacts``) is what the request is checked against.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitosis import provenance
from mitosis.adapters import (
    environment,
    publish,
    render,
    store,
)
from mitosis.adapters import git as gitstate
from mitosis.adapters.config import InvestigationConfig, load_config
from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.adapters.kernels.spawn import SAME_INTERPRETER
from mitosis.core.code_facts import (
    InterpreterFacts,
    StepFacts,
    StepQuestion,
    facts_from_json,
    questions_to_json,
    value_facts,
)
from mitosis.core.kernel_protocol import KernelParam
from mitosis.core.params import (
    ParamChoice,
    ParamOption,
    bind_steps,
    expand_grid,
    parse_literal,
    variant_label,
)
from mitosis.core.request import TrialRequest
from mitosis.core.steps import StepConfig
from mitosis.core.trial_record import ParamRecord
from mitosis.errors import (
    FingerprintError,
    MitosisWarning,
    ParameterError,
    UserCodeError,
)


@dataclass(frozen=True)
class ResolvedParam:
    """A parameter of one trial with its value's fingerprint, known before the trial runs."""

    choice: ParamChoice
    rendering: str
    fingerprint: str | None

    def as_record(self) -> ParamRecord:
        """The parameter's entry in the record's ``steps[].params``."""
        lookup = self.choice.kind == "lookup"
        return ParamRecord(
            kind=self.choice.kind,
            value=self.rendering,
            fingerprint=self.fingerprint,
            tracked=self.choice.tracked,
            variant=self.choice.text if lookup else None,
            source=None if lookup else self.choice.text,
        )

    def for_kernel(self) -> KernelParam:
        """What the kernel needs to resolve and check the value itself."""
        # Untracked values (a GPU id, an output path) may differ between processes.
        return KernelParam(
            arg=self.choice.arg,
            kind=self.choice.kind,
            text=self.choice.text,
            fingerprint=self.fingerprint if self.choice.tracked else None,
            rendering=self.rendering,
        )


@dataclass(frozen=True)
class TrialPlan:
    """One fully checked trial, ready to run."""

    request: TrialRequest
    config: InvestigationConfig
    steps: tuple[StepConfig, ...]
    params: tuple[ResolvedParam, ...]
    git: gitstate.GitState
    template: Path
    trials_folder: Path
    kernel_name: str
    source: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The Python of a kernel named with --kernel, and its notebook metadata; None: the
    # runner's own Python runs the trial.
    interpreter: InterpreterFacts | None = None
    kernelspec: Mapping[str, str] | None = None

    @property
    def experiment(self) -> str:
        """Step names joined by ``+``."""
        return "+".join(step.name for step in self.steps)

    @property
    def variant(self) -> str:
        """The trial's tracked parameters, its variant identity."""
        return variant_label(param.choice for param in self.params)

    def params_of(self, step: str) -> list[ResolvedParam]:
        """This trial's parameters of one step."""
        return [param for param in self.params if param.choice.step == step]


def _check_argument(step: StepConfig, arg: str, facts: StepFacts) -> None:
    if facts.accepts(arg):
        return
    known = ", ".join(sorted(facts.arguments)) or "none"
    raise ParameterError(f"step {step.name!r} has no argument {arg!r}; its arguments: {known}.")


def _resolve(choice: ParamChoice, facts: StepFacts, debug: bool) -> ResolvedParam:
    if choice.kind == "lookup":
        variants = facts.variants.get(choice.arg)
        if variants is None and choice.arg in facts.not_tables:
            raise ParameterError(
                f"{choice.step}'s lookup dictionary holds {choice.arg!r} as a "
                f"{facts.not_tables[choice.arg]}, not a table of variants "
                f"({{variant name: value}}); make it one, or give the value with -e."
            )
        if variants is None:
            known = ", ".join(sorted(facts.variants)) or "none"
            raise ParameterError(
                f"step {choice.step!r} has no variants for argument {choice.arg!r}; "
                f"arguments with variants: {known} (use -e for a literal value)."
            )
        found = facts.values.get(choice.arg, {}).get(choice.text)
        if found is None:
            known = ", ".join(variants) or "none"
            raise ParameterError(
                f"unknown variant {choice.text!r} of {choice.step}.{choice.arg}; known: {known}."
            )
    else:
        found = value_facts(parse_literal(choice.text))
    if found.fingerprint is None and choice.tracked and not debug:
        raise FingerprintError(f"{choice.label}: {found.problem}")
    return ResolvedParam(choice, found.rendering, found.fingerprint)


def _warm_up_in_background(page: bool) -> None:
    """Build the page's exporter (if ``page``) and scan the installed packages in the
    background: the trial's page and record need them later, and meanwhile this process
    only waits."""
    if page:
        publish.warm_up_in_background()
    threading.Thread(target=_scan_quietly, name="mitosis-package-scan", daemon=True).start()


def _scan_quietly() -> None:
    with contextlib.suppress(Exception):  # only a head start: the record reports problems
        environment.installed_packages()


# An expression, not a statement: it leaves no name behind in the trial's namespace.
_KERNEL_SIDE = "__import__('mitosis.kernel_side').kernel_side"


def _ask_interpreter(kernel: KernelAhead, timeout: float | None) -> InterpreterFacts:
    return InterpreterFacts.from_json(
        kernel.evaluate(f"{_KERNEL_SIDE}.describe_interpreter()", timeout)
    )


def _ask_kernel(
    kernel: KernelAhead,
    steps: Sequence[StepConfig],
    grid: Sequence[Sequence[ParamChoice]],
    timeout: float | None,
) -> Future[str]:
    """Ask ``kernel`` what it finds of each step's code, without waiting for the answer."""
    wanted: dict[str, dict[str, tuple[str, ...]]] = {step.name: {} for step in steps}
    for choice in (c for choices in grid for c in choices if c.kind == "lookup"):
        assert choice.step is not None
        names = wanted[choice.step].get(choice.arg, ())
        if choice.text not in names:
            wanted[choice.step][choice.arg] = (*names, choice.text)
    asked = [
        StepQuestion(step.name, step.run, step.lookup, index > 0, wanted[step.name])
        for index, step in enumerate(steps)
    ]
    call = f"{_KERNEL_SIDE}.describe_steps({questions_to_json(asked)!r})"
    return kernel.ask(call, timeout)


def _facts(asked: Future[str], steps: Sequence[StepConfig]) -> dict[str, StepFacts]:
    """What the kernel found of each step, once it has answered; ``UserCodeError`` if the
    code cannot run a step."""
    facts = facts_from_json(asked.result())
    for step in steps:
        problem = facts[step.name].problem
        if problem is not None:
            raise UserCodeError(problem)
    return facts


def _check_required(step: StepConfig, facts: StepFacts, options: Sequence[ParamOption]) -> None:
    given = {option.arg for option in options if option.step == step.name}
    missing = [name for name in facts.required if name not in given]
    if missing:  # else the call fails in the kernel with a TypeError, after all the set-up
        raise ParameterError(
            f"step {step.name!r} needs {missing[0]!r}, which has no default; give it with -p "
            f"or -e {step.name}.{missing[0]}=... (params= or literals= in Python; a later "
            'step gets the "data" of the step before it as its first argument).'
        )


def prepare(
    request: TrialRequest, kernel: KernelAhead, warm_up_page: bool = True
) -> list[TrialPlan]:
    """Check the whole request and resolve every trial of it; writes nothing.

    The steps' code is imported by ``kernel``, the started kernel the first trial will run
    in, never by this process: it is the user's, and it is the kernel's to import.
    ``warm_up_page`` builds the exporter of trial pages meanwhile.
    """
    if request.timeout is not None and not request.timeout > 0:
        raise ParameterError(f"the timeout must be more than 0 seconds, not {request.timeout}.")
    config = load_config(request.config, request.cwd, require_steps=not request.extra_steps)
    config = config.with_steps(request.extra_steps)
    steps = _steps_asked(request, config)
    options = bind_steps(request.options, [step.name for step in steps])
    grid = expand_grid(options)
    # Asked now, answered once booted and imported: meanwhile this process checks the rest.
    asked = _ask_kernel(kernel, steps, grid, request.timeout)
    trials_folder = (request.trials_folder or config.trials_folder).resolve()
    store.check_folder(trials_folder)
    # The configured trials folder holds trials too, even when -F writes these elsewhere.
    ignored = (trials_folder, config.trials_folder)
    state = gitstate.read_state(config.root, ignore=ignored)
    if not request.debug:
        gitstate.require_clean(state)
    template = request.template or config.template or render.packaged_template()
    origin = "--template (template=)" if request.template else "`template` in [tool.mitosis]"
    render.render_notebook(template, steps, origin)
    kernelspec = render.kernelspec_metadata(request.kernel) if request.kernel else None
    _warm_up_in_background(warm_up_page)  # while the kernel boots and imports the steps' code
    facts = _facts(asked, steps)
    # A sweep's kernels all come from the one kernelspec, so one answer serves every trial.
    interpreter = _ask_interpreter(kernel, request.timeout) if request.kernel else None
    _check_against_code(config, steps, options, facts)
    source = _trace_sources(steps, facts, state, ignored, request.debug)
    return [
        TrialPlan(
            request,
            config,
            steps,
            tuple(_resolve(c, facts[c.step], request.debug) for c in choices),
            state,
            template,
            trials_folder,
            request.kernel or SAME_INTERPRETER,
            source,
            interpreter,
            kernelspec,
        )
        for choices in grid
    ]


def _steps_asked(request: TrialRequest, config: InvestigationConfig) -> tuple[StepConfig, ...]:
    if not request.steps:
        raise ParameterError(f"name at least one step; registered: {', '.join(config.steps)}.")
    steps = tuple(config.step(name) for name in request.steps)
    repeated = sorted({name for name in request.steps if request.steps.count(name) > 1})
    if repeated:
        raise ParameterError(
            f"step {repeated[0]!r} is named twice; a trial runs each step once (to chain a "
            "step with itself, register it again under a second name in [tool.mitosis.steps])."
        )
    return steps


def _check_against_code(
    config: InvestigationConfig,
    steps: Sequence[StepConfig],
    options: Sequence[ParamOption],
    facts: dict[str, StepFacts],
) -> None:
    """Every parameter is one its step takes, every later step takes the data before it,
    and every argument without a default is given."""
    for option in options:
        assert option.step is not None
        _check_argument(config.steps[option.step], option.arg, facts[option.step])
    for before, step in itertools.pairwise(steps):
        if not facts[step.name].takes_input:
            raise ParameterError(
                f"step {step.name!r} comes after {before.name!r}, so it is called with the "
                f'"data" that {before.name!r} returns as its first argument, but its callable '
                f"{step.run} takes no positional argument; give it one, as in def fit(data, ...)."
            )
    for step in steps:
        _check_required(step, facts[step.name], options)


def _trace_sources(
    steps: Sequence[StepConfig],
    facts: dict[str, StepFacts],
    state: gitstate.GitState,
    ignored: Sequence[Path],
    debug: bool,
) -> dict[str, dict[str, Any]]:
    """Where each step's code came from; a trial that is not debug needs all of it clean."""
    files = {step.name: (facts[step.name].run_file, facts[step.name].lookup_file) for step in steps}
    traced = provenance.trace_steps(steps, files, state, ignored)
    if not debug:
        traced.require_clean()  # a step from another repository needs a clean tree too
    else:
        for other in traced.repositories:
            if other.root != state.root and other.dirty:
                warnings.warn(
                    f"{other.root} has uncommitted changes ({', '.join(other.dirty_files[:3])})"
                    " that this debug trial uses but does not save: it cannot be reproduced.",
                    MitosisWarning,
                    stacklevel=3,
                )
    return traced.sources
