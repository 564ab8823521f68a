"""A trial's kernel started first of all, so that it boots while the runner gets ready.

A kernel takes about a second to start; the runner meanwhile imports its libraries and
the user's code and checks git. Importing only the configuration and the execution
adapter, this module lets the command line start the kernel before any of that.
"""

from __future__ import annotations

from pathlib import Path

from mitosis.adapters.config import load_config
from mitosis.adapters.execute import KernelAhead


def start_kernel_ahead(
    kernel: str | None, config: Path | None = None, cwd: Path | None = None
) -> KernelAhead | None:
    """Start the kernel a trial will need in the background; None if the investigation's
    configuration cannot be read (preparing the trial then says why)."""
    try:
        found = load_config(config, cwd)
    except Exception:
        return None
    return KernelAhead(kernel, found.root)
