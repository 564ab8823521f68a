"""A Slurm cluster: the sweep as one job array through submitit, fire and forget.

The submitting process settles lock-in, ids and folders, writes each trial's ``queued``
record with its job's id, and is done: the sweep's outcomes are ``queued``. With ``wait``
it watches the records until every trial has ended instead. On a node, each task runs its
trial with ``run_plan`` and keeps a heartbeat in the trial's folder; the index is updated
from there, since nobody waits for the trials to come back.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mitosis import catalog, dead_runs, liveness
from mitosis.adapters import slurm, store
from mitosis.core.record import FINAL_STATUSES
from mitosis.core.slurm_options import SlurmOptions
from mitosis.core.trial_record import parse_record, record_data
from mitosis.errors import RecordError, TrialNotFoundError
from mitosis.executors import NOT_STARTED, QUEUED, Outcome
from mitosis.lock_in import Reservation
from mitosis.pipeline import run_plan
from mitosis.planning import TrialPlan
from mitosis.recording import utc_now
from mitosis.trials import Trial

# submitit's pickles and the jobs' logs, inside the trials folder the nodes share.
SUBMITIT_FOLDER = ".slurm"
# How long a task waits for the submitter to write its ``queued`` record.
_RECORD_WAIT_S = 60.0
# How often a waiting sweep reads its trials' records.
_POLL_S = 1.0


def connect(options: SlurmOptions) -> None:
    """Refuse, before anything is written, a cluster or partition that cannot take the jobs."""
    slurm.require_submitit()
    slurm.check_partition(options.partition)


class SlurmExecutor:
    """Submits the trials of one sweep as one job array; waits for them only if asked."""

    drain_timeout: float | None = 30.0

    def __init__(self, trials_folder: Path, options: SlurmOptions, wait: bool) -> None:
        self._trials_folder = trials_folder
        self._options = options
        self._wait = wait
        self._queue: list[tuple[TrialPlan, Reservation]] = []
        self._out: dict[str, tuple[TrialPlan, Reservation, str]] = {}  # trial id -> task
        self._running = 0
        self._last_poll = 0.0

    def submit(self, plan: TrialPlan, reservation: Reservation) -> None:
        """Hold the trial back: the whole sweep goes as one array on the first collect."""
        self._queue.append((plan, reservation))

    def _submit_array(self) -> list[Outcome]:
        jobs, self._queue = self._queue, []
        if not jobs:
            return []
        name = {"job_name": f"mitosis-{jobs[0][0].experiment}"[:60]}
        tasks = slurm.submit_array(
            self._trials_folder / SUBMITIT_FOLDER,
            {**name, **self._options.parameters},
            run_task,
            [(plan, reservation, self._options.heartbeat_s) for plan, reservation in jobs],
        )
        outcomes = []
        for (plan, reservation), task in zip(jobs, tasks, strict=True):
            record = queued_record(plan, reservation, task, self._options.heartbeat_s)
            store.write_record(reservation.folder, parse_record(record))
            self._out[reservation.trial_id] = (plan, reservation, task)
            trial = Trial(parse_record(record), reservation.folder)
            outcomes.append(Outcome(plan, QUEUED, reservation.trial_id, trial, f"Slurm job {task}"))
        catalog.refresh(self._trials_folder)
        return outcomes

    def collect(self, timeout: float) -> list[Outcome]:
        """Every trial, ``queued``, once submitted; with ``wait``, then each one as it ends."""
        submitted = self._submit_array()
        if not self._wait:
            self._out.clear()
        if submitted or not self._wait:
            return submitted
        if time.monotonic() - self._last_poll < _POLL_S:
            time.sleep(timeout)
            return []
        self._last_poll = time.monotonic()
        return self._ended()

    def _ended(self) -> list[Outcome]:
        ended, running = [], 0
        for trial_id, (plan, reservation, _task) in list(self._out.items()):
            folder = reservation.folder
            with contextlib.suppress(RecordError):  # caught mid-replace: the next look
                record = record_data(dead_runs.settle_record(folder, store.read_record(folder)))
                running += record.get("status") == "running"
                if record.get("status") in FINAL_STATUSES:
                    del self._out[trial_id]
                    trial = Trial(parse_record(record), reservation.folder)
                    ended.append(Outcome(plan, trial.status, trial_id, trial))
        self._running = running
        return ended

    def pending(self) -> int:
        """Trials submitted whose end this sweep still waits for (none without ``wait``)."""
        return len(self._queue) + len(self._out)

    def running(self) -> int:
        """The trials whose records said ``running`` at the last look."""
        return self._running

    def stop(self) -> list[Outcome]:
        """Cancel every task not yet ended; their trials are recorded ``interrupted``. Those
        not submitted yet never will be."""
        held, self._queue = self._queue, []
        out = list(self._out.values())
        with contextlib.suppress(Exception):  # a lost controller: the records say the rest
            slurm.cancel(task for _, _, task in out)
        for _, reservation, task in out:
            with contextlib.suppress(RecordError, OSError):
                _record_cancelled(reservation.folder, task, "the waiting sweep was stopped")
        return [Outcome(plan, NOT_STARTED, reservation.trial_id) for plan, reservation in held]

    def close(self) -> None:
        """Nothing is held: Slurm keeps the jobs."""


def queued_record(
    plan: TrialPlan, reservation: Reservation, task: str, heartbeat_s: float
) -> dict[str, Any]:
    """The record of a trial waiting in Slurm's queue: what it will run, and its job."""
    from mitosis.core.record import SCHEMA_VERSION

    job_id, index = slurm.split_task_id(task)
    return {
        "record": SCHEMA_VERSION,
        "id": reservation.trial_id,
        "experiment": plan.experiment,
        "variant": plan.variant,
        "iteration": None,
        "status": QUEUED,
        "note": plan.request.note,
        "debug": plan.request.debug,
        "main": None,
        "metrics": {},
        "error": None,
        "submitted": utc_now().isoformat(),
        "git": plan.git.as_record(),
        "command": plan.request.command,
        "slurm": _slurm_block(job_id, index, None, "PENDING", heartbeat_s),
    }


def _slurm_block(
    job_id: str, index: int | None, node: str | None, state: str, heartbeat_s: float
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "array_index": index,
        "node": node,
        "state": state,
        "heartbeat_s": heartbeat_s,
    }


def run_task(plan: TrialPlan, reservation: Reservation, heartbeat_s: float) -> str | None:
    """One task of the array, on its node: the trial, with a heartbeat; its final status.

    A trial cancelled while it waited in the queue (its record no longer ``queued``) does
    not start.
    """
    status = _status_when_started(reservation.folder)
    if status is not None and status != QUEUED:
        return None
    place = slurm.this_task()
    assert place is not None, "run_task runs inside a Slurm job"
    block = _slurm_block(place.job_id, place.array_index, place.node, "RUNNING", heartbeat_s)
    with _slurm_signals() as stop:
        trial = _in_thread(
            lambda: run_plan(
                plan, reservation, stop, annotations={"slurm": block}, heartbeat_s=heartbeat_s
            )
        )
    record = _with_final_state(trial.record, place.task_id, stop.is_set())
    store.write_record(reservation.folder, parse_record(record))
    catalog.record_trial(plan.trials_folder, record)
    return str(record["status"])


@contextlib.contextmanager
def _slurm_signals() -> Iterator[threading.Event]:
    """An event Slurm's SIGTERM sets (a cancel, a time limit): the trial then stops its
    kernel and records itself before the SIGKILL that follows. However often srun repeats
    the signal, it only sets the event. submitit's SIGUSR2 before a time limit is ignored:
    its handler would raise inside the trial."""
    stop = threading.Event()
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: stop.set()),
        signal.SIGUSR2: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
    }
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _in_thread(work: Callable[[], Trial]) -> Trial:
    """``work()`` in a thread of its own, so that this (main) thread keeps taking signals."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["trial"] = work()
        except BaseException as error:  # given back to the main thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name="mitosis-slurm-trial")
    worker.start()
    while worker.is_alive():
        worker.join(0.5)
    if "error" in outcome:
        raise outcome["error"]
    trial: Trial = outcome["trial"]
    return trial


def _status_when_started(folder: Path) -> str | None:
    """The record's status once the submitter has written it (it writes right after sbatch)."""
    deadline = time.monotonic() + _RECORD_WAIT_S
    while time.monotonic() < deadline:
        try:
            return str(store.read_record(folder).status)
        except RecordError:
            time.sleep(0.2)
    return None


def _status_now(folder: Path) -> str | None:
    try:
        return str(store.read_record(folder).status)
    except RecordError:
        return None


def _with_final_state(record: dict[str, Any], task: str, signalled: bool) -> dict[str, Any]:
    """The final record with its job's state: ``COMPLETED`` once the trial ended by itself,
    Slurm's word (CANCELLED, TIMEOUT …) when Slurm's SIGTERM stopped it (its kernel, which
    got the signal too, may have died first: that is no failure of the experiment's)."""
    block = dict(record.get("slurm") or {})
    if not signalled or record.get("status") == "succeeded":
        return {**record, "slurm": {**block, "state": "COMPLETED"}}
    state = slurm.why_signalled(task) or "unknown"
    error = {
        "kind": "interrupted",
        "step": (record.get("error") or {}).get("step"),
        "type": "SlurmJobEnded",
        "message": f"Slurm ended job {task} as {state}; the trial's kernel was stopped.",
        "traceback": None,
    }
    return {**record, "status": "interrupted", "error": error, "slurm": {**block, "state": state}}


def _record_cancelled(folder: Path, task: str, why: str) -> liveness.Settled:
    return liveness.mark_interrupted(
        folder, "CANCELLED", f"Slurm job {task} was cancelled ({why}).", expected=None
    )


def cancel_trials(trials_folder: Path, queries: Sequence[str]) -> list[Trial]:
    """Cancel the Slurm jobs of queued or running trials, and record them ``interrupted``.

    Every trial is found and checked before any job is cancelled.
    """
    found = []
    for query in queries:
        folder = store.find_trial(trials_folder, query)
        record = record_data(store.read_record(folder))
        block = record.get("slurm")
        if not isinstance(block, dict) or record.get("status") not in (QUEUED, "running"):
            raise TrialNotFoundError(
                f"trial {folder.name} is {record.get('status')}, not a queued or running "
                "trial of a Slurm job; only those can be cancelled."
            )
        found.append((folder, slurm.task_id(str(block["job_id"]), block.get("array_index"))))
    slurm.cancel(task for _, task in found)
    trials = []
    for folder, task in found:
        settled = _record_cancelled(folder, task, "mitosis-nb cancel")
        catalog.record_trial(trials_folder, settled.record)
        trials.append(Trial(parse_record(settled.record), folder))
    return trials
