"""The computing environment a trial ran in: interpreter, platform, packages, variables."""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mitosis.core.code_facts import InterpreterFacts
from mitosis.core.redact import redact_environment, redact_value
from mitosis.user_cache import KeptTexts

_Scan = tuple[dict[str, str], dict[str, dict[str, str]]]
_PathState = tuple[tuple[str, int | None], ...]
# The last scan of each import path, by the state of its folders when it was made.
_last_scans: dict[tuple[str, ...], tuple[_PathState, _Scan]] = {}
_scans_lock = threading.Lock()
_RACY_NS = 2_000_000_000
# Scans kept for later processes, one per interpreter and import path.
_kept_scans = KeptTexts("packages", most=64)


def _path_state(path: Sequence[str]) -> _PathState:
    # Installing or removing a distribution changes its folder's modification time.
    state: list[tuple[str, int | None]] = []
    for entry in path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return tuple(state)


def _scan(path: Sequence[str] | None = None) -> _Scan:
    """Every distribution importable from ``path`` (default ``sys.path``): its version and
    VCS origin, in one pass over them.

    Reading every distribution's metadata takes a noticeable part of a trial (0.05 CPU-s):
    a sweep's trials reuse one scan, and later runs the one in the user's cache, while
    nothing on the path has changed.
    """
    entries = tuple(sys.path if path is None else path)
    state = _path_state(entries)
    with _scans_lock:
        last = _last_scans.get(entries)
    if last is not None and last[0] == state:
        return last[1]
    found = _cached_scan(entries, state)
    if found is None:
        found = _read_distributions(entries)
        _cache_scan(entries, state, found)
    with _scans_lock:
        _last_scans[entries] = (state, found)
    return found


def _scanned(entries: tuple[str, ...]) -> list[str]:
    # "" on the path is the working folder, whichever it is.
    return [sys.executable, *(os.path.abspath(entry or ".") for entry in entries)]


def _cached_scan(entries: tuple[str, ...], state: _PathState) -> _Scan | None:
    """The scan an earlier process made of ``entries`` in this same ``state``, if any."""
    text = _kept_scans.get(_scanned(entries))
    try:
        cached = json.loads(text) if text is not None else None
        if cached is None or [tuple(item) for item in cached["state"]] != list(state):
            return None
        return dict(cached["versions"]), dict(cached["origins"])
    except (ValueError, KeyError, TypeError):  # not a scan of ours
        return None


def _cache_scan(entries: tuple[str, ...], state: _PathState, found: _Scan) -> None:
    # A folder changed within the last seconds may change again within its clock's
    # resolution without its time changing (as git's "racy" index entries): not cached.
    newest = max((mtime for _, mtime in state if mtime is not None), default=0)
    if time.time_ns() - newest < _RACY_NS:
        return
    content = {"state": state, "versions": found[0], "origins": found[1]}
    _kept_scans.put(_scanned(entries), json.dumps(content))


def _read_distributions(entries: tuple[str, ...]) -> _Scan:
    versions: dict[str, str] = {}
    origins: dict[str, dict[str, str]] = {}
    for distribution in importlib.metadata.distributions(path=list(entries)):
        name = distribution.metadata["Name"]
        if name and name not in versions:
            # The first distribution of a name on sys.path is the one that imports.
            versions[name] = distribution.version
            origin = _vcs_origin(distribution)
            if origin is not None:
                origins[name] = origin
    return _by_name(versions), _by_name(origins)


def _by_name(items: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(items.items(), key=lambda item: item[0].lower()))


def installed_packages(path: Sequence[str] | None = None) -> dict[str, str]:
    """Every distribution importable from ``path`` (default: this interpreter's), name ->
    version."""
    return dict(_scan(path)[0])


def _vcs_origin(distribution: importlib.metadata.Distribution) -> dict[str, str] | None:
    try:
        origin = json.loads(distribution.read_text("direct_url.json") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(origin, dict) or not isinstance(origin.get("vcs_info"), dict):
        return None
    vcs = origin["vcs_info"]
    found = {
        "url": redact_value(str(origin.get("url", ""))),
        "vcs": str(vcs.get("vcs", "")),
        "commit": str(vcs.get("commit_id", "")),
    }
    if vcs.get("requested_revision"):
        found["requested_revision"] = str(vcs["requested_revision"])
    return found


def vcs_packages(path: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """Distributions importable from ``path`` that were installed from a version control
    URL (PEP 610): URL, vcs and commit."""
    return {name: dict(origin) for name, origin in _scan(path)[1].items()}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def describe_environment(
    kernel: str,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    interpreter: InterpreterFacts | None = None,
) -> dict[str, object]:
    """The ``environment`` field of a trial record, secrets redacted.

    ``interpreter`` describes the kernel's Python when it is not this one (``--kernel``).
    """
    path = interpreter.path if interpreter else None
    return {
        "python": interpreter.python if interpreter else platform.python_version(),
        "interpreter": interpreter.interpreter if interpreter else sys.executable,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "user": _user(),
        "kernel": kernel,
        "packages": installed_packages(path),
        "vcs_packages": vcs_packages(path),
        "variables": redact_environment(os.environ, include, exclude),
    }
