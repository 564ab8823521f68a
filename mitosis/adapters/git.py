"""What git says about the investigation: commit, branch, remote, and what is uncommitted.

Also where any source file came from, and temporary worktrees at a recorded commit.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from mitosis.core.redact import redact_patch, redact_value, split_secret_files
from mitosis.core.trial_id import is_own_entry
from mitosis.errors import GitStateError


@dataclass(frozen=True)
class GitState:
    """The repository's state when a trial starts."""

    root: Path
    commit: str
    branch: str | None
    remote: str | None
    dirty_files: tuple[str, ...]
    submodules: tuple[tuple[str, str], ...] = ()
    untracked: tuple[str, ...] = ()  # new files outside the trials folder, among dirty_files

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
            "submodules": dict(self.submodules),
        }

    def untracked_split(self) -> dict[str, list[str]]:
        """The ``git.untracked`` field of a debug trial's record: the untracked files its
        ``uncommitted.patch`` holds (``included``), and those it leaves out because their
        names look secret (``excluded``)."""
        included, excluded = split_secret_files(self.untracked)
        return {"included": included, "excluded": excluded}


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


def _ignored(path: Path, ignore: Sequence[Path], tracked: bool = False) -> bool:
    """Whether a change at ``path`` is the trials folder's, not the code's: anything new in
    a trials folder, but of tracked files only what mitosis-nb writes there. A trials
    folder pointed at code (``-F experiments``) must not hide an edited module."""
    path = path.resolve()
    for folder in ignore:
        folder = folder.resolve()
        if not _inside(path, folder):
            continue
        if not tracked or path == folder or is_own_entry(path.relative_to(folder).parts[0]):
            return True
    return False


def _check_not_around(root: Path, ignore: Sequence[Path]) -> None:
    for folder in ignore:
        if _inside(root, folder.resolve()):
            raise GitStateError(
                f"the trials folder {folder} holds the whole repository {root}, so no change "
                f"to the code could be seen; use a folder of its own, such as {root / 'trials'}."
            )


def read_state(path: Path, ignore: Sequence[Path] = ()) -> GitState:
    """Read the repository containing ``path``; files under the ``ignore`` folders (trials
    folders) never count as dirty."""
    repo = _open(path)
    root = Path(repo.working_tree_dir or path).resolve()
    _check_not_around(root, ignore)
    try:
        commit = repo.head.commit.hexsha
    except ValueError:
        raise GitStateError(
            f"the git repository at {root} has no commit yet; commit your code first."
        ) from None
    branch = None if repo.head.is_detached else repo.active_branch.name
    remote = None
    if repo.remotes:
        remote = redact_value(next(iter(repo.remotes[0].urls), "")) or None
    try:
        status = repo.git.status("--porcelain", "-z", "--untracked-files=all")
    except git.GitCommandError as error:  # a full disk, a killed or broken git
        raise GitStateError(
            f"`git status` failed in {root} ({error.status}); check that git works there "
            "and that the disk is not full."
        ) from None
    dirty, untracked = [], []
    for entry in status.split("\0"):
        if len(entry) < 4:
            continue
        name, is_new = entry[3:], entry.startswith("??")
        if _ignored(root / name, ignore, tracked=not is_new):
            continue
        dirty.append(name)
        if is_new:
            untracked.append(name)
    submodules = _submodule_commits(root) if (root / ".gitmodules").is_file() else {}
    return GitState(
        root,
        commit,
        branch,
        remote,
        tuple(sorted(set(dirty))),
        tuple(sorted(submodules.items())),
        tuple(sorted(untracked)),
    )


def require_clean(state: GitState) -> None:
    """Refuse a non-debug trial when code is uncommitted, listing the dirty files."""
    if state.dirty:
        shown = ", ".join(state.dirty_files[:10])
        more = f" and {len(state.dirty_files) - 10} more" if len(state.dirty_files) > 10 else ""
        raise GitStateError(
            f"uncommitted changes in {state.root}: {shown}{more}; commit them, "
            "or run with --debug (debug=True in Python) to record a trial anyway."
        )


def uncommitted_patch(state: GitState) -> str:
    """The working tree's changes against HEAD as one patch, with the untracked files that
    :meth:`GitState.untracked_split` includes, and secrets of known shapes in its added lines
    redacted (:func:`~mitosis.core.redact.redact_patch`)."""
    repo = git.Repo(state.root)
    patch = repo.git.diff("HEAD", "--binary")
    parts = [patch + "\n"] if patch else []
    for name in state.untracked_split()["included"]:
        # `git diff --no-index` exits 1 when files differ, which is always the case here.
        completed = subprocess.run(
            ["git", "diff", "--binary", "--no-index", "--", "/dev/null", name],
            cwd=state.root,
            capture_output=True,
            text=True,
            check=False,
        )
        parts.append(completed.stdout)
    return redact_patch("".join(parts))


@dataclass(frozen=True)
class FileSource:
    """Where one source file came from: its repository, commit and whether it is modified."""

    file: Path
    state: GitState | None
    identity: Path | None
    relative: str | None
    ignored: bool = False  # in the repository's tree, but git ignores it: no commit holds it

    def as_record(self) -> dict[str, object]:
        """A step's ``source.run`` or ``source.lookup`` entry of a trial record."""
        if self.state is None or self.relative is None:
            return {"file": str(self.file), "repo": None}
        entry: dict[str, object] = {
            "file": self.relative,
            "repo": str(self.identity),
            "commit": self.state.commit,
            "dirty": self.ignored or self.relative in self.state.dirty_files,
            "remote": self.state.remote,
        }
        if self.ignored:
            entry["ignored"] = True
        return entry


def identity(root: Path) -> Path:
    """The path that records name the repository checked out at ``root`` by."""
    with git.Repo(root) as repo:
        return _identity(repo, root)


def _identity(repo: git.Repo, root: Path) -> Path:
    # A linked worktree (a reproduction's, say) is the same repository as its main checkout:
    # name the main checkout, so records of one repository agree wherever it was checked out.
    common = Path(repo.common_dir).resolve()
    if common.name == ".git":
        return common.parent
    # A submodule's repository lives in .git/modules/<name> and names its checkout there.
    completed = subprocess.run(
        ["git", "config", "--file", str(common / "config"), "--get", "core.worktree"],
        capture_output=True,
        text=True,
        check=False,
    )
    configured = completed.stdout.strip()
    return (common / configured).resolve() if completed.returncode == 0 and configured else root


def locate_file(
    file: Path, states: dict[Path, GitState], ignore: Sequence[Path] = ()
) -> FileSource:
    """The repository that holds ``file``; ``states`` caches each repository's state by root.

    A file git ignores (a virtualenv's site-packages inside a repository) belongs to none.
    """
    file = file.resolve()
    try:
        repo = git.Repo(file.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return FileSource(file, None, None, None)
    with repo:  # closes git's helper processes
        return _locate_in(repo, file, states, ignore)


def _locate_in(
    repo: git.Repo, file: Path, states: dict[Path, GitState], ignore: Sequence[Path]
) -> FileSource:
    root = Path(repo.working_tree_dir or file.parent).resolve()
    if root not in states:
        try:
            states[root] = read_state(root, ignore)
        except GitStateError:  # a repository without a commit tells nothing reproducible
            return FileSource(file, None, None, None)
    state = states[root]
    relative = file.relative_to(root).as_posix()
    if relative not in state.dirty_files and not repo.git.ls_files("--", relative):
        if _INSTALLED.intersection(file.parts):  # a virtualenv kept inside the repository
            return FileSource(file, None, None, None)
        return FileSource(file, state, _identity(repo, root), relative, ignored=True)
    return FileSource(file, state, _identity(repo, root), relative)


_INSTALLED = frozenset({"site-packages", "dist-packages"})


def _submodule_commits(root: Path) -> dict[str, str]:
    """Each submodule's path and the commit checked out there (or recorded, if not cloned)."""
    output = git.Repo(root).git.submodule("status", "--recursive")
    commits: dict[str, str] = {}
    for line in output.splitlines():
        # " <sha> path (describe)"; the first column is ' ', '+', '-' or 'U'.
        fields = line[1:].split()
        if len(fields) >= 2:
            commits[fields[1]] = fields[0]
    return commits


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise GitStateError(
            f"`git {' '.join(args)}` failed in {root}: {completed.stderr.strip()}; "
            "check the repository and try again."
        )
    return completed.stdout


@contextlib.contextmanager
def worktree(root: Path, commit: str) -> Iterator[Path]:
    """A temporary checkout of ``commit`` beside the user's, removed afterwards on every path.

    The user's checkout (HEAD, files, index) is never touched: ``git worktree`` only adds an
    entry under ``.git/worktrees``, which ``remove`` takes away again.
    """
    try:
        _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except GitStateError:
        raise GitStateError(
            f"commit {commit} is not in the repository at {root}; fetch it (git fetch) first."
        ) from None
    parent = Path(tempfile.mkdtemp(prefix="mitosis-worktree-"))
    path = parent / root.name
    added: list[tuple[Path, Path]] = []
    try:
        _git(root, "worktree", "add", "--detach", "--quiet", str(path), commit)
        added.append((root, path))
        if (path / ".gitmodules").is_file():
            _add_submodules(root, path, added)
        yield path
    finally:
        for source, target in reversed(added):
            with contextlib.suppress(GitStateError):
                _git(source, "worktree", "remove", "--force", "--force", str(target))
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(GitStateError):
                _git(source, "worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


def _add_submodules(root: Path, tree: Path, added: list[tuple[Path, Path]]) -> None:
    # Each submodule at the commit the tree records, as a worktree of the user's own clone of
    # it: no network, no new clone, and the user's submodule checkout is not touched either.
    for name, commit in _submodule_commits(tree).items():
        source = root / name
        if not (source / ".git").exists():
            raise GitStateError(
                f"submodule {name} is not checked out in {root}; run "
                "`git submodule update --init` there first."
            )
        target = tree / name
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        try:
            _git(source, "worktree", "add", "--detach", "--quiet", str(target), commit)
        except GitStateError:
            raise GitStateError(
                f"submodule {name} has no commit {commit} in {source}; fetch it there first."
            ) from None
        added.append((source, target))


def apply_patch(root: Path, patch: str) -> None:
    """Apply a recorded ``uncommitted.patch`` to a checkout."""
    if not patch.strip():
        return
    completed = subprocess.run(
        ["git", "apply", "--binary", "--whitespace=nowarn", "-"],
        cwd=root,
        input=patch,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise GitStateError(
            f"the recorded uncommitted.patch does not apply at its commit: "
            f"{completed.stderr.strip()}; the trial cannot be reproduced exactly."
        )
