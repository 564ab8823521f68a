"""A Dask distributed cluster as a place to run trials: connect, submit, collect, stop.

Imported only by a ``--scheduler`` sweep, so mitosis-nb needs Dask only for that
(``pip install 'mitosis-nb[dask]'``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mitosis.atomic import TEMP_PREFIX
from mitosis.errors import MitosisWarning, SchedulerError, one_line

# How often a running task asks the scheduler whether its sweep was stopped.
STOP_POLL_S = 0.5
CONNECT_TIMEOUT_S = 5
# A scheduler's handshake that never comes (the address is some other service's) would
# otherwise hang the run for good.
ANSWER_TIMEOUT_S = 15


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SchedulerError(
            "--scheduler needs Dask distributed, which is not installed; "
            "pip install 'mitosis-nb[dask]' (or run without --scheduler)."
        ) from None
    return distributed


class DaskCluster:
    """A connection to a running Dask scheduler, through which trials are submitted."""

    def __init__(self, address: str) -> None:
        distributed = _distributed()
        try:
            # Before a Client exists: one half-built by a bad address tries to close itself
            # when collected, for seconds, with a traceback.
            distributed.comm.get_address_host_port(address)
        except ValueError as error:
            raise SchedulerError(
                f"{address!r} is not a Dask scheduler address ({error}); give one like "
                "tcp://HOST:8786."
            ) from None
        self._client = _client_within(distributed, address, ANSWER_TIMEOUT_S)
        self._distributed = distributed
        if not self._client.nthreads():
            warnings.warn(
                f"the Dask scheduler at {address} has no workers yet; the trials wait until "
                f"one joins (`dask worker {address}`).",
                MitosisWarning,
                stacklevel=2,
            )

    def check_workers(self, trials_folder: Path) -> None:
        """Refuse a cluster whose workers cannot run trials into ``trials_folder`` (which
        must exist): without mitosis-nb, or without the shared filesystem, which a note
        left there for them shows. Workers that join later are not seen."""
        token = secrets.token_hex(8)
        note = trials_folder / f"{TEMP_PREFIX}{token}-workers-see-this"
        note.write_text(token)
        try:
            answers = self._client.run(_worker_problem, str(note), token)
        except Exception as error:  # the task could not even be unpickled there
            raise SchedulerError(
                f"the Dask workers cannot run mitosis-nb ({one_line(error)}); install "
                "mitosis-nb and the steps' code in the workers' environment."
            ) from None
        finally:
            note.unlink(missing_ok=True)
        for worker, problem in sorted(answers.items()):
            if problem is not None:
                raise SchedulerError(
                    f"the Dask worker at {worker} {problem}; every worker must see the trials "
                    "folder at the same path (a shared filesystem)."
                )

    def threads(self) -> int:
        """How many tasks the cluster's workers run at once."""
        return max(1, int(sum(self._client.nthreads().values())))

    def submit(self, key: str, function: Callable[..., Any], *args: Any) -> Any:
        """Submit ``function(*args)`` as the task ``key``.

        A key names exactly one task on the scheduler: submitting it again while it is
        known does not run it twice, and a task lost with its worker is rerun under the
        same key.
        """
        return self._client.submit(function, *args, key=key, pure=False)

    def queued(self, futures: Iterable[Any]) -> list[Any]:
        """The unfinished futures that no worker has begun (none joined, or all are busy)."""
        try:
            begun = {key for keys in self._client.processing().values() for key in keys}
        except Exception:  # a lost scheduler: leave them all to the drain
            return []
        return [future for future in futures if not future.done() and future.key not in begun]

    def cancel(self, futures: Iterable[Any]) -> None:
        """Withdraw tasks from the scheduler; one already running goes on to its end."""
        with contextlib.suppress(Exception):  # a lost scheduler has nothing left to cancel
            self._client.cancel(list(futures))

    def wait_any(self, futures: Iterable[Any], timeout: float) -> list[Any]:
        """Wait up to ``timeout`` seconds for the first of ``futures`` to finish; return every
        one that has. Polls the futures' own state: a lost scheduler cannot block it."""
        futures = list(futures)
        deadline = time.monotonic() + timeout
        while not (done := [future for future in futures if future.done()]):
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.1, timeout))
        return done

    @staticmethod
    def error_of(future: Any) -> BaseException | None:
        """The exception a finished task raised, or None."""
        if future.status == "cancelled":
            return RuntimeError("the task was cancelled by the scheduler")
        if future.status != "error":
            return None
        error: BaseException = future.exception()
        return error

    def stop(self, name: str) -> None:
        """Tell every task watching ``name`` to stop (see ``watch_stop``)."""
        with contextlib.suppress(Exception):  # a lost scheduler has no one left to tell
            self._distributed.Event(name, client=self._client).set()

    def close(self) -> None:
        """Disconnect; the cluster itself keeps running."""
        with contextlib.suppress(Exception):
            self._client.close()


@contextlib.contextmanager
def watch_stop(name: str) -> Iterator[threading.Event]:
    """Inside a task: an event that is set once the submitter stops the sweep ``name``."""
    distributed = _distributed()
    remote = distributed.Event(name)  # bound to this worker's client, in the task's thread
    stopped = threading.Event()
    finished = threading.Event()

    def poll() -> None:
        while not finished.wait(STOP_POLL_S):
            with contextlib.suppress(Exception):  # a busy scheduler: ask again next time
                if remote.is_set():
                    stopped.set()
                    return

    with contextlib.suppress(Exception):
        if remote.is_set():
            stopped.set()
    watcher = threading.Thread(target=poll, name=f"mitosis-stop-{name}", daemon=True)
    watcher.start()
    try:
        yield stopped
    finally:
        finished.set()
        watcher.join()


def _worker_problem(note: str, token: str) -> str | None:
    """Run on a worker: why it could not run trials into the folder that holds ``note``,
    which the submitter wrote there with ``token`` in it; or None."""
    folder = os.path.dirname(note)
    try:
        with open(note, encoding="utf-8") as handle:
            seen = handle.read()
    except OSError:
        seen = None
    if seen != token:  # no such folder, or a folder of its own at the same path
        return f"does not see the submitter's trials folder {folder}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write in the trials folder {folder}"
    return None


def _client_within(distributed: Any, address: str, seconds: float) -> Any:
    """A Client connected to ``address``, or ``SchedulerError`` after ``seconds`` at most."""
    made: dict[str, Any] = {}

    def connect() -> None:
        try:
            made["client"] = distributed.Client(
                address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
            )
        except BaseException as error:  # whatever a wrong peer makes the handshake raise
            made["error"] = error

    connecting = threading.Thread(target=connect, name="mitosis-dask-connect", daemon=True)
    connecting.start()
    connecting.join(seconds)
    if "client" in made:
        return made["client"]
    error = made.get("error")
    if error is not None:
        _discard_half_built(distributed, error)
    if error is None or isinstance(error, (OSError, TimeoutError)):
        why = one_line(error) if error is not None else f"no answer within {seconds:g} s"
        raise SchedulerError(
            f"cannot reach the Dask scheduler at {address} ({why}); start one (`dask "
            "scheduler`) or check the address: the scheduler's port (8786 by default), not "
            "its dashboard's."
        )
    raise SchedulerError(
        f"{address} answered, but not as a Dask scheduler ({one_line(error, 120)}); give the "
        "scheduler's address, e.g. tcp://HOST:8786."
    )


def _discard_half_built(distributed: Any, error: BaseException) -> None:
    # A Client whose constructor failed closes itself when collected: for 10 s, then with
    # a traceback. Marked closed, with its event loop stopped, it has nothing left to do.
    trace = error.__traceback__
    while trace is not None:
        candidate = trace.tb_frame.f_locals.get("self")
        if isinstance(candidate, distributed.Client):
            with contextlib.suppress(Exception):
                candidate._loop_runner.stop()
            candidate.status = "closed"
        trace = trace.tb_next
