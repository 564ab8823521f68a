"""Sweeps: the trials of one request, run by an executor, gathered and settled here.

The submitting process claims every variant and allocates every trial's id and folder
before any trial starts (``lock_in.lock_in_sweep``); trials then run wherever the executor
puts them (``mitosis.executors``), each finished one is reported back here, and Ctrl-C or
SIGTERM stops the running ones (recorded ``interrupted``) and never starts the pending ones.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.errors import ParameterError
from mitosis.executors import (
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    QUEUED,
    SKIPPED,
    SUCCEEDED,
    Executor,
    Outcome,
)
from mitosis.interrupts import TrialInterrupted, sigterm_as_interrupt
from mitosis.lock_in import Reservation, lock_in_sweep, release
from mitosis.planning import TrialPlan
from mitosis.trials_folder import TrialsFolder

__all__ = [
    "FAILED",
    "INTERRUPTED",
    "NOT_STARTED",
    "QUEUED",
    "SKIPPED",
    "SUCCEEDED",
    "Outcome",
    "SweepObserver",
    "SweepOptions",
    "SweepResult",
    "run_sweep",
]

# ``--scheduler slurm``: a Slurm cluster rather than a Dask scheduler's address.
SLURM = "slurm"
# How often the progress bar hears from a sweep when no trial ends (an ETA moves).
_TICK_S = 0.25


@dataclass(frozen=True)
class SweepOptions:
    """Where and how a sweep runs."""

    workers: int = 1
    scheduler: str | None = None
    skip_existing: bool = False
    wait: bool = False  # a Slurm sweep: wait for its trials to end
    slurm: tuple[str, ...] = ()  # --slurm KEY=VALUE, over [tool.mitosis.slurm]


@dataclass(frozen=True)
class SweepResult:
    """Every trial's outcome, in the order of the sweep, and whether it was stopped."""

    outcomes: list[Outcome]
    stopped: bool

    def with_status(self, status: str) -> list[Outcome]:
        """The outcomes with one status."""
        return [outcome for outcome in self.outcomes if outcome.status == status]


class SweepObserver(Protocol):
    """What the command line shows while a sweep runs; called in the submitting thread."""

    def start(self, total: int) -> None:
        """Every variant is claimed; ``total`` trials will run."""

    def progress(self, finished: int, failed: int, running: int) -> None:
        """The counts changed (or time passed: an ETA moves)."""

    def finished(self, outcome: Outcome) -> None:
        """One trial ended."""


class _Silent:
    def start(self, total: int) -> None:
        pass

    def progress(self, finished: int, failed: int, running: int) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        pass


# A trial still queued or running covers its variant too: submitting it again would run it twice.
_COVERING = (SUCCEEDED, "running", "queued")


def _find_existing(plans: Sequence[TrialPlan]) -> dict[int, tuple[str, str]]:
    """For each plan a non-debug trial already covers, that trial's id and status.

    Covered means same experiment, same tracked variant, same commit, and succeeded, queued
    or running. A debug sweep runs uncommitted code, so nothing at its commit covers it.
    """
    if not plans or plans[0].request.debug:
        return {}
    done: dict[tuple[str | None, str | None, str | None], tuple[str, str]] = {}
    for summary in TrialsFolder(plans[0].trials_folder).collect().summaries:
        if summary.status in _COVERING and not summary.debug:
            key = (summary.experiment, summary.variant, summary.commit)
            if done.get(key, ("", ""))[1] != SUCCEEDED:  # a success says the most
                done[key] = (summary.id, summary.status)
    found = {}
    for index, plan in enumerate(plans):
        existing = done.get((plan.experiment, plan.variant, plan.git.commit))
        if existing is not None:
            found[index] = existing
    return found


def run_sweep(
    plans: Sequence[TrialPlan],
    options: SweepOptions,
    observer: SweepObserver | None = None,
    ahead: Sequence[KernelAhead] = (),
) -> SweepResult:
    """Lock in, then run every plan not skipped, ``options.workers`` at a time or on Dask.

    ``ahead``, kernels started while the sweep was prepared, serve the first local trials,
    one each; the caller closes them.
    """
    if options.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {options.workers}.")
    observer = observer or _Silent()
    # One progress bar for the sweep: papermill's per-cell bars would fight over the terminal.
    plans = [
        dataclasses.replace(plan, request=dataclasses.replace(plan.request, progress=False))
        for plan in plans
    ]
    existing = _find_existing(plans) if options.skip_existing else {}
    skipped = {
        index: Outcome(
            plan,
            SKIPPED,
            existing[index][0],
            message=f"already {existing[index][1]} at this commit",
        )
        for index, plan in enumerate(plans)
        if index in existing
    }
    todo = [(index, plan) for index, plan in enumerate(plans) if index not in existing]
    # Before any write: connected, and every worker able to run these trials.
    executor = _executor(options, plans[0], len(todo), ahead)
    try:
        reservations = lock_in_sweep([plan for _, plan in todo])
        jobs = list(zip([plan for _, plan in todo], reservations, strict=True))
        observer.start(len(jobs))
        try:
            outcomes, stopped = _gather(executor, jobs, observer)
        except BaseException:
            release(reservations)  # whatever broke, trials that never started leave no folder
            raise
    finally:
        executor.close()
    release([job[1] for job, out in zip(jobs, outcomes, strict=True) if out.status == NOT_STARTED])
    by_index = {index: outcome for (index, _), outcome in zip(todo, outcomes, strict=True)}
    by_index.update(skipped)
    return SweepResult([by_index[index] for index in range(len(plans))], stopped)


def _executor(
    options: SweepOptions,
    first: TrialPlan,
    trials: int,
    ahead: Sequence[KernelAhead],
) -> Executor:
    trials_folder = first.trials_folder
    if options.scheduler is None:
        from mitosis.executors.threads import ThreadExecutor

        return ThreadExecutor(options.workers, trials, ahead)
    if options.scheduler == SLURM:
        from mitosis.core.slurm_options import slurm_options
        from mitosis.executors import slurm

        settings = slurm_options(first.config.slurm, options.slurm, str(first.config.pyproject))
        slurm.connect(settings)
        return slurm.SlurmExecutor(trials_folder, settings, options.wait)
    from mitosis.executors.cluster import DaskExecutor, connect  # only a cluster needs Dask

    cluster = connect(options.scheduler, trials_folder)
    return DaskExecutor(cluster, trials_folder, sweep_id=uuid.uuid4().hex)


class _Tally:
    """Each outcome reported once, and the counts for the progress bar."""

    def __init__(self, observer: SweepObserver, executor: Executor) -> None:
        self.observer = observer
        self.executor = executor
        self.outcomes: dict[str | None, Outcome] = {}
        self.finished = 0
        self.failed = 0

    def add(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.status == QUEUED and self.executor.pending():
                self.observer.finished(outcome)  # submitted, and waited for: its end comes later
                continue
            if outcome.trial_id in self.outcomes:
                continue
            self.outcomes[outcome.trial_id] = outcome
            if outcome.status != NOT_STARTED:
                self.finished += 1
                self.failed += outcome.status not in (SUCCEEDED, QUEUED)
                self.observer.finished(outcome)
            elif outcome.message:  # a trial that could not begin says why
                self.observer.finished(outcome)
        self.observer.progress(self.finished, self.failed, self.executor.running())


def _gather(
    executor: Executor, jobs: Sequence[tuple[TrialPlan, Reservation]], observer: SweepObserver
) -> tuple[list[Outcome], bool]:
    """Submit every trial and collect them all; on a stop, drain what still runs.

    Returns the outcomes in the order of ``jobs`` and whether the sweep was stopped.
    """
    tally = _Tally(observer, executor)
    submitted = 0
    stopped = False
    with sigterm_as_interrupt() as stop:
        try:
            for plan, reservation in jobs:
                executor.submit(plan, reservation)
                submitted += 1
            tally.add([])
            while executor.pending():
                tally.add(executor.collect(_TICK_S))
                stop.raise_if_received()
        except (KeyboardInterrupt, TrialInterrupted):
            stopped = True
            tally.add(executor.stop())
            _drain(executor, tally)
    return [_outcome_of(job, tally, index < submitted) for index, job in enumerate(jobs)], stopped


def _drain(executor: Executor, tally: _Tally) -> None:
    """Wait for stopped trials to record themselves; further Ctrl-Cs only repeat the wait."""
    limit = executor.drain_timeout
    deadline = None if limit is None else time.monotonic() + limit
    while executor.pending() and (deadline is None or time.monotonic() < deadline):
        try:
            tally.add(executor.collect(_TICK_S))
        except (KeyboardInterrupt, TrialInterrupted):
            continue


def _outcome_of(job: tuple[TrialPlan, Reservation], tally: _Tally, submitted: bool) -> Outcome:
    plan, reservation = job
    outcome = tally.outcomes.get(reservation.trial_id)
    if outcome is not None:
        return outcome
    if not submitted:  # stopped while the sweep was still submitting
        return Outcome(plan, NOT_STARTED, reservation.trial_id)
    # Still out there after the drain: say so, and keep its folder.
    message = "did not report back after the sweep was stopped"
    return Outcome(plan, INTERRUPTED, reservation.trial_id, message=message)
