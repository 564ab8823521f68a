"""Runs that died: a ``running`` record whose runner is gone becomes ``interrupted``.

A runner killed outright (power, OOM killer, ``kill -9``) writes no final record; the
next reader that finds its process gone records why the trial stopped, and what it left.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from mitosis import liveness
from mitosis.adapters import processes, store
from mitosis.core.summary import TrialSummary, summarize_record
from mitosis.core.trial_record import ErrorRecord, TrialRecord, parse_record, record_data
from mitosis.errors import RecordError

# Less free space than this where a runner stopped mid-trial points at a full disk: a final
# record (a few kB), a notebook and a page did not fit.
_NEARLY_FULL = 1 << 20


def _died_error(record: TrialRecord, now: datetime, folder: Path) -> ErrorRecord:
    host = record.environment.get("hostname")
    message = (
        f"the runner process (pid {record.pid} on {host}) died before the trial "
        f"finished; mitosis-nb found it gone at {now:%Y-%m-%d %H:%M:%S} UTC.{_why_stopped(folder)}"
    )
    return ErrorRecord(
        kind="interrupted", step=None, type="RunnerDied", message=message, traceback=None
    )


def _why_stopped(folder: Path) -> str:
    """What the folder tells of a dead runner's end: a refused final record, a full disk."""
    if store.final_record_refused(folder):
        return (
            " It had run, but the disk refused its final record (full or failing); the "
            "notebook and results it wrote are kept."
        )
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if free >= _NEARLY_FULL:
        return ""
    written = [name for name in ("trial.ipynb", "trial.html") if (folder / name).is_file()]
    return (
        f" Its disk has {free // 1024} kB free, so it probably stopped on a full disk "
        f"(written: {', '.join(written) or 'neither notebook nor page'})."
    )


def mark_interrupted(folder: Path) -> TrialRecord:
    """Record a ``running`` trial whose runner is known dead as ``interrupted``."""
    # Read again: the runner, now known dead, wrote its last record before dying, and that
    # record (perhaps final after all) is what gets rewritten, never an older copy.
    record = store.read_record(folder)
    if record.status == "running":
        error = _died_error(record, datetime.now(timezone.utc), folder)
        record = replace(record, status="interrupted", error=error)
        store.drop_reserves(folder)
        store.write_record(folder, record)
    return record


def adopt_unfinished(folder: Path) -> TrialRecord | None:
    """The record of a trial whose runner died as it wrote its very first record.

    Only the temporary copy is there, whole; once its runner is known dead, nobody else
    will put it in place, so it becomes the record, and the trial ``interrupted``.
    """
    if (folder / store.RECORD_NAME).exists():
        return None  # damaged, not missing: that is for a person to look at
    for temp in store.unfinished_records(folder):
        try:
            data = store.read_record_file(temp)
        except RecordError:  # cut short: nothing to adopt
            continue
        summary = summarize_record(folder.name, record_data(data))
        if processes.runner_state(summary.hostname, summary.pid, summary.pid_start) != "dead":
            return None
        try:
            os.replace(temp, folder / store.RECORD_NAME)
            return mark_interrupted(folder)
        except (OSError, RecordError):
            return None
    return None


def runner_flag(summary: TrialSummary) -> str | None:
    """Why a ``running`` trial cannot be checked from here, or None."""
    state = processes.runner_state(summary.hostname, summary.pid, summary.pid_start)
    if state == "elsewhere":
        return (
            f"running on host {summary.hostname} (pid {summary.pid}): its runner cannot be "
            "checked from here; it may have died."
        )
    if state == "unknown":
        return "running, but the record does not say which process runs it."
    return None


def settle_record(folder: Path, record: TrialRecord) -> TrialRecord:
    """The record as it stands: a ``running`` one whose runner died here becomes ``interrupted``."""
    if (settled := liveness.settle(folder, record.status)) is not None:
        return parse_record(settled.record)  # a Slurm job's trial: Slurm and its heartbeat say
    if record.status != "running":
        return record
    summary = summarize_record(folder.name, record_data(record))
    if processes.runner_state(summary.hostname, summary.pid, summary.pid_start) != "dead":
        return record
    try:
        return mark_interrupted(folder)
    except OSError:  # a full or read-only disk: shown as it stands, settled by a later reader
        return record
