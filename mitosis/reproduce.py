"""Re-run a recorded trial and check that it gives the same results: ``mitosis-nb reproduce``.

The new trial asks for exactly what the record says (steps, variant names, literal source,
untracked values, debug). When the checkout is not at the recorded commit (or the original
was a debug trial, or the checkout has uncommitted changes) it runs in a temporary
``git worktree`` at that commit, with the recorded patch applied for a debug trial; the
user's checkout is never touched. The new trial is stored in the user's trials folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mitosis.adapters import execute
from mitosis.adapters import git as gitstate
from mitosis.adapters.config import InvestigationConfig, load_config
from mitosis.core.compare import Comparison, compare_records
from mitosis.core.verify import DEFAULT_RTOL, Verdict, recorded_request, verify
from mitosis.pipeline import TrialRequest, prepare, run_plans
from mitosis.trials import Trial, load_trial


@dataclass(frozen=True)
class Reproduction:
    """A re-run of a trial: the original, the new trial, the verdict and where it ran."""

    original: Trial
    trial: Trial
    verdict: Verdict
    in_worktree: bool
    head: str
    provenance: Comparison

    @property
    def reproduced(self) -> bool:
        """Whether the new trial succeeded with the original's results."""
        return self.verdict.reproduced

    def as_dict(self) -> dict[str, object]:
        """The verdict, where the trial ran, and how its provenance differs, for ``--json``."""
        differences = self.provenance.as_dict()["differences"]
        return {
            **self.verdict.as_dict(),
            "status": self.trial.status,
            "page": str(self.trial.html_path),
            "commit": self.trial.record.get("git", {}).get("commit"),
            "head": self.head,
            "worktree": self.in_worktree,
            "provenance": {
                section: differences[section]
                for section in ("commit", "sources", "vcs_packages", "submodules")
                if section in differences
            },
        }


def _defined_under(module: object, folder: Path) -> bool:
    # A namespace package has no __file__, only the folders of its __path__.
    files = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
    try:
        return any(folder in Path(file).resolve().parents for file in files if file)
    except (OSError, TypeError, ValueError):
        return False


@contextlib.contextmanager
def _imports_from(checkout: Path) -> Iterator[None]:
    """While the worktree's code is checked, hide modules this process imported from the
    user's checkout (they are of another commit), and restore them afterwards."""
    saved_path = list(sys.path)
    hidden = {name: m for name, m in sys.modules.items() if _defined_under(m, checkout)}
    for name in hidden:
        del sys.modules[name]
    before = set(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - before:
            del sys.modules[name]
        sys.modules.update(hidden)


def _request(
    record: dict[str, object],
    config: InvestigationConfig,
    trials_folder: Path,
    command: str | None,
    progress: bool,
) -> TrialRequest:
    asked = recorded_request(record)
    kernel = None if asked.kernel in (None, execute.SAME_INTERPRETER) else asked.kernel
    return TrialRequest(
        steps=asked.steps,
        options=asked.options,
        debug=asked.debug,
        note=f"reproduces {record.get('id')}",
        kernel=kernel,
        progress=progress,
        command=command,
        config=config.pyproject,
        trials_folder=trials_folder,
        reproduces=str(record.get("id")),
    )


def _run_one(request: TrialRequest) -> Trial:
    (trial,) = run_plans(prepare(request))
    return trial


def _read_patch(trial: Trial) -> str | None:
    path = trial.folder / "uncommitted.patch"
    return path.read_text("utf-8", errors="replace") if path.is_file() else None


def reproduce_trial(
    query: str,
    rtol: float = DEFAULT_RTOL,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    command: str | None = None,
    progress: bool = False,
) -> Reproduction:
    """Re-run trial ``query`` at its recorded commit and compare its results with the original.

    The new trial goes into the current checkout's trials folder, with ``reproduces`` set.
    Refusals raise ``MitosisError``; a new trial that fails is a ``Reproduction`` that did
    not reproduce.
    """
    here = load_config(Path(config) if config else None)
    folder = (Path(trials_folder) if trials_folder else here.trials_folder).resolve()
    original = load_trial(query, folder)
    asked = recorded_request(original.record)
    checkout = gitstate.read_state(here.root, ignore=folder)
    in_place = checkout.commit == asked.commit and not checkout.dirty and not asked.debug
    if in_place:
        trial = _run_one(_request(original.record, here, folder, command, progress))
    else:
        trial = _run_in_worktree(original, here, checkout.root, folder, command, progress)
    verdict = verify(original.record, trial.record, rtol)
    differences = compare_records(
        original.record, trial.record, _read_patch(original), _read_patch(trial)
    )
    return Reproduction(original, trial, verdict, not in_place, checkout.commit, differences)


def _run_in_worktree(
    original: Trial,
    here: InvestigationConfig,
    root: Path,
    folder: Path,
    command: str | None,
    progress: bool,
) -> Trial:
    asked = recorded_request(original.record)
    with gitstate.worktree(root, asked.commit) as tree, _imports_from(root):
        if asked.debug:
            gitstate.apply_patch(tree, _read_patch(original) or "")
        # The worktree's own pyproject: its steps, template and (for the kernel) import root.
        there = load_config(tree / here.pyproject.relative_to(root))
        return _run_one(_request(original.record, there, folder, command, progress))
