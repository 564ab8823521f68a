"""Where a trial's code came from: every repository that defines one of its steps.

A step's callable or lookup dictionary may live outside the investigation (a git submodule,
an editable install of another repository); each file is traced to its own repository,
commit and dirty state, and a non-debug trial needs all of those repositories clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.adapters import git as gitstate
from mitosis.adapters import usercode
from mitosis.core.steps import StepConfig


@dataclass(frozen=True)
class Provenance:
    """Each step's source files, and the state of every repository they came from."""

    sources: dict[str, dict[str, Any]]
    repositories: tuple[gitstate.GitState, ...]

    def require_clean(self) -> None:
        """Refuse a non-debug trial if any step's repository has uncommitted changes."""
        for state in self.repositories:
            gitstate.require_clean(state)


def _trace(
    path: str | None, states: dict[Path, gitstate.GitState], ignore: Path
) -> dict[str, Any] | None:
    if path is None:
        return None
    file = usercode.module_file(path)
    if file is None:  # a built-in or namespace module has no file to trace
        return {"file": None, "repo": None}
    return gitstate.locate_file(file, states, ignore).as_record()


def trace_steps(
    steps: Sequence[StepConfig], main: gitstate.GitState, trials_folder: Path
) -> Provenance:
    """Trace every step's callable and lookup dictionary (both must be imported already)."""
    states = {main.root: main}
    sources = {
        step.name: {
            "run": _trace(step.run, states, trials_folder),
            "lookup": _trace(step.lookup, states, trials_folder),
        }
        for step in steps
    }
    return Provenance(sources, tuple(states[root] for root in sorted(states)))
