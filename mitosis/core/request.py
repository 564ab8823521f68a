"""What the user asked for, before anything is checked: the input of planning.

Pure, so that the command line can build a request before the heavy imports, while the
kernels it starts first boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mitosis.core.params import ParamOption
from mitosis.core.steps import StepConfig


@dataclass(frozen=True)
class TrialRequest:
    """What the user asked for, before anything is checked."""

    steps: tuple[str, ...]
    options: tuple[ParamOption, ...] = ()
    debug: bool = False
    note: str | None = None
    template: Path | None = None
    timeout: float | None = None
    kernel: str | None = None
    progress: bool = False
    command: str | None = None
    config: Path | None = None
    trials_folder: Path | None = None
    cwd: Path | None = None
    reproduces: str | None = None
    # Folders the kernel imports from before anything else (a reproduction's worktrees).
    import_roots: tuple[Path, ...] = ()
    # Steps defined on the command line rather than in [tool.mitosis.steps] (mitosis -m).
    extra_steps: tuple[StepConfig, ...] = ()
    # False (--no-cache, reproduce): every step runs, none takes an earlier trial's result.
    cache: bool = True
