"""Run a rendered notebook with papermill in a trial's fresh kernel, and say how it ended.

papermill runs in a worker thread while the calling thread supervises: it enforces the
trial's timeout and turns Ctrl-C or SIGTERM into killing the kernel. That way no kernel
outlives its trial, whatever happens, and ``execute_trial`` also works from inside a
running notebook, whose event loop papermill must not share. The kernel comes from the
caller (``adapters.kernels``); this module only needs what ``RunningKernel`` names.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mitosis.event_loops import in_own_loop
from mitosis.interrupts import StopSignal, TrialInterrupted, sigterm_as_interrupt

if TYPE_CHECKING:
    import nbformat

_ENGINE = "mitosis"
_PARTIAL = "mitosis_partial_notebook"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class RunningKernel(Protocol):
    """A trial's fresh kernel, as the executor uses it."""

    @property
    def name(self) -> str:
        """The kernel's name, for papermill and the record."""

    @property
    def manager(self) -> Any:
        """jupyter_client's manager of the kernel, which papermill's engine drives."""

    def kill(self) -> None:
        """Kill the kernel's process now."""

    def stop(self) -> None:
        """Shut the kernel down for good."""


@dataclass
class Execution:
    """How a notebook's execution ended."""

    notebook: nbformat.NotebookNode | None
    error_kind: str | None = None  # exception | timeout | kernel_died | interrupted
    exception: BaseException | None = None
    kernel: str = ""  # the kernel's name
    stopping: threading.Thread | None = None  # the kernel's shutdown, still under way

    def wait_until_stopped(self) -> None:
        """Return once the trial's kernel is gone."""
        if self.stopping is not None:
            self.stopping.join()


def _run_papermill(
    notebook: nbformat.NotebookNode,
    output: Path,
    parameters: dict[str, Any],
    kernel: RunningKernel,
    progress: bool,
    outcome: dict[str, Any],
    on_start: Callable[[], None] | None,
    hooks: Mapping[str, Callable[..., None]],
) -> None:
    try:
        import papermill

        if on_start is not None:
            on_start()
        outcome["notebook"] = papermill.execute_notebook(
            notebook,
            str(output),
            parameters=parameters,
            engine_name=_register_engine(),
            kernel_name=kernel.name,
            progress_bar=progress,
            log_output=False,
            # papermill would rewrite (and re-validate) the whole notebook after every
            # cell. It saves once at the end after a cell's error, but not when the
            # kernel died or was stopped: then the engine hands over what ran.
            request_save_on_cell_execute=False,
            km=kernel.manager,
            # nbclient's hooks (on_cell_start, …): papermill hands them to its client.
            **hooks,
        )
    except BaseException as error:  # reported to the supervising thread, which decides
        outcome["error"] = error
        outcome["notebook"] = getattr(error, _PARTIAL, None)


def import_papermill() -> None:
    """Import papermill and register its engine now, not as the first trial starts."""
    _register_engine()


def _register_engine() -> str:
    """papermill's nbclient engine, which also keeps the notebook of an execution that
    ended without a save: a stopped or dead kernel's cells, with their outputs so far."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.exceptions import PapermillException

    try:
        papermill_engines.get_engine(_ENGINE)
        return _ENGINE
    except PapermillException:
        pass

    class KeepingEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            except BaseException as error:
                with contextlib.suppress(AttributeError):  # a built-in without a __dict__
                    setattr(error, _PARTIAL, nb_man.nb)
                raise

    papermill_engines.register(_ENGINE, KeepingEngine)
    logging.getLogger("papermill").addFilter(_not_kernel_died)
    return _ENGINE


def _not_kernel_died(record: logging.LogRecord) -> bool:
    # nbclient logs this whenever the kernel goes, also when a timeout or Ctrl-C stopped it
    # on purpose; the trial's error says what happened, and a notebook calling
    # execute_trial would show the line in red under its cell.
    return not record.getMessage().startswith("Kernel died while waiting for execute reply")


def _supervise(
    finished: threading.Event,
    deadline: float | None,
    on_timeout: Callable[[], None],
    cancel: threading.Event | None,
    stop: StopSignal,
) -> bool:
    """Wait until ``finished``; return whether the deadline passed first.

    Not ``Thread.join``: a Ctrl-C that interrupts a join leaves the thread looking finished
    to every later join in CPython 3.11 (bpo-45274's fix), and the partial notebook it was
    about to hand over would be lost.
    """
    timed_out = False
    while not finished.wait(0.05):
        stop.raise_if_received()
        if cancel is not None and cancel.is_set():
            # A sweep was stopped: signals reach only the main thread, so trials running
            # in other threads learn of it here and end exactly as a Ctrl-C would end them.
            raise TrialInterrupted("the sweep was stopped")
        if deadline is not None and not timed_out and time.monotonic() > deadline:
            timed_out = True
            on_timeout()
    return timed_out


def execute(
    notebook: nbformat.NotebookNode,
    output: Path,
    parameters: dict[str, Any],
    kernel: RunningKernel,
    timeout: float | None = None,
    progress: bool = False,
    cancel: threading.Event | None = None,
    on_start: Callable[[], None] | None = None,
    before_stop: Callable[[], None] | None = None,
    notebook_hooks: Mapping[str, Callable[..., None]] | None = None,
) -> Execution:
    """Execute ``notebook`` in a fresh kernel, saving the executed notebook to ``output``.

    ``kernel`` is the trial's fresh kernel, which the execution owns: it is stopped whatever
    happens. ``on_start`` is called (in another thread) just before the kernel gets the first cell,
    ``before_stop`` once the notebook has run to its end, before the kernel stops.
    ``notebook_hooks`` are nbclient's (``on_notebook_start``, ``on_cell_start`` …), called
    in papermill's thread as the notebook runs.
    Never raises for what happens inside the kernel. ``KeyboardInterrupt``, SIGTERM (in
    the main thread) and a set ``cancel`` event stop the kernel and end the execution as
    ``interrupted``.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    hooks = dict(notebook_hooks or {})

    def run_papermill() -> None:
        try:
            _run_papermill(notebook, output, parameters, kernel, progress, outcome, on_start, hooks)
        finally:
            finished.set()

    worker = threading.Thread(
        target=in_own_loop(run_papermill),
        # A unique name: jupyter_core keeps one event-loop runner per thread *name*.
        name=f"mitosis-papermill-{output.parent.name}",
        daemon=True,
    )
    with _owned(kernel, output.parent.name) as owner:
        interrupted, timed_out = _watch(worker, finished, kernel, timeout, cancel)
        if interrupted is None and not timed_out:
            if before_stop is not None:
                before_stop()
            owner.stop_in_background()  # the notebook is saved: publishing it overlaps
    executed = outcome.get("notebook") or _read_partial(output)
    result = Execution(notebook=executed, kernel=kernel.name, stopping=owner.stopping)
    _say_how_it_ended(result, interrupted, timed_out, outcome.get("error"))
    return result


class _Ownership:
    """An execution's hold on its kernel: stopped at once, or in the background."""

    def __init__(self, kernel: RunningKernel, label: str) -> None:
        self.kernel, self.label = kernel, label
        self.stopping: threading.Thread | None = None

    def stop_in_background(self) -> None:
        # Not a daemon, so that even an exit meanwhile waits for the kernel to be gone.
        self.stopping = threading.Thread(
            target=in_own_loop(self.kernel.stop), name=f"mitosis-stop-{self.label}"
        )
        self.stopping.start()


@contextlib.contextmanager
def _owned(kernel: RunningKernel, label: str) -> Iterator[_Ownership]:
    """The kernel is stopped when the block ends, however it ends, unless the block has had
    it stopped in the background."""
    ownership = _Ownership(kernel, label)
    try:
        yield ownership
    finally:
        if ownership.stopping is None:
            kernel.stop()


def _watch(
    worker: threading.Thread,
    finished: threading.Event,
    kernel: RunningKernel,
    timeout: float | None,
    cancel: threading.Event | None,
) -> tuple[BaseException | None, bool]:
    """Start ``worker`` and supervise it: how it was interrupted (or None), and whether
    the deadline passed. A stop kills the kernel and waits for the notebook so far."""
    deadline = time.monotonic() + timeout if timeout else None
    with sigterm_as_interrupt() as stop:
        worker.start()
        try:
            return None, _supervise(finished, deadline, kernel.kill, cancel, stop)
        except (KeyboardInterrupt, TrialInterrupted) as signal_error:
            kernel.kill()
            finished.wait(30)
            return signal_error, False


def _say_how_it_ended(
    result: Execution,
    interrupted: BaseException | None,
    timed_out: bool,
    error: BaseException | None,
) -> None:
    """Set how the execution ended: interrupted, out of time, its kernel dead, or an error."""
    if interrupted is not None:
        result.error_kind, result.exception = "interrupted", interrupted
    elif timed_out:
        # The kernel was killed, so papermill saw it die; the cause was the deadline.
        result.error_kind, result.exception = "timeout", TimeoutError("the deadline passed")
    elif error is not None:
        result.error_kind = "kernel_died" if _kernel_went(error) else "exception"
        result.exception = error


def is_cell_error(error: BaseException | None) -> bool:
    """Whether ``error`` is a cell's exception, which the notebook itself shows."""
    # Only an execution that imported papermill can have raised its errors; a papermill
    # that does not import at all is the runner's failure, told by its own ImportError.
    exceptions = sys.modules.get("papermill.exceptions")
    return exceptions is not None and isinstance(error, exceptions.PapermillExecutionError)


def _kernel_went(error: BaseException) -> bool:
    # The kernel died, mid-cell or before answering at all: anything else that is not a
    # cell's error went wrong on this side, and says so itself.
    exceptions = sys.modules.get("nbclient.exceptions")
    return exceptions is not None and isinstance(error, exceptions.DeadKernelError)


def _read_partial(output: Path) -> nbformat.NotebookNode | None:
    import nbformat

    try:
        notebook: nbformat.NotebookNode = nbformat.read(str(output), as_version=4)
    except Exception:  # absent or half-written: papermill died before saving
        return None
    return notebook


def strip_ansi(text: str) -> str:
    """Terminal colour codes removed, for records and messages."""
    return _ANSI.sub("", text)
