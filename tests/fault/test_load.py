"""Load: several runners at once while readers keep listing, and nothing goes missing.

CI runs 4 processes x 6 trials; the issue's 200 trials (4 x 50 real kernels, about seven
minutes on two cores) run with ``MITOSIS_LOAD_TRIALS=200``: see benchmarks/bench_fault_load.py.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import threading
from pathlib import Path

from faultkit import (
    check_invariants,
    cli_command,
    lab_fixture,  # noqa: F401 - the `lab` fixture
    read_yaml,
    start_runner,
    trial_folders,
)

PROCESSES = 4
TRIALS = int(os.environ.get("MITOSIS_LOAD_TRIALS", "24"))


def _poll_listing(root: Path, stop: threading.Event, seen: list[int], bad: list[str]) -> None:
    while not stop.is_set():
        done = subprocess.run(cli_command("list", "--json"), cwd=root, capture_output=True)
        try:
            rows = json.loads(done.stdout)
            ids = [row["id"] for row in rows]
            assert done.returncode == 0 and len(ids) == len(set(ids))
            seen.append(len(rows))
        except (ValueError, AssertionError, KeyError, TypeError):
            bad.append(f"exit {done.returncode}: {done.stdout[:200]!r} {done.stderr[:200]!r}")


def test_trials_from_four_processes_while_list_is_polled(lab: Path) -> None:
    per_process = TRIALS // PROCESSES
    runners = [
        start_runner(
            lab,
            "run",
            "nap",
            "-p",
            "pace=quick",
            *(f"-eseed={p * per_process + i}" for i in range(per_process)),
        )
        for p in range(PROCESSES)
    ]
    stop, seen, bad = threading.Event(), [], []
    poller = threading.Thread(target=_poll_listing, args=(lab, stop, seen, bad))
    poller.start()
    try:
        for runner in runners:
            _, stderr = runner.communicate(timeout=3600)
            assert runner.returncode == 0, stderr
    finally:
        stop.set()
        poller.join()
    assert not bad, bad[:3]
    assert len(seen) >= 3 and seen == sorted(seen)  # polled throughout; never a row lost
    folders = trial_folders(lab / "trials")
    ids = [folder.name for folder in folders]
    assert len(ids) == len(set(ids)) == PROCESSES * per_process
    records = [read_yaml(folder / "trial.yaml") for folder in folders]
    assert all(record["status"] == "succeeded" for record in records)
    assert sorted({record["main"] for record in records}) == [float(s) for s in range(len(ids))]
    # Sortable: the id starts with the UTC second its trial was allocated, never after it began.
    for trial_id, record in zip(ids, records, strict=True):
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", trial_id), trial_id
        began = record["started"][:19].replace("-", "").replace(":", "").replace("T", "-")
        assert trial_id[:15] <= began, (trial_id, record["started"])
    with sqlite3.connect(lab / "trials" / "index.sqlite") as connection:
        (rows,) = connection.execute("SELECT count(DISTINCT id) FROM trials").fetchone()
    assert rows == len(ids)
    census = check_invariants(lab)
    assert census.count("succeeded") == len(ids)
    print(f"load: {len(ids)} trials from {PROCESSES} processes, list polled {len(seen)} times")
