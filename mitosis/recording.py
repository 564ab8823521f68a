"""A trial's record from its plan to its final status: the running record, the error
described, the notebook and page published, and the final record written last."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from mitosis import __version__
from mitosis.adapters import (
    environment,
    execute,
    processes,
    publish,
    store,
)
from mitosis.atomic import write_atomic
from mitosis.core.kernel_protocol import StepSummary, summary_from_display
from mitosis.core.progress import parse_progress, progress_details
from mitosis.core.record import STORAGE_ERRNOS
from mitosis.core.trial_record import (
    ErrorRecord,
    StepRecord,
    TrialRecord,
    final_status,
    record_data,
)
from mitosis.errors import (
    MitosisWarning,
    one_line,
)
from mitosis.kernel_side import LOG_NAME
from mitosis.planning import TrialPlan

RUNNING_NOTEBOOK = ".running.ipynb"


def utc_now() -> datetime:
    """The time now, in UTC: when a trial starts or ends."""
    return datetime.now(timezone.utc)


def initial_record(
    plan: TrialPlan, trial_id: str, started: datetime, iteration: int
) -> TrialRecord:
    """The record a trial starts with (``status: running``), from its plan."""
    request = plan.request
    steps = tuple(
        StepRecord(
            name=step.name,
            run=step.run,
            lookup=step.lookup,
            params={p.choice.arg: p.as_record() for p in plan.params_of(step.name)},
            source=plan.source.get(step.name),
            # `mitosis -m MODULE`: registered nowhere, so `reproduce` takes it from here.
            module_step=True if step in request.extra_steps else None,
        )
        for step in plan.steps
    )
    return TrialRecord(
        id=trial_id,
        experiment=plan.experiment,
        status="running",
        variant=plan.variant,
        iteration=iteration,
        note=request.note,
        pid=os.getpid(),
        pid_start=processes.start_token(os.getpid()),
        debug=request.debug,
        steps=steps,
        started=started.isoformat(),
        git=_git_record(plan),
        environment=environment.describe_environment(
            plan.kernel_name, plan.config.env_include, plan.config.env_exclude, plan.interpreter
        ),
        command=request.command or _describe_call(plan),
        template=_template_given(plan),
        mitosis_version=__version__,
        reproduces=request.reproduces,
    )


def _git_record(plan: TrialPlan) -> dict[str, object]:
    record = plan.git.as_record()
    if plan.request.debug:  # only a debug trial runs with untracked files, and has a patch
        record["untracked"] = plan.git.untracked_split()
    return record


_NAMED_AT_MOST = 50


def warn_of_untracked(untracked: Mapping[str, Sequence[str]]) -> None:
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


def _names(files: Sequence[str]) -> str:
    if not files:
        return "none"
    more = len(files) - _NAMED_AT_MOST
    return ", ".join(list(files)[:_NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


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


def _step_summaries(notebook: nbformat.NotebookNode | None) -> dict[str, StepSummary]:
    summaries: dict[str, StepSummary] = {}
    for cell in notebook.cells if notebook is not None else []:
        for output in cell.get("outputs", []):
            summary = summary_from_display(output.get("data", {}))
            if summary is not None:
                summaries[summary.step] = summary
    return summaries


def _first_error(
    notebook: nbformat.NotebookNode | None,
) -> tuple[str | None, nbformat.NotebookNode | None]:
    for cell in notebook.cells if notebook is not None else []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                step = cell.get("metadata", {}).get("mitosis", {}).get("step")
                return step, output
    return None, None


def _describe_error(
    plan: TrialPlan,
    outcome: execute.Execution,
    summaries: Mapping[str, StepSummary],
    timeout: float | None,
) -> ErrorRecord | None:
    missing = [step.name for step in plan.steps if step.name not in summaries]
    if outcome.error_kind is None and not missing:
        return None
    failed_step, output = _first_error(outcome.notebook)
    if output is None:  # no cell raised: the kernel stopped during the first step not done
        failed_step = missing[0] if missing else None
    kind = outcome.error_kind or "exception"
    if kind == "exception" and output is not None:
        return ErrorRecord(
            kind=kind,
            step=failed_step,
            type=output.get("ename"),
            message=execute.strip_ansi(str(output.get("evalue", ""))),
            traceback=execute.strip_ansi("\n".join(output.get("traceback", []))),
        )
    messages = {
        "timeout": f"the trial ran longer than its timeout of {timeout} s; its kernel was stopped.",
        "kernel_died": "the kernel died (os._exit, a crash, or killed, perhaps for memory).",
        "interrupted": "the trial was interrupted (Ctrl-C or SIGTERM); its kernel was stopped.",
        "exception": f"step {failed_step!r} ended without returning a result (sys.exit()?).",
    }
    exception = outcome.exception
    if kind == "exception" and isinstance(exception, OSError) and exception.errno in STORAGE_ERRNOS:
        # papermill could not save the running notebook: the disk failed, not the experiment.
        return _storage_error(exception, RUNNING_NOTEBOOK)
    if kind == "exception" and exception is not None and not execute.is_cell_error(exception):
        # Not the experiment: running the notebook failed on this side (papermill, say).
        return ErrorRecord(
            kind=kind,
            step=None,
            type=type(exception).__name__,
            message=f"mitosis-nb could not run the notebook: {one_line(exception, 2000)}",
            traceback="".join(traceback.format_exception(exception)),
        )
    return ErrorRecord(
        kind=kind,
        step=failed_step,
        type=type(exception).__name__ if exception is not None else "NoResult",
        message=messages[kind],
        traceback=None,
    )


def finish_record(
    record: TrialRecord,
    plan: TrialPlan,
    outcome: execute.Execution,
    started: datetime,
    timings: Mapping[str, float],
) -> TrialRecord:
    """The record of how the trial ended: each step's results, the error, status, times."""
    summaries = _step_summaries(outcome.notebook)
    error = _describe_error(plan, outcome, summaries, plan.request.timeout)
    steps = tuple(_step_ended(step, summaries.get(step.name)) for step in record.steps)
    warned = tuple(text for step in steps for text in step.warnings or ())
    finished = utc_now()
    return replace(
        record,
        steps=steps,
        main=steps[-1].main,
        metrics=steps[-1].metrics,
        warnings=warned or None,
        error=error,
        status=final_status(error),
        finished=finished.isoformat(),
        duration_s=round((finished - started).total_seconds(), 3),
        timings=rounded_timings(timings),
    )


def _step_ended(step: StepRecord, summary: StepSummary | None) -> StepRecord:
    """``step`` with what it returned, as its summary in the notebook says."""
    if summary is None:  # it never returned
        return replace(step, main=None, metrics={})
    return replace(
        step,
        main=summary.main,
        metrics=summary.metrics,
        warnings=summary.warnings or None,
        defaults=summary.defaults,
        cache_key=(summary.cache or {}).get("key"),
        cache_parts=(summary.cache or {}).get("parts"),
        cached_from=(summary.cache or {}).get("cached_from"),
    )


def rounded_timings(timings: Mapping[str, float]) -> dict[str, float]:
    """The record's ``timings``: seconds, to the millisecond."""
    return {name: round(value, 3) for name, value in timings.items()}


def publish_trial(
    folder: Path, record: TrialRecord, notebook: nbformat.NotebookNode | None
) -> None:
    """Write the executed notebook, its figures and the page (a header alone without a
    notebook), then drop the running notebook."""
    beside = [name for name in (LOG_NAME, store.PATCH_NAME) if (folder / name).is_file()]
    if notebook is not None:
        write_atomic(folder / "trial.ipynb", nbformat.writes(notebook))
        page = publish.render_page(notebook, record_data(record), beside)
        for name, data in page.figures.items():
            write_atomic(folder / name, data)
        publish.write_assets(folder.parent)
        html = page.html
    else:
        html = publish.render_missing_notebook(record_data(record), beside)
    write_atomic(folder / "trial.html", html)
    with contextlib.suppress(FileNotFoundError):
        (folder / RUNNING_NOTEBOOK).unlink()


def render_running_page(
    folder: Path,
    record: TrialRecord,
    notebook: nbformat.NotebookNode,
    progress: Mapping[str, object],
    reload_s: float,
) -> Callable[[], None]:
    """The page of a trial still running, from ``notebook`` as far as it has run, and what
    writes it: its header says it runs and where (``progress``: its heartbeat's fields), and
    it reloads itself every ``reload_s`` seconds until the final page replaces it."""
    beside = [name for name in (LOG_NAME, store.PATCH_NAME) if (folder / name).is_file()]
    now = utc_now()
    running = {
        "where": progress_details(parse_progress({**progress, "time": None}), now),
        "written": f"{now:%Y-%m-%d %H:%M:%S} UTC",
        "reload_s": int(reload_s),
    }
    page = publish.render_page(notebook, record_data(record), beside, running)

    def write() -> None:
        for name, data in page.figures.items():
            write_atomic(folder / name, data)
        publish.write_assets(folder.parent)
        write_atomic(folder / "trial.html", page.html)

    return write


def keep_running_notebook(folder: Path) -> None:
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


def record_storage_failure(record: TrialRecord, error: OSError) -> TrialRecord:
    """The record of a trial whose files could not all be written: failed, for storage;
    an experiment's own error stays, with the storage message beside it."""
    described = _storage_error(error, "a file")
    if record.error is None:
        return replace(record, status="failed", error=described)
    return replace(record, error=replace(record.error, storage=described.message))


def _storage_error(error: OSError, unnamed: str) -> ErrorRecord:
    """The record's ``error`` for a write the disk refused (``unnamed``: the file it names
    when the error names none)."""
    name = Path(error.filename).name if error.filename else unnamed
    code = errno.errorcode.get(error.errno or 0, "OSError")
    return ErrorRecord(
        kind="storage",
        step=None,
        type=type(error).__name__,
        message=(
            f"could not write {name}: {error.strerror or error} ({code}); the files written "
            "before it are kept. Free space in the trials folder and run the trial again."
        ),
        traceback=None,
    )


def write_final_record(folder: Path, record: TrialRecord, reserve: Path | None) -> None:
    """Write the final record into the room held for it: the reserve is given back first,
    and a record the disk refuses even so leaves a mark for the trial's next reader."""
    _release(reserve)
    store.write_final_record(folder, record)


def _release(reserve: Path | None) -> None:
    if reserve is not None:
        with contextlib.suppress(FileNotFoundError):
            reserve.unlink()
