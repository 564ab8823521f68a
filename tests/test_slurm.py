"""Trials on a real single-node Slurm (munged, slurmctld, slurmd from Debian's packages).

Nothing is mocked: sbatch, squeue and scancel answer as on a cluster, and every reading
of the trials is done by a fresh ``mitosis-nb`` process that never saw the trials start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import slurm_cluster
from conftest import trial_dirs
from sweep_helpers import records, run_cli

from mitosis.adapters import index_cache, registry

if slurm_cluster.missing():
    pytest.skip(str(slurm_cluster.missing()), allow_module_level=True)

HEARTBEAT = ("--slurm", "heartbeat=2")
SLURM = ("--scheduler", "slurm", *HEARTBEAT)


@pytest.fixture(scope="session")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test cluster, for the whole session; the commands find it through SLURM_CONF."""
    previous = os.environ.get("SLURM_CONF")
    with slurm_cluster.running_slurm(tmp_path_factory.mktemp("slurm")) as conf:
        os.environ["SLURM_CONF"] = str(conf)
        try:
            yield conf
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous


@pytest.fixture
def cluster(slurm_conf: Path) -> Iterator[Path]:
    """The cluster, emptied of this test's jobs when it ends: the next test finds the node
    idle, with no job of this one still completing."""
    yield slurm_conf
    slurm_cluster.empty_queue(slurm_conf)


def status(root: Path, trial_id: str) -> str | None:
    return listed(root).get(trial_id, {}).get("status")


def listed(root: Path) -> dict[str, dict]:
    """``mitosis-nb list --json`` by a new process: each trial's row by id."""
    answer = run_cli(root, "list", "--json")
    assert answer.returncode == 0, answer.stderr
    return {row["id"]: row for row in json.loads(answer.stdout)}


def listed_from_another_host(root: Path) -> dict[str, dict]:
    """``list --json`` by a process whose host is called ``login-node`` (a UTS namespace of
    its own): a trial's pid, recorded on this machine, tells it nothing."""
    command = f"hostname login-node && exec {sys.executable} -m mitosis.cli list --json"
    answer = subprocess.run(
        ["unshare", "--uts", "sh", "-c", command],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return {row["id"]: row for row in json.loads(answer.stdout)}


def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    conf = os.environ.get("SLURM_CONF")
    said = slurm_cluster.state_report(Path(conf)) if conf else ""
    raise AssertionError(f"not within {within} s: {what}\n{said}")


def record_of(root: Path, trial_id: str) -> dict:
    return next(r for r in records(root / "trials") if r["id"] == trial_id)


def queued_ids(stdout: str) -> dict[str, str]:
    """The trials the command said it queued, with their Slurm tasks."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("queued: "):
            words = line.split()
            found[words[1]] = words[-1]
    return found


def test_a_sweep_is_submitted_as_one_array_the_command_returns_and_the_index_lists_it(
    investigation: Path, cluster: Path
) -> None:
    started = time.monotonic()
    submitted = run_cli(
        investigation, "run", "toy", "-p", "frequency=fast,slow", "-e", "amplitude=1",
        "-e", "amplitude=3", *SLURM,
    )  # fmt: skip
    took = time.monotonic() - started

    assert submitted.returncode == 0, submitted.stderr
    tasks = queued_ids(submitted.stdout)
    assert len(tasks) == 4
    job = {task.split("_")[0] for task in tasks.values()}
    assert len(job) == 1, "one job array"
    assert sorted(task.split("_")[1] for task in tasks.values()) == ["0", "1", "2", "3"]
    assert re.search(r"queued +4 ", submitted.stdout)
    # Fire and forget: the command returned before the trials ended.
    at_return = listed(investigation)
    assert set(at_return) == set(tasks)
    assert any(row["status"] in ("queued", "running") for row in at_return.values()), took
    # Variants were claimed by the submitting process, before any job ran.
    claim = registry.read_claim(
        registry.claim_path(investigation / "trials", "toy", "frequency", "fast")
    )
    assert claim is not None and claim.trial in tasks

    wait_until(
        lambda: all(r["status"] == "succeeded" for r in listed(investigation).values()),
        within=180,
        what="the four trials succeed",
    )
    found = records(investigation / "trials")
    assert sorted(r["main"] for r in found) == [1.0, 3.0, 10.0, 30.0]
    for record in found:
        task = tasks[record["id"]]
        assert record["slurm"]["job_id"] == task.split("_")[0]
        assert record["slurm"]["array_index"] == int(task.split("_")[1])
        assert record["slurm"]["node"] == socket.gethostname().split(".")[0]
        assert record["slurm"]["state"] == "COMPLETED"
        assert (investigation / "trials" / record["id"] / "heartbeat").is_file()
    # The trials kept the index themselves: nobody was waiting for them to come back.
    indexed = index_cache.read(investigation / "trials")
    assert sorted(indexed) == sorted(tasks)
    assert all(r["id"] in (investigation / "trials" / "index.html").read_text() for r in found)


def test_a_job_cancelled_with_scancel_and_one_past_its_time_limit_are_interrupted_with_the_state(
    investigation: Path, cluster: Path
) -> None:
    timed = run_cli(investigation, "run", "toy", "-p", "mode=sleep", *SLURM, "--slurm", "time=1")
    cancelled = run_cli(
        investigation, "run", "toy", "-p", "mode=sleep", "-e", "amplitude=2", *SLURM
    )
    killed = run_cli(
        investigation, "run", "toy", "-p", "mode=sleep", "-e", "amplitude=3",
        "--scheduler", "slurm", "--slurm", "heartbeat=5",
    )  # fmt: skip
    ((timed_id, timed_task),) = queued_ids(timed.stdout).items()
    ((cancelled_id, cancelled_task),) = queued_ids(cancelled.stdout).items()
    ((killed_id, killed_task),) = queued_ids(killed.stdout).items()
    wait_until(
        lambda: status(investigation, cancelled_id) == "running",
        within=60,
        what="the trial to cancel runs",
    )
    subprocess.run(["scancel", cancelled_task], check=True)
    wait_until(
        lambda: status(investigation, cancelled_id) == "interrupted",
        within=3 * 2 + 10,
        what="the cancelled trial is interrupted",
    )
    record = record_of(investigation, cancelled_id)
    assert record["slurm"]["state"] == "CANCELLED"
    assert (
        "CANCELLED" in record["error"]["message"] and cancelled_task in record["error"]["message"]
    )

    # A runner killed outright writes nothing, and Slurm ends its job: a reader on another
    # host, where its pid tells nothing, records it once its heartbeat (every 5 s) is three
    # beats old.
    wait_until(lambda: status(investigation, killed_id) == "running", 60, "the third runs")
    beat = investigation / "trials" / killed_id / "heartbeat"
    wait_until(beat.is_file, 10, "its first heartbeat")
    os.kill(record_of(investigation, killed_id)["pid"], signal.SIGKILL)  # as the OOM killer would
    killed_at = time.monotonic()
    seen = listed_from_another_host(investigation)[killed_id]["status"]
    if time.monotonic() - killed_at < 8:  # the heartbeat is fresh: it may still be running
        assert seen == "running"
    wait_until(
        lambda: listed_from_another_host(investigation)[killed_id]["status"] == "interrupted",
        within=3 * 5 + 20,
        what="the killed trial is interrupted by a reader on another host",
    )
    record = record_of(investigation, killed_id)
    assert record["error"]["type"] == "SlurmJobEnded"
    assert "heartbeat" in record["error"]["message"] and killed_task in record["error"]["message"]
    assert record["slurm"]["state"] in record["error"]["message"]
    assert record["slurm"]["state"] not in ("RUNNING", "PENDING", "COMPLETED")

    # Slurm enforces a time limit of one minute within about half a minute more.
    wait_until(
        lambda: status(investigation, timed_id) == "interrupted",
        within=150,
        what="the trial past its time limit is interrupted",
    )
    record = record_of(investigation, timed_id)
    assert record["slurm"]["state"] == "TIMEOUT"
    assert "TIMEOUT" in record["error"]["message"] and timed_task in record["error"]["message"]
    shown = run_cli(investigation, "show", timed_id)
    assert "TIMEOUT" in shown.stdout


def test_wait_gives_the_summary_and_exit_code_and_skip_existing_resubmits_only_the_rest(
    investigation: Path, cluster: Path
) -> None:
    waited = run_cli(
        investigation, "run", "toy", "-p", "mode=ok,boom", *SLURM, "--wait", timeout=240
    )
    assert waited.returncode == 1, waited.stderr
    assert re.search(r"succeeded +1 ", waited.stdout) and re.search(r"failed +1 ", waited.stdout)
    assert "sweep of 2 trials" in waited.stdout
    assert waited.stdout.count("queued: ") == 2  # each trial's Slurm task, as it was submitted
    assert "queued " not in waited.stdout.split("sweep of")[1]  # none is left queued
    assert "ValueError: the experiment exploded on purpose" in waited.stderr

    first = {r["id"]: r for r in records(investigation / "trials")}
    assert sorted(r["status"] for r in first.values()) == ["failed", "succeeded"]

    resumed = run_cli(
        investigation, "run", "toy", "-p", "mode=ok,boom", *SLURM, "--wait", "--skip-existing",
        timeout=240,
    )  # fmt: skip
    assert resumed.returncode == 1
    assert re.search(r"skipped +1 ", resumed.stdout) and re.search(r"failed +1 ", resumed.stdout)
    after = {r["id"]: r for r in records(investigation / "trials")}
    new = [record for trial_id, record in after.items() if trial_id not in first]
    assert len(new) == 1 and new[0]["variant"] == "toy.mode=boom"


def test_cancel_stops_queued_and_running_trials_and_records_them_interrupted(
    investigation: Path, cluster: Path
) -> None:
    cpus = os.cpu_count() or 1
    amplitudes = [f"amplitude={n}" for n in range(1, cpus + 2)]
    flags = [word for a in amplitudes for word in ("-e", a)]
    submitted = run_cli(investigation, "run", "toy", "-p", "mode=sleep", *flags, *SLURM)
    tasks = queued_ids(submitted.stdout)
    assert len(tasks) == cpus + 1

    def some_run_and_one_waits() -> bool:
        statuses = [row["status"] for row in listed(investigation).values()]
        return statuses.count("running") == cpus and statuses.count("queued") == 1

    wait_until(some_run_and_one_waits, within=90, what="the node is full and one trial waits")
    rows = listed(investigation)
    waiting = next(i for i, row in rows.items() if row["status"] == "queued")
    running = next(i for i, row in rows.items() if row["status"] == "running")

    cancelled = run_cli(investigation, "cancel", waiting, running)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.count("cancelled: ") == 2
    rows = listed(investigation)
    assert rows[waiting]["status"] == rows[running]["status"] == "interrupted"
    assert record_of(investigation, waiting)["slurm"]["state"] == "CANCELLED"
    time.sleep(8)  # the running one's runner stops its kernel and records itself
    assert status(investigation, running) == "interrupted"
    assert "CANCELLED" in record_of(investigation, running)["error"]["message"]
    # The waiting trial never started: its task left the queue without running it.
    assert record_of(investigation, waiting).get("started") is None

    refused = run_cli(investigation, "cancel", waiting)
    assert refused.returncode == 2
    assert "only those can be cancelled" in refused.stderr


def test_a_wrong_partition_or_missing_submitit_is_refused_before_anything_is_written(
    investigation: Path, cluster: Path, tmp_path: Path
) -> None:
    wrong = run_cli(
        investigation, "run", "toy", "-p", "frequency=fast,slow", *SLURM, "--slurm", "partition=gpu"
    )
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "no partition 'gpu'" in wrong.stderr
    assert "debug" in wrong.stderr  # the partitions it has
    assert trial_dirs(investigation / "trials") == []
    assert not (investigation / "trials" / "variants").exists()

    unknown = run_cli(investigation, "run", "toy", *SLURM, "--slurm", "colour=blue")
    assert unknown.returncode == 2 and "unknown Slurm option 'colour'" in unknown.stderr
    alone = run_cli(investigation, "run", "toy", "--wait")
    assert alone.returncode == 2 and "--scheduler slurm" in alone.stderr

    shadow = tmp_path / "no-submitit"
    shadow.mkdir()
    (shadow / "submitit.py").write_text("raise ImportError('no submitit here')\n")
    missing = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "run", "toy", *SLURM],
        cwd=investigation,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        timeout=120,
    )
    assert missing.returncode == 2
    assert "pip install 'mitosis-nb[slurm]'" in missing.stderr
    assert trial_dirs(investigation / "trials") == []


def test_the_pyproject_table_and_slurm_overrides_reach_the_job(
    investigation: Path, cluster: Path
) -> None:
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + '\n[tool.mitosis.slurm]\njob-name = "from-table"\ntime = 2\n'
        + 'setup = ["export MITOSIS_SETUP_RAN=yes"]\n'
    )
    subprocess.run(["git", "commit", "-qam", "slurm options"], cwd=investigation, check=True)

    submitted = run_cli(investigation, "run", "toy", *SLURM, "--slurm", "time=3")
    assert submitted.returncode == 0, submitted.stderr
    ((trial_id, task),) = queued_ids(submitted.stdout).items()
    wait_until(lambda: status(investigation, trial_id) == "succeeded", 120, "the trial ends")
    job = subprocess.run(
        ["scontrol", "-o", "show", "job", task], capture_output=True, text=True, check=True
    ).stdout
    assert "JobName=from-table" in job and "TimeLimit=00:03:00" in job
    # The setup line ran before the trial, whose kernel inherited what it exported.
    record = record_of(investigation, trial_id)
    assert record["environment"]["variables"]["MITOSIS_SETUP_RAN"] == "yes"
    shown = run_cli(investigation, "show", trial_id)
    assert f"slurm:    job {task}, COMPLETED" in shown.stdout


def test_ctrl_c_of_a_waiting_run_cancels_its_jobs_and_records_them_interrupted(
    investigation: Path, cluster: Path
) -> None:
    waiting = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "run", "toy", "-p", "mode=sleep",
         "-e", "amplitude=1", "-e", "amplitude=2", *SLURM, "--wait"],
        cwd=investigation, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # One running and one running or still queued: Ctrl-C must end both either way.
        wait_until(
            lambda: (
                sorted(row["status"] for row in listed(investigation).values())
                in (["queued", "running"], ["running", "running"])
            ),
            within=90,
            what="a trial runs",
        )
        waiting.send_signal(signal.SIGINT)
        stdout, stderr = waiting.communicate(timeout=150)  # a loaded machine drains slowly
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 130, stderr
    assert re.search(r"interrupted +2 ", stdout)
    for record in records(investigation / "trials"):
        assert record["status"] == "interrupted"
        assert record["slurm"]["state"] == "CANCELLED"
        task = f"{record['slurm']['job_id']}_{record['slurm']['array_index']}"
        assert slurm_cluster.squeue_state(cluster, task) in ("CANCELLED", "COMPLETING")
