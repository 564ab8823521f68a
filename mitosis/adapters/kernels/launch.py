"""A trial's fresh kernel under jupyter_client: one of this interpreter that ``spawn``
started is taken over (``adopt``), a named kernelspec is started here, and either is stopped
for good whatever happened. The notebook executor only runs cells in a ``TrialKernel``,
kills it and stops it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from jupyter_core.utils import run_sync

from mitosis.adapters.kernels.spawn import (
    IPYKERNEL_WITHOUT_DEBUGGER,
    NO_HISTORY,
    SAME_INTERPRETER,
    SpawnedKernel,
    kernel_environment,
    spawn_kernel,
)


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
            argv=[sys.executable, "-c", IPYKERNEL_WITHOUT_DEBUGGER, "-f", "{connection_file}"],
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


def start_kernel(kernel: str | None, root: Path, import_roots: Sequence[Path] = ()) -> TrialKernel:
    """Start a fresh kernel in ``root``: this interpreter, or the named kernelspec."""
    if kernel is None or kernel == SAME_INTERPRETER:
        return adopt(spawn_kernel(root, import_roots))
    # IPC sockets in a private directory, as ``spawn_kernel`` makes them.
    manager = _new_manager(kernel, Path(tempfile.mkdtemp(prefix="mitosis-kernel-")))
    run_sync(manager.start_kernel)(
        cwd=str(root),
        env=kernel_environment(root, import_roots),
        extra_arguments=_history_off(manager.kernel_spec),
    )
    return TrialKernel(manager)


def adopt(spawned: SpawnedKernel) -> TrialKernel:
    """The kernel ``spawn_kernel`` started, under jupyter_client's manager as if the manager
    had started it. Kills the kernel if that fails."""
    try:
        manager = _new_manager(SAME_INTERPRETER, spawned.sockets)
        manager.connection_file = str(spawned.connection_file)
        manager.load_connection_info(cast(KernelConnectionInfo, spawned.connection))
        manager.kernel_id = str(uuid.uuid4())
        # A manager starts its kernel through the provisioner it has, if it has one.
        manager.provisioner = _Adopting(
            spawned, kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager
        )
        run_sync(manager.start_kernel)()
    except BaseException:
        spawned.kill()
        raise
    return TrialKernel(manager)


class _Adopting(LocalProvisioner):
    """Hands jupyter_client a kernel process started already, instead of launching one."""

    def __init__(self, spawned: SpawnedKernel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spawned = spawned

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        # Nothing to write or to prepare: the kernel runs already.
        return {**kwargs, "cmd": list(self.spawned.argv)}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        process = self.spawned.process
        self.process, self.pid = process, process.pid
        self.pgid = process.pid  # it leads a session of its own, and so its group
        # The key as bytes, as a manager's session holds it and compares it.
        key = str(self.spawned.connection["key"]).encode()
        self.connection_info = cast(KernelConnectionInfo, {**self.spawned.connection, "key": key})
        return self.connection_info


def _new_manager(kernel: str, sockets: Path) -> _TrialKernelManager:
    return _TrialKernelManager(
        kernel_name=kernel,
        kernel_spec_manager=_SameInterpreterSpecs(),
        client_factory=_PromptClient,
        transport="ipc",
        ip=str(sockets / "kernel"),
    )


def _history_off(spec: KernelSpec | None) -> list[str]:
    """The argument that keeps an IPython kernel's history off; other kernels get none."""
    runs_ipykernel = spec is not None and any("ipykernel" in part for part in spec.argv)
    return [NO_HISTORY] if runs_ipykernel else []


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
