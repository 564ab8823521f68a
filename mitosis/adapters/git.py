"""What git says about the investigation: commit, branch, remote, and what is uncommitted."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import git

from mitosis.core.redact import redact_url
from mitosis.errors import GitStateError


@dataclass(frozen=True)
class GitState:
    """The repository's state when a trial starts."""

    root: Path
    commit: str
    branch: str | None
    remote: str | None
    dirty_files: tuple[str, ...]

    @property
    def dirty(self) -> bool:
        """Whether anything outside the trials folder is uncommitted."""
        return bool(self.dirty_files)

    def as_record(self) -> dict[str, object]:
        """The ``git`` field of a trial record."""
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "remote": self.remote,
        }


def _open(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitStateError(
            f"{path} is not in a git repository; run `git init` and commit your code, "
            "so that every trial can name the commit it ran."
        ) from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def read_state(path: Path, ignore: Path | None = None) -> GitState:
    """Read the repository containing ``path``; files under ``ignore`` never count as dirty."""
    repo = _open(path)
    root = Path(repo.working_tree_dir or path).resolve()
    try:
        commit = repo.head.commit.hexsha
    except ValueError:
        raise GitStateError(
            f"the git repository at {root} has no commit yet; commit your code first."
        ) from None
    branch = None if repo.head.is_detached else repo.active_branch.name
    remote = None
    if repo.remotes:
        remote = redact_url(next(iter(repo.remotes[0].urls), "")) or None
    status = repo.git.status("--porcelain", "-z", "--untracked-files=all")
    dirty = []
    for entry in status.split("\0"):
        if len(entry) < 4:
            continue
        name = entry[3:]
        if ignore is not None and _inside((root / name).resolve(), ignore.resolve()):
            continue
        dirty.append(name)
    return GitState(root, commit, branch, remote, tuple(sorted(set(dirty))))


def require_clean(state: GitState) -> None:
    """Refuse a non-debug trial when code is uncommitted, listing the dirty files."""
    if state.dirty:
        shown = ", ".join(state.dirty_files[:10])
        more = f" and {len(state.dirty_files) - 10} more" if len(state.dirty_files) > 10 else ""
        raise GitStateError(
            f"uncommitted changes in {state.root}: {shown}{more}; commit them, "
            "or run with --debug to record a trial anyway."
        )


def uncommitted_patch(state: GitState, ignore: Path | None = None) -> str:
    """The working tree's changes against HEAD, untracked files included, as one patch."""
    repo = git.Repo(state.root)
    patch = repo.git.diff("HEAD", "--binary")
    parts = [patch + "\n"] if patch else []
    for name in repo.untracked_files:
        if ignore is not None and _inside((state.root / name).resolve(), ignore.resolve()):
            continue
        # `git diff --no-index` exits 1 when files differ, which is always the case here.
        completed = subprocess.run(
            ["git", "diff", "--binary", "--no-index", "--", "/dev/null", name],
            cwd=state.root,
            capture_output=True,
            text=True,
            check=False,
        )
        parts.append(completed.stdout)
    return "".join(parts)
