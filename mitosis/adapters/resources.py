"""What a trial's kernel costs: CPU time and memory of its process tree, read from ``/proc``,
and the GPU memory it used where an NVIDIA GPU is visible (``nvidia-smi``).

A sampler thread looks at the tree every ``interval`` seconds; the kernel's own high-water
mark (``VmHWM``) is exact whatever the interval, and CPU time is read from the kernel and
its live descendants at the last look, which includes every child they have reaped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ProcessTreeMonitor", "Resources", "gpu_devices"]

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_MB = 1024 * 1024


@dataclass(frozen=True)
class Resources:
    """A trial's cost: ``cpu_s`` (user + system of the kernel and all it started) and
    ``peak_rss_mb`` (the tree's high-water mark); ``gpus`` where a GPU was visible."""

    cpu_s: float
    peak_rss_mb: float
    gpus: tuple[dict[str, Any], ...] = ()

    def as_record(self) -> dict[str, Any]:
        """The record's ``resources`` entry."""
        entry: dict[str, Any] = {
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }
        if self.gpus:
            entry["gpus"] = [dict(gpu) for gpu in self.gpus]
        return entry


@dataclass
class _Seen:
    cpu_ticks: int = 0  # own and reaped children's user + system time
    rss_bytes: int = 0
    hwm_bytes: int = 0


def _stat(pid: int) -> tuple[int, int] | None:
    """The parent pid and the CPU ticks of ``pid`` (with its reaped children's)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = text[text.rindex(")") + 2 :].split()
    parent = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return parent, utime + stime + cutime + cstime


def _children(pid: int) -> list[int]:
    """The children of ``pid``, from each of its threads' ``children`` file."""
    found: list[int] = []
    with contextlib.suppress(OSError):  # gone meanwhile: no children
        for task in os.scandir(_PROC / str(pid) / "task"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in Path(task.path, "children").read_text().split()]
    return found


@functools.lru_cache(maxsize=1)
def _lists_children() -> bool:
    """Whether this kernel keeps ``/proc/PID/task/TID/children`` (CONFIG_PROC_CHILDREN)."""
    return Path(_PROC, "self", "task", str(threading.get_native_id()), "children").exists()


def _memory(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


class ProcessTreeMonitor:
    """Samples process ``pid`` and its descendants until ``stop``."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self._seen: dict[int, _Seen] = {}
        self._alive: set[int] = set()
        self._peak_sum = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mitosis-resources", daemon=True)

    def start(self) -> ProcessTreeMonitor:
        """Begin sampling in the background."""
        self.sample()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def _tree(self) -> list[tuple[int, int]]:
        """``(pid, cpu ticks)`` of the root and every descendant."""
        if not _lists_children():
            return self._tree_by_scan()
        tree: list[tuple[int, int]] = []
        waiting = [self.pid]
        while waiting:
            pid = waiting.pop()
            found = _stat(pid)
            if found is not None:  # else gone meanwhile, with whatever it started
                tree.append((pid, found[1]))
                waiting += _children(pid)
        return tree

    def _tree_by_scan(self) -> list[tuple[int, int]]:
        """The same from one pass over all of /proc, where a kernel lists no children."""
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.scandir(_PROC):
            if entry.name.isdigit():
                found = _stat(int(entry.name))
                if found is not None:
                    parents[int(entry.name)], ticks[int(entry.name)] = found
        if self.pid not in ticks:
            return []
        tree, waiting = [], [self.pid]
        children: dict[int, list[int]] = {}
        for pid, parent in parents.items():
            children.setdefault(parent, []).append(pid)
        while waiting:
            pid = waiting.pop()
            tree.append((pid, ticks[pid]))
            waiting += children.get(pid, [])
        return tree

    def sample(self) -> None:
        """Look at the tree once; cheap enough to call right before the kernel stops."""
        tree = self._tree()
        if not tree:
            return
        total_rss = 0
        with self._lock:
            self._alive = {pid for pid, _ in tree}
            for pid, ticks in tree:
                rss, hwm = _memory(pid)
                seen = self._seen.setdefault(pid, _Seen())
                seen.cpu_ticks, seen.rss_bytes = ticks, rss
                seen.hwm_bytes = max(seen.hwm_bytes, hwm)
                total_rss += rss
            self._peak_sum = max(self._peak_sum, total_rss)

    def stop(self) -> Resources:
        """Stop sampling; the resources seen (take a last ``sample`` first for exact CPU)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            # Processes gone before the last look are in their reaper's cutime, if it is in
            # the tree; those still alive count their own.
            live = [self._seen[pid] for pid in self._alive if pid in self._seen]
            cpu = sum(seen.cpu_ticks for seen in live) / _TICKS
            root = self._seen.get(self.pid, _Seen())
            peak = max(self._peak_sum, root.hwm_bytes, *(s.hwm_bytes for s in self._seen.values()))
        return Resources(cpu_s=cpu, peak_rss_mb=peak / _MB, gpus=tuple(gpu_devices(self.pid)))


def gpu_devices(pid: int | None = None) -> list[dict[str, Any]]:
    """Each visible NVIDIA GPU's name, driver and memory used (by ``pid``'s processes when
    ``nvidia-smi`` can say); empty where there is none or no ``nvidia-smi``."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        answer = subprocess.run(
            [
                smi,
                "--query-gpu=index,name,driver_version,memory.used",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    devices = []
    for line in answer.strip().splitlines():
        index, name, driver, used = (part.strip() for part in line.split(",", 3))
        devices.append(
            {"index": int(index), "name": name, "driver": driver, "memory_used_mb": float(used)}
        )
    return devices
