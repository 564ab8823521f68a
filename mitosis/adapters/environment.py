"""The computing environment a trial ran in: interpreter, platform, packages, variables."""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import platform
import socket
import sys
from collections.abc import Iterable
from typing import Any

from mitosis.core.redact import redact_environment, redact_url

_Scan = tuple[dict[str, str], dict[str, dict[str, str]]]
# The last scan of the installed distributions, and the sys.path state it was made in.
_last_scan: tuple[tuple[tuple[str, int | None], ...], _Scan] | None = None


def _path_state() -> tuple[tuple[str, int | None], ...]:
    # Installing or removing a distribution changes its folder's modification time.
    state: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return tuple(state)


def _scan() -> _Scan:
    """Every importable distribution's version and VCS origin, in one pass over them.

    Reading every distribution's metadata takes a noticeable part of a trial; a sweep's
    trials reuse one scan while nothing on ``sys.path`` has changed.
    """
    global _last_scan
    state = _path_state()
    last = _last_scan
    if last is not None and last[0] == state:
        return last[1]
    versions: dict[str, str] = {}
    origins: dict[str, dict[str, str]] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name not in versions:
            # The first distribution of a name on sys.path is the one that imports.
            versions[name] = distribution.version
            origin = _vcs_origin(distribution)
            if origin is not None:
                origins[name] = origin
    found = (_by_name(versions), _by_name(origins))
    _last_scan = (state, found)
    return found


def _by_name(items: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(items.items(), key=lambda item: item[0].lower()))


def installed_packages() -> dict[str, str]:
    """Every distribution importable by this interpreter, name -> version."""
    return dict(_scan()[0])


def _vcs_origin(distribution: importlib.metadata.Distribution) -> dict[str, str] | None:
    try:
        origin = json.loads(distribution.read_text("direct_url.json") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(origin, dict) or not isinstance(origin.get("vcs_info"), dict):
        return None
    vcs = origin["vcs_info"]
    found = {
        "url": redact_url(str(origin.get("url", ""))),
        "vcs": str(vcs.get("vcs", "")),
        "commit": str(vcs.get("commit_id", "")),
    }
    if vcs.get("requested_revision"):
        found["requested_revision"] = str(vcs["requested_revision"])
    return found


def vcs_packages() -> dict[str, dict[str, str]]:
    """Distributions installed from a version control URL (PEP 610): URL, vcs and commit."""
    return {name: dict(origin) for name, origin in _scan()[1].items()}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def describe_environment(
    kernel: str,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> dict[str, object]:
    """The ``environment`` field of a trial record, secrets redacted."""
    return {
        "python": platform.python_version(),
        "interpreter": sys.executable,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "user": _user(),
        "kernel": kernel,
        "packages": installed_packages(),
        "vcs_packages": vcs_packages(),
        "variables": redact_environment(os.environ, include, exclude),
    }
