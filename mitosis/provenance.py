"""Where a trial's code came from: every repository that defines one of its steps.

A step's callable or lookup dictionary may live outside the investigation (a git submodule,
an editable install of another repository); each file is traced to its own repository,
commit and dirty state, and a non-debug trial needs all of those repositories clean.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.adapters import git as gitstate
from mitosis.core.steps import StepConfig
from mitosis.errors import GitStateError


@dataclass(frozen=True)
class Provenance:
    """Each step's source files, and the state of every repository they came from."""

    sources: dict[str, dict[str, Any]]
    repositories: tuple[gitstate.GitState, ...]

    def require_clean(self) -> None:
        """Refuse a non-debug trial if any step's repository has uncommitted changes, or a
        step's code lies in a file that git ignores."""
        for state in self.repositories:
            gitstate.require_clean(state)
        for step, files in self.sources.items():
            for entry in files.values():
                if entry is not None and entry.get("ignored"):
                    raise GitStateError(
                        f"step {step!r} comes from {entry['file']}, which git ignores (see "
                        ".gitignore), so no commit holds it; stop ignoring it and commit it, "
                        "or run with --debug (debug=True in Python)."
                    )


def _trace(
    path: str | None,
    file: str | None,
    states: dict[Path, gitstate.GitState],
    ignore: Sequence[Path],
    located: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    if path is None:
        return None
    if file is None:  # a built-in or namespace module has no file to trace
        return {"file": None, "repo": None}
    # A step's callable and lookup dictionary often share a file: git is asked once.
    if file not in located:
        located[file] = gitstate.locate_file(Path(file), states, ignore).as_record()
    return copy.deepcopy(located[file])


def trace_steps(
    steps: Sequence[StepConfig],
    files: Mapping[str, tuple[str | None, str | None]],
    main: gitstate.GitState,
    trials_folders: Sequence[Path],
) -> Provenance:
    """Trace every step's callable and lookup dictionary to its repository.

    ``files`` gives, by step name, the files that define the callable's and the lookup's
    modules, as the kernel that imported them found them. Files in ``trials_folders``
    never make a repository dirty.
    """
    states = {main.root: main}
    located: dict[str, dict[str, Any]] = {}
    sources = {
        step.name: {
            "run": _trace(step.run, files[step.name][0], states, trials_folders, located),
            "lookup": _trace(step.lookup, files[step.name][1], states, trials_folders, located),
        }
        for step in steps
    }
    return Provenance(sources, tuple(states[root] for root in sorted(states)))
