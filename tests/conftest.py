"""Shared fixtures: a real investigation in a real temporary git repository."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cdp import Browser, chromium_path

# A shell that starts the suite in the background (`pytest &`) ignores SIGINT, and every
# process the tests start would inherit that and sleep through the tests' Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TOY_EXPERIMENTS = '''
"""Small, fast experiments for mitosis-nb's own tests."""
import logging
import os
import sys
import time


class Solver:
    def __init__(self, tol):
        self.tol = tol


lookup = {
    "frequency": {"fast": 10, "slow": 1},
    "solver": {"tight": Solver(1e-8), "loose": Solver(1e-2)},
    "mode": {"ok": "ok", "boom": "boom", "exit": "exit", "die": "die", "sleep": "sleep",
             "noresult": "noresult", "nomain": "nomain"},
}


def run(frequency=1, amplitude=1.0, solver=None, mode="ok", tag=None):
    logging.getLogger("toy").info("running with frequency=%s", frequency)
    print(f"toy run: frequency={frequency} amplitude={amplitude}")
    if mode == "boom":
        raise ValueError("the experiment exploded on purpose")
    if mode == "exit":
        sys.exit(0)
    if mode == "die":
        os._exit(1)
    if mode == "sleep":
        time.sleep(120)
    if mode == "noresult":
        return 42
    if mode == "nomain":
        return {"metrics": {"x": 1.0}}
    main = float(frequency) * float(amplitude)
    return {"main": main, "metrics": {"double": 2 * main, "tol": getattr(solver, "tol", None)}}


def generate(length=3, shape="flat"):
    data = list(range(length))
    return {"main": float(length), "data": data, "metrics": {"n": length}}


def fit(data, scale=1.0, fail=False):
    if fail:
        raise RuntimeError("fit failed on purpose")
    return {"main": sum(data) * scale, "metrics": {"scale": scale}}


gen_lookup = {"length": {"short": 3, "long": 10}}
fit_lookup = {"scale": {"single": 1.0, "double": 2.0}}
'''

PYPROJECT = """
[project]
name = "toy-investigation"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
toy = ["toy_experiments:run", "toy_experiments:lookup"]
gen = { run = "toy_experiments:generate", lookup = "toy_experiments:gen_lookup" }
fit = { run = "toy_experiments:fit", lookup = "toy_experiments:fit_lookup" }
"""


def write_own_template(root: Path, name: str, closing: str) -> Path:
    """mitosis-nb's own template plus a closing markdown cell, as ``root/templates/name``."""
    import nbformat

    packaged = Path(__file__).resolve().parent.parent / "templates" / "trial.ipynb"
    template = nbformat.read(str(packaged), as_version=4)
    template.cells.append(nbformat.v4.new_markdown_cell(closing))
    path = root / "templates" / name
    path.parent.mkdir(exist_ok=True)
    nbformat.write(template, str(path))
    return path


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its output."""
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(autouse=True, scope="session")
def _own_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The suite's runs share one user cache of their own (compiled templates, package
    # scans), not the user's: each test's import path would leave a scan behind there.
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(name, "Test Researcher")
    for name in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, "researcher@example.org")


def make_investigation(
    root: Path, experiments: str = TOY_EXPERIMENTS, pyproject: str = PYPROJECT
) -> Path:
    """Write a toy investigation into ``root``, as a git repository with one commit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (root / "toy_experiments.py").write_text(experiments)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "toy investigation")
    return root


@contextlib.contextmanager
def working_in(root: Path, monkeypatch: pytest.MonkeyPatch, modules: str) -> Iterator[Path]:
    """Run a test inside ``root``; afterwards forget the user modules it imported."""
    monkeypatch.chdir(root)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield root
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        if name.startswith(modules):
            del sys.modules[name]


@pytest.fixture
def investigation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A committed toy investigation; the test runs inside it."""
    root = make_investigation(tmp_path / "investigation")
    with working_in(root, monkeypatch, "toy_experiments"):
        yield root


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(investigation: Path) -> RunCli:
    """Run the real ``mitosis-nb`` command line in the investigation."""

    def run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mitosis.cli", *args],
            cwd=cwd or investigation,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run


def trial_dirs(trials: Path) -> list[Path]:
    """The trial folders in a trials folder, oldest first: by when each started, as its
    record says (ids of trials started in one second sort by their random part)."""
    if not trials.is_dir():
        return []
    folders = [p for p in trials.iterdir() if p.is_dir() and p.name[:1].isdigit()]
    return sorted(folders, key=lambda folder: (_started(folder), folder.name))


def _started(folder: Path) -> str:
    try:
        text = (folder / "trial.yaml").read_text()
    except OSError:
        return ""
    found = re.search(r"^started: '?([^'\n]*)", text, re.MULTILINE)
    return found.group(1) if found else ""


def kernels_in(root: Path) -> list[int]:
    """Jupyter kernel processes whose working directory is ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"ipykernel" in cmdline and Path(cwd) == root:
            found.append(int(entry.name))
    return found


def start_in(root: Path, *argv: str) -> subprocess.Popen[str]:
    """Start ``argv`` in ``root`` with its output piped, for a test to signal it."""
    return subprocess.Popen(
        list(argv), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_kernels(root: Path, count: int = 1, with_record: bool = False) -> None:
    """Wait up to 60 s until ``count`` kernels run in ``root`` (and, if asked, a trial there
    has written its record: the submitter's own kernel starts before any trial does)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        recorded = not with_record or list((root / "trials").glob("*/trial.yaml"))
        if len(kernels_in(root)) >= count and recorded:
            return
        time.sleep(0.2)


def add_step(root: Path, name: str, module: str, source: str, run: str = "run") -> None:
    """Write ``module``.py into the investigation, register it as step ``name`` (its lookup
    dictionary is the module's ``lookup``) and commit it."""
    (root / f"{module}.py").write_text(source)
    pyproject = root / "pyproject.toml"
    entry = f'{name} = ["{module}:{run}", "{module}:lookup"]\n'
    pyproject.write_text(pyproject.read_text() + entry)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"the step {name}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a profile of the test's own (a module may keep one for all
    its tests instead)."""
    chromium_path()
    page = Browser(tmp_path / "chromium-profile")
    yield page
    page.close()
