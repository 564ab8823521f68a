"""What the fault-injection tests share: an investigation, processes to hurt, invariants."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import kernels_in, working_in

from mitosis.adapters import index_cache, registry
from mitosis.core.fingerprint import fingerprint
from mitosis.core.record import FINAL_STATUSES
from mitosis.trials import list_trials

# A step that naps a random 0-1.5 s (so a kill lands at any moment of a trial's life),
# one that says or raises whatever it is given, and a lookup of hostile variant names.
FAULT_EXPERIMENTS = '''
"""Experiments for mitosis-nb's fault-injection suite."""
import random
import time

PACES = {"quick": 0.0, "slow": 1.5, "long": 600.0}
lookup = {"pace": PACES}

HOSTILE = {
    "../../escape": 1,
    "a/b": 2,
    "nul\\0byte": 3,
    "\\u202egnp.exe": 4,
    "v" * 10_000: 5,
    "q\\"+__import__('os').system('touch pwned')+\\"": 6,
    "b\\\\\\"+__import__('os').system('touch pwned')#": 7,
    "<script>alert('variant')</script>": 8,
}
hostile_lookup = {"label": HOSTILE}


def nap(seed=0, pace=1.5, label=None):
    time.sleep(random.Random(seed).uniform(0, pace))
    return {"main": float(seed), "metrics": {"seed": seed}}


def misshape(seed=0, pace=1.5):
    # Minutes of work in a real investigation, then a result mitosis cannot read as a dict.
    time.sleep(pace)
    return [random.Random(seed).random() for _ in range(1000)]


def say(text="", fail=False, label=None):
    print(text)
    if fail:
        raise ValueError(text)
    return {"main": text, "metrics": {"length": len(text)}}
'''

FAULT_PYPROJECT = """
[project]
name = "fault-investigation"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
nap = ["fault_experiments:nap", "fault_experiments:lookup"]
say = ["fault_experiments:say", "fault_experiments:hostile_lookup"]
misshape = ["fault_experiments:misshape", "fault_experiments:lookup"]
"""

PACES = {"quick": 0.0, "slow": 1.5, "long": 600.0}
PACE_FINGERPRINTS = {name: fingerprint(value).digest for name, value in PACES.items()}
LONG_NAP = ("-p", "pace=long", "-e", "seed=2")  # 573 s: still napping whenever it is killed


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its output."""
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def make_lab(root: Path) -> Path:
    """The fault investigation in ``root``, as a git repository with one commit."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(FAULT_PYPROJECT)
    (root / "fault_experiments.py").write_text(FAULT_EXPERIMENTS)
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fault investigation")
    return root


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A committed investigation with the ``nap`` and ``say`` steps; the test runs inside it."""
    root = make_lab(tmp_path / "lab")
    with working_in(root, monkeypatch, "fault_experiments"):
        yield root


def cli_command(*args: str) -> list[str]:
    """The real ``mitosis-nb`` command line, run by this interpreter."""
    return [sys.executable, "-m", "mitosis.cli", *args]


def start_runner(root: Path, *args: str, quiet: bool = False) -> subprocess.Popen[str]:
    """Start ``mitosis-nb ARGS`` in ``root`` without waiting for it.

    ``quiet`` discards its output: a SIGKILLed runner's kernel holds its pipes open for a
    moment, and ``communicate`` would wait for that.
    """
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(cli_command(*args), cwd=root, stdout=output, stderr=output, text=True)


def kill(pid: int) -> None:
    """SIGKILL ``pid``, which may have ended already."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until_running(root: Path, runner: subprocess.Popen[str], limit: float = 60) -> Path:
    """The folder of the runner's trial once its record says ``running`` and its kernel runs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert runner.poll() is None, runner.communicate()
        for folder in trial_folders(root / "trials"):
            with contextlib.suppress(OSError, yaml.YAMLError, AssertionError):
                if read_yaml(folder / "trial.yaml")["status"] == "running" and kernels_in(root):
                    return folder
        time.sleep(0.05)
    raise AssertionError(f"no trial running in {root} within {limit} s")


def assert_no_kernel_within(root: Path, seconds: float = 5.0) -> float:
    """Wait until no kernel runs in ``root``; fail if one is still alive after ``seconds``."""
    started = time.monotonic()
    while kernels_in(root):
        waited = time.monotonic() - started
        assert waited < seconds, f"kernels {kernels_in(root)} still alive {waited:.1f} s later"
        time.sleep(0.1)
    return time.monotonic() - started


def trial_folders(trials: Path) -> list[Path]:
    """Trial folders that hold anything (an empty one is an id that was never used)."""
    if not trials.is_dir():
        return []
    return sorted(
        p for p in trials.iterdir() if p.is_dir() and p.name[:1].isdigit() and any(p.iterdir())
    )


def read_yaml(path: Path) -> dict:
    """A record as any reader would load it: the safe loader only."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


@dataclass
class Census:
    """What a trials folder holds once every invariant has been checked."""

    statuses: dict[str, str] = field(default_factory=dict)
    claims: int = 0

    def count(self, status: str) -> int:
        return sum(1 for found in self.statuses.values() if found == status)


def _check_final_files(folder: Path) -> None:
    notebook = folder / "trial.ipynb"
    if notebook.exists():
        nbformat.validate(nbformat.read(str(notebook), as_version=4))
    page = folder / "trial.html"
    if page.exists():
        assert page.read_text(encoding="utf-8").rstrip().endswith("</html>"), page
    for pickled in folder.glob("results_*.pkl"):
        # Written by the suite's own trusted kernel: loading it here only proves it complete
        # (a failed step's result is saved whatever its shape).
        pickle.loads(pickled.read_bytes())


def _check_registry(trials: Path, records: dict[str, dict]) -> int:
    claims = registry.list_claims(trials)
    variants = [(claim.step, claim.arg, claim.variant) for claim in claims]
    assert len(variants) == len(set(variants)), "two claims of one variant"
    locked = {(c.step, c.arg, c.variant): c.fingerprint for c in claims}
    for claim in claims:
        if claim.trial in records:
            continue  # its trial exists; that trial's own parameters are checked below
        # The runner died between claiming and writing the record: the lock must still be true.
        if claim.step == "nap" and claim.arg == "pace":
            assert claim.fingerprint == PACE_FINGERPRINTS[claim.variant], claim
    for record in records.values():
        if record.get("debug"):
            continue
        for step in record["steps"]:
            for arg, param in step["params"].items():
                if param["kind"] == "lookup" and param["tracked"] and param["fingerprint"]:
                    key = (step["name"], arg, param["variant"])
                    assert locked.get(key) == param["fingerprint"], (record["id"], key)
    return len(claims)


def check_invariants(root: Path, trials: Path | None = None) -> Census:
    """Every invariant a trials folder must keep whatever happened to its runners.

    Listing first (as the next command would), which reconciles dead runs; then every
    record parses with a final status, no final file is truncated, ids are unique and
    match their folders, the index lists exactly the trials, and the registry agrees.
    """
    trials = trials or root / "trials"
    listing = list_trials(trials)
    listed = [row["id"] for row in listing.trials]
    assert len(listed) == len(set(listed)), "a trial id listed twice"
    census = Census()
    records: dict[str, dict] = {}
    for folder in trial_folders(trials):
        record = read_yaml(folder / "trial.yaml")
        assert record["id"] == folder.name
        assert record["status"] in FINAL_STATUSES, (folder.name, record["status"])
        if record["status"] != "succeeded":
            kinds = ("exception", "timeout", "kernel_died", "interrupted", "storage")
            assert record["error"]["kind"] in kinds
        else:  # the final record is written last: `succeeded` means every file is there
            assert (folder / "trial.ipynb").is_file() and (folder / "trial.html").is_file()
        _check_final_files(folder)
        records[folder.name] = record
        census.statuses[folder.name] = record["status"]
    assert sorted(listed) == sorted(records), "listing and trial folders disagree"
    assert {row["id"]: row["status"] for row in listing.trials} == census.statuses
    site = trials / "index.html"
    if site.exists():
        assert site.read_text(encoding="utf-8").rstrip().endswith("</html>"), site
    if index_cache.index_path(trials).exists():
        assert sorted(index_cache.read(trials)) == sorted(records), "index rows and records differ"
    census.claims = _check_registry(trials, records)
    return census


def every_file(trials: Path) -> Iterable[Path]:
    """Every file in a trials folder, hidden ones included."""
    return (path for path in trials.rglob("*") if path.is_file())


def list_json(root: Path, timeout: float = 60) -> list[dict]:
    """``mitosis-nb list --json``, parsed; fails the test if stdout is not valid JSON."""
    done = subprocess.run(
        cli_command("list", "--json"), cwd=root, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert isinstance(rows, list)
    return rows
