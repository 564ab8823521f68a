"""Sweeps on this machine: the grid, lock-in of the whole sweep, --workers, Ctrl-C, resuming."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import RunCli, make_investigation, start_in, trial_dirs
from sweep_helpers import (
    HOLDABLE,
    HOLDABLE_PYPROJECT,
    kernels_in,
    records,
    run_cli,
    run_with_terminal_stderr,
)

from mitosis.adapters import registry
from mitosis.adapters.registry import Claim


def _overlap(a: dict, b: dict) -> bool:
    start = [datetime.fromisoformat(r["started"]) for r in (a, b)]
    end = [datetime.fromisoformat(r["finished"]) for r in (a, b)]
    return start[0] < end[1] and start[1] < end[0]


def test_a_grid_runs_in_parallel_failures_do_not_stop_it_and_the_summary_names_every_trial(
    investigation: Path,
) -> None:
    code, stdout, terminal = run_with_terminal_stderr(
        investigation, "run", "toy", "-p", "frequency=fast,slow", "-p", "mode=ok,boom",
        "--workers", "2",
    )  # fmt: skip

    assert code == 1, terminal
    trials = investigation / "trials"
    found = records(trials)
    assert sorted(r["variant"] for r in found) == [
        "toy.frequency=fast,toy.mode=boom",
        "toy.frequency=fast,toy.mode=ok",
        "toy.frequency=slow,toy.mode=boom",
        "toy.frequency=slow,toy.mode=ok",
    ]
    succeeded = sorted(r["id"] for r in found if r["status"] == "succeeded")
    failed = sorted(r["id"] for r in found if r["status"] == "failed")
    assert len(succeeded) == 2 and len(failed) == 2
    assert sorted(r["main"] for r in found if r["status"] == "succeeded") == [1.0, 10.0]
    # Two trials at once: some pair of trials ran at the same time.
    assert any(_overlap(a, b) for a in found for b in found if a is not b)
    # Each trial's line names its variant: that is how a sweep's trials differ.
    for record in found:
        line = next(
            line
            for line in stdout.splitlines()
            if line.startswith(f"{record['status']}: {record['id']}")
        )
        assert f"  {record['variant']}  " in line
    summary = stdout[stdout.index("sweep of 4 trials") :]
    succeeded_line = next(line for line in summary.splitlines() if "succeeded" in line)
    failed_line = next(line for line in summary.splitlines() if "failed" in line)
    assert all(trial_id in succeeded_line for trial_id in succeeded)
    assert all(trial_id in failed_line for trial_id in failed)
    # One progress bar on the terminal, with the counts; papermill's cell bars stay away.
    assert "sweep" in terminal and "done 2, failed 2" in terminal
    assert "Executing" not in terminal
    # The variants were claimed by trials of this sweep, and the index lists all four.
    claim = registry.read_claim(registry.claim_path(trials, "toy", "frequency", "slow"))
    assert claim is not None and claim.trial in {r["id"] for r in found}
    listed = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "list", "--json"],
        cwd=investigation,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(row["id"] for row in json.loads(listed)) == sorted(succeeded + failed)


def test_one_conflicting_variant_refuses_the_whole_sweep_before_anything_is_written(
    investigation: Path, cli: RunCli
) -> None:
    trials = investigation / "trials"
    registry.claim(trials, Claim("toy", "frequency", "slow", "sha256:other", "99", "theirs"))

    sweep = (
        "-p",
        "frequency=fast,slow",
        "-p",
        "solver=tight",
        "-e",
        "amplitude=1",
        "-e",
        "amplitude=2",
    )
    done = cli("run", "toy", *sweep, "--workers", "2")

    assert done.returncode == 2
    assert "'slow'" in done.stderr and "locked to 99" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr  # one sentence: no kernel spoke
    assert trial_dirs(trials) == []
    for variant in (("frequency", "fast"), ("solver", "tight")):
        assert not registry.claim_path(trials, "toy", *variant).exists()
    # Every kernel started ahead (two for the workers, and more while the first checked
    # the request) was stopped.
    assert not kernels_in(investigation)


SLOW_TO_CHECK = """
import os
import time

lookup = {"x": {"one": 1}}

# The first kernel to import this module, the one that checks the request, takes its time.
if not os.path.exists(os.path.join("trials", "checked")):
    open(os.path.join("trials", "checked"), "w").close()
    time.sleep(8)
    if os.path.exists(os.path.join("trials", "refuse")):
        raise RuntimeError("this module cannot be imported today")


def run(x=0):
    return {"main": float(x), "metrics": {"pid": os.getpid()}}
"""


def _sweep_watching_kernels(root: Path, *argv: str) -> tuple[subprocess.CompletedProcess, int, set]:
    """Run ``argv``; how it ended, the most kernels running in ``root`` before any trial
    folder existed, and every kernel seen running there."""
    runner = start_in(root, sys.executable, "-m", "mitosis.cli", *argv)
    most_before_trials, seen = 0, set()
    while runner.poll() is None:
        running = kernels_in(root)
        seen.update(running)
        if not trial_dirs(root / "trials"):
            most_before_trials = max(most_before_trials, len(running))
        time.sleep(0.1)
    stdout, stderr = runner.communicate()
    done = subprocess.CompletedProcess(runner.args, runner.returncode, stdout, stderr)
    return done, most_before_trials, seen


def test_while_the_request_is_checked_the_next_trials_kernels_boot_and_none_is_wasted(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "slow", SLOW_TO_CHECK, HOLDABLE_PYPROJECT)
    (root / "trials").mkdir()
    sweep = ["run", "nap", *(f"-ex={x}" for x in range(1, 6)), "--workers", "2"]

    done, most_before_trials, seen = _sweep_watching_kernels(root, *sweep)

    assert done.returncode == 0, done.stderr
    # One kernel checks the request (and then runs trial 1); meanwhile the kernels of trials
    # 2, 3 and 4 boot, twice as many as the workers, and no more.
    assert most_before_trials == 4
    pids = {r["metrics"]["pid"] for r in records(root / "trials")}
    assert len(pids) == 5  # every trial in a fresh kernel of its own
    assert seen == pids  # every kernel started ran a trial
    time.sleep(1)
    assert not kernels_in(root)


def test_a_request_refused_while_kernels_boot_ahead_leaves_none_running(tmp_path: Path) -> None:
    root = make_investigation(tmp_path / "refused", SLOW_TO_CHECK, HOLDABLE_PYPROJECT)
    (root / "trials").mkdir()
    (root / "trials" / "refuse").write_text("")
    sweep = ["run", "nap", *(f"-ex={x}" for x in range(1, 6)), "--workers", "2"]

    done, most_before_trials, _ = _sweep_watching_kernels(root, *sweep)

    assert done.returncode == 2, done.stderr
    assert "cannot be imported today" in done.stderr
    assert most_before_trials == 4  # it was refused with kernels booted ahead
    assert trial_dirs(root / "trials") == []
    time.sleep(1)
    assert not kernels_in(root)


def test_bad_worker_counts_are_refused(investigation: Path, cli: RunCli) -> None:
    for args in (("--workers", "0"), ("--workers", "2", "--scheduler", "tcp://127.0.0.1:1")):
        done = cli("run", "toy", "-p", "frequency=fast,slow", *args)
        assert done.returncode == 2 and "--workers" in done.stderr
    assert trial_dirs(investigation / "trials") == []


def test_ctrl_c_stops_a_sweep_and_skip_existing_finishes_only_what_is_missing(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    trials = root / "trials"
    trials.mkdir()
    (trials / "hold").write_text("3 4\n")
    sweep = ["run", "nap", *(f"-ex={x}" for x in range(1, 6)), "--workers", "2"]
    runner = start_in(root, sys.executable, "-m", "mitosis.cli", *sweep)
    deadline = time.monotonic() + 90
    # Trials 1 and 2 finish; 3 and 4 hold their two workers; 5 waits for a free one.
    while time.monotonic() < deadline:
        statuses = [r["status"] for r in records(trials)]
        if statuses.count("succeeded") == 2 and statuses.count("running") == 2:
            break
        time.sleep(0.2)
    time.sleep(2)
    # The two running trials' kernels, and one booted for trial 5.
    assert len(kernels_in(root)) == 3
    runner.send_signal(signal.SIGINT)
    stdout, stderr = runner.communicate(timeout=60)

    assert runner.returncode == 130, stderr
    status_of = {r["variant"]: r["status"] for r in records(trials)}
    assert status_of == {  # trial 5 never started: no folder, no record
        "nap.x=1": "succeeded",
        "nap.x=2": "succeeded",
        "nap.x=3": "interrupted",
        "nap.x=4": "interrupted",
    }
    assert len(trial_dirs(trials)) == 4
    assert "not started" in stdout and "interrupted" in stdout
    assert "%|" not in stderr  # no progress bar when stderr is piped
    time.sleep(1)
    assert not kernels_in(root)

    (trials / "hold").unlink()
    rerun = run_cli(root, *sweep, "--skip-existing")

    assert rerun.returncode == 0, rerun.stderr
    final = records(trials)
    assert len(final) == 7
    succeeded = sorted(r["variant"] for r in final if r["status"] == "succeeded")
    assert succeeded == [f"nap.x={x}" for x in range(1, 6)]
    summary = rerun.stdout[rerun.stdout.index("sweep of 5 trials") :]
    assert any(line.split()[:2] == ["skipped", "2"] for line in summary.splitlines())
    assert any(line.split()[:2] == ["succeeded", "3"] for line in summary.splitlines())
    # With --json, stdout holds only records; the trials without one are told on stderr.
    again = run_cli(root, *sweep, "--skip-existing", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == []
    assert "sweep of 5 trials" in again.stderr and "skipped" in again.stderr


# A real kernel that takes seconds to come up, as on a machine busy with other kernels.
SLOW_KERNEL = """
import runpy, sys, time
time.sleep(2.5)
sys.argv = ["ipykernel_launcher", "-f", sys.argv[1]]
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""


def test_trials_wait_for_kernels_that_are_slow_to_start(
    investigation: Path, cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "jupyter" / "kernels" / "slowpoke"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", SLOW_KERNEL, "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "slow", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    # The second trial's kernel starts while the sweep runs: its client asks whether it
    # is ready several times before it answers.
    done = cli("run", "toy", "-e", "amplitude=1", "-e", "amplitude=2", "--kernel", "slowpoke")

    assert done.returncode == 0, done.stderr
    found = records(investigation / "trials")
    assert sorted(r["main"] for r in found) == [1.0, 2.0]
    assert {r["environment"]["kernel"] for r in found} == {"slowpoke"}


@pytest.mark.parametrize("kernel", [None, "plain-ipykernel"])
def test_trial_kernels_leave_the_users_ipython_history_alone(
    investigation: Path, cli: RunCli, tmp_path: Path, kernel: str | None
) -> None:
    jupyter, ipython = tmp_path / "jupyter", tmp_path / "ipython"
    spec = jupyter / "kernels" / "plain-ipykernel"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "plain", "language": "python"})
    )
    env = {"JUPYTER_PATH": str(jupyter), "IPYTHONDIR": str(ipython)}

    chosen = ["--kernel", kernel] if kernel else []
    done = cli("run", "toy", "-p", "frequency=fast,slow", "--workers", "2", *chosen, env=env)

    assert done.returncode == 0, done.stderr
    assert len(records(investigation / "trials")) == 2
    # Parallel kernels sharing one history database contend for it; and the user's
    # up-arrow in IPython would bring back trial cells.
    history = ipython / "profile_default" / "history.sqlite"
    if history.exists():
        with contextlib.closing(sqlite3.connect(history)) as database:
            assert database.execute("SELECT count(*) FROM history").fetchone() == (0,)


def test_the_progress_bar_shows_on_a_terminal_that_reports_no_width(investigation: Path) -> None:
    code, _, terminal = run_with_terminal_stderr(
        investigation, "run", "toy", "-p", "frequency=fast,slow", columns=0
    )
    assert code == 0, terminal
    assert "sweep" in terminal and "done 2, failed 0" in terminal


def test_skip_existing_leaves_a_trial_that_still_runs_alone(tmp_path: Path) -> None:
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    trials = root / "trials"
    trials.mkdir()
    (trials / "hold").write_text("3\n")
    first = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "run", "nap", "-e", "x=3"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and [r["status"] for r in records(trials)] != ["running"]:
            time.sleep(0.2)
        (running,) = records(trials)
        again = run_cli(root, "run", "nap", "-ex=3", "-ex=4", "--workers", "2", "--skip-existing")
        assert again.returncode == 0, again.stderr
        summary = again.stdout[again.stdout.index("sweep of 2 trials") :].splitlines()
        assert ["skipped", "1", running["id"]] in [line.split() for line in summary]
        assert sorted(r["variant"] for r in records(trials)) == ["nap.x=3", "nap.x=4"]
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=90)
    assert first.returncode == 130
