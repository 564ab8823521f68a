"""Sweeps: the trials of one request, run on this machine's threads or on a Dask cluster.

The submitting process claims every variant and allocates every trial's id and folder
before any trial starts (``lock_in.lock_in_sweep``); trials then run wherever the
executor puts them, each finished one is reported back here, and Ctrl-C or SIGTERM
stops the running ones (recorded ``interrupted``) and never starts the pending ones.

Local trials run in threads, not processes: a trial's work happens in its kernel, a
separate process already, so a runner thread mostly waits on it; threads share one
registry and index writer, and a stop reaches them through one ``threading.Event``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mitosis import catalog
from mitosis.adapters import execute, processes, store
from mitosis.errors import MitosisError, ParameterError, RecordError, one_line
from mitosis.lock_in import Reservation, lock_in_sweep, release
from mitosis.pipeline import run_plan
from mitosis.planning import TrialPlan
from mitosis.trials import Trial

SUCCEEDED, FAILED, INTERRUPTED = "succeeded", "failed", "interrupted"
SKIPPED, NOT_STARTED = "skipped", "not started"
# How long a stopped sweep waits for its running trials to stop their kernels and record.
DRAIN_TIMEOUT_S = 60.0
# How often a sweep that lost its Dask scheduler looks at its running trials' records.
AWAIT_POLL_S = 0.5
# How often a Dask sweep brings the index page up to date with the trials running remotely.
INDEX_REFRESH_S = 2.0


@dataclass(frozen=True)
class SweepOptions:
    """Where and how a sweep runs."""

    workers: int = 1
    scheduler: str | None = None
    skip_existing: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of one trial of a sweep."""

    plan: TrialPlan
    status: str  # succeeded | failed | interrupted | skipped | not started
    trial_id: str | None = None
    trial: Trial | None = None
    message: str | None = None  # why it was skipped, or the refusal that stopped it
    storage: bool = False  # the disk refused a write before the trial had a record to say so


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


def find_existing(plans: Sequence[TrialPlan]) -> dict[int, str]:
    """For each plan a succeeded non-debug trial already covers, that trial's id.

    Covered means same experiment, same tracked variant, same commit. A debug sweep runs
    uncommitted code, so nothing at its commit covers it.
    """
    if not plans or plans[0].request.debug:
        return {}
    done: dict[tuple[str | None, str | None, str | None], str] = {}
    for summary in catalog.collect(plans[0].trials_folder).summaries:
        if summary.status == SUCCEEDED and not summary.debug:
            done[(summary.experiment, summary.variant, summary.commit)] = summary.id
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
    ahead: Sequence[execute.KernelAhead] = (),
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
    existing = find_existing(plans) if options.skip_existing else {}
    skipped = {
        index: Outcome(plan, SKIPPED, existing[index], message="already succeeded at this commit")
        for index, plan in enumerate(plans)
        if index in existing
    }
    todo = [(index, plan) for index, plan in enumerate(plans) if index not in existing]
    # Before any write: connected, and every worker able to run these trials.
    cluster = _connect(options.scheduler, plans[0].trials_folder) if options.scheduler else None
    try:
        reservations = lock_in_sweep([plan for _, plan in todo])
        jobs = [
            (plan, reservation) for (_, plan), reservation in zip(todo, reservations, strict=True)
        ]
        observer.start(len(jobs))
        try:
            if cluster is not None:
                ran, stopped = _run_on_dask(cluster, jobs, observer)
            else:
                ran, stopped = _run_on_threads(jobs, options.workers, observer, ahead)
        except BaseException:
            release(reservations)  # whatever broke, trials that never started leave no folder
            raise
    finally:
        if cluster is not None:
            cluster.close()
    release([o.reservation for o in ran if o.outcome.status == NOT_STARTED])
    by_index = {index: job.outcome for (index, _), job in zip(todo, ran, strict=True)}
    by_index.update(skipped)
    return SweepResult([by_index[index] for index in range(len(plans))], stopped)


@dataclass(frozen=True)
class _Ran:
    reservation: Reservation
    outcome: Outcome


def _outcome(plan: TrialPlan, reservation: Reservation, trial: Trial | None) -> Outcome:
    if trial is None:
        return Outcome(plan, NOT_STARTED, reservation.trial_id)
    return Outcome(plan, trial.status, trial.id, trial)


# A write refused by the disk (full, over quota, a file-size limit, failing).
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _refused(plan: TrialPlan, reservation: Reservation, error: BaseException) -> Outcome:
    # run_plan refused or crashed (a full disk, a vanished folder): the trial failed, and
    # the sweep goes on with the others.
    message = one_line(error, limit=2000)
    storage = isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS
    return Outcome(plan, FAILED, reservation.trial_id, message=message, storage=storage)


class _Tally:
    """Counts for the progress bar, and each outcome reported once, in the submitting thread."""

    def __init__(self, observer: SweepObserver) -> None:
        self.observer = observer
        self.finished = 0
        self.failed = 0

    def add(self, outcome: Outcome) -> None:
        if outcome.status != NOT_STARTED:
            self.finished += 1
            self.failed += outcome.status != SUCCEEDED
            self.observer.finished(outcome)
        elif outcome.message:  # a trial that could not begin says why
            self.observer.finished(outcome)


# --- this machine: a pool of threads, each supervising one kernel ---------------------------


def _run_on_threads(
    jobs: list[tuple[TrialPlan, Reservation]],
    workers: int,
    observer: SweepObserver,
    ahead: Sequence[execute.KernelAhead],
) -> tuple[list[_Ran], bool]:
    kernels = _Kernels(ahead, len(jobs))
    try:
        return _run_with_kernels(jobs, workers, observer, kernels)
    finally:
        kernels.close()


class _Kernels:
    """The kernels of a sweep's trials, each booted while earlier trials run.

    A trial that starts takes a booted kernel and starts one for a trial to come, so that
    a kernel's start-up (half a second to a second) overlaps running trials instead of
    adding to each. A booted kernel holds nothing of the user's until its trial runs.
    """

    def __init__(self, ahead: Sequence[execute.KernelAhead], trials: int) -> None:
        # The kernels started ahead first: the first of them imported the steps' code.
        self._ready = list(ahead)
        self._wanting = trials
        self._lock = threading.Lock()

    def take(self, plan: TrialPlan) -> execute.KernelAhead | None:
        """A booted kernel for ``plan``'s trial, if one is ready; boots the next one."""
        with self._lock:
            kernel = self._ready.pop(0) if self._ready else None
            self._wanting -= 1
            if self._wanting > len(self._ready):
                request = plan.request
                self._ready.append(
                    execute.KernelAhead(request.kernel, plan.config.root, request.import_roots)
                )
            return kernel

    def close(self) -> None:
        """Stop the kernels no trial took (a stopped sweep, or trials that failed early)."""
        with self._lock:
            ready, self._ready = self._ready, []
        for kernel in ready:
            kernel.close()


def _run_with_kernels(
    jobs: list[tuple[TrialPlan, Reservation]],
    workers: int,
    observer: SweepObserver,
    kernels: _Kernels,
) -> tuple[list[_Ran], bool]:
    cancel = threading.Event()
    running: set[str] = set()
    lock = threading.Lock()

    def job(plan: TrialPlan, reservation: Reservation) -> Trial | None:
        if cancel.is_set():
            return None
        with lock:
            running.add(reservation.trial_id)
        started = kernels.take(plan)
        try:
            return run_plan(plan, reservation, cancel, ahead=started)
        finally:
            with lock:
                running.discard(reservation.trial_id)

    tally = _Tally(observer)
    results: dict[Future[Trial | None], _Ran] = {}
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mitosis-trial")
    try:
        futures = {executor.submit(job, plan, res): (plan, res) for plan, res in jobs}
    except BaseException:  # Ctrl-C while submitting: stop what started, start nothing more
        cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise

    def settle(future: Future[Trial | None]) -> None:
        plan, reservation = futures[future]
        if future.cancelled():
            outcome = Outcome(plan, NOT_STARTED, reservation.trial_id)
        elif future.exception() is not None:
            outcome = _refused(plan, reservation, future.exception())  # type: ignore[arg-type]
        else:
            outcome = _outcome(plan, reservation, future.result())
        results[future] = _Ran(reservation, outcome)
        tally.add(outcome)

    def report() -> None:
        with lock:
            active = len(running)
        observer.progress(tally.finished, tally.failed, active)

    stopped = False
    with execute.sigterm_as_interrupt():
        try:
            _gather(set(futures), settle, report)
        except (KeyboardInterrupt, execute.TrialInterrupted):
            stopped = True
            cancel.set()
            for future in futures:
                future.cancel()
            _drain(lambda: _gather({f for f in futures if f not in results}, settle, report))
    executor.shutdown(wait=True)
    return [results[future] for future in futures], stopped


def _gather(
    pending: set[Future[Any]], settle: Callable[[Future[Any]], None], report: Callable[[], None]
) -> None:
    report()
    while pending:
        done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        for future in done:
            settle(future)
        report()


def _drain(gather: Callable[[], None]) -> None:
    """Wait for stopped trials to record themselves; further Ctrl-Cs only repeat the wait."""
    while True:
        try:
            gather()
            return
        except (KeyboardInterrupt, execute.TrialInterrupted):
            continue


# --- a Dask cluster: tasks keyed by trial id, the index kept here ---------------------------


def _connect(address: str, trials_folder: Path) -> Any:
    from mitosis.adapters import dask_executor  # only a --scheduler sweep needs Dask

    cluster = dask_executor.DaskCluster(address)
    created = not trials_folder.exists()
    try:
        store.ensure_folder(trials_folder)
        cluster.check_workers(trials_folder)
    except BaseException:
        cluster.close()
        if created:  # a refused sweep leaves nothing behind
            with contextlib.suppress(OSError):
                trials_folder.rmdir()
        raise
    return cluster


def remote_trial(
    plan: TrialPlan, reservation: Reservation, stop_name: str
) -> dict[str, Any] | None:
    """A sweep trial as a Dask task; returns its final record, or None if never started.

    Runs on a worker: it writes only its own trial folder, never the index. A rerun (the
    first worker died) takes the same reservation, so the trial keeps one id and one record.
    """
    from mitosis.adapters import dask_executor

    if not reservation.folder.parent.is_dir():
        raise MitosisError(
            f"this worker cannot see the trials folder {reservation.folder.parent}; every "
            "worker must see it at the same path (a shared filesystem)."
        )
    if not reservation.folder.is_dir():
        return None  # the sweep was stopped and its submitter released this trial
    with dask_executor.watch_stop(stop_name) as cancel:
        if cancel.is_set():
            return None
        return run_plan(plan, reservation, cancel, update_index=False).record


def _run_on_dask(
    cluster: Any, jobs: list[tuple[TrialPlan, Reservation]], observer: SweepObserver
) -> tuple[list[_Ran], bool]:
    stop_name = f"mitosis-stop-{jobs[0][1].trial_id}" if jobs else "mitosis-stop"
    futures = {
        cluster.submit(f"mitosis-trial-{res.trial_id}", remote_trial, plan, res, stop_name): (
            plan,
            res,
        )
        for plan, res in jobs
    }
    tally = _Tally(observer)
    results: dict[Any, _Ran] = {}
    threads = cluster.threads()

    def settle(future: Any) -> None:
        plan, reservation = futures[future]
        error = cluster.error_of(future)
        if error is not None:
            # A task the lost scheduler cancelled may still be running on its worker; once
            # the sweep is stopped, nobody waits for it.
            lost = future.status == "cancelled" and not stopped
            outcome = _without_result(plan, reservation, error, lost)
        else:
            record = future.result()
            trial = None if record is None else Trial(record=record, folder=reservation.folder)
            if record is not None:
                catalog.record_trial(plan.trials_folder, record)  # the index lives here
            outcome = _outcome(plan, reservation, trial)
        results[future] = _Ran(reservation, outcome)
        tally.add(outcome)

    def report() -> None:
        in_flight = len(futures) - len(results)
        observer.progress(tally.finished, tally.failed, min(in_flight, threads))

    stopped = False
    trials_folder = jobs[0][0].trials_folder if jobs else None
    with execute.sigterm_as_interrupt(), _keeping_index(trials_folder):
        try:
            report()
            for future in cluster.as_completed(futures):
                settle(future)
                report()
        except (KeyboardInterrupt, execute.TrialInterrupted):
            stopped = True
            cluster.stop(stop_name)  # running tasks stop their kernels, pending ones return
            # After the stop, a task that no worker has begun would only return: withdraw
            # it rather than wait for a worker that may never come.
            queued = cluster.queued(f for f in futures if f not in results)
            cluster.cancel(queued)
            for future in queued:
                plan, reservation = futures[future]
                results[future] = _Ran(reservation, _outcome(plan, reservation, None))
            remaining = [f for f in futures if f not in results]
            _drain(
                lambda: _settle_finished(cluster.wait(remaining, DRAIN_TIMEOUT_S), results, settle)
            )
    for future, (plan, reservation) in futures.items():
        if future not in results:  # still out there after the drain: say so, keep its folder
            message = "did not report back after the sweep was stopped"
            results[future] = _Ran(
                reservation, Outcome(plan, INTERRUPTED, reservation.trial_id, message=message)
            )
    return [results[future] for future in futures], stopped


@contextlib.contextmanager
def _keeping_index(trials_folder: Path | None) -> Iterator[None]:
    """While a Dask sweep runs, refresh the index page from the records every few seconds:
    workers write only their trial folders, so a trial that starts there shows as
    ``running`` only when this process looks."""
    done = threading.Event()

    def keep() -> None:
        while trials_folder is not None and not done.wait(INDEX_REFRESH_S):
            with contextlib.suppress(Exception):  # the next look, or the trial's end, will do
                catalog.refresh(trials_folder)

    keeper = threading.Thread(target=keep, name="mitosis-index-keeper", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


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
    if record.get("status") == "running" and lost:
        # The scheduler went, not the worker: the trial runs on and records its own end.
        record = _await_end(reservation.folder, record)
    record = catalog.settle_record(reservation.folder, record)  # a killed worker, here
    if record.get("status") == "running":
        host = (record.get("environment") or {}).get("hostname")
        message = (
            f"its task ended ({reason}) while the trial ran on {host}, where this sweep "
            "cannot tell whether it still runs; its record will say (`mitosis-nb list`)"
        )
        return Outcome(plan, INTERRUPTED, reservation.trial_id, message=message)
    catalog.record_trial(plan.trials_folder, record)
    return _outcome(plan, reservation, Trial(record=record, folder=reservation.folder))


def _await_end(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The record once its trial ends, or once its runner is gone (or cannot be watched,
    from another host: a worker there may have died with the scheduler)."""
    while record.get("status") == "running":
        pid, start = record.get("pid"), record.get("pid_start")
        host = (record.get("environment") or {}).get("hostname")
        if processes.runner_state(host, pid, start) != "alive":
            break
        time.sleep(AWAIT_POLL_S)
        try:
            record = store.read_record(folder)
        except RecordError:  # caught mid-replace or damaged: the next look decides
            continue
    return record


def _settle_finished(
    finished: Iterable[Any], results: dict[Any, _Ran], settle: Callable[[Any], None]
) -> None:
    for future in finished:
        if future not in results:  # a repeated drain must not count a trial twice
            settle(future)
