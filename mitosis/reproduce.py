"""Re-run a recorded trial and check that it gives the same results: ``mitosis-nb reproduce``.

The new trial asks for exactly what the record says (steps, variant names, literal source,
untracked values, debug). When the checkout is not at the recorded commit (or the original
was a debug trial, or the checkout has uncommitted changes) it runs in a temporary
``git worktree`` at that commit, with the recorded patch applied for a debug trial; so does
the code of a step from another repository that has moved on since. The user's checkouts
are never touched. The new trial is stored in the user's trials folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mitosis.adapters import git as gitstate
from mitosis.adapters.config import InvestigationConfig, load_config
from mitosis.adapters.kernels.spawn import SAME_INTERPRETER
from mitosis.core.compare import Comparison, compare_records
from mitosis.core.request import TrialRequest
from mitosis.core.steps import StepConfig
from mitosis.core.verify import (
    DEFAULT_RTOL,
    Verdict,
    changed_sources,
    check_ignored,
    recorded_request,
    recorded_sources,
    verify,
)
from mitosis.errors import ConfigError, GitStateError, ParameterError
from mitosis.session import Session
from mitosis.trials import Trial, load_trial


@dataclass(frozen=True)
class Reproduction:
    """A re-run of a trial: the original, the new trial, the verdict and where it ran."""

    original: Trial
    trial: Trial
    verdict: Verdict
    worktrees: tuple[str, ...]
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
            "worktrees": list(self.worktrees),
            "provenance": {
                section: differences[section]
                for section in ("commit", "sources", "vcs_packages", "submodules")
                if section in differences
            },
        }


def _request(
    record: dict[str, object],
    config: InvestigationConfig,
    trials_folder: Path,
    command: str | None,
    progress: bool,
    import_roots: Sequence[Path],
) -> TrialRequest:
    asked = recorded_request(record)
    kernel = None if asked.kernel in (None, SAME_INTERPRETER) else asked.kernel
    # A relative template is the one at the recorded commit, in the re-run's checkout.
    template = config.root / asked.template if asked.template else None
    # A step run with `mitosis -m MODULE` is registered nowhere: the record defines it.
    extra = tuple(
        StepConfig(str(step["name"]), str(step["run"]), step.get("lookup"))
        for step in record.get("steps") or []  # type: ignore[attr-defined]
        if step.get("module_step") and step.get("name") not in config.steps
    )
    return TrialRequest(
        steps=asked.steps,
        extra_steps=extra,
        options=asked.options,
        debug=asked.debug,
        template=template,
        note=f"reproduces {record.get('id')}",
        kernel=kernel,
        progress=progress,
        command=command,
        config=config.pyproject,
        trials_folder=trials_folder,
        reproduces=str(record.get("id")),
        import_roots=tuple(import_roots),
        cache=False,  # a reproduction computes every step again: that is what it checks
    )


def _run_one(request: TrialRequest) -> Trial:
    # The re-run's kernel imports the steps' code from the worktrees: its import roots come
    # first on its path. This process never imports the user's code.
    with Session(request) as session:
        (trial,) = session.run(session.prepare()).trials
    return trial


def reproduce_trial(
    query: str,
    rtol: float = DEFAULT_RTOL,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    command: str | None = None,
    progress: bool = False,
    ignore: Sequence[str] = (),
) -> Reproduction:
    """Re-run trial ``query`` at its recorded commits and compare its results with the original.

    The new trial goes into the current checkout's trials folder, with ``reproduces`` set.
    Refusals raise ``MitosisError``; a new trial that fails is a ``Reproduction`` that did
    not reproduce. ``ignore`` names results left out of the check (``main``,
    ``metrics.runtime``, ``STEP.main``; a prefix covers every field under it).
    """
    if not rtol >= 0:  # also refuses NaN
        raise ParameterError(f"--rtol must be a number >= 0, not {rtol}; e.g. --rtol 1e-6.")
    here = load_config(Path(config) if config else None, require_steps=False)
    folder = (Path(trials_folder) if trials_folder else here.trials_folder).resolve()
    original = load_trial(query, folder)
    check_ignored(original.record, ignore)
    asked = recorded_request(original.record)
    checkout = gitstate.read_state(here.root, ignore=(folder, here.trials_folder))
    _refuse_unsaved(original, gitstate.identity(checkout.root))
    in_place = checkout.commit == asked.commit and not checkout.dirty and not asked.debug
    hidden: list[Path] = []
    with contextlib.ExitStack() as stack:
        there, tree = here, None
        if not in_place:
            tree = stack.enter_context(gitstate.worktree(checkout.root, asked.commit))
            if asked.debug:
                gitstate.apply_patch(tree, original.patch or "")
            # The worktree's own pyproject: its steps, template and (for the kernel) import root.
            there = load_config(
                tree / _inside_repository(here.pyproject, checkout.root), require_steps=False
            )
            hidden.append(checkout.root)
        roots, others = _import_roots(original.record, checkout.root, tree, stack)
        hidden += others
        request = _request(original.record, there, folder, command, progress, roots)
        trial = _run_one(request)
    verdict = verify(original.record, trial.record, rtol, ignore)
    differences = compare_records(original.record, trial.record, original.patch, trial.patch)
    moved = tuple(str(path) for path in hidden)
    return Reproduction(original, trial, verdict, moved, checkout.commit, differences)


def _refuse_unsaved(original: Trial, main: Path) -> None:
    """A debug trial saves only its own repository's changes (``uncommitted.patch``): one
    whose step came modified from another repository, or a submodule, cannot be re-run."""
    for repo, file in changed_sources(original.record):
        if Path(repo) != main:
            raise GitStateError(
                f"trial {original.id} ran {file} of {repo} with uncommitted changes, which "
                "no record keeps (uncommitted.patch holds only the investigation's own), so "
                "it cannot be reproduced; commit them there and run a new trial."
            )


def _import_roots(
    record: dict[str, object], main: Path, tree: Path | None, stack: contextlib.ExitStack
) -> tuple[list[Path], list[Path]]:
    """Where each step's module must be imported from for the re-run: inside ``tree`` for the
    investigation's own code (a ``src/`` layout, a submodule), and inside a new worktree at
    the recorded commit for another repository that has moved on since (or is dirty).

    Returns the import roots and the other repositories that were checked out."""
    roots: list[Path] = []
    moved: list[Path] = []
    trees: dict[Path, Path] = {}
    for source in recorded_sources(record):
        repo = Path(source.repo)
        if source.import_root is None:
            continue  # a module whose file does not match its name: nothing to put first
        if repo == main or main in repo.parents:
            if tree is not None:  # an editable install must not win over the worktree
                roots.append(tree / repo.relative_to(main) / source.import_root)
            continue
        if repo not in trees:
            try:
                state = gitstate.read_state(repo)
            except GitStateError:
                continue  # gone from this machine: the report shows the sources differ
            if state.commit == source.commit and not state.dirty:
                continue
            trees[repo] = stack.enter_context(gitstate.worktree(repo, source.commit))
            moved.append(repo)
        roots.append(trees[repo] / source.import_root)
    return list(dict.fromkeys(roots)), moved


def _inside_repository(pyproject: Path, root: Path) -> Path:
    try:
        return pyproject.relative_to(root)
    except ValueError:
        raise ConfigError(
            f"{pyproject} is outside the repository {root}, so it cannot be checked out at the "
            "recorded commit; reproduce with the pyproject.toml of the investigation's repository."
        ) from None
