"""Checks made inside the trial's kernel: a locked value must be the value the kernel uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import make_investigation

# Each process that imports this module gets other values for "now" and "pid".
DRIFTING = """
import os
import time

lookup = {"seed": {"now": {"now": time.time_ns()}, "pid": os.getpid(), "fixed": 7}}


def run(seed=None):
    return {"main": 1.0}
"""

PYPROJECT = """
[tool.mitosis.steps]
drift = ["toy_experiments:run", "toy_experiments:lookup"]
"""


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "run", "drift", *args, "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_a_value_computed_anew_in_each_process_fails_the_trial(tmp_path: Path) -> None:
    root = make_investigation(tmp_path / "drift", DRIFTING, PYPROJECT)

    run = _run(root, "-p", "seed=now")

    assert run.returncode == 1, run.stderr
    record = json.loads(run.stdout)[0]
    assert record["status"] == "failed"
    error = record["error"]
    assert (error["step"], error["type"]) == ("drift", "ValueChangedError")
    assert "drift.seed=now" in error["message"]
    assert "same value in every process" in error["message"]
    locked = record["steps"][0]["params"]["seed"]["value"]
    assert f"was {locked} when it was locked in" in error["message"]


def test_an_untracked_value_may_differ_between_processes(tmp_path: Path) -> None:
    root = make_investigation(tmp_path / "drift", DRIFTING, PYPROJECT)

    run = _run(root, "-p", "+seed=pid")

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["status"] == "succeeded"
