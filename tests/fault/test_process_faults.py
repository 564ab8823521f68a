"""Processes killed at the worst moments: the kernel (as the OOM killer would), the runner, both.

The single-trial cases test_run.py already covers (an exception, ``os._exit``, ``sys.exit(0)``,
a wrong return shape, ``--timeout``, Ctrl-C, SIGTERM) are not repeated here.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from faultkit import (
    LONG_NAP,
    assert_no_kernel_within,
    check_invariants,
    cli_command,
    kernels_in,
    kill,
    lab_fixture,  # noqa: F401 - the `lab` fixture
    list_json,
    read_yaml,
    start_runner,
    trial_folders,
    wait_until_running,
)

CHAOS_KILLS = 30
CHAOS_LANES = 2  # runners alive at once: kills also land on concurrent claims and index updates


def test_a_kernel_killed_mid_step_is_a_failed_trial(lab: Path) -> None:
    runner = start_runner(lab, "run", "nap", *LONG_NAP)
    wait_until_running(lab, runner)
    time.sleep(1.5)  # in the step by now: the kernel starts in about a second
    (kernel,) = kernels_in(lab)
    kill(kernel)
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 1, stderr
    (folder,) = trial_folders(lab / "trials")
    record = read_yaml(folder / "trial.yaml")
    assert record["status"] == "failed"
    assert record["error"]["kind"] == "kernel_died" and record["error"]["step"] == "nap"
    assert "killed" in record["error"]["message"]
    assert "kernel_died" in (folder / "trial.html").read_text()
    assert_no_kernel_within(lab, 5)
    check_invariants(lab)


def test_a_killed_runner_takes_its_kernel_and_the_next_list_reconciles(lab: Path) -> None:
    runner = start_runner(lab, "run", "nap", *LONG_NAP)
    wait_until_running(lab, runner)
    time.sleep(1.0)
    kill(runner.pid)
    runner.wait(timeout=30)
    (folder,) = trial_folders(lab / "trials")
    assert read_yaml(folder / "trial.yaml")["status"] == "running"  # as the runner left it
    assert list(folder.glob(".tmp-*-reserve"))  # the room it held for its final record
    assert_no_kernel_within(lab, 5)  # the kernel notices its parent is gone
    (row,) = list_json(lab)
    assert not list(folder.glob(".tmp-*-reserve"))  # given back when the trial is settled
    assert row["status"] == "interrupted" and row["error_kind"] == "interrupted"
    record = read_yaml(folder / "trial.yaml")
    assert record["status"] == "interrupted"
    assert record["error"]["type"] == "RunnerDied" and str(runner.pid) in record["error"]["message"]
    check_invariants(lab)


def test_a_folder_whose_runner_died_before_its_first_record_is_not_a_trial(lab: Path) -> None:
    # What a runner SIGKILLed between allocating its id and writing its record leaves.
    (lab / "trials" / "20261125-101010-abcdef").mkdir(parents=True)
    assert list_json(lab) == []
    check_invariants(lab)


def _kernel_of(runner: subprocess.Popen[str], spared: set[int], limit: float = 60) -> int | None:
    """The runner's current kernel (a child running ipykernel), or None once the runner ended."""
    deadline = time.monotonic() + limit
    while runner.poll() is None and time.monotonic() < deadline:
        try:
            folder = Path(os.readlink(f"/proc/{runner.pid}/cwd"))
        except OSError:  # it ended since poll() looked: a zombie has no cwd
            continue
        for pid in kernels_in(folder):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                if f"\nPPid:\t{runner.pid}\n" in status and pid not in spared:
                    return pid
        time.sleep(0.05)
    return None


def _hurt_a_sweep(lab: Path, chance: random.Random, first_seed: int) -> list[str]:
    """Run a sweep; SIGKILL kernels, then the runner, at random moments; name each victim."""
    pace = chance.choice(["quick", "slow"])
    seeds = [f"-eseed={first_seed + i}" for i in range(4)]
    runner = start_runner(lab, "run", "nap", f"-ppace={pace}", *seeds, quiet=True)
    victims: list[str] = []
    killed: set[int] = set()
    for _ in range(chance.choice([0, 1, 2])):
        kernel = _kernel_of(runner, killed)
        if kernel is None:
            break
        time.sleep(chance.uniform(0.0, 1.8))  # kernel start-up, the step's nap, or after it
        if runner.poll() is None:
            kill(kernel)
            killed.add(kernel)
            victims.append("kernel")
    # The runner at any moment: prepare, folder, claims, record, kernel, page or index.
    time.sleep(chance.uniform(0.0, 3.0))
    if runner.poll() is None:
        kill(runner.pid)
        victims.append("runner")
    runner.wait(timeout=120)
    return victims


def test_thirty_random_sigkills_lose_and_corrupt_nothing(lab: Path) -> None:
    chance = random.Random(20261125)
    victims: list[str] = []
    rounds = 0
    while len(victims) < CHAOS_KILLS:
        with ThreadPoolExecutor(CHAOS_LANES) as lanes:
            seeds = [(rounds * CHAOS_LANES + lane) * 10 for lane in range(CHAOS_LANES)]
            rngs = [random.Random(chance.random()) for _ in seeds]
            for hurt in lanes.map(_hurt_a_sweep, [lab] * CHAOS_LANES, rngs, seeds):
                victims += hurt
        rounds += 1
        assert_no_kernel_within(lab, 5)
        census = check_invariants(lab)
    print(
        f"chaos: {len(victims)} kills ({victims.count('kernel')} kernels, "
        f"{victims.count('runner')} runners) in {rounds} rounds; {len(census.statuses)} trials "
        f"{ {s: census.count(s) for s in ('succeeded', 'failed', 'interrupted')} }, "
        f"{census.claims} claims"
    )


def test_a_long_step_whose_result_has_the_wrong_shape_keeps_its_results(lab: Path) -> None:
    done = subprocess.run(
        cli_command("run", "misshape", "-p", "pace=slow", "-e", "seed=3"),
        cwd=lab,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    (folder,) = trial_folders(lab / "trials")
    record = read_yaml(folder / "trial.yaml")
    assert record["status"] == "failed" and record["error"]["type"] == "StepResultError"
    assert "saved in results_0.pkl" in record["error"]["message"]
    computed = pickle.loads((folder / "results_0.pkl").read_bytes())  # the suite's own trial
    assert computed == [random.Random(3).random() for _ in range(1000)]
    check_invariants(lab)
