"""A trial's kernel started first of all, so that it boots while the runner gets ready.

A kernel takes about a second to start; the runner meanwhile imports its libraries and
checks git. Importing only the configuration and the execution adapter, this module lets
the command line start the kernel before any of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mitosis.adapters.config import load_config
from mitosis.adapters.execute import KernelAhead


def start_kernel_ahead(
    kernel: str | None,
    config: Path | None = None,
    cwd: Path | None = None,
    import_roots: Sequence[Path] = (),
) -> KernelAhead:
    """Start the kernel a trial will need in the background, in the investigation's root.

    Raises ``ConfigError`` if the investigation's configuration cannot be read.
    """
    return KernelAhead(kernel, load_config(config, cwd).root, import_roots)
