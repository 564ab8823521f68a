"""The computing environment a trial ran in: interpreter, platform, packages, variables."""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import platform
import socket
import sys
from collections.abc import Iterable

from mitosis.core.redact import redact_environment


def installed_packages() -> dict[str, str]:
    """Every distribution importable by this interpreter, name -> version."""
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name not in packages:
            packages[name] = distribution.version
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
        "variables": redact_environment(os.environ, include, exclude),
    }
