"""A trial's kernel started first of all, so that it boots while the runner gets ready.

A kernel takes about a second to start; the runner meanwhile imports its libraries and
checks git. Importing only the configuration, the execution adapter and the pure core, this
module lets the command line start kernels before any of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mitosis.adapters.config import load_config
from mitosis.adapters.execute import KernelAhead
from mitosis.core.params import ParamOption, bind_steps, expand_grid
from mitosis.errors import MitosisError


def start_kernel_ahead(
    kernel: str | None,
    config: Path | None = None,
    cwd: Path | None = None,
    import_roots: Sequence[Path] = (),
    require_steps: bool = True,
) -> KernelAhead:
    """Start the kernel a trial will need in the background, in the investigation's root.

    Raises ``ConfigError`` if the investigation's configuration cannot be read.
    """
    return KernelAhead(kernel, load_config(config, cwd, require_steps).root, import_roots)


def start_kernels_ahead(
    kernel: str | None,
    steps: Sequence[str],
    options: Sequence[ParamOption],
    workers: int,
    config: Path | None = None,
    require_steps: bool = True,
) -> list[KernelAhead]:
    """One kernel per trial that will start at once: a sweep's workers each find one booted.

    Raises ``ConfigError`` if the investigation's configuration cannot be read.
    """
    first = start_kernel_ahead(kernel, config, require_steps=require_steps)
    others = [KernelAhead(kernel, first.root) for _ in range(_at_once(steps, options, workers) - 1)]
    return [first, *others]


def _at_once(steps: Sequence[str], options: Sequence[ParamOption], workers: int) -> int:
    try:
        trials = len(expand_grid(bind_steps(options, steps)))
    except MitosisError:
        return 1  # preparing the request says what is wrong with it
    return max(1, min(workers, trials))
