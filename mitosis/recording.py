"""A trial's record from its plan to its final status: the running record, the error
described, the notebook and page published, and the final record written last."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
from mitosis.core.record import SCHEMA_VERSION, STORAGE_ERRNOS, from_json_safe
from mitosis.errors import (
    MitosisWarning,
    one_line,
)
from mitosis.kernel_side import LOG_NAME, STEP_MIMETYPE
from mitosis.planning import TrialPlan

RUNNING_NOTEBOOK = ".running.ipynb"


def utc_now() -> datetime:
    """The time now, in UTC: when a trial starts or ends."""
    return datetime.now(timezone.utc)


def initial_record(
    plan: TrialPlan, trial_id: str, started: datetime, iteration: int
) -> dict[str, Any]:
    """The record a trial starts with (``status: running``), from its plan."""
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


def warn_of_untracked(untracked: dict[str, list[str]]) -> None:
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
    if kind == "exception" and isinstance(exception, OSError) and exception.errno in STORAGE_ERRNOS:
        # papermill could not save the running notebook: the disk failed, not the experiment.
        return _storage_error(exception, RUNNING_NOTEBOOK)
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


def finish_record(
    record: dict[str, Any],
    plan: TrialPlan,
    outcome: execute.Execution,
    started: datetime,
    timings: dict[str, float],
) -> None:
    """Fill in how the trial ended: each step's results, the error, status, times."""
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
    finished = utc_now()
    record["finished"] = finished.isoformat()
    record["duration_s"] = round((finished - started).total_seconds(), 3)
    record["timings"] = {name: round(value, 3) for name, value in timings.items()}


def publish_trial(
    folder: Path, record: dict[str, Any], notebook: nbformat.NotebookNode | None
) -> None:
    """Write the executed notebook, its figures and the page (a header alone without a
    notebook), then drop the running notebook."""
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


def record_storage_failure(record: dict[str, Any], error: OSError) -> None:
    """Fail a trial whose files could not all be written; an experiment's own error stays."""
    described = _storage_error(error, "a file")
    if record["error"] is None:
        record["status"] = "failed"
        record["error"] = described
    else:
        record["error"]["storage"] = described["message"]


def _storage_error(error: OSError, unnamed: str) -> dict[str, Any]:
    """The record's ``error`` for a write the disk refused (``unnamed``: the file it names
    when the error names none)."""
    name = Path(error.filename).name if error.filename else unnamed
    code = errno.errorcode.get(error.errno or 0, "OSError")
    return {
        "kind": "storage",
        "step": None,
        "type": type(error).__name__,
        "message": (
            f"could not write {name}: {error.strerror or error} ({code}); the files written "
            "before it are kept. Free space in the trials folder and run the trial again."
        ),
        "traceback": None,
    }


def write_final_record(folder: Path, record: dict[str, Any], reserve: Path | None) -> None:
    """Write the final record into the room held for it: the reserve is given back first,
    and a record the disk refuses even so leaves a mark for the trial's next reader."""
    _release(reserve)
    store.write_final_record(folder, record)


def _release(reserve: Path | None) -> None:
    if reserve is not None:
        with contextlib.suppress(FileNotFoundError):
            reserve.unlink()
