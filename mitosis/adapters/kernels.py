"""Jupyter kernels for trials (jupyter_client): started fresh, ahead of need when they can
be, asked about the user's code before a trial, and stopped for good whatever happened.
The notebook executor only runs cells in a ``TrialKernel``, kills it and stops it.
"""

from __future__ import annotations

import ast
import contextlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from mitosis.errors import KernelError
from mitosis.event_loops import in_own_loop

SAME_INTERPRETER = "mitosis-same-python"
# A trial's notebook is its record, so its kernel keeps no IPython history. Parallel kernels
# writing one history.sqlite contend for its lock and can corrupt it, and every trial's cells
# would fill the user's own command history.
_NO_HISTORY = "--HistoryManager.enabled=False"


class TrialKernel:
    """One trial's fresh kernel: what the notebook executor needs of it."""

    def __init__(self, manager: AsyncKernelManager) -> None:
        self.manager = manager

    @property
    def name(self) -> str:
        """The kernel's name (``SAME_INTERPRETER``: the runner's own Python)."""
        return str(self.manager.kernel_name)

    @property
    def pid(self) -> int | None:
        """The kernel's process id, while it runs here."""
        process = getattr(self.manager.provisioner, "process", None)
        return getattr(process, "pid", None)

    def kill(self) -> None:
        """Kill the kernel (and what it started) now, even in the middle of a cell."""
        _kill_kernel(self.manager)

    def stop(self) -> None:
        """Shut the kernel down for good and free everything it held."""
        stop_kernel(self.manager)


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


class _PromptClient(AsyncKernelClient):
    """The client papermill's executor gets: ready as soon as the kernel has answered.

    jupyter_client's ``wait_for_ready`` ends by waiting for 0.2 s of silence on IOPub, a
    tenth of a trial's overhead; this one waits for the idle status that closes one of its
    ``kernel_info`` requests (IOPub is then connected; nbclient ignores the rest).
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
                if not await self.is_alive():
                    from nbclient.exceptions import DeadKernelError  # nbclient runs this

                    raise DeadKernelError("Kernel died before replying to kernel_info") from None
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


def kernel_environment(root: Path, import_roots: Sequence[Path] = ()) -> dict[str, str]:
    """The kernel's environment: ours, with the investigation and then ``import_roots``
    importable before anything else, and plots inline."""
    env = dict(os.environ)
    paths = [str(root), *map(str, import_roots), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop("JPY_PARENT_PID", None)
    return env


def start_kernel(kernel: str | None, root: Path, import_roots: Sequence[Path] = ()) -> TrialKernel:
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
    return TrialKernel(manager)


def _history_off(spec: KernelSpec | None) -> list[str]:
    """The argument that keeps an IPython kernel's history off; other kernels get none."""
    runs_ipykernel = spec is not None and any("ipykernel" in part for part in spec.argv)
    return [_NO_HISTORY] if runs_ipykernel else []


class KernelAhead:
    """A kernel started in the background before it is needed, while the trial is prepared:
    its second of booting overlaps the runner's imports and git checks. Before it runs the
    trial, the runner asks it about the user's code (``evaluate``).
    """

    def __init__(self, kernel: str | None, root: Path, import_roots: Sequence[Path] = ()) -> None:
        self.kernel, self.root, self.import_roots = kernel, root, tuple(import_roots)
        self._manager: AsyncKernelManager | None = None
        self._failure: str | None = None
        self._disk_refused = False
        self._booted: Callable[[], None] | None = None
        self._thread = threading.Thread(
            target=in_own_loop(self._start), name=f"mitosis-kernel-ahead-{id(self)}", daemon=True
        )
        self._thread.start()

    def when_booted(self, then: Callable[[], None]) -> None:
        """Call ``then`` once, as soon as an ``evaluate`` finds the kernel booted (it has
        answered), before the expression runs."""
        self._booted = then

    def _start(self) -> None:
        try:
            self._manager = start_kernel(self.kernel, self.root, self.import_roots).manager
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
        booted, self._booted = self._booted, None
        return _evaluate(self._manager, expression, timeout, booted)

    def claim(
        self, kernel: str | None, root: Path, import_roots: Sequence[Path] = ()
    ) -> TrialKernel | None:
        """The started kernel if it is the one wanted (same kernel, folder and import roots),
        once; else None."""
        self._thread.join()
        manager, self._manager = self._manager, None
        wanted = (kernel, root, tuple(import_roots))
        if manager is None:
            return None
        if wanted != (self.kernel, self.root, self.import_roots):
            stop_kernel(manager)
            return None
        return TrialKernel(manager)

    def close(self) -> None:
        """Stop the kernel if nothing claimed it (the request was refused, or interrupted)."""
        self._thread.join()
        manager, self._manager = self._manager, None
        if manager is not None:
            stop_kernel(manager)


def _evaluate(
    manager: AsyncKernelManager,
    expression: str,
    timeout: float | None,
    booted: Callable[[], None] | None = None,
) -> str:
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    # Only the shell channel: the one a request and its reply travel on.
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        _await_ready(client, manager, deadline, timeout)
        if booted is not None:
            booted()
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


def stop_kernel(manager: AsyncKernelManager) -> None:
    """Shut the kernel down for good, even when it is busy or already dead."""
    # Killed, reaped, then forgotten by jupyter_client: its shutdown would signal the kernel's
    # process group by id even once reaped, when another run's kernel may have that id.
    _kill_kernel(manager, reap=True)
    with contextlib.suppress(Exception):
        if manager.has_kernel:  # not reaped (stuck): its group id is still its own
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
    # Its group (it and what it started) is killed by an id that is the kernel's only until
    # it is reaped, and Popen reaps holding this lock (nbclient polls from another thread).
    provisioner = manager.provisioner
    process = getattr(provisioner, "process", None)
    if provisioner is None or process is None:
        return
    with contextlib.suppress(OSError), getattr(process, "_waitpid_lock", threading.Lock()):
        if process.returncode is None:
            group = getattr(provisioner, "pgid", None)
            if group:
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(process.pid, signal.SIGKILL)
    if reap:
        with contextlib.suppress(Exception):  # not ours to reap after all, or stuck
            process.wait(timeout=5)
            run_sync(provisioner.wait)()  # closes its pipes and forgets the process
