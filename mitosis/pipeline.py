"""A trial from request to record, as DESIGN section 3 tells it.

``prepare`` checks everything and writes nothing; ``lock_in`` claims the variants;
``run_plan`` creates the trial folder, executes the notebook and publishes the results.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shlex
import shutil
import threading
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from mitosis import __version__, catalog, provenance
from mitosis.adapters import (
    environment,
    execute,
    processes,
    publish,
    registry,
    render,
    store,
)
from mitosis.adapters import git as gitstate
from mitosis.adapters.config import InvestigationConfig, load_config
from mitosis.adapters.execute import KernelAhead
from mitosis.ahead import start_kernel_ahead
from mitosis.atomic import reserve_space, write_atomic
from mitosis.core.code_facts import InterpreterFacts, StepFacts, facts_from_json, value_facts
from mitosis.core.params import (
    ParamChoice,
    ParamOption,
    bind_steps,
    expand_grid,
    parse_literal,
    parse_option,
    variant_label,
)
from mitosis.core.record import SCHEMA_VERSION, from_json_safe
from mitosis.core.steps import StepConfig
from mitosis.errors import (
    FingerprintError,
    MitosisWarning,
    ParameterError,
    UserCodeError,
    one_line,
)
from mitosis.kernel_side import LOG_NAME, STEP_MIMETYPE
from mitosis.trials import Trial

RUNNING_NOTEBOOK = ".running.ipynb"


@dataclass(frozen=True)
class TrialRequest:
    """What the user asked for, before anything is checked."""

    steps: tuple[str, ...]
    options: tuple[ParamOption, ...] = ()
    debug: bool = False
    note: str | None = None
    template: Path | None = None
    timeout: float | None = None
    kernel: str | None = None
    progress: bool = False
    command: str | None = None
    config: Path | None = None
    trials_folder: Path | None = None
    cwd: Path | None = None
    reproduces: str | None = None
    # Folders the kernel imports from before anything else (a reproduction's worktrees).
    import_roots: tuple[Path, ...] = ()
    # Steps defined on the command line rather than in [tool.mitosis.steps] (mitosis -m).
    extra_steps: tuple[StepConfig, ...] = ()


@dataclass(frozen=True)
class ResolvedParam:
    """A parameter of one trial with its value's fingerprint, known before the trial runs."""

    choice: ParamChoice
    rendering: str
    fingerprint: str | None

    def as_record(self) -> dict[str, Any]:
        """The parameter's entry in the record's ``steps[].params``."""
        entry: dict[str, Any] = {"kind": self.choice.kind}
        if self.choice.kind == "lookup":
            entry["variant"] = self.choice.text
        else:
            entry["source"] = self.choice.text
        entry.update(
            value=self.rendering, fingerprint=self.fingerprint, tracked=self.choice.tracked
        )
        return entry

    def for_kernel(self) -> dict[str, Any]:
        """What the kernel needs to resolve and check the value itself."""
        # Untracked values (a GPU id, an output path) may differ between processes.
        return {
            "arg": self.choice.arg,
            "kind": self.choice.kind,
            "text": self.choice.text,
            "fingerprint": self.fingerprint if self.choice.tracked else None,
            "rendering": self.rendering,
        }


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


def _warm_up_in_background() -> None:
    """Build the page's exporter and scan the installed packages in the background: the
    trial's page and record need them later, and meanwhile this process only waits."""
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
) -> dict[str, StepFacts]:
    wanted: dict[str, dict[str, list[str]]] = {step.name: {} for step in steps}
    for choice in (c for choices in grid for c in choices if c.kind == "lookup"):
        assert choice.step is not None
        names = wanted[choice.step].setdefault(choice.arg, [])
        if choice.text not in names:
            names.append(choice.text)
    asked = [
        {
            "name": step.name,
            "run": step.run,
            "lookup": step.lookup,
            "skip_first": index > 0,
            "wanted": wanted[step.name],
        }
        for index, step in enumerate(steps)
    ]
    call = f"{_KERNEL_SIDE}.describe_steps({json.dumps(asked)!r})"
    facts = facts_from_json(kernel.evaluate(call, timeout))
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


def prepare(request: TrialRequest, kernel: KernelAhead) -> list[TrialPlan]:
    """Check the whole request and resolve every trial of it; writes nothing.

    The steps' code is imported by ``kernel``, the started kernel the first trial will run
    in, never by this process: it is the user's, and it is the kernel's to import.
    """
    if request.timeout is not None and not request.timeout > 0:
        raise ParameterError(f"the timeout must be more than 0 seconds, not {request.timeout}.")
    config = load_config(request.config, request.cwd, require_steps=not request.extra_steps)
    config = config.with_steps(request.extra_steps)
    if not request.steps:
        raise ParameterError(f"name at least one step; registered: {', '.join(config.steps)}.")
    steps = tuple(config.step(name) for name in request.steps)
    repeated = sorted({name for name in request.steps if request.steps.count(name) > 1})
    if repeated:
        raise ParameterError(
            f"step {repeated[0]!r} is named twice; a trial runs each step once (to chain a "
            "step with itself, register it again under a second name in [tool.mitosis.steps])."
        )
    options = bind_steps(request.options, [step.name for step in steps])
    grid = expand_grid(options)
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
    kernelspec = execute.kernelspec_metadata(request.kernel) if request.kernel else None
    _warm_up_in_background()  # while the kernel boots and imports the steps' code
    facts = _ask_kernel(kernel, steps, grid, request.timeout)
    # A sweep's kernels all come from the one kernelspec, so one answer serves every trial.
    interpreter = _ask_interpreter(kernel, request.timeout) if request.kernel else None
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
    files = {step.name: (facts[step.name].run_file, facts[step.name].lookup_file) for step in steps}
    traced = provenance.trace_steps(steps, files, state, ignored)
    if not request.debug:
        traced.require_clean()  # a step from another repository needs a clean tree too
    else:
        for other in traced.repositories:
            if other.root != state.root and other.dirty:
                warnings.warn(
                    f"{other.root} has uncommitted changes ({', '.join(other.dirty_files[:3])})"
                    " that this debug trial uses but does not save: it cannot be reproduced.",
                    MitosisWarning,
                    stacklevel=2,
                )
    source = traced.sources
    plans = []
    for choices in grid:
        params = tuple(_resolve(c, facts[c.step], request.debug) for c in choices)
        plans.append(
            TrialPlan(
                request,
                config,
                steps,
                params,
                state,
                template,
                trials_folder,
                request.kernel or execute.SAME_INTERPRETER,
                source,
                interpreter,
                kernelspec,
            )
        )
    return plans


def _claims(plan: TrialPlan, trial_id: str) -> list[registry.Claim]:
    if plan.request.debug:
        return []
    return [
        registry.Claim(
            p.choice.step, p.choice.arg, p.choice.text, p.fingerprint, p.rendering, trial_id
        )
        for p in plan.params
        if p.choice.kind == "lookup" and p.choice.tracked and p.fingerprint
    ]


def check_lock_in(plans: Sequence[TrialPlan]) -> None:
    """Refuse before anything is written if any variant already means another value."""
    for plan in plans:
        for wanted in _claims(plan, "(this run)"):
            registry.check_claim(plan.trials_folder, wanted)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _initial_record(
    plan: TrialPlan, trial_id: str, started: datetime, iteration: int
) -> dict[str, Any]:
    request = plan.request
    steps = [
        {
            "name": step.name,
            "run": step.run,
            "lookup": step.lookup,
            "params": {p.choice.arg: p.as_record() for p in plan.params_of(step.name)},
            "main": None,
            "metrics": {},
            "source": plan.source.get(step.name),
            # `mitosis -m MODULE`: registered nowhere, so `reproduce` takes it from here.
            **({"module_step": True} if step in request.extra_steps else {}),
        }
        for step in plan.steps
    ]
    return {
        "record": SCHEMA_VERSION,
        "id": trial_id,
        "experiment": plan.experiment,
        "variant": plan.variant,
        "iteration": iteration,
        "status": "running",
        "note": request.note,
        "pid": os.getpid(),
        "pid_start": processes.start_token(os.getpid()),
        "debug": request.debug,
        "main": None,
        "metrics": {},
        "error": None,
        "steps": steps,
        "started": started.isoformat(),
        "finished": None,
        "duration_s": None,
        "timings": {},
        "git": _git_record(plan),
        "environment": environment.describe_environment(
            plan.kernel_name, plan.config.env_include, plan.config.env_exclude, plan.interpreter
        ),
        "command": request.command or _describe_call(plan),
        "template": _template_given(plan),
        "mitosis_version": __version__,
        "reproduces": request.reproduces,
    }


def _git_record(plan: TrialPlan) -> dict[str, object]:
    record = plan.git.as_record()
    if plan.request.debug:  # only a debug trial runs with untracked files, and has a patch
        record["untracked"] = plan.git.untracked_split()
    return record


_NAMED_AT_MOST = 50


def _warn_of_untracked(untracked: dict[str, list[str]]) -> None:
    """Say, in one line, which untracked files went into the patch that the trial's page
    links, and which were left out: the researcher is the one who knows what is private."""
    if not untracked["included"] and not untracked["excluded"]:
        return
    left_out = (
        f"leaves out {_names(untracked['excluded'])}, whose names look secret"
        if untracked["excluded"]
        else "leaves none out"
    )
    warnings.warn(
        f"uncommitted.patch holds the untracked files {_names(untracked['included'])} (values "
        f"of known secret shapes redacted) and {left_out}; the record lists them under "
        "git.untracked.",
        MitosisWarning,
        stacklevel=3,
    )


def _names(files: list[str]) -> str:
    if not files:
        return "none"
    more = len(files) - _NAMED_AT_MOST
    return ", ".join(files[:_NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def _template_given(plan: TrialPlan) -> str | None:
    # One set in [tool.mitosis] is at the recorded commit already; --template's may not be.
    if plan.request.template is None:
        return None
    template = ((plan.request.cwd or Path.cwd()) / plan.template).resolve()
    root = plan.config.root.resolve()
    return template.relative_to(root).as_posix() if template.is_relative_to(root) else str(template)


def _describe_call(plan: TrialPlan) -> str:
    words = ["mitosis-nb", "run", *(step.name for step in plan.steps)]
    for p in plan.params:
        flag = "-p" if p.choice.kind == "lookup" else "-e"
        words += [flag, ("" if p.choice.tracked else "+") + p.choice.label]
    return shlex.join(words)


def _step_summaries(notebook: nbformat.NotebookNode | None) -> dict[str, dict[str, Any]]:
    summaries: dict[str, dict[str, Any]] = {}
    for cell in notebook.cells if notebook is not None else []:
        for output in cell.get("outputs", []):
            summary = output.get("data", {}).get(STEP_MIMETYPE)
            if isinstance(summary, dict) and "step" in summary:
                # Plain containers: notebook nodes are dict subclasses YAML will not write.
                summaries[summary["step"]] = from_json_safe(json.loads(json.dumps(summary)))
    return summaries


def _first_error(
    notebook: nbformat.NotebookNode | None,
) -> tuple[str | None, dict[str, Any] | None]:
    for cell in notebook.cells if notebook is not None else []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                step = cell.get("metadata", {}).get("mitosis", {}).get("step")
                return step, output
    return None, None


def _describe_error(
    plan: TrialPlan,
    outcome: execute.Execution,
    summaries: dict[str, dict[str, Any]],
    timeout: float | None,
) -> dict[str, Any] | None:
    missing = [step.name for step in plan.steps if step.name not in summaries]
    if outcome.error_kind is None and not missing:
        return None
    failed_step, output = _first_error(outcome.notebook)
    if output is None:  # no cell raised: the kernel stopped during the first step not done
        failed_step = missing[0] if missing else None
    kind = outcome.error_kind or "exception"
    if kind == "exception" and output is not None:
        return {
            "kind": kind,
            "step": failed_step,
            "type": output.get("ename"),
            "message": execute.strip_ansi(str(output.get("evalue", ""))),
            "traceback": execute.strip_ansi("\n".join(output.get("traceback", []))),
        }
    messages = {
        "timeout": f"the trial ran longer than its timeout of {timeout} s; its kernel was stopped.",
        "kernel_died": "the kernel died (os._exit, a crash, or killed, perhaps for memory).",
        "interrupted": "the trial was interrupted (Ctrl-C or SIGTERM); its kernel was stopped.",
        "exception": f"step {failed_step!r} ended without returning a result (sys.exit()?).",
    }
    exception = outcome.exception
    if kind == "exception" and isinstance(exception, OSError) and exception.errno in _DISK_FULL:
        # papermill could not save the running notebook: the disk failed, not the experiment.
        name = Path(exception.filename).name if exception.filename else RUNNING_NOTEBOOK
        code = errno.errorcode.get(exception.errno or 0, "OSError")
        return {
            "kind": "storage",
            "step": None,
            "type": type(exception).__name__,
            "message": (
                f"could not write {name}: {exception.strerror or exception} ({code}); the "
                "files written before it are kept. Free space in the trials folder and run "
                "the trial again."
            ),
            "traceback": None,
        }
    if kind == "exception" and exception is not None and not execute.is_cell_error(exception):
        # Not the experiment: running the notebook failed on this side (papermill, say).
        return {
            "kind": kind,
            "step": None,
            "type": type(exception).__name__,
            "message": f"mitosis-nb could not run the notebook: {one_line(exception, 2000)}",
            "traceback": "".join(traceback.format_exception(exception)),
        }
    return {
        "kind": kind,
        "step": failed_step,
        "type": type(exception).__name__ if exception is not None else "NoResult",
        "message": messages[kind],
        "traceback": None,
    }


def _finish_record(
    record: dict[str, Any],
    plan: TrialPlan,
    outcome: execute.Execution,
    started: datetime,
    timings: dict[str, float],
) -> None:
    summaries = _step_summaries(outcome.notebook)
    error = _describe_error(plan, outcome, summaries, plan.request.timeout)
    for entry in record["steps"]:
        summary = summaries.get(entry["name"], {})
        entry["main"] = summary.get("main")
        entry["metrics"] = summary.get("metrics", {})
        if summary.get("warnings"):
            entry["warnings"] = summary["warnings"]
        if "defaults" in summary:
            entry["defaults"] = summary["defaults"]
    last = record["steps"][-1]
    record["main"], record["metrics"] = last["main"], last["metrics"]
    warned = [text for entry in record["steps"] for text in entry.get("warnings", [])]
    if warned:
        record["warnings"] = warned
    record["error"] = error
    record["status"] = (
        "succeeded"
        if error is None
        else "interrupted"
        if error["kind"] == "interrupted"
        else "failed"
    )
    finished = _now()
    record["finished"] = finished.isoformat()
    record["duration_s"] = round((finished - started).total_seconds(), 3)
    record["timings"] = {name: round(value, 3) for name, value in timings.items()}


def _publish(folder: Path, record: dict[str, Any], notebook: nbformat.NotebookNode | None) -> None:
    beside = [name for name in (LOG_NAME, store.PATCH_NAME) if (folder / name).is_file()]
    if notebook is not None:
        write_atomic(folder / "trial.ipynb", nbformat.writes(notebook))
        page = publish.render_page(notebook, record, beside)
        for name, data in page.figures.items():
            write_atomic(folder / name, data)
        publish.write_assets(folder.parent)
        html = page.html
    else:
        html = publish.render_missing_notebook(record, beside)
    write_atomic(folder / "trial.html", html)
    with contextlib.suppress(FileNotFoundError):
        (folder / RUNNING_NOTEBOOK).unlink()


# A write refused for want of room: a full disk, a quota, a file-size limit.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _keep_running_notebook(folder: Path) -> None:
    """Make room for the record after a refused write: the notebook papermill kept while
    running becomes ``trial.ipynb`` if that is missing and it is whole (a rename needs no
    space); otherwise it goes."""
    running = folder / RUNNING_NOTEBOOK
    with contextlib.suppress(OSError, ValueError, nbformat.ValidationError):
        if not (folder / "trial.ipynb").is_file():
            nbformat.validate(nbformat.read(str(running), as_version=4))
            os.replace(running, folder / "trial.ipynb")
    with contextlib.suppress(OSError):
        running.unlink()


def _record_storage_failure(record: dict[str, Any], error: OSError) -> None:
    """Fail a trial whose files could not all be written; an experiment's own error stays."""
    name = Path(error.filename).name if error.filename else "a file"
    code = errno.errorcode.get(error.errno or 0, "OSError")
    message = (
        f"could not write {name}: {error.strerror or error} ({code}); the files written "
        "before it are kept. Free space in the trials folder and run the trial again."
    )
    if record["error"] is None:
        record["status"] = "failed"
        record["error"] = {
            "kind": "storage",
            "step": None,
            "type": type(error).__name__,
            "message": message,
            "traceback": None,
        }
    else:
        record["error"]["storage"] = message


def _write_final_record(folder: Path, record: dict[str, Any], reserve: Path | None) -> None:
    """Write the final record into the room held for it: given back first when the disk
    already refused a file, or after the disk refused the record itself."""
    try:
        if (record.get("error") or {}).get("kind") == "storage":
            _release(reserve)
        with contextlib.suppress(OSError):
            store.write_record(folder, record)
            return
    finally:
        _release(reserve)
    store.write_final_record(folder, record)  # once more, or mark the trial for its reader


def _release(reserve: Path | None) -> None:
    if reserve is not None:
        with contextlib.suppress(FileNotFoundError):
            reserve.unlink()


def _claim_all(plan: TrialPlan, trial_id: str, folder: Path) -> int:
    """Claim the trial's variants and take its iteration number."""
    try:
        for wanted in _claims(plan, trial_id):
            registry.claim(plan.trials_folder, wanted)
        return _iteration(plan, trial_id)
    except BaseException:
        # Lost a race for a variant, or the registry cannot be written: this trial never
        # happened, so leave no trace of it.
        with contextlib.suppress(OSError):
            folder.rmdir()
        raise


@dataclass(frozen=True)
class Reservation:
    """A sweep trial's id and folder, allocated by the submitting process before any trial runs."""

    trial_id: str
    folder: Path


def lock_in_sweep(plans: Sequence[TrialPlan]) -> list[Reservation]:
    """Claim every variant of a sweep once, and allocate each trial's id and folder.

    A conflict refuses the whole sweep before anything is written; a claim lost to a
    concurrent run removes the allocated folders again: every trial may run, or none.
    """
    check_lock_in(plans)
    reservations: list[Reservation] = []
    if not plans:
        return reservations
    store.ensure_folder(plans[0].trials_folder)
    started = _now()
    try:
        for plan in plans:
            trial_id, folder = store.create_trial_folder(plan.trials_folder, started)
            reservations.append(Reservation(trial_id, folder))
        claimed: set[tuple[str, str, str]] = set()
        for plan, reservation in zip(plans, reservations, strict=True):
            for wanted in _claims(plan, reservation.trial_id):
                if (wanted.step, wanted.arg, wanted.variant) not in claimed:
                    registry.claim(plan.trials_folder, wanted)
                    claimed.add((wanted.step, wanted.arg, wanted.variant))
    except BaseException:
        release(reservations)
        raise
    return reservations


def release(reservations: Sequence[Reservation]) -> None:
    """Remove the folders of reserved trials that never started (only empty ones go)."""
    for reservation in reservations:
        with contextlib.suppress(OSError):
            reservation.folder.rmdir()


def _take_reserved(reservation: Reservation) -> tuple[str, Path]:
    # A rerun of a trial (its Dask worker died) starts again from an empty folder, so one
    # trial id never ends up with a mix of two attempts' files.
    for child in list(reservation.folder.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
    return reservation.trial_id, reservation.folder


def _iteration(plan: TrialPlan, trial_id: str) -> int:
    if plan.request.debug:
        return 0
    return registry.take_iteration(plan.trials_folder, plan.experiment, plan.variant, trial_id)


def run_plan(
    plan: TrialPlan,
    reservation: Reservation | None = None,
    cancel: threading.Event | None = None,
    update_index: bool = True,
    ahead: execute.KernelAhead | None = None,
) -> Trial:
    """Run one checked trial: folder, lock-in, running record, kernel, page, final record.

    A sweep trial comes with its ``reservation`` (variants claimed already) and a ``cancel``
    event that stops it like Ctrl-C; Dask tasks pass ``update_index=False`` because the
    submitting process keeps the index. ``ahead`` is a kernel started while preparing.
    """
    clock = _Timer()
    started = _now()
    if reservation is None:
        store.ensure_folder(plan.trials_folder)
        trial_id, folder = store.create_trial_folder(plan.trials_folder, started)
        iteration = _claim_all(plan, trial_id, folder)
    else:
        trial_id, folder = _take_reserved(reservation)
        iteration = _iteration(plan, trial_id)
    record = _initial_record(plan, trial_id, started, iteration)
    store.write_record(folder, record)
    # Room for the final record (this one, with how it ended), held until it is written.
    reserve = reserve_space(folder, len(store.dump_yaml(record).encode()) + 4096)
    if update_index:
        catalog.show_running(plan.trials_folder, record)
    if plan.request.debug:
        write_atomic(folder / store.PATCH_NAME, gitstate.uncommitted_patch(plan.git))
        _warn_of_untracked(record["git"]["untracked"])
    notebook = render.render_notebook(plan.template, plan.steps)
    if plan.kernelspec:
        notebook.metadata["kernelspec"] = dict(plan.kernelspec)
    parameters = {
        "mitosis_trial_dir": str(folder),
        "mitosis_steps": [
            {
                "name": step.name,
                "run": step.run,
                "lookup": step.lookup,
                "params": [p.for_kernel() for p in plan.params_of(step.name)],
            }
            for step in plan.steps
        ],
    }
    clock.lap("prepare_s")
    started_kernel = (
        ahead.claim(plan.request.kernel, plan.config.root, plan.request.import_roots)
        if ahead
        else None
    )
    outcome = execute.execute(
        notebook,
        folder / RUNNING_NOTEBOOK,
        parameters,
        plan.config.root,
        kernel=plan.request.kernel,
        timeout=plan.request.timeout,
        progress=plan.request.progress,
        cancel=cancel,
        started=started_kernel,
        # The page's exporter is built while the kernel works, not after it.
        on_start=publish.warm_up_in_background,
        import_roots=plan.request.import_roots,
    )
    clock.lap("execute_s")
    _finish_record(record, plan, outcome, started, clock.laps)
    try:
        _publish(folder, record, outcome.notebook)
    except OSError as error:
        # A full disk may refuse the notebook or the page: the record, written last, says
        # so, and `succeeded` keeps meaning that every file is there.
        _keep_running_notebook(folder)
        _record_storage_failure(record, error)
    finally:
        clock.lap("publish_s")
        record["timings"] = {name: round(value, 3) for name, value in clock.laps.items()}
        try:
            _write_final_record(folder, record, reserve)
        finally:
            outcome.wait_until_stopped()
    if update_index:
        catalog.record_trial(plan.trials_folder, record)  # warns, never raises
    return Trial(record=record, folder=folder)


class _Timer:
    """Where a trial's time goes: preparing, executing, publishing."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def run_plans(plans: Sequence[TrialPlan], ahead: execute.KernelAhead | None = None) -> list[Trial]:
    """Lock in every plan's variants, then run the plans one after another.

    ``ahead``, a kernel from ``start_kernel_ahead``, serves the first trial; the caller
    closes it.
    """
    check_lock_in(plans)
    trials = []
    for plan in plans:
        trial = run_plan(plan, ahead=ahead)
        trials.append(trial)
        if trial.status == "interrupted":
            break
    return trials


def _check_api_arguments(steps: Sequence[Any], params: Any, literals: Any) -> None:
    """Refuse, in one sentence, arguments of the wrong kind, before they fail somewhere deep."""
    for step in steps:
        if not isinstance(step, str):
            raise ParameterError(
                f"steps are named by strings, as in execute_trial('gen', 'fit'); got {step!r}."
            )
    for name, given in (("params", params), ("literals", literals)):
        if given is not None and not isinstance(given, Mapping):
            raise ParameterError(
                f"{name} is a dict of argument names to values, not {type(given).__name__} "
                f"{given!r}."
            )
    for arg, variants in (params or {}).items():
        names = [variants] if isinstance(variants, str) else variants
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ParameterError(
                f"params[{arg!r}] is a variant name of the step's lookup dictionary, not "
                f"{variants!r}; give a value itself with literals={{{arg!r}: {variants!r}}}."
            )


def _options_from_mappings(
    params: Mapping[str, Any] | None, literals: Mapping[str, Any] | None
) -> tuple[ParamOption, ...]:
    options = []
    for name, variants in (params or {}).items():
        names = [variants] if isinstance(variants, str) else list(variants)
        options.append(parse_option(f"{name}={','.join(map(str, names))}", "lookup"))
    for name, value in (literals or {}).items():
        source = repr(value)
        try:
            same = parse_literal(source) == value
        except ParameterError:
            same = False
        if not same:
            raise ParameterError(
                f"literal {name}={source} is not a Python literal; put the value in the "
                "step's lookup dictionary and pass its variant name in params."
            )
        options.append(parse_option(f"{name}={source}", "literal"))
    return tuple(options)


def _api_call(steps: Sequence[str], params: Any, literals: Any, debug: bool) -> str:
    """The record's ``command``: the call as it could be typed again."""
    arguments = [repr(step) for step in steps]
    arguments += [f"params={dict(params)!r}"] if params else []
    arguments += [f"literals={dict(literals)!r}"] if literals else []
    arguments += ["debug=True"] if debug else []
    return f"execute_trial({', '.join(arguments)})"


def _one_trial_only(plans: Sequence[TrialPlan]) -> str:
    values: dict[str, set[str]] = {}
    for plan in plans:
        for param in plan.params:
            choice = param.choice
            shown = f"{'' if choice.tracked else '+'}{choice.text}"
            values.setdefault(f"{choice.step}.{choice.arg}", set()).add(shown)
    several = sorted(name for name, texts in values.items() if len(texts) > 1)
    return (
        f"execute_trial runs one trial, but {', '.join(several)} "
        f"{'is' if len(several) == 1 else 'are'} given more than one value here (perhaps "
        "once with the step's name and once without, or tracked and untracked), which makes "
        f"{len(plans)} trials; give each argument once, or sweep with `mitosis-nb run`."
    )


def execute_trial(
    *steps: str,
    params: Mapping[str, str | Sequence[str]] | None = None,
    literals: Mapping[str, Any] | None = None,
    debug: bool = False,
    note: str | None = None,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    template: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    kernel: str | None = None,
) -> Trial:
    """Run one trial in a fresh kernel, exactly as ``mitosis-nb run`` does, and return it.

    ``params`` maps ``[+][STEP.]ARG`` to a variant name of the step's lookup dictionary;
    ``literals`` maps ``[+][STEP.]ARG`` to a Python literal. Refusals raise ``MitosisError``;
    a failing experiment returns a ``Trial`` whose ``status`` is ``"failed"``. Ctrl-C (a
    notebook's interrupt button) or SIGTERM stops the trial, records it as ``interrupted``
    and then raises ``KeyboardInterrupt``, so that a loop of trials stops too.
    """
    _check_api_arguments(steps, params, literals)
    request = TrialRequest(
        steps=tuple(steps),
        options=_options_from_mappings(params, literals),
        debug=debug,
        note=note,
        template=Path(template) if template else None,
        timeout=timeout,
        kernel=kernel,
        command=_api_call(steps, params, literals, debug),
        config=Path(config) if config else None,
        trials_folder=Path(trials_folder) if trials_folder else None,
    )
    ahead = start_kernel_ahead(request.kernel, request.config, request.cwd)
    try:
        plans = prepare(request, ahead)
        if len(plans) != 1:
            raise ParameterError(_one_trial_only(plans))
        (trial,) = run_plans(plans, ahead)
    finally:
        ahead.close()
    if trial.status == "interrupted":
        raise KeyboardInterrupt(
            f"trial {trial.id} was interrupted; its record is in {trial.folder}"
        )
    return trial
