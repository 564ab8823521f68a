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

from mitosis.core.redact import redact_environment, redact_url


def installed_packages() -> dict[str, str]:
    """Every distribution importable by this interpreter, name -> version."""
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name not in packages:
            packages[name] = distribution.version
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


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
    packages: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name not in seen:
            # The first distribution of a name on sys.path is the one that imports.
            seen.add(name)
            origin = _vcs_origin(distribution)
            if origin is not None:
                packages[name] = origin
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


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
