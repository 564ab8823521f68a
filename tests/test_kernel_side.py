"""Checks made inside the trial's kernel: a locked value must be the value the kernel uses.

The kernel that checks a request (and locks its values in) runs the first trial; any other
trial's fresh kernel imports the lookup again and must find the same values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kernels_in, make_investigation, working_in

# Each process that imports this module gets other values for "now" and "pid".
DRIFTING = """
import os
import time

lookup = {"seed": {"now": {"now": time.time_ns()}, "pid": os.getpid(), "fixed": 7}}


def run(seed=None, repeat=0):
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


def test_a_value_computed_anew_in_each_process_is_refused_by_the_next_run(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "drift", DRIFTING, PYPROJECT)

    first = _run(root, "-p", "seed=now")
    second = _run(root, "-p", "seed=now")

    # The first trial runs in the kernel that locked its value in: it is the value used.
    assert first.returncode == 0, first.stderr
    locked = json.loads(first.stdout)[0]["steps"][0]["params"]["seed"]["value"]
    assert second.returncode == 2
    assert "variant 'now'" in second.stderr
    assert f"locked to {locked}" in second.stderr
    assert len(list((root / "trials").glob("2*"))) == 1


def test_a_value_computed_anew_in_each_process_fails_a_later_trial_of_a_sweep(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "drift", DRIFTING, PYPROJECT)

    run = _run(root, "-p", "seed=now", "-e", "repeat=1", "-e", "repeat=2")

    assert run.returncode == 1, run.stderr
    first, second = sorted(json.loads(run.stdout), key=lambda record: record["started"])
    assert first["status"] == "succeeded"
    assert second["status"] == "failed"
    error = second["error"]
    assert (error["step"], error["type"]) == ("drift", "ValueChangedError")
    assert "drift.seed=now" in error["message"]
    assert "same value in every process" in error["message"]
    locked = second["steps"][0]["params"]["seed"]["value"]
    assert f"was {locked} when another process locked it in" in error["message"]


def test_an_untracked_value_may_differ_between_processes(tmp_path: Path) -> None:
    root = make_investigation(tmp_path / "drift", DRIFTING, PYPROJECT)

    run = _run(root, "-p", "+seed=pid")

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)[0]["status"] == "succeeded"


# Notes in a file which process imported it.
WITNESSED = """
import os

with open(os.environ["MITOSIS_TEST_WITNESS"], "a") as witness:
    witness.write(f"{os.getpid()}\\n")

lookup = {"seed": {"one": 1}}


def run(seed=None, repeat=0):
    return {"main": float(seed)}
"""


def test_the_trial_s_kernel_imports_the_user_code_and_this_process_never_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mitosis import execute_trial

    witness = tmp_path / "imported-by.txt"
    monkeypatch.setenv("MITOSIS_TEST_WITNESS", str(witness))
    root = make_investigation(tmp_path / "witnessed", WITNESSED, PYPROJECT)
    with working_in(root, monkeypatch, "toy_experiments"):
        trial = execute_trial("drift", params={"seed": "one"})

        assert trial.status == "succeeded" and trial.main == 1.0
        assert "toy_experiments" not in sys.modules
    # One import, in one process: the kernel that checked the request then ran the trial.
    (importer,) = witness.read_text().split()
    assert int(importer) != os.getpid()
    # The check left no trace in the notebook: its first cell ran first.
    notebook = json.loads((trial.folder / "trial.ipynb").read_text())
    counts = [cell["execution_count"] for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1))


def test_a_kernel_that_dies_importing_the_user_code_is_refused_with_nothing_written(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "dies", "import os\nos._exit(3)\n", PYPROJECT)

    run = _run(root, "-p", "seed=now")

    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "the kernel died" in run.stderr
    assert "(exit status 3)" in run.stderr
    assert not (root / "trials").exists()


def test_a_kernel_killed_before_the_trial_says_by_which_signal(tmp_path: Path) -> None:
    # As the OOM killer would: the sentence must not blame the user's code alone.
    killed = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    root = make_investigation(tmp_path / "killed", killed, PYPROJECT)

    run = _run(root, "-p", "seed=now")

    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "(killed by SIGKILL)" in run.stderr
    assert not (root / "trials").exists()


def test_code_that_hangs_on_import_is_stopped_by_the_timeout_with_nothing_written(
    tmp_path: Path,
) -> None:
    hangs = "import time\ntime.sleep(300)\nlookup = {}\n\ndef run(seed=None):\n    return {}\n"
    root = make_investigation(tmp_path / "hangs", hangs, PYPROJECT)

    run = _run(root, "--timeout", "3")

    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "more than 3.0 s" in run.stderr
    assert not (root / "trials").exists()
    assert not kernels_in(root)
