"""This machine: a pool of threads, each supervising one trial's kernel.

Threads, not processes: a trial's work happens in its kernel, a separate process already,
so a runner thread mostly waits on it; threads share one registry and index writer, and a
stop reaches them through one ``threading.Event``. A thread whose trial's kernel has ended
leaves its publishing to the ``Publisher`` and starts the next trial.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial

from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.executors import NOT_STARTED, Outcome, finished_outcome, refused_outcome
from mitosis.executors.publisher import Publisher
from mitosis.lock_in import Reservation
from mitosis.pipeline import ExecutedTrial, execute_plan
from mitosis.planning import TrialPlan
from mitosis.trials import Trial


class ThreadExecutor:
    """Runs ``workers`` trials at once in this process, each in a fresh kernel."""

    drain_timeout: float | None = None  # a stopped trial's thread ends: wait for its record

    def __init__(self, workers: int, trials: int, ahead: Sequence[KernelAhead] = ()) -> None:
        self._cancel = threading.Event()
        self._kernels = _Kernels(ahead, trials, workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mitosis-trial")
        self._publisher = Publisher(workers, self._cancel)
        self._executions: list[Future[ExecutedTrial | None]] = []
        # Each trial's future, settled once it is published.
        self._jobs: dict[Future[Trial | None], tuple[TrialPlan, Reservation]] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Start nothing more, wait for the threads and the publishing, stop the kernels
        no trial took."""
        self._cancel.set()  # whatever ended the sweep, nothing more starts
        for execution in self._executions:
            execution.cancel()
        self._pool.shutdown(wait=True)
        self._publisher.close()
        self._kernels.close()

    def submit(self, plan: TrialPlan, reservation: Reservation) -> None:
        """Queue a trial for the next free thread."""
        published: Future[Trial | None] = Future()
        self._jobs[published] = (plan, reservation)
        self._publisher.expect()
        execution = self._pool.submit(self._run, plan, reservation)
        self._executions.append(execution)
        execution.add_done_callback(partial(self._executed, published))

    def _run(self, plan: TrialPlan, reservation: Reservation) -> ExecutedTrial | None:
        if self._cancel.is_set():
            return None
        with self._lock:
            self._running.add(reservation.trial_id)
        kernel = self._kernels.take(plan)
        try:
            # The publisher writes the pages in idle time and builds their exporter then:
            # built while the kernels run, it would only slow them.
            return execute_plan(plan, reservation, self._cancel, ahead=kernel, warm_up_page=False)
        finally:
            with self._lock:
                self._running.discard(reservation.trial_id)

    def _executed(
        self, published: Future[Trial | None], execution: Future[ExecutedTrial | None]
    ) -> None:
        """Hand an executed trial to the publisher; settle the others' futures now."""
        if execution.cancelled():
            self._publisher.executed(None, published)
            published.cancel()
            published.set_running_or_notify_cancel()  # else wait() never counts it done
            return
        error = execution.exception()
        executed = None if error is not None else execution.result()
        self._publisher.executed(executed, published)
        if error is not None:
            published.set_exception(error)
        elif executed is None:
            published.set_result(None)

    def collect(self, timeout: float) -> list[Outcome]:
        """The trials whose threads returned since the last call."""
        done, _ = wait(self._jobs, timeout=timeout, return_when=FIRST_COMPLETED)
        return [self._outcome(future, *self._jobs.pop(future)) for future in done]

    @staticmethod
    def _outcome(
        future: Future[Trial | None], plan: TrialPlan, reservation: Reservation
    ) -> Outcome:
        if future.cancelled():
            return Outcome(plan, NOT_STARTED, reservation.trial_id)
        error = future.exception()
        if error is not None:
            return refused_outcome(plan, reservation, error)
        return finished_outcome(plan, reservation, future.result())

    def pending(self) -> int:
        """Trials not collected yet."""
        return len(self._jobs)

    def running(self) -> int:
        """Trials whose kernels run now."""
        with self._lock:
            return len(self._running)

    def stop(self) -> list[Outcome]:
        """Interrupt the running trials' kernels; the queued ones will not start, and the
        executed ones are published at once."""
        self._cancel.set()
        self._publisher.wake()
        for execution in self._executions:
            execution.cancel()
        return []


class _Kernels:
    """The kernels of a sweep's trials, each booted while earlier trials run.

    A trial that starts takes a booted kernel and starts one for a trial to come, so that
    a kernel's start-up (half a second to a second) overlaps running trials instead of
    adding to each. A booted kernel holds nothing of the user's until its trial runs.
    """

    def __init__(self, ahead: Sequence[KernelAhead], trials: int, workers: int) -> None:
        # The kernels started ahead first: the first of them imported the steps' code.
        self._ready = list(ahead)
        self._wanting = trials
        self._workers = workers
        self._lock = threading.Lock()

    def take(self, plan: TrialPlan) -> KernelAhead | None:
        """A booted kernel for ``plan``'s trial, if one is ready; boots the next one, so that
        one stands ready for each worker."""
        with self._lock:
            kernel = self._ready.pop(0) if self._ready else None
            self._wanting -= 1
            if self._wanting > len(self._ready) and len(self._ready) < self._workers:
                request = plan.request
                self._ready.append(
                    KernelAhead(request.kernel, plan.config.root, request.import_roots)
                )
            return kernel

    def close(self) -> None:
        """Stop the kernels no trial took (a stopped sweep, or trials that failed early)."""
        with self._lock:
            ready, self._ready = self._ready, []
        for kernel in ready:
            kernel.close()
