"""Asking a booted kernel about the user's code, over its shell channel alone, and telling
how it ended if it died before it answered."""

from __future__ import annotations

import ast
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from mitosis.errors import KernelError


def evaluate(manager: AsyncKernelManager, expression: str, timeout: float | None) -> str:
    deadline = time.monotonic() + timeout if timeout else None
    with _shell_client(manager) as client:
        _await_ready(client, manager, deadline, timeout)
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


def answers(manager: AsyncKernelManager, stop: threading.Event) -> bool:
    """Whether the kernel answers a ``kernel_info`` request before ``stop`` is set."""
    with _shell_client(manager) as client:
        try:
            return _await_ready(client, manager, None, None, stop, every=0.2)
        except KernelError:  # it died: the trial that takes it will say so
            return False


def _await_ready(
    client: BlockingKernelClient,
    manager: AsyncKernelManager,
    deadline: float | None,
    timeout: float | None,
    stop: threading.Event | None = None,
    every: float = 1.0,
) -> bool:
    """True once the kernel has answered a ``kernel_info`` request; False if ``stop`` is
    set first.

    A request that reaches a kernel still setting up its shell may wait unread (ipykernel 7
    starts more threads and sockets, and a loaded machine makes that window longer): the
    Jupyter protocol's advice is to send nothing else before a ``kernel_info`` is answered.
    Each ``every`` seconds without an answer sends another, in case the first was one of
    those.
    """
    asked: set[str] = set()
    while stop is None or not stop.is_set():
        asked.add(client.kernel_info())
        if _await_reply(client, manager, asked, deadline, timeout, within=every) is not None:
            return True
    return False


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
