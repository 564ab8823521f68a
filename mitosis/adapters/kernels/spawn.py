"""A kernel of this very interpreter, started before jupyter_client is even imported.

Importing jupyter_client (and pyzmq, asyncio, traitlets) takes the runner about 0.2 s, and
a kernel's boot is what every run waits for first: so the runner starts its kernels with
the standard library alone, the way jupyter_client's launcher would, and hands them to
jupyter_client once it is imported (``launch.adopt``). ``mitosis-nb run`` starts its first
kernel before it has even read its arguments (``start_first_kernel``): the kernel learns
which investigation it is for once it has imported ipykernel.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
# again, for a trial's own code. ``{bind}`` may set where the kernel runs, and ``preload``,
# code it runs once it is up (IPython's ``exec_lines``: its output goes nowhere), before it
# answers any request.
_LAUNCHER = """
import os, sys
if sys.path[0] == "":
    del sys.path[0]
sys.modules["debugpy"] = None
import ipykernel.debugger
del sys.modules["debugpy"]
from ipykernel import kernelapp
preload = ""
{bind}
del os, sys
kernelapp.launch_new_instance(exec_lines=[preload] if preload else [])
"""
# What a kernel started here does once ipykernel is imported: it reads one line of JSON from
# stdin, which says the folder to run in, the folders to import from before anything else
# (as PYTHONPATH would have put them), PYTHONPATH for what it starts, and the code to run
# once it is up. The end of stdin (the runner ended, or never needed it) ends the kernel.
_BIND_FROM_STDIN = """
import json
line = sys.stdin.buffer.readline()
if not line:
    sys.exit()
binding = json.loads(line)
os.chdir(binding["cwd"])
sys.path[:0] = [os.path.abspath(folder) for folder in binding["path"]]
os.environ["PYTHONPATH"] = binding["pythonpath"]
preload = binding["preload"]
del json, line, binding
"""
# The program of a kernel that jupyter_client starts in its folder and environment.
IPYKERNEL_WITHOUT_DEBUGGER = _LAUNCHER.format(bind="")
_IPYKERNEL_BOUND_LATER = _LAUNCHER.format(bind=_BIND_FROM_STDIN)
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

    def bind(self, root: Path, import_roots: Sequence[Path] = (), preload: str = "") -> None:
        """Tell the kernel to run in ``root``, importing from it and then ``import_roots``
        before anything else, and to run the code ``preload`` as soon as it is up.

        Raises ``OSError`` if the kernel is gone.
        """
        stdin = self.process.stdin
        assert stdin is not None  # started with stdin a pipe
        path = [str(root), *map(str, import_roots)]
        binding = {
            "cwd": str(root),
            "path": path,
            "pythonpath": kernel_environment(root, import_roots)["PYTHONPATH"],
            "preload": preload,
        }
        # One short line: the pipe takes it whole, even before the kernel reads it.
        stdin.write(json.dumps(binding).encode() + b"\n")
        stdin.flush()

    def kill(self) -> None:
        """Kill the kernel (and what it started), reap it, and remove its folder."""
        with contextlib.suppress(OSError):  # its own session: its group has its id
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
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


def _spawn_unbound() -> SpawnedKernel:
    """Start a kernel of this interpreter that boots until it is told where to run (``bind``):
    IPC sockets in a private folder (no TCP ports to clash between parallel trials, and no
    unencrypted-TCP warning), a session of its own, stdin a pipe, and our process id to
    watch, so that it ends if we are killed, as jupyter_client's launcher would start it.

    Raises ``OSError`` if its folder cannot be made or the process not started.
    """
    sockets = Path(tempfile.mkdtemp(prefix="mitosis-kernel-"))
    try:
        connection: dict[str, Any] = {
            **{channel: number for number, channel in enumerate(_CHANNELS, start=1)},
            "ip": str(sockets / "kernel"),
            "transport": "ipc",
            "key": os.urandom(16).hex(),
            "signature_scheme": "hmac-sha256",
            "kernel_name": SAME_INTERPRETER,
        }
        connection_file = sockets / "connection.json"
        connection_file.write_text(json.dumps(connection))
        argv = (sys.executable, "-c", _IPYKERNEL_BOUND_LATER, "-f", str(connection_file))
        env = dict(os.environ)
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        env["JPY_PARENT_PID"] = str(os.getpid())
        env.pop("PYTHONEXECUTABLE", None)  # as jupyter_client: it would confuse the kernel
        process = subprocess.Popen(
            [*argv, NO_HISTORY], stdin=subprocess.PIPE, env=env, start_new_session=True
        )
    except BaseException:
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    return SpawnedKernel(process, (*argv, NO_HISTORY), connection_file, connection)


# The kernel ``start_first_kernel`` started, until ``spawn_kernel`` takes it.
_first: SpawnedKernel | None = None
_first_lock = threading.Lock()


def start_first_kernel() -> None:
    """Start a kernel now, for the first ``spawn_kernel`` of this process to take: before
    ``mitosis-nb run`` has read its arguments, it boots beside the runner's imports instead
    of after them. If nothing takes it, it is killed as the process exits. Does nothing if
    it cannot be started (``spawn_kernel`` then says why)."""
    global _first
    with _first_lock, contextlib.suppress(OSError):
        if _first is None:
            _first = _spawn_unbound()
            atexit.register(_kill_untaken)


def _take_first() -> SpawnedKernel | None:
    global _first
    with _first_lock:
        kernel, _first = _first, None
    return kernel


def _kill_untaken() -> None:
    kernel = _take_first()
    if kernel is not None:
        kernel.kill()


def spawn_kernel(root: Path, import_roots: Sequence[Path] = (), preload: str = "") -> SpawnedKernel:
    """Start a kernel of this interpreter in ``root``, with the investigation and then
    ``import_roots`` importable before anything else; it runs the code ``preload`` as soon
    as it is up, before it answers any request. The kernel ``start_first_kernel`` started,
    if any, is this process's first.

    Raises ``OSError`` if its folder cannot be made or the process not started.
    """
    kernel = _take_first()
    if kernel is not None:
        try:
            kernel.bind(root, import_roots, preload)
            return kernel
        except OSError:  # it died while booting: start another
            kernel.kill()
    kernel = _spawn_unbound()
    try:
        kernel.bind(root, import_roots, preload)
    except BaseException:
        kernel.kill()
        raise
    return kernel
