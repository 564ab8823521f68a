"""Kernels started ahead of need, and asked about the user's code before a trial runs."""

from __future__ import annotations

import ast
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from mitosis.adapters.kernels.launch import TrialKernel, start_kernel, stop_kernel
from mitosis.errors import KernelError
from mitosis.event_loops import in_own_loop


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

    def answers(self, stop: threading.Event) -> bool:
        """Wait until the kernel has booted (it answers a ``kernel_info`` request); False if
        it did not start or died, or once ``stop`` is set."""
        self._thread.join()
        manager = self._manager
        return manager is not None and _answers(manager, stop)

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
    deadline = time.monotonic() + timeout if timeout else None
    with _shell_client(manager) as client:
        _await_ready(client, manager, deadline, timeout)
        if booted is not None:
            booted()
        # Silent: no output, no execution count, nothing in the kernel's history.
        asked = client.execute(
            "", silent=True, store_history=False, user_expressions={"v": expression}
        )
        reply = _await_reply(client, manager, {asked}, deadline, timeout)
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


@contextlib.contextmanager
def _shell_client(manager: AsyncKernelManager) -> Iterator[BlockingKernelClient]:
    """A client of the kernel with only the shell channel, the one a request and its reply
    travel on; closed on leaving."""
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        yield client
    finally:
        client.stop_channels()
        client.context.destroy(linger=0)  # now, not whenever the collector finds it


def _answers(manager: AsyncKernelManager, stop: threading.Event) -> bool:
    """Whether the kernel answers a ``kernel_info`` request before ``stop`` is set."""
    asked: set[str] = set()
    with _shell_client(manager) as client:
        while not stop.is_set():
            asked.add(client.kernel_info())
            try:
                if _await_reply(client, manager, asked, None, None, within=0.2) is not None:
                    return True
            except KernelError:  # it died: the trial that takes it will say so
                return False
    return False


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
