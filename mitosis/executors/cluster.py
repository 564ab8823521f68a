"""A Dask cluster: one task per trial, keyed by its id; the index is kept by the submitter.

Workers write only their trial folders, on a filesystem they share with the submitter;
what became of a task that returned nothing (its worker died, the scheduler went) is read
from its trial's folder.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from mitosis import dead_runs
from mitosis.adapters import processes, store
from mitosis.adapters.dask_executor import DaskCluster, watch_stop
from mitosis.core.trial_record import TrialRecord, record_data
from mitosis.errors import MitosisError, RecordError, one_line
from mitosis.executors import INTERRUPTED, NOT_STARTED, Outcome, finished_outcome
from mitosis.lock_in import Reservation
from mitosis.pipeline import run_plan
from mitosis.planning import TrialPlan
from mitosis.trials import Trial
from mitosis.trials_folder import TrialsFolder

# How long a stopped sweep waits for its running trials to stop their kernels and record.
DRAIN_TIMEOUT_S = 60.0
# How often a sweep that lost its Dask scheduler looks at its running trials' records.
AWAIT_POLL_S = 0.5
# How often a Dask sweep brings the index page up to date with the trials running remotely.
INDEX_REFRESH_S = 2.0


def connect(address: str, trials_folder: Path) -> DaskCluster:
    """The cluster at ``address``, with every worker able to run trials in ``trials_folder``.

    Checked before anything is written: a refused sweep leaves nothing behind.
    """
    cluster = DaskCluster(address)
    created = not trials_folder.exists()
    try:
        TrialsFolder(trials_folder).ensure()
        cluster.check_workers(trials_folder)
    except BaseException:
        cluster.close()
        if created:
            with contextlib.suppress(OSError):
                trials_folder.rmdir()
        raise
    return cluster


def remote_trial(plan: TrialPlan, reservation: Reservation, stop_name: str) -> TrialRecord | None:
    """A sweep trial as a Dask task; returns its final record, or None if never started.

    Runs on a worker: it writes only its own trial folder, never the index. A rerun (the
    first worker died) takes the same reservation, so the trial keeps one id and one record.
    """
    if not reservation.folder.parent.is_dir():
        raise MitosisError(
            f"this worker cannot see the trials folder {reservation.folder.parent}; every "
            "worker must see it at the same path (a shared filesystem)."
        )
    if not reservation.folder.is_dir():
        return None  # the sweep was stopped and its submitter released this trial
    with watch_stop(stop_name) as cancel:
        if cancel.is_set():
            return None
        return run_plan(plan, reservation, cancel, update_index=False).trial_record


class DaskExecutor:
    """Runs the trials of one sweep as tasks of a connected Dask cluster."""

    # A worker that died with the scheduler never reports.
    drain_timeout: float | None = DRAIN_TIMEOUT_S

    def __init__(self, cluster: DaskCluster, trials_folder: Path, sweep_id: str) -> None:
        self._cluster = cluster
        self._trials_folder = trials_folder
        self._stop_name = f"mitosis-stop-{sweep_id}"
        self._jobs: dict[Any, tuple[TrialPlan, Reservation]] = {}
        self._threads = cluster.threads()
        self._stopped = False
        self._keeper_done = threading.Event()
        self._keeper = threading.Thread(
            target=self._keep_index, name="mitosis-index-keeper", daemon=True
        )
        self._keeper.start()

    def close(self) -> None:
        """Stop refreshing the index and disconnect; the cluster itself keeps running."""
        self._keeper_done.set()
        self._keeper.join()
        self._cluster.close()

    def _keep_index(self) -> None:
        """Refresh the index page from the records every few seconds: a trial that starts
        on a worker shows as ``running`` only when this process looks."""
        while not self._keeper_done.wait(INDEX_REFRESH_S):
            with contextlib.suppress(Exception):  # the next look, or the trial's end, will do
                TrialsFolder(self._trials_folder).refresh_site()

    def submit(self, plan: TrialPlan, reservation: Reservation) -> None:
        """One task per trial, keyed by its id so that the dashboard names it."""
        key = f"mitosis-trial-{reservation.trial_id}"
        future = self._cluster.submit(key, remote_trial, plan, reservation, self._stop_name)
        self._jobs[future] = (plan, reservation)

    def collect(self, timeout: float) -> list[Outcome]:
        """The tasks that finished since the last call, successfully or not."""
        done = self._cluster.wait_any(self._jobs, timeout)
        return [self._outcome(future, *self._jobs.pop(future)) for future in done]

    def _outcome(self, future: Any, plan: TrialPlan, reservation: Reservation) -> Outcome:
        error = self._cluster.error_of(future)
        if error is not None:
            # A task the lost scheduler cancelled may still be running on its worker; once
            # the sweep is stopped, nobody waits for it.
            lost = future.status == "cancelled" and not self._stopped
            return _without_result(plan, reservation, error, lost)
        record = future.result()
        if record is None:
            return finished_outcome(plan, reservation, None)
        TrialsFolder(plan.trials_folder).record_trial(record_data(record))  # the index lives here
        return finished_outcome(plan, reservation, Trial(record, reservation.folder))

    def pending(self) -> int:
        """Tasks not collected yet."""
        return len(self._jobs)

    def running(self) -> int:
        """At most one trial per worker thread runs."""
        return min(len(self._jobs), self._threads)

    def stop(self) -> list[Outcome]:
        """Tell running tasks to stop their kernels; withdraw those no worker has begun,
        rather than wait for a worker that may never come."""
        self._stopped = True
        self._cluster.stop(self._stop_name)
        queued = self._cluster.queued(self._jobs)
        self._cluster.cancel(queued)
        withdrawn = [self._jobs.pop(future) for future in queued]
        return [Outcome(plan, NOT_STARTED, reservation.trial_id) for plan, reservation in withdrawn]


def _without_result(
    plan: TrialPlan, reservation: Reservation, error: BaseException, lost: bool
) -> Outcome:
    """A task that returned no record: its worker died, the scheduler went, or it raised.

    The trial's folder, on the filesystem the workers share, tells what became of it.
    """
    reason = one_line(error)
    try:
        record = store.read_record(reservation.folder)
    except RecordError:  # it never began: its folder is released
        return Outcome(plan, NOT_STARTED, reservation.trial_id, message=f"never ran: {reason}")
    if record.status == "running" and lost:
        # The scheduler went, not the worker: the trial runs on and records its own end.
        record = _await_end(reservation.folder, record)
    record = dead_runs.settle_record(reservation.folder, record)  # a killed worker, here
    if record.status == "running":
        host = record.environment.get("hostname")
        message = (
            f"its task ended ({reason}) while the trial ran on {host}, where this sweep "
            "cannot tell whether it still runs; its record will say (`mitosis-nb list`)"
        )
        return Outcome(plan, INTERRUPTED, reservation.trial_id, message=message)
    TrialsFolder(plan.trials_folder).record_trial(record_data(record))
    return finished_outcome(plan, reservation, Trial(record, reservation.folder))


def _await_end(folder: Path, record: TrialRecord) -> TrialRecord:
    """The record once its trial ends, or once its runner is gone (or cannot be watched,
    from another host: a worker there may have died with the scheduler)."""
    while record.status == "running":
        host = record.environment.get("hostname")
        if processes.runner_state(host, record.pid, record.pid_start) != "alive":
            break
        time.sleep(AWAIT_POLL_S)
        try:
            record = store.read_record(folder)
        except RecordError:  # caught mid-replace or damaged: the next look decides
            continue
    return record
