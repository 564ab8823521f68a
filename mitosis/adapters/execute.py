"""Run a rendered notebook with papermill in a fresh kernel, and say how it ended.

papermill runs in a worker thread while the calling thread supervises: it enforces the
trial's timeout and turns Ctrl-C or SIGTERM into a kernel shutdown. That way no kernel
outlives its trial, whatever happens, and ``execute_trial`` also works from inside a
running notebook, whose event loop papermill must not share.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from mitosis.errors import KernelError, ParameterError

if TYPE_CHECKING:
    import nbformat

SAME_INTERPRETER = "mitosis-same-python"
# A trial's notebook is its record, so its kernel keeps no IPython history. Parallel kernels
# writing one history.sqlite contend for its lock and can corrupt it, and every trial's cells
# would fill the user's own command history.
_NO_HISTORY = "--HistoryManager.enabled=False"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class TrialInterrupted(BaseException):
    """Ctrl-C or SIGTERM reached the runner while a trial was executing."""


class _SameInterpreterSpecs(KernelSpecManager):
    """Offers a kernel that runs this very interpreter, whatever kernelspecs are installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != SAME_INTERPRETER:
            return super().get_kernel_spec(kernel_name)
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python {sys.version.split()[0]} ({sys.executable})",
            language="python",
            interrupt_mode="signal",
            metadata={"debugger": False},
        )


class _TrialKernelManager(AsyncKernelManager):
    """A kernel manager that remembers the clients it made, so that stopping the kernel
    closes them too. nbclient closes its client only for kernels it started itself; every
    trial would otherwise leave a heartbeat thread and a dozen sockets behind."""

    def client(self, **kwargs: Any) -> Any:
        made = super().client(**kwargs)
        self.__dict__.setdefault("_mitosis_clients", []).append(made)
        return made

    def close_clients(self) -> None:
        """Stop every client's channels and free their sockets."""
        for made in self.__dict__.pop("_mitosis_clients", []):
            with contextlib.suppress(Exception):
                made.stop_channels()
            with contextlib.suppress(Exception):
                made.context.destroy(linger=0)


def _in_own_loop(target: Callable[..., None]) -> Callable[..., None]:
    """``target`` for a thread of its own, which closes the event loop that jupyter_core's
    ``run_sync`` made for the thread. Left open, each loop keeps three descriptors until
    the garbage collector happens upon it, and a long sweep makes several per trial."""

    def run(*args: Any) -> None:
        try:
            target(*args)
        finally:
            with contextlib.suppress(RuntimeError):  # the thread never made one
                loop = asyncio.get_event_loop_policy().get_event_loop()
                if not loop.is_running():
                    loop.close()

    return run


@dataclass
class Execution:
    """How a notebook's execution ended."""

    notebook: nbformat.NotebookNode | None
    error_kind: str | None = None  # exception | timeout | kernel_died | interrupted
    exception: BaseException | None = None
    kernel: str = SAME_INTERPRETER
    stopping: threading.Thread | None = None  # the kernel's shutdown, still under way

    def wait_until_stopped(self) -> None:
        """Return once the trial's kernel is gone."""
        if self.stopping is not None:
            self.stopping.join()


def kernel_environment(root: Path, import_roots: Sequence[Path] = ()) -> dict[str, str]:
    """The kernel's environment: ours, with the investigation and then ``import_roots``
    importable before anything else, and plots inline."""
    env = dict(os.environ)
    paths = [str(root), *map(str, import_roots), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop("JPY_PARENT_PID", None)
    return env


def start_kernel(
    kernel: str | None, root: Path, import_roots: Sequence[Path] = ()
) -> AsyncKernelManager:
    """Start a fresh kernel in ``root``: this interpreter, or the named kernelspec."""
    name = kernel or SAME_INTERPRETER
    # IPC sockets in a private directory: no TCP ports to clash between parallel trials,
    # and no unencrypted-TCP warning from the kernel.
    sockets = Path(tempfile.mkdtemp(prefix="mitosis-kernel-"))
    manager = _TrialKernelManager(
        kernel_name=name,
        kernel_spec_manager=_SameInterpreterSpecs(),
        client_factory=_PromptClient,
        transport="ipc",
        ip=str(sockets / "kernel"),
    )
    run_sync(manager.start_kernel)(
        cwd=str(root),
        env=kernel_environment(root, import_roots),
        extra_arguments=_history_off(manager.kernel_spec),
    )
    return manager


def kernelspec_metadata(kernel: str) -> dict[str, str]:
    """The notebook's ``kernelspec`` metadata for the named kernel, with which Jupyter opens
    the trial's notebook; ``ParameterError`` if no such kernel is installed."""
    specs = KernelSpecManager()
    try:
        spec = specs.get_kernel_spec(kernel)
    except NoSuchKernel:
        known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise ParameterError(f"no Jupyter kernel named {kernel!r}; installed: {known}.") from None
    return {"name": kernel, "display_name": spec.display_name, "language": spec.language}


def _history_off(spec: KernelSpec | None) -> list[str]:
    """The argument that keeps an IPython kernel's history off; other kernels get none."""
    runs_ipykernel = spec is not None and any("ipykernel" in part for part in spec.argv)
    return [_NO_HISTORY] if runs_ipykernel else []


class KernelAhead:
    """A kernel started in the background before it is needed, while the trial is prepared.

    A kernel takes about a second to boot; starting it first lets that overlap with the
    runner's own imports and git checks. Before it runs the trial, the runner asks it
    about the user's code (``evaluate``), which it has to import anyway.
    """

    def __init__(self, kernel: str | None, root: Path, import_roots: Sequence[Path] = ()) -> None:
        self.kernel, self.root, self.import_roots = kernel, root, tuple(import_roots)
        self._manager: AsyncKernelManager | None = None
        self._failure: str | None = None
        self._disk_refused = False
        self._thread = threading.Thread(
            target=_in_own_loop(self._start), name=f"mitosis-kernel-ahead-{id(self)}", daemon=True
        )
        self._thread.start()

    def _start(self) -> None:
        try:
            self._manager = start_kernel(self.kernel, self.root, self.import_roots)
        except Exception as error:  # said by evaluate, or the trial starts its own kernel
            self._failure = f"{type(error).__name__}: {error}"
            # tempfile says this when no folder takes its files: a kernel's connection file
            # could not be written, which is the disk's doing, not the kernel's.
            self._disk_refused = "No usable temporary directory" in str(error)

    def evaluate(self, expression: str, timeout: float | None = None) -> str:
        """Evaluate ``expression`` in the kernel, silently, and return the ``str`` it gives.

        Raises ``KernelError`` if the kernel did not start, died, or took longer than
        ``timeout`` seconds; an exception raised by the expression becomes a ``KernelError``
        with its message.
        """
        self._thread.join()
        if self._manager is None:
            fix = (
                "check that the disk is not full and that a temporary folder is writable"
                if self._disk_refused
                else "check --kernel (kernel=)"
            )
            raise KernelError(f"the kernel did not start ({self._failure}); {fix}.")
        return _evaluate(self._manager, expression, timeout)

    def claim(
        self, kernel: str | None, root: Path, import_roots: Sequence[Path] = ()
    ) -> AsyncKernelManager | None:
        """The started kernel if it is the one wanted (same kernel, folder and import roots),
        once; else None."""
        self._thread.join()
        manager, self._manager = self._manager, None
        wanted = (kernel, root, tuple(import_roots))
        if manager is not None and wanted != (self.kernel, self.root, self.import_roots):
            stop_kernel(manager)
            return None
        return manager

    def close(self) -> None:
        """Stop the kernel if nothing claimed it (the request was refused, or interrupted)."""
        self._thread.join()
        manager, self._manager = self._manager, None
        if manager is not None:
            stop_kernel(manager)


def _evaluate(manager: AsyncKernelManager, expression: str, timeout: float | None) -> str:
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    # Only the shell channel: the one a request and its reply travel on.
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        _await_ready(client, manager, deadline, timeout)
        # Silent: no output, no execution count, nothing in the kernel's history.
        asked = client.execute(
            "", silent=True, store_history=False, user_expressions={"v": expression}
        )
        reply = _await_reply(client, manager, {asked}, deadline, timeout)
    finally:
        client.stop_channels()
        client.context.destroy(linger=0)  # now, not whenever the collector finds it
    assert reply is not None  # without a time limit of its own, it answers or raises
    answer = reply["content"].get("user_expressions", {}).get("v", {})
    if answer.get("status") != "ok":
        raise KernelError(
            f"the kernel could not describe the steps' code: {answer.get('ename')}: "
            f"{answer.get('evalue')}; is mitosis-nb installed in the kernel's environment?"
        )
    text = ast.literal_eval(answer["data"]["text/plain"])  # the repr of a str
    if not isinstance(text, str):
        raise KernelError("the kernel answered with something other than text.")
    return text


def _await_ready(
    client: BlockingKernelClient,
    manager: AsyncKernelManager,
    deadline: float | None,
    timeout: float | None,
) -> None:
    """Return once the kernel has answered a ``kernel_info`` request.

    A request that reaches a kernel still setting up its shell may wait unread (ipykernel 7
    starts more threads and sockets, and a loaded machine makes that window longer): the
    Jupyter protocol's advice is to send nothing else before a ``kernel_info`` is answered.
    Each second without an answer sends another, in case the first was one of those.
    """
    asked: set[str] = set()
    while True:
        asked.add(client.kernel_info())
        if _await_reply(client, manager, asked, deadline, timeout, within=1.0) is not None:
            return


def _await_reply(
    client: BlockingKernelClient,
    manager: AsyncKernelManager,
    asked: set[str],
    deadline: float | None,
    timeout: float | None,
    within: float | None = None,
) -> dict[str, Any] | None:
    """The reply to one of the ``asked`` requests, or None after ``within`` seconds.

    Raises ``KernelError`` when the kernel is gone or ``deadline`` has passed. A reply that
    arrived just before the kernel's end still counts: it is looked for once the process is
    found gone, since its exit can be seen before its last message is read.
    """
    until = time.monotonic() + within if within is not None else None
    while True:
        try:
            reply: dict[str, Any] = client.get_shell_msg(timeout=0.1)
        except queue.Empty:
            if not run_sync(manager.is_alive)():
                return _last_reply(client, asked, manager)
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise KernelError(
                    f"the kernel took more than {timeout} s to start and import the steps' code."
                ) from None
            if until is not None and now > until:
                return None
            continue
        if reply["parent_header"].get("msg_id") in asked:
            return reply


def _last_reply(
    client: BlockingKernelClient, asked: set[str], manager: AsyncKernelManager
) -> dict[str, Any]:
    """The reply a kernel that has ended sent before it went, else ``KernelError``."""
    while True:
        try:
            reply: dict[str, Any] = client.get_shell_msg(timeout=0.2)
        except queue.Empty:
            break
        if reply["parent_header"].get("msg_id") in asked:
            return reply
    raise KernelError(
        f"the kernel died before the trial began ({_ending(manager)}), while it started or "
        "imported the steps' code (os._exit, a crash at import, or killed, perhaps for "
        "memory); import them in Python to see why."
    )


def _ending(manager: AsyncKernelManager) -> str:
    """How the kernel's process ended, as its exit status tells."""
    process = getattr(manager.provisioner, "process", None)
    status = process.poll() if process is not None else None
    if status is None:
        return "its process is gone"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exit status {status}"


class _PromptClient(AsyncKernelClient):
    """The client papermill's executor gets: ready as soon as the kernel has answered.

    jupyter_client's ``wait_for_ready`` ends by waiting for 0.2 s of silence on IOPub, a
    tenth of a whole trial's overhead. This one waits instead for the idle status that
    closes one of its ``kernel_info`` requests: IOPub is then connected. What IOPub may
    still carry about the other requests, nbclient ignores: it reads only what its own
    requests caused. A kernel that never answers still fails as it did.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        # Every request sent counts: a kernel slow to start answers old ones late.
        asked: set[str] = set()
        while time.monotonic() < deadline:
            asked.add(self.kernel_info())
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info") from None
                continue
            # A status follows each reply at once, unless IOPub was not connected yet when
            # the kernel published it: then it never comes, and a new request is quicker
            # than a long wait.
            if reply["parent_header"].get("msg_id") in asked and await self._went_idle(asked):
                return
        raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    async def _went_idle(self, asked: set[str], within: float = 0.1) -> bool:
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except queue.Empty:
                return False
            if (
                message["parent_header"].get("msg_id") in asked
                and message["msg_type"] == "status"
                and message["content"].get("execution_state") == "idle"
            ):
                return True
        return False


def stop_kernel(manager: AsyncKernelManager) -> None:
    """Shut the kernel down for good, even when it is busy or already dead."""
    # Killed and reaped first: jupyter_client's shutdown then finds it gone at once rather
    # than polling for its end every 0.1 s (it still kills whatever the kernel started).
    _kill_kernel(manager, reap=True)
    with contextlib.suppress(Exception):
        if manager.has_kernel:
            run_sync(manager.shutdown_kernel)(now=True)
    with contextlib.suppress(Exception):
        run_sync(manager.cleanup_resources)()
    if isinstance(manager, _TrialKernelManager):
        manager.close_clients()
    with contextlib.suppress(Exception):
        manager.context.destroy(linger=0)
    sockets = Path(manager.ip).parent
    if manager.transport == "ipc" and sockets.name.startswith("mitosis-kernel-"):
        shutil.rmtree(sockets, ignore_errors=True)


def _kill_kernel(manager: AsyncKernelManager, reap: bool = False) -> None:
    # Killing the process makes papermill's client raise DeadKernelError promptly, even in
    # the middle of a cell; a polite shutdown request would wait for the cell to finish.
    process = getattr(manager.provisioner, "process", None)
    if process is None:
        return
    with contextlib.suppress(OSError):
        process.kill()
    if reap:
        with contextlib.suppress(Exception):  # not ours to reap after all, or stuck
            process.wait(timeout=5)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, turn SIGTERM into ``TrialInterrupted`` for the block's duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise TrialInterrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_papermill(
    notebook: nbformat.NotebookNode,
    output: Path,
    parameters: dict[str, Any],
    manager: AsyncKernelManager,
    progress: bool,
    outcome: dict[str, Any],
    on_start: Callable[[], None] | None,
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
            kernel_name=manager.kernel_name,
            progress_bar=progress,
            log_output=False,
            # papermill would rewrite (and re-validate) the whole notebook after every
            # cell. It saves once at the end after a cell's error, but not when the
            # kernel died or was stopped: then the engine hands over what ran.
            request_save_on_cell_execute=False,
            km=manager,
        )
    except BaseException as error:  # reported to the supervising thread, which decides
        outcome["error"] = error
        outcome["notebook"] = getattr(error, _PARTIAL, None)


_ENGINE = "mitosis"
_PARTIAL = "mitosis_partial_notebook"


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
) -> bool:
    """Wait until ``finished``; return whether the deadline passed first.

    Not ``Thread.join``: a Ctrl-C that interrupts a join leaves the thread looking finished
    to every later join in CPython 3.11 (bpo-45274's fix), and the partial notebook it was
    about to hand over would be lost.
    """
    timed_out = False
    while not finished.wait(0.05):
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
    root: Path,
    kernel: str | None = None,
    timeout: float | None = None,
    progress: bool = False,
    cancel: threading.Event | None = None,
    started: AsyncKernelManager | None = None,
    on_start: Callable[[], None] | None = None,
    import_roots: Sequence[Path] = (),
) -> Execution:
    """Execute ``notebook`` in a fresh kernel, saving the executed notebook to ``output``.

    ``started`` is a fresh kernel started ahead for this execution, which then owns it;
    ``on_start`` is called (in another thread) just before the kernel gets the first cell.
    Never raises for what happens inside the kernel. ``KeyboardInterrupt``, SIGTERM (in
    the main thread) and a set ``cancel`` event stop the kernel and end the execution as
    ``interrupted``.
    """
    manager = started or start_kernel(kernel, root, import_roots)
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def run_papermill() -> None:
        try:
            _run_papermill(notebook, output, parameters, manager, progress, outcome, on_start)
        finally:
            finished.set()

    worker = threading.Thread(
        target=_in_own_loop(run_papermill),
        # A unique name: jupyter_core keeps one event-loop runner per thread *name*.
        name=f"mitosis-papermill-{output.parent.name}",
        daemon=True,
    )
    deadline = time.monotonic() + timeout if timeout else None
    interrupted: BaseException | None = None
    stopping: threading.Thread | None = None
    try:
        with sigterm_as_interrupt():
            worker.start()
            try:
                timed_out = _supervise(finished, deadline, lambda: _kill_kernel(manager), cancel)
            except (KeyboardInterrupt, TrialInterrupted) as signal_error:
                interrupted = signal_error
                _kill_kernel(manager)
                finished.wait(30)
                timed_out = False
        if interrupted is None and not timed_out:
            # The notebook is saved: the kernel's shutdown overlaps with publishing it. Not
            # a daemon, so that even an exit meanwhile waits for the kernel to be gone.
            stopping = threading.Thread(
                target=_in_own_loop(stop_kernel),
                args=(manager,),
                name=f"mitosis-stop-{output.parent.name}",
            )
            stopping.start()
    finally:
        if stopping is None:
            stop_kernel(manager)
    executed = outcome.get("notebook") or _read_partial(output)
    result = Execution(notebook=executed, kernel=manager.kernel_name, stopping=stopping)
    _say_how_it_ended(result, interrupted, timed_out, outcome.get("error"))
    return result


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
    return type(error).__name__ == "PapermillExecutionError"


def _kernel_went(error: BaseException) -> bool:
    # nbclient's DeadKernelError, or our client's "Kernel died before replying": anything
    # else that is not a cell's error went wrong on this side, and says so itself.
    return type(error).__name__ == "DeadKernelError" or "Kernel died" in str(error)


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
