"""A sweep publishes a trial (its notebook, page and final record) off its critical path:
the next trial starts as soon as the kernel has ended, and the publishing waits for a core
that no trial's kernel uses, ten seconds at most, or a Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cdp import Browser
from conftest import kernels_in, make_investigation
from sweep_helpers import HOLDABLE, HOLDABLE_PYPROJECT, records

from mitosis.executors.publisher import PUBLISH_WITHIN_S

SWEEP = ["-m", "mitosis.cli", "run", "nap", "-ex=1", "-ex=2", "--workers", "1"]


def _start_on(cores: int, root: Path) -> subprocess.Popen[str]:
    """The sweep (trial x=1 quick, x=2 held), its runner and kernels on ``cores`` cores."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    assert len(allowed) == cores, f"this test needs a machine with {cores} cores"
    return subprocess.Popen(
        [sys.executable, *SWEEP],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, allowed),
    )


def _until(condition: Callable[[], object], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def _by_variant(trials: Path) -> dict[str, dict]:
    return {record["variant"]: record for record in records(trials)}


def _published_after(trials: Path, record: dict) -> float:
    """Seconds from the trial's kernel's end to its final record's write."""
    folder = trials / record["id"]
    finished = datetime.fromisoformat(record["finished"]).timestamp()
    return float((folder / "trial.yaml").stat().st_mtime - finished)


def _held_sweep(tmp_path: Path, cores: int) -> tuple[subprocess.Popen[str], Path, Path]:
    """A sweep whose first trial's kernel has ended while its second holds the worker."""
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    trials = root / "trials"
    trials.mkdir()
    (trials / "hold").write_text("2\n")
    runner = _start_on(cores, root)
    _until(lambda: _by_variant(trials).get("nap.x=2", {}).get("status") == "running", "trial 2")
    _until(lambda: kernels_in(root), "trial 2's kernel")
    return runner, root, trials


def test_with_every_core_running_a_trial_the_last_one_is_published_within_ten_seconds(
    tmp_path: Path, browser: Browser
) -> None:
    runner, root, trials = _held_sweep(tmp_path, cores=1)
    try:
        first = _by_variant(trials)["nap.x=1"]
        # Its kernel is gone, the next trial holds the one core: it waits, still running,
        # and its heartbeat, `show` and the index row say it is being published.
        assert first["status"] == "running"
        assert not (trials / first["id"] / "trial.ipynb").exists()
        beat = trials / first["id"] / "heartbeat"
        _until(lambda: json.loads(beat.read_text()).get("executed"), "the publishing beat")
        shown = subprocess.run(
            [sys.executable, "-m", "mitosis.cli", "show", first["id"]],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert re.search(r"  running · publishing · \d+ s$", shown.stdout.splitlines()[0])
        assert "its page and record are being written" in shown.stdout
        browser.navigate((trials / "index.html").as_uri())
        browser.wait_for("document.body.dataset.ready === 'true'")
        rows = "Array.from(document.querySelectorAll('#rows tr .status'))"
        labels = f"{rows}.map(s => s.parentNode.textContent).join('|')"
        row = browser.wait_for(f"/publishing/.test({labels}) && {labels}", 10)
        assert re.search(r"running · publishing · \d+ s", row), row
        _until(lambda: _by_variant(trials)["nap.x=1"]["status"] == "succeeded", "publishing")
        first = _by_variant(trials)["nap.x=1"]
        assert (trials / first["id"] / "trial.html").is_file()
        waited = _published_after(trials, first)
        assert PUBLISH_WITHIN_S / 2 < waited < PUBLISH_WITHIN_S + 5, waited
        assert _by_variant(trials)["nap.x=2"]["status"] == "running"
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=60)
    assert runner.returncode == 130
    assert _by_variant(trials)["nap.x=2"]["status"] == "interrupted"
    assert not kernels_in(root)


def test_with_a_core_to_spare_a_trial_is_published_while_the_next_one_runs(
    tmp_path: Path,
) -> None:
    runner, _, trials = _held_sweep(tmp_path, cores=2)
    try:
        _until(lambda: _by_variant(trials)["nap.x=1"]["status"] == "succeeded", "publishing")
        assert _published_after(trials, _by_variant(trials)["nap.x=1"]) < PUBLISH_WITHIN_S / 2
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=60)
    assert runner.returncode == 130


def test_ctrl_c_publishes_a_trial_waiting_to_be_published_whole(tmp_path: Path) -> None:
    runner, root, trials = _held_sweep(tmp_path, cores=1)
    first = _by_variant(trials)["nap.x=1"]
    assert first["status"] == "running"  # waiting to be published
    runner.send_signal(signal.SIGINT)
    stdout, stderr = runner.communicate(timeout=60)

    assert runner.returncode == 130, stderr
    statuses = {variant: r["status"] for variant, r in _by_variant(trials).items()}
    assert statuses == {"nap.x=1": "succeeded", "nap.x=2": "interrupted"}
    folder = trials / first["id"]
    assert {"trial.ipynb", "trial.html", "results_0.pkl"} <= {p.name for p in folder.iterdir()}
    assert f"succeeded: {first['id']}" in stdout
    assert not kernels_in(root)
