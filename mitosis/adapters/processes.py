"""Is a trial's runner process still alive? Process identity that survives pid reuse."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

RunnerState = Literal["alive", "dead", "elsewhere", "unknown"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None


def start_token(pid: int) -> str | None:
    """An opaque token of when process ``pid`` started, or None where that cannot be known.

    On Linux it is the boot id and field 22 of ``/proc/<pid>/stat`` (start time in clock
    ticks since boot): a pid reused by another process, or after a reboot, gets another token.
    """
    fields = _stat_fields(pid)
    boot = _boot_id()
    if fields is None or len(fields) < 20 or boot is None:
        return None
    return f"{boot}/{fields[19]}"


def _this_host() -> str:
    """This machine's hostname, as records store it."""
    return socket.gethostname()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Killed and not yet reaped by its parent: gone, though its pid still answers."""
    fields = _stat_fields(pid)
    return fields is not None and fields[:1] == ["Z"]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (state first), or None where it is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat[stat.rfind(")") + 2 :].split()


def runner_state(hostname: str | None, pid: int | None, token: str | None) -> RunnerState:
    """Whether the runner a record names is alive, dead, on another host, or unknowable."""
    if hostname is None or pid is None:
        return "unknown"
    if hostname != _this_host():
        return "elsewhere"
    if pid <= 0 or not _exists(pid):
        return "dead"
    if token is not None and start_token(pid) != token:
        return "dead"  # the pid now belongs to a younger process
    return "alive"
