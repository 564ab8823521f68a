"""Where the step cache keeps what it knows: one small file per cached step result, in the
trials folder's ``step-cache/``, naming the trial and step that computed it.

Read and written inside trials' kernels (the step's key is known only there), so this
module stays light. The results themselves stay in their trials' folders: nothing is copied
and nothing is ever deleted to make room. A step being computed holds a lock file, which its
kernel touches while it computes, so that another trial wanting the same result waits for it
instead of computing it again; a lock nobody touched for a minute was left by a dead kernel.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mitosis.atomic import create_exclusive, write_atomic

__all__ = [
    "CACHE_DIR",
    "CacheEntry",
    "computing",
    "find",
    "list_entries",
    "publish",
    "trial_status",
]

CACHE_DIR = "step-cache"
# How often a computing kernel touches its lock, and how old a lock is when nobody does.
TOUCH_EVERY_S = 10.0
STALE_AFTER_S = 60.0
WAIT_POLL_S = 0.5


@dataclass(frozen=True)
class CacheEntry:
    """A cached step result: the key, the trial and step that computed it, and its file
    (relative to the trials folder) with the size it had."""

    key: str
    trial: str
    step: str
    results: str
    size: int


def _name(key: str) -> str:
    return key.partition(":")[2] or key


def _entry_path(trials_folder: Path, key: str) -> Path:
    return trials_folder / CACHE_DIR / f"{_name(key)}.json"


def find(trials_folder: Path, key: str) -> CacheEntry | None:
    """The cached result of ``key``, if its file is still there, whole, and its trial has
    not failed; else None."""
    try:
        entry = CacheEntry(**json.loads(_entry_path(trials_folder, key).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        size = (trials_folder / entry.results).stat().st_size
    except OSError:
        return None
    if size != entry.size or entry.key != key:
        return None
    return entry if trial_status(trials_folder, entry.trial) in _USABLE else None


# A running trial's step is done once its entry exists (a sweep's trials share it at once);
# a trial that failed or was stopped later no longer vouches for it.
_USABLE = ("succeeded", "running")


# The record's top-level ``status`` line, as mitosis-nb writes it: a plain or quoted word.
_STATUS = re.compile(r"^status: *['\"]?(\w+)['\"]? *$", re.MULTILINE)


def trial_status(trials_folder: Path, trial: str) -> str | None:
    """The status a trial's record says, or None if it cannot be read. Only that line is
    read: this runs in every trial's kernel, for each step, and for each entry ``list``s."""
    try:
        text = (trials_folder / trial / "trial.yaml").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    found = _STATUS.search(text)
    return found.group(1) if found else None


def publish(trials_folder: Path, entry: CacheEntry) -> None:
    """Make ``entry`` findable. A usable entry of the same key is kept (the first trial to
    compute a result serves it); one whose trial failed since is replaced."""
    (trials_folder / CACHE_DIR).mkdir(exist_ok=True)
    path = _entry_path(trials_folder, entry.key)
    if create_exclusive(path, json.dumps(asdict(entry))) or find(trials_folder, entry.key):
        return
    write_atomic(path, json.dumps(asdict(entry)).encode())


def list_entries(trials_folder: Path) -> list[CacheEntry]:
    """Every entry of the cache whose result is still there, by trial then step."""
    folder = trials_folder / CACHE_DIR
    keys = [] if not folder.is_dir() else sorted(p.stem for p in folder.glob("*.json"))
    found = [find(trials_folder, f"sha256:{key}") for key in keys]
    return sorted((e for e in found if e is not None), key=lambda e: (e.trial, e.step))


@contextlib.contextmanager
def computing(trials_folder: Path, key: str, trial: str) -> Iterator[CacheEntry | None]:
    """Yield the cached result of ``key`` if there is one (perhaps after waiting for another
    trial that computes it), else None while holding the key's lock: compute, then publish."""
    (trials_folder / CACHE_DIR).mkdir(exist_ok=True)
    lock = trials_folder / CACHE_DIR / f"{_name(key)}.lock"
    holder = json.dumps({"trial": trial, "host": socket.gethostname(), "pid": os.getpid()})
    while True:
        found = find(trials_folder, key)
        if found is not None:
            yield found
            return
        if create_exclusive(lock, holder):
            # Another trial may have published and let go between our look and our lock.
            found = find(trials_folder, key)
            if found is None:
                break
            with contextlib.suppress(OSError):
                lock.unlink()
            yield found
            return
        _wait_or_clear(lock)
    with _touching(lock):
        try:
            yield None
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()


def _wait_or_clear(lock: Path) -> None:
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return  # released meanwhile: look again
    if age > STALE_AFTER_S:
        with contextlib.suppress(OSError):
            lock.unlink()  # its kernel died: whoever looks next computes it
        return
    time.sleep(WAIT_POLL_S)


@contextlib.contextmanager
def _touching(lock: Path) -> Iterator[None]:
    done = threading.Event()

    def touch() -> None:
        while not done.wait(TOUCH_EVERY_S):
            with contextlib.suppress(OSError):
                os.utime(lock)

    toucher = threading.Thread(target=touch, name="mitosis-cache-lock", daemon=True)
    toucher.start()
    try:
        yield
    finally:
        done.set()
        toucher.join()
