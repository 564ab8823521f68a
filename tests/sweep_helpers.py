"""Helpers the sweep tests share: a holdable experiment, kernels on /proc, a terminal on stderr."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import yaml
from conftest import kernels_in as kernels_in  # re-exported for the sweep tests

# `run(x)` returns x at once, unless x is listed in trials/hold: then it sleeps until stopped.
# The hold file sits in the trials folder, so writing it does not make the git tree dirty.
HOLDABLE = """
import os
import time

lookup = {"x": {"one": 1}}


def run(x=0, seconds=0):
    hold = os.path.join("trials", "hold")
    if os.path.exists(hold) and str(x) in open(hold).read().split():
        time.sleep(120)
    time.sleep(seconds)
    return {"main": float(x), "metrics": {"pid": os.getpid()}}
"""

HOLDABLE_PYPROJECT = """
[tool.mitosis.steps]
nap = ["toy_experiments:run", "toy_experiments:lookup"]
"""


def parent_of(pid: int) -> int | None:
    """The parent process id of ``pid``, or None if it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1])


def records(trials: Path) -> list[dict]:
    """Every trial record in ``trials``, by id (folders reserved by a sweep have none yet)."""
    return [
        yaml.safe_load((folder / "trial.yaml").read_text())
        for folder in sorted(trials.iterdir())
        if folder.name[:1].isdigit() and (folder / "trial.yaml").is_file()
    ]


def run_cli(
    root: Path, *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line in ``root``, output piped; ``env`` adds to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_with_terminal_stderr(
    root: Path, *args: str, timeout: float = 180, columns: int = 120
) -> tuple[int, str, str]:
    """Run the command line with stderr on a pseudo-terminal (stdout piped).

    The terminal is ``columns`` wide, as a user's would be; 0 leaves it as a new pty is,
    reporting 0 x 0. Returns the exit code, stdout and everything written to the terminal.
    """
    controller, terminal = pty.openpty()
    if columns:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []

    def drain() -> None:  # a full terminal buffer would block the runner
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=timeout)
    reader.join(10)
    os.close(controller)
    return process.returncode, stdout, b"".join(chunks).decode("utf-8", "replace")
