"""A running trial says where it is, with no server: its heartbeat (``heartbeat`` and
``progress.js``), ``show``, its page and its index row, all read while a real trial runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from cdp import Browser
from conftest import RunCli, add_step, trial_dirs

from mitosis.core.progress import parse_progress, progress_details, progress_label

# Two steps, each printing, then quiet for a while: the first cell's output and a long
# quiet spell (time to read everything), the second cell, its first output, its last.
SLOW = """
import time

lookup = {}


def warm(pause=10.0):
    print("warming up", flush=True)
    time.sleep(pause)
    return {"main": 1.0, "data": 2.0}


def work(data, pause=4.0):
    print("working", flush=True)
    time.sleep(pause)
    print("worked", flush=True)
    time.sleep(pause / 2)
    return {"main": data * 2}
"""


def _wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout} s for {what}")


def _beat(folder: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((folder / "heartbeat").read_text())
    except (OSError, ValueError):
        return None
    return data


def _mitosis(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def slow_trial(investigation: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A real two-step trial started in the background; its folder once it has one."""
    add_step(investigation, "warm", "slow_steps", SLOW, run="warm")
    add_step(investigation, "work", "slow_steps", SLOW, run="work")
    runner = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "run", "warm", "work"],
        cwd=investigation,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    trials = investigation / "trials"
    try:
        records = _wait_until(lambda: list(trials.glob("2*/trial.yaml")), 60, "the record")
        yield runner, records[0].parent
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.communicate(timeout=60)


def test_a_running_trial_says_where_it_is_in_its_folder_show_page_and_index(
    investigation: Path, slow_trial: tuple[subprocess.Popen[str], Path], browser: Browser
) -> None:
    runner, folder = slow_trial
    # The first step runs and has printed: its cell of the notebook's cells, its output.
    beat = _wait_until(
        lambda: (b := _beat(folder)) and b.get("step") == "warm" and b.get("last_output") and b,
        60,
        "the first step's heartbeat",
    )
    assert beat["cell"] < beat["cells"] and beat["ended"] is None and beat["every_s"] > 0
    first_cell, cells = beat["cell"], beat["cells"]
    script = (folder / "progress.js").read_text()
    assert script.startswith(f'mitosisProgress("{folder.name}", {{') and '"step":"warm"' in script

    # `show` prints it as the index row does, then at length.
    shown = _mitosis(investigation, "show", folder.name)
    assert shown.returncode == 0, shown.stderr
    head = shown.stdout.splitlines()[0]
    assert re.search(rf"  running · cell {first_cell}/{cells} · \d+ s$", head), head
    assert f"progress: cell {first_cell} of {cells} (step warm), last output" in shown.stdout
    as_json = json.loads(_mitosis(investigation, "show", folder.name, "--json").stdout)
    assert as_json["status"] == "running" and as_json["progress"]["step"] == "warm"

    # The page of the run so far: it says the trial runs, shows the output so far, reloads.
    page = _wait_until(
        lambda: (folder / "trial.html").is_file() and (folder / "trial.html").read_text(),
        30,
        "the page of the run so far",
    )
    assert runner.poll() is None, "the trial ended before its page of the run so far was read"
    assert '<span class="mitosis-status">running</span>' in page
    assert f"cell {first_cell} of {cells} (step warm)" in page
    assert "warming up" in page and "worked" not in page
    metas = re.findall(r"<meta [^>]*>", page)
    assert any('http-equiv="refresh"' in m and 'content="10"' in m for m in metas), metas
    assert _wait_until(lambda: (b := _beat(folder)) and b["page"], 10, "the page in the beat")

    # The index row, in real Chromium from file:// (no server): running, its cell, a time.
    browser.navigate((investigation / "trials" / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'")
    status = "document.querySelector('#rows tr td .status').parentNode.textContent"
    row = browser.wait_for(f"/ · cell \\d+\\/\\d+ · \\d+ s$/.test({status}) && {status}", 10)
    assert re.fullmatch(rf"running · cell {first_cell}/{cells} · \d+ s", row), row
    assert browser.evaluate("document.querySelector('#rows tr td a code') !== null")  # the page

    # The second step: a later cell, and the row follows without reloading the page.
    later = _wait_until(
        lambda: (b := _beat(folder)) and b.get("step") == "work" and b, 30, "the second step"
    )
    assert later["cell"] == first_cell + 1 and later["cells"] == cells
    row = browser.wait_for(f"{status}.indexOf('cell {first_cell + 1}/{cells}') !== -1 && {status}")
    assert row.startswith(f"running · cell {first_cell + 1}/{cells} · ")
    assert browser.event_params("Runtime.exceptionThrown") == []

    # The end: the final page replaces the page of the run so far, and the beat says so.
    assert runner.wait(60) == 0, runner.stderr
    final = (folder / "trial.html").read_text()
    assert 'http-equiv="refresh"' not in final and "Running:" not in final
    assert "worked" in final and '<span class="mitosis-status">succeeded</span>' in final
    ended = _beat(folder)
    assert ended is not None and ended["ended"] == "succeeded"
    notebook = nbformat.read(str(folder / "trial.ipynb"), as_version=4)
    steps = [c.metadata.get("mitosis", {}).get("step") for c in notebook.cells]
    assert (len(notebook.cells), steps.index("warm") + 1) == (cells, first_cell)
    row = browser.wait_for(f"{status}.indexOf('ended succeeded') !== -1 && {status}", 10)
    assert "reload for its results" in row
    finished = json.loads(_mitosis(investigation, "show", folder.name, "--json").stdout)
    assert finished["status"] == "succeeded" and "progress" not in finished


def test_every_trial_keeps_a_heartbeat_to_its_end_a_failed_one_too(
    investigation: Path, cli: RunCli
) -> None:
    failed = cli("run", "toy", "-p", "mode=boom")
    assert failed.returncode == 1, failed.stderr
    (folder,) = trial_dirs(investigation / "trials")
    beat = _beat(folder)
    assert beat is not None and beat["ended"] == "failed" and beat["every_s"] == 10.0
    # The cells as they ran: papermill adds its own above a failed cell afterwards.
    ran = [
        c for c in _cells(folder) if "papermill-error-cell-tag" not in c.metadata.get("tags", [])
    ]
    steps = [c.metadata.get("mitosis", {}).get("step") for c in ran]
    assert (beat["step"], beat["cell"], beat["cells"]) == ("toy", steps.index("toy") + 1, len(ran))
    assert beat["last_output"] is not None and beat["time"] >= beat["last_output"]
    assert (folder / "progress.js").read_text().startswith(f'mitosisProgress("{folder.name}"')
    page = (folder / "trial.html").read_text()
    assert '<span class="mitosis-status">failed</span>' in page and "Running:" not in page


def _cells(folder: Path) -> list[Any]:
    return list(nbformat.read(str(folder / "trial.ipynb"), as_version=4).cells)


NOW = datetime(2026, 12, 6, 19, 5, 30, tzinfo=timezone.utc)


def test_progress_reads_as_the_row_says_it() -> None:
    beat = {
        "time": (NOW - timedelta(seconds=2)).isoformat(),
        "every_s": 10.0,
        "cell": 3,
        "cells": 5,
        "step": "sine",
        "since": (NOW - timedelta(seconds=40)).isoformat(),
        "last_output": (NOW - timedelta(seconds=12)).isoformat(),
        "page": True,
    }
    progress = parse_progress(beat)
    assert progress_label(progress, NOW) == "cell 3/5 · 12 s"
    assert progress_details(progress, NOW) == (
        "cell 3 of 5 (step sine), last output 12 s ago, at 19:05:18 UTC, "
        "heartbeat 2 s ago, at 19:05:28 UTC"
    )
    # Before any output, the time since the run began; a runner gone quiet is named.
    quiet = parse_progress({**beat, "last_output": None, "time": "2026-12-06T19:00:00+00:00"})
    assert progress_label(quiet, NOW) == "cell 3/5 · 40 s · no heartbeat for 5 min"
    assert "(stale: its runner has gone quiet)" in progress_details(quiet, NOW)
    # Run to its end, waiting to be published: so much, and since when.
    executed = parse_progress({**beat, "executed": (NOW - timedelta(seconds=3)).isoformat()})
    assert progress_label(executed, NOW) == "publishing · 3 s"
    assert progress_details(executed, NOW) == (
        "its notebook ran to its end 3 s ago, at 19:05:27 UTC, its page and record are being "
        "written, heartbeat 2 s ago, at 19:05:28 UTC"
    )
    published = parse_progress({**beat, "executed": NOW.isoformat(), "ended": "succeeded"})
    assert progress_label(published, NOW) == "cell 3/5 · 12 s"
    # Whatever wrote the file, a field of the wrong type is left out, never raised on.
    odd = parse_progress({"time": 5, "cell": "3", "cells": True, "step": ["x"], "page": "yes"})
    assert odd.time is None and odd.cell is None and odd.cells is None and odd.step is None
    assert progress_label(odd, NOW) == "starting" and odd.page is False
