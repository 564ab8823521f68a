"""A trial's life, as DESIGN section 3 tells it: ``run_plan`` creates the trial folder, locks
it in, executes the notebook in a fresh kernel and records and publishes how it ended;
``run_plans`` runs several one after another.

Planning (``planning``), lock-in (``lock_in``) and the record (``recording``) are modules
of their own; ``api`` is ``execute_trial``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mitosis import live
from mitosis.adapters import (
    execute,
    publish,
    render,
    resources,
    store,
)
from mitosis.adapters import git as gitstate
from mitosis.adapters.kernels import launch
from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.atomic import reserve_space, write_atomic
from mitosis.core.kernel_protocol import CachePolicy, KernelStep, steps_to_notebook
from mitosis.core.trial_record import TrialRecord, record_data
from mitosis.lock_in import Reservation, check_lock_in, claim_all, take_iteration, take_reserved
from mitosis.planning import TrialPlan
from mitosis.recording import (
    RUNNING_NOTEBOOK,
    finish_record,
    initial_record,
    keep_running_notebook,
    publish_trial,
    record_storage_failure,
    render_running_page,
    rounded_timings,
    utc_now,
    warn_of_untracked,
    write_final_record,
)
from mitosis.trials import Trial
from mitosis.trials_folder import TrialsFolder


def run_plan(
    plan: TrialPlan,
    reservation: Reservation | None = None,
    cancel: threading.Event | None = None,
    update_index: bool = True,
    ahead: KernelAhead | None = None,
    annotations: Mapping[str, Any] | None = None,
    heartbeat_s: float | None = None,
) -> Trial:
    """Run one checked trial: folder, lock-in, running record, kernel, page, final record.

    A sweep trial comes with its ``reservation`` (variants claimed already) and a ``cancel``
    event that stops it like Ctrl-C; Dask tasks pass ``update_index=False`` because the
    submitting process keeps the index. ``ahead`` is a kernel started while preparing.
    ``annotations`` are fields the record holds from the start (``slurm``: where it runs).
    From its running record to its final one the trial's folder keeps a heartbeat that says
    where it is, every ``heartbeat_s`` seconds at least (``live``).
    """
    executed = execute_plan(
        plan, reservation, cancel, update_index, ahead, annotations, heartbeat_s
    )
    return executed.publish()


def execute_plan(
    plan: TrialPlan,
    reservation: Reservation | None = None,
    cancel: threading.Event | None = None,
    update_index: bool = True,
    ahead: KernelAhead | None = None,
    annotations: Mapping[str, Any] | None = None,
    heartbeat_s: float | None = None,
    warm_up_page: bool = True,
) -> ExecutedTrial:
    """``run_plan`` up to the end of the trial's kernel: the rest, its page and its final
    record, is the returned trial's ``publish``, which another thread may call later. Until
    then its folder's heartbeat goes on and its record says it runs. ``warm_up_page`` builds
    the page's exporter while the kernel runs (without it, the first page builds it)."""
    clock = _Timer()
    started = utc_now()
    folder, running = _begin(plan, reservation, started, annotations or {})

    def render_page(notebook: Any, progress: dict[str, Any]) -> Callable[[], None]:
        return render_running_page(folder, running, notebook, progress, live.PAGE_EVERY_S)

    with contextlib.ExitStack() as watching:
        watch = watching.enter_context(live.watching(folder, heartbeat_s, render_page))
        if update_index:
            # Off the trial's path (a few fsynced writes), and done before its final row.
            listing = _show_running(plan.trials_folder, record_data(running))
            watching.callback(listing.join)
        record, reserve, outcome = _execute_begun(
            plan, folder, running, started, clock, watch, cancel, ahead, warm_up_page
        )
        return ExecutedTrial(
            plan, folder, record, outcome, clock, reserve, watch, update_index, watching.pop_all()
        )


@dataclass(frozen=True)
class ExecutedTrial:
    """A trial whose kernel has ended, its page and final record still to be written."""

    plan: TrialPlan
    folder: Path
    record: TrialRecord  # the final record, but for its publishing time
    execution: execute.Execution
    clock: _Timer
    reserve: Path | None  # disk space for the final record
    watch: live.TrialWatch  # its heartbeat, until the final record
    update_index: bool
    watching: contextlib.ExitStack  # closes the watch

    def publish(self) -> Trial:
        """Write the trial's notebook, page and final record, and enter it in the index."""
        with self.watching:
            self.clock.restart()  # waiting to be published is neither executing nor publishing
            record = self._write()
            self.watch.end(record.status)
        if self.update_index:  # warns, never raises
            TrialsFolder(self.plan.trials_folder).record_trial(record_data(record))
        return Trial(record, self.folder)

    def _write(self) -> TrialRecord:
        """The notebook, page and final record written; that record."""
        record = self.record
        try:
            publish_trial(self.folder, record, self.execution.notebook)
        except OSError as error:
            # A full disk may refuse the notebook or the page: the record, written last,
            # says so, and `succeeded` keeps meaning that every file is there.
            keep_running_notebook(self.folder)
            record = record_storage_failure(record, error)
        finally:
            self.clock.lap("publish_s")
            record = replace(record, timings=rounded_timings(self.clock.laps))
            write_final_record(self.folder, record, self.reserve)
        return record


def _execute_begun(
    plan: TrialPlan,
    folder: Path,
    record: TrialRecord,
    started: datetime,
    clock: _Timer,
    watch: live.TrialWatch,
    cancel: threading.Event | None,
    ahead: KernelAhead | None,
    warm_up_page: bool,
) -> tuple[TrialRecord, Path | None, execute.Execution]:
    """The trial whose running record is written, executed: how it ended, the disk space
    held for its final record, and the execution (its kernel stopped)."""
    # Room for the final record (this one, with how it ended), held until it is written.
    reserve = reserve_space(folder, len(store.dump_yaml(record_data(record)).encode()) + 4096)
    if plan.request.debug:
        write_atomic(folder / store.PATCH_NAME, gitstate.uncommitted_patch(plan.git))
        warn_of_untracked(record.git["untracked"])
    notebook, parameters = _render(plan, folder)
    clock.lap("prepare_s")
    outcome, used = _execute(plan, folder, notebook, parameters, cancel, ahead, watch, warm_up_page)
    watch.executed()  # the final page is never overwritten by one of the run so far
    clock.lap("execute_s")
    record = finish_record(record, plan, outcome, started, clock.laps)
    if used is not None:
        record = replace(record, resources=used.as_record())
    # A sweep's next trial may start once this one's kernel is gone, however many remain
    # to be published.
    outcome.wait_until_stopped()
    return record, reserve, outcome


def _show_running(trials_folder: Path, record: dict[str, Any]) -> threading.Thread:
    """The trial listed as running in the index, in a thread of its own (``show_running``
    never raises)."""
    thread = threading.Thread(
        target=TrialsFolder(trials_folder).show_running, args=(record,), name="mitosis-list"
    )
    thread.start()
    return thread


def _begin(
    plan: TrialPlan,
    reservation: Reservation | None,
    started: datetime,
    annotations: Mapping[str, Any],
) -> tuple[Path, TrialRecord]:
    """The trial's folder, locked in, with its running record written."""
    if reservation is None:
        trials = TrialsFolder(plan.trials_folder)
        trials.ensure()
        trial_id, folder = trials.create_trial(started)
        iteration = claim_all(plan, trial_id, folder)
    else:
        trial_id, folder = take_reserved(reservation)
        iteration = take_iteration(plan, trial_id)
    record = initial_record(plan, trial_id, started, iteration)
    if annotations:
        record = replace(record, extra={**record.extra, **annotations})
    store.write_record(folder, record)
    return folder, record


def _render(plan: TrialPlan, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The trial's notebook and the parameters papermill injects into it."""
    notebook = render.render_notebook(plan.template, plan.steps)
    if plan.kernelspec:
        notebook.metadata["kernelspec"] = dict(plan.kernelspec)
    # Debug trials run uncommitted code: they may take results, but never give them. The
    # last step always runs: it is what the trial was asked for, and its figures and output
    # are the page's; the steps that feed it are what the cache saves.
    feed = not plan.request.debug
    policies = [CachePolicy(take=plan.request.cache, feed=feed)] * (len(plan.steps) - 1)
    policies.append(CachePolicy(take=False, feed=feed))
    steps = [
        KernelStep(
            step.name,
            step.run,
            step.lookup,
            tuple(p.for_kernel() for p in plan.params_of(step.name)),
            policy if step.cache else None,
        )
        for step, policy in zip(plan.steps, policies, strict=True)
    ]
    parameters = {"mitosis_trial_dir": str(folder), "mitosis_steps": steps_to_notebook(steps)}
    return notebook, parameters


def _execute(
    plan: TrialPlan,
    folder: Path,
    notebook: Any,
    parameters: dict[str, Any],
    cancel: threading.Event | None,
    ahead: KernelAhead | None,
    watch: live.TrialWatch,
    warm_up_page: bool,
) -> tuple[execute.Execution, resources.Resources | None]:
    """Run the notebook with papermill in the trial's own fresh kernel; what it cost."""
    wanted = (plan.request.kernel, plan.config.root, plan.request.import_roots)
    kernel = (ahead.claim(*wanted) if ahead else None) or launch.start_kernel(*wanted)
    monitor = resources.ProcessTreeMonitor(kernel.pid).start() if kernel.pid else None
    execution = execute.execute(
        notebook,
        folder / RUNNING_NOTEBOOK,
        parameters,
        kernel,
        timeout=plan.request.timeout,
        progress=plan.request.progress,
        cancel=cancel,
        # The page's exporter is built while the kernel works, not after it.
        on_start=publish.warm_up_in_background if warm_up_page else None,
        # CPU time is exact only while the kernel still runs.
        before_stop=monitor.sample if monitor else None,
        notebook_hooks=watch.hooks(),
    )
    return execution, monitor.stop() if monitor else None


class _Timer:
    """Where a trial's time goes: preparing, executing, publishing."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def restart(self) -> None:
        """Count from now, leaving the time since the last lap out of every lap."""
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def run_plans(plans: Sequence[TrialPlan], ahead: KernelAhead | None = None) -> list[Trial]:
    """Lock in every plan's variants, then run the plans one after another.

    ``ahead``, a kernel the session started ahead, serves the first trial; the caller
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
