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
from collections.abc import Iterable, Sequence
from typing import Any

from mitosis.core.code_facts import InterpreterFacts
from mitosis.core.redact import redact_environment, redact_value

_Scan = tuple[dict[str, str], dict[str, dict[str, str]]]
_PathState = tuple[tuple[str, int | None], ...]
# The last scan of each import path, by the state of its folders when it was made.
_last_scans: dict[tuple[str, ...], tuple[_PathState, _Scan]] = {}
_scans_lock = threading.Lock()


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

    Reading every distribution's metadata takes a noticeable part of a trial; a sweep's
    trials reuse one scan while nothing on the path has changed.
    """
    entries = tuple(sys.path if path is None else path)
    state = _path_state(entries)
    with _scans_lock:
        last = _last_scans.get(entries)
    if last is not None and last[0] == state:
        return last[1]
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
    found = (_by_name(versions), _by_name(origins))
    with _scans_lock:
        _last_scans[entries] = (state, found)
    return found


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
