"""A kernel of this very interpreter, started before jupyter_client is even imported.

Importing jupyter_client (and pyzmq, asyncio, traitlets) takes the runner about 0.2 s, and
a kernel's boot is what every run waits for first: so the runner starts its kernels with
the standard library alone, the way jupyter_client's launcher would, and hands them to
jupyter_client once it is imported (``launch.adopt``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAME_INTERPRETER = "mitosis-same-python"
# A trial's notebook is its record, so its kernel keeps no IPython history. Parallel kernels
# writing one history.sqlite contend for its lock and can corrupt it, and every trial's cells
# would fill the user's own command history.
NO_HISTORY = "--HistoryManager.enabled=False"
# ipykernel's own launcher (``python -m ipykernel_launcher``), less its debugger: every
# ipykernel imports debugpy and pydevd as it starts, about 0.15 CPU-s, a fifth of a short
# trial's kernel, for a debugger no papermill run can attach. While ipykernel looks for it,
# debugpy cannot be imported (a None in sys.modules is Python's way to say so); then it can
# again, for a trial's own code. ``PRELOAD``, if set, is code the kernel runs once it is up
# (IPython's ``exec_lines``: its output goes nowhere), before it answers any request.
PRELOAD = "MITOSIS_KERNEL_PRELOAD"
IPYKERNEL_WITHOUT_DEBUGGER = f"""
import os, sys
if sys.path[0] == "":
    del sys.path[0]
sys.modules["debugpy"] = None
import ipykernel.debugger
del sys.modules["debugpy"]
from ipykernel import kernelapp
preload = os.environ.pop("{PRELOAD}", "")
del os, sys
kernelapp.launch_new_instance(exec_lines=[preload] if preload else [])
"""
# One socket file per channel, named after its number, in the kernel's private folder.
_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@dataclass(frozen=True)
class SpawnedKernel:
    """A kernel process started here, not yet known to jupyter_client."""

    process: subprocess.Popen[bytes]
    argv: tuple[str, ...]
    connection_file: Path  # in ``sockets``, with the channels' socket files
    connection: dict[str, Any]  # what the file says

    @property
    def sockets(self) -> Path:
        """The kernel's private folder."""
        return self.connection_file.parent

    def kill(self) -> None:
        """Kill the kernel (and what it started), reap it, and remove its folder."""
        with contextlib.suppress(OSError):  # its own session: its group has its id
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        shutil.rmtree(self.sockets, ignore_errors=True)


def kernel_environment(root: Path, import_roots: Sequence[Path] = ()) -> dict[str, str]:
    """The kernel's environment: ours, with the investigation and then ``import_roots``
    importable before anything else, and plots inline."""
    env = dict(os.environ)
    paths = [str(root), *map(str, import_roots), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop("JPY_PARENT_PID", None)
    return env


def spawn_kernel(root: Path, import_roots: Sequence[Path] = (), preload: str = "") -> SpawnedKernel:
    """Start a kernel of this interpreter in ``root``, as jupyter_client's launcher would:
    IPC sockets in a private folder (no TCP ports to clash between parallel trials, and no
    unencrypted-TCP warning), a session of its own, stdin a pipe, and our process id to
    watch, so that it ends if we are killed. The kernel runs the code ``preload`` as soon
    as it is up, before it answers any request.

    Raises ``OSError`` if its folder cannot be made or the process not started.
    """
    sockets = Path(tempfile.mkdtemp(prefix="mitosis-kernel-"))
    try:
        connection: dict[str, Any] = {
            **{channel: number for number, channel in enumerate(_CHANNELS, start=1)},
            "ip": str(sockets / "kernel"),
            "transport": "ipc",
            "key": uuid.uuid4().hex,
            "signature_scheme": "hmac-sha256",
            "kernel_name": SAME_INTERPRETER,
        }
        connection_file = sockets / "connection.json"
        connection_file.write_text(json.dumps(connection))
        argv = (sys.executable, "-c", IPYKERNEL_WITHOUT_DEBUGGER, "-f", str(connection_file))
        env = kernel_environment(root, import_roots)
        env["JPY_PARENT_PID"] = str(os.getpid())
        if preload:
            env[PRELOAD] = preload
        env.pop("PYTHONEXECUTABLE", None)  # as jupyter_client: it would confuse the kernel
        process = subprocess.Popen(
            [*argv, NO_HISTORY], stdin=subprocess.PIPE, cwd=root, env=env, start_new_session=True
        )
    except BaseException:
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    return SpawnedKernel(process, (*argv, NO_HISTORY), connection_file, connection)
