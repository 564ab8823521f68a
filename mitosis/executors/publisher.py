"""Publishing a sweep's executed trials off its critical path, in idle CPU time.

Once a trial's kernel has ended, what is left (its page, its final record, the index) is
work for this process alone, and no trial waits for it: the trial's worker starts the next
trial at once and leaves the rest here. When every core runs a trial's kernel, publishing
now would only slow them; it waits for a core to come free (at the latest when the sweep's
last trials run, fewer than the cores) or, so that a page is never long out of date, for
``PUBLISH_WITHIN_S`` seconds. Until then the trial's heartbeat goes on and its record says
it runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from mitosis import live
from mitosis.pipeline import ExecutedTrial
from mitosis.trials import Trial

# As long as a running trial's page may be out of date: it is re-rendered as often.
PUBLISH_WITHIN_S = live.PAGE_EVERY_S


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class _Job:
    trial: ExecutedTrial
    published: Future[Trial | None]
    executed_at: float  # time.monotonic() at the kernel's end


class Publisher:
    """Publishes executed trials in a thread of its own, in the order their kernels ended.

    ``workers`` trials run at once; ``stopping`` set (the sweep is stopped) publishes
    whatever waits at once.
    """

    def __init__(self, workers: int, stopping: threading.Event) -> None:
        self._workers = workers
        self._cores = usable_cores()
        self._stopping = stopping
        self._changed = threading.Condition()
        self._waiting: deque[_Job] = deque()
        self._unexecuted = 0  # trials submitted whose kernels have not ended
        self._closing = False
        self._thread: threading.Thread | None = None

    def expect(self) -> None:
        """One more trial is submitted."""
        with self._changed:
            self._unexecuted += 1

    def executed(self, trial: ExecutedTrial | None, published: Future[Trial | None]) -> None:
        """A submitted trial's kernel has ended (``trial``), or it never ran or its runner
        raised (None): the caller settles ``published`` then."""
        with self._changed:
            self._unexecuted -= 1
            if trial is not None:
                self._waiting.append(_Job(trial, published, time.monotonic()))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._publish_all, name="mitosis-publish", daemon=True
                    )
                    self._thread.start()
            self._changed.notify_all()

    def wake(self) -> None:
        """Look again: the sweep was stopped."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Publish every trial still waiting, and end the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _publish_all(self) -> None:
        while (job := self._next()) is not None:
            try:
                job.published.set_result(job.trial.publish())
            except BaseException as error:  # the sweep reports it as the trial's failure
                job.published.set_exception(error)

    def _next(self) -> _Job | None:
        """The next trial to publish once it may be published; None once closed and done."""
        with self._changed:
            while True:
                if self._waiting:
                    wait = self._wait_for(self._waiting[0])
                    if wait <= 0:
                        return self._waiting.popleft()
                elif self._closing:
                    return None
                else:
                    wait = None
                self._changed.wait(wait)

    def _wait_for(self, job: _Job) -> float:
        """How long ``job`` should still wait: 0 if a core is free of trials, the sweep is
        stopped or ending, or it has waited long enough."""
        trials_running = min(self._workers, self._unexecuted)
        if trials_running < self._cores or self._closing or self._stopping.is_set():
            return 0.0
        return job.executed_at + PUBLISH_WITHIN_S - time.monotonic()
