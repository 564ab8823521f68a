"""Is a trial still alive? Its heartbeat, and for one that Slurm runs, Slurm's word on its job.

Every trial's runner rewrites ``heartbeat`` in the trial's folder while the trial runs
(``mitosis.live``), with where the trial is (``mitosis.core.progress``), and beside it
``progress.js``, the same as a script that the index page loads (also from ``file://``).
On a compute node it does so every N seconds (the record's ``slurm.heartbeat_s``). Whoever
reads a Slurm trial's folder next, on any host, records a ``running`` trial ``interrupted``
once its heartbeat is older than three beats (or its runner is known dead here) and Slurm no
longer runs its job, with Slurm's final state (TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL …)
in the error; a ``queued`` trial whose job left the queue without starting it likewise.
Trials without a ``slurm`` block are not touched here: the runner's pid decides for them
(``mitosis.catalog``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mitosis.adapters import processes, slurm, store
from mitosis.atomic import write_atomic
from mitosis.core.embed import embed_json
from mitosis.core.progress import STALE_BEATS
from mitosis.core.trial_record import parse_record, record_data
from mitosis.errors import RecordError

QUEUED = "queued"
HEARTBEAT_NAME = "heartbeat"
PROGRESS_SCRIPT = "progress.js"
DEFAULT_HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class Settled:
    """What the folder's reader decided for a Slurm trial: its record, and whether it
    rewrote it (``interrupted``) just now."""

    record: dict[str, Any]
    changed: bool


def write_heartbeat(
    folder: Path, now: datetime, node: str, progress: dict[str, Any] | None = None
) -> None:
    """Say, in the trial's folder, that its runner on ``node`` is alive at ``now``, and where
    the trial is (``progress``: the fields of ``mitosis.core.progress``): as JSON in
    ``heartbeat``, then as a script the index page loads, ``progress.js``."""
    beat = {"time": now.isoformat(), "node": node, **(progress or {})}
    write_atomic(folder / HEARTBEAT_NAME, json.dumps(beat))
    # The page cannot read JSON from file://, but it can load a script that hands it over.
    script = f"mitosisProgress({embed_json(folder.name)}, {embed_json(beat)});\n"
    write_atomic(folder / PROGRESS_SCRIPT, script)


def read_heartbeat(folder: Path) -> dict[str, Any] | None:
    """The trial's last heartbeat, or None if it has none (or it was caught mid-replace)."""
    try:
        beat = json.loads((folder / HEARTBEAT_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return beat if isinstance(beat, dict) else None


def last_sign_of_life(folder: Path, record: dict[str, Any]) -> datetime | None:
    """The latest of the heartbeat's time and the trial's start."""
    times = [_parse_time(record.get("started"))]
    beat = read_heartbeat(folder)  # none yet, or caught mid-replace: the start will do
    if beat is not None:
        times.append(_parse_time(beat.get("time")))
    known = [moment for moment in times if moment is not None]
    return max(known) if known else None


def _parse_time(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def settle(folder: Path, listed: object, now: datetime | None = None) -> Settled | None:
    """The verdict on a ``queued`` or ``running`` Slurm trial in ``folder`` (``listed``: the
    status its reader has for it).

    None when the usual rules apply instead: not a Slurm trial, not queued or running, or
    no Slurm to ask from this host. A trial whose job Slurm still runs (or holds) is left as
    it is.
    """
    if listed not in (QUEUED, "running"):
        return None  # ended: nothing to ask Slurm, no record to read
    try:
        record = record_data(store.read_record(folder))
    except RecordError:
        return None
    block = record.get("slurm")
    status = record.get("status")
    if not isinstance(block, dict) or status not in (QUEUED, "running") or not block.get("job_id"):
        return None
    task = slurm.task_id(str(block["job_id"]), block.get("array_index"))
    state = slurm.state_of(task)
    if state is None:
        return None
    if state in slurm.ACTIVE_STATES:
        return Settled(record, False)
    now = now or datetime.now(timezone.utc)
    if status == "running" and not _gone_quiet(folder, record, block, now):
        return Settled(record, False)  # the runner may still be writing how it ended
    message = _ended_message(folder, record, task, state, now)
    return mark_interrupted(folder, state, message, expected=str(status))


def _gone_quiet(folder: Path, record: dict[str, Any], block: dict[str, Any], now: datetime) -> bool:
    """The runner's heartbeat is older than three beats, or its process is dead here."""
    environment = record.get("environment") or {}
    runner = processes.runner_state(
        environment.get("hostname"), record.get("pid"), record.get("pid_start")
    )
    if runner == "dead":
        return True
    beat = float(block.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)
    last = last_sign_of_life(folder, record)
    return last is None or (now - last).total_seconds() > STALE_BEATS * beat


def _ended_message(
    folder: Path, record: dict[str, Any], task: str, state: str, now: datetime
) -> str:
    named = (
        f"as {state}"
        if state != slurm.GONE
        else "(Slurm no longer knows the job: it ended over MinJobAge ago, state unknown)"
    )
    if record.get("status") == QUEUED:
        return f"Slurm job {task} ended {named} before the trial started."
    last = last_sign_of_life(folder, record)
    seen = f"{last:%Y-%m-%d %H:%M:%S} UTC" if last is not None else "never"
    node = (record.get("slurm") or {}).get("node") or "its node"
    return (
        f"Slurm job {task} ended {named} on {node} before the trial finished; its last "
        f"heartbeat was at {seen}, found stale at {now:%Y-%m-%d %H:%M:%S} UTC."
    )


def mark_interrupted(folder: Path, state: str, message: str, expected: str | None) -> Settled:
    """Record the trial ``interrupted`` with Slurm's ``state`` in its error, unless its record
    moved on meanwhile (read again first: its runner may have ended it after all)."""
    record = record_data(store.read_record(folder))
    allowed = (expected,) if expected else ("running", QUEUED)
    if record.get("status") not in allowed:
        return Settled(record, False)
    record["status"] = "interrupted"
    record["error"] = {
        "kind": "interrupted",
        "step": None,
        "type": "SlurmJobEnded",
        "message": message,
        "traceback": None,
    }
    record["slurm"] = {**(record.get("slurm") or {}), "state": state}
    store.drop_reserves(folder)
    store.write_record(folder, parse_record(record))
    return Settled(record, True)
