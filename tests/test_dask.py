"""Sweeps on a real Dask cluster: a scheduler and two single-thread workers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cache_helpers import SWEEP, gen_runs, make_cache_investigation, run_json
from conftest import make_investigation, trial_dirs, wait_for_kernels
from sweep_helpers import (
    HOLDABLE,
    HOLDABLE_PYPROJECT,
    kernels_in,
    parent_of,
    records,
    run_cli,
    run_with_terminal_stderr,
)
from synthetic import site_text

from mitosis.adapters import index_cache, registry

distributed = pytest.importorskip("distributed")
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen[bytes]]
    scheduler: subprocess.Popen[bytes]

    def worker_pids(self) -> set[int]:
        return {worker.pid for worker in self.workers if worker.poll() is None}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def _running_cluster(
    place: Path, workers: int, pythonpath: Sequence[Path] = ()
) -> Iterator[Cluster]:
    """A scheduler and ``workers`` single-thread workers, with ``pythonpath`` first."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    paths = [*map(str, pythonpath), str(REPO), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    common = {"cwd": place, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", address.rsplit(":", 1)[1], "--dashboard-address", "127.0.0.1:0"],
        **common,
    )  # fmt: skip
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",  # the worker is this very process: tests can find and kill it
                "--host",
                "127.0.0.1",
                "--dashboard-address",
                "127.0.0.1:0",
                "--local-directory",
                str(place / f"worker{i}"),
            ],
            **common,
        )
        for i in range(workers)
    ]
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
        yield Cluster(address, started, scheduler)
    finally:
        for process in [*started, scheduler]:
            _stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two workers (one thread each) that can import mitosis.

    Shared by this module's tests, in order: the last one kills a worker.
    """
    with _running_cluster(tmp_path_factory.mktemp("cluster"), workers=2) as running:
        yield running


def _kill_kernels(root: Path) -> None:
    for pid in kernels_in(root):
        os.kill(pid, signal.SIGKILL)


def test_a_sweep_runs_on_the_cluster_and_the_submitter_keeps_the_index(
    investigation: Path, cluster: Cluster
) -> None:
    code, stdout, terminal = run_with_terminal_stderr(
        investigation, "run", "toy", "-p", "frequency=fast,slow", "-e", "amplitude=1",
        "-e", "amplitude=3", "--scheduler", cluster.address, "--json",
    )  # fmt: skip

    assert code == 0, terminal
    printed = json.loads(stdout)
    trials = investigation / "trials"
    found = records(trials)
    assert len(found) == 4 and len(trial_dirs(trials)) == 4
    assert sorted(r["main"] for r in found) == [1.0, 3.0, 10.0, 30.0]
    assert sorted(r["id"] for r in printed) == sorted(r["id"] for r in found)
    # The trials ran on the workers, not in the submitting process.
    assert {r["pid"] for r in found} <= cluster.worker_pids()
    # The submitter indexed every trial as it returned: the index is current, no rebuild.
    indexed = index_cache.read(trials)
    assert sorted(indexed) == sorted(r["id"] for r in found)
    assert all(entry.summary.status == "succeeded" for entry in indexed.values())
    assert all(r["id"] in site_text(trials) for r in found)
    # Variants were claimed once, by the submitter, before the trials ran.
    claim = registry.read_claim(registry.claim_path(trials, "toy", "frequency", "fast"))
    assert claim is not None and claim.trial in {r["id"] for r in found}
    # --json: nothing but JSON, and no progress bar even on a terminal.
    assert "%|" not in terminal and "sweep" not in terminal


def test_a_cluster_sweep_computes_each_upstream_step_once(tmp_path: Path, cluster: Cluster) -> None:
    root = make_cache_investigation(tmp_path / "cached")

    found = run_json(root, *SWEEP, "--scheduler", cluster.address)

    assert len(found) == 10 and {r["status"] for r in found} == {"succeeded"}
    assert {r["pid"] for r in found} <= cluster.worker_pids()
    assert gen_runs(root) == 2  # two workers, five trials each way: gen ran once per length
    assert sum(1 for r in found if r["steps"][0].get("cached_from")) == 8


def test_ctrl_c_stops_the_cluster_trials_and_starts_no_more(
    tmp_path: Path, cluster: Cluster
) -> None:
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    trials = root / "trials"
    trials.mkdir()
    (trials / "hold").write_text("1 2 3 4 5\n")  # every trial holds until stopped
    runner = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "run", "nap", *(f"-ex={x}" for x in range(1, 6)),
         "--scheduler", cluster.address],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_kernels(root, count=2)
        time.sleep(1.5)  # both workers are busy with a held trial; three wait
        # The submitter keeps the page current: the trials running on workers are on it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and site_text(trials).count('"running"') < 2:
            time.sleep(0.2)
        assert site_text(trials).count('"running"') >= 2
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
        time.sleep(1)
        assert not kernels_in(root)
    finally:
        _stop(runner)  # type: ignore[arg-type]
        _kill_kernels(root)

    assert runner.returncode == 130, stderr
    assert sorted(r["status"] for r in records(trials)) == ["interrupted", "interrupted"]
    assert len(trial_dirs(trials)) == 2  # the three never started left no folder
    summary = [line.split() for line in stdout.splitlines()]
    assert ["not", "started", "3"] in summary and ["interrupted", "2"] in [s[:2] for s in summary]
    assert sorted(index_cache.read(trials)) == sorted(r["id"] for r in records(trials))


def test_a_trial_whose_worker_dies_is_rerun_under_the_same_id_with_one_record(
    tmp_path: Path, cluster: Cluster
) -> None:
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    runner = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "run", "nap", "-e", "seconds=6", "--scheduler",
         cluster.address],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        on_workers: list[int] = []
        # The submitter's own kernel (it checks the request) has this folder too: skip it.
        while not on_workers and time.monotonic() < deadline:
            time.sleep(0.2)
            on_workers = [k for k in kernels_in(root) if parent_of(k) in cluster.worker_pids()]
        time.sleep(1.5)  # the trial is running its step
        (kernel,) = on_workers
        first_worker = parent_of(kernel)
        assert first_worker in cluster.worker_pids()
        os.kill(first_worker, signal.SIGKILL)
        stdout, stderr = runner.communicate(timeout=120)
        # The dead worker's kernel saw its parent go, and went too.
        deadline = time.monotonic() + 10
        while parent_of(kernel) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert parent_of(kernel) is None
    finally:
        _stop(runner)  # type: ignore[arg-type]
        _kill_kernels(root)

    assert runner.returncode == 0, stderr
    (folder,) = trial_dirs(root / "trials")
    (record,) = records(root / "trials")
    assert record["id"] == folder.name and folder.name in stdout
    assert record["status"] == "succeeded" and record["iteration"] == 0
    assert record["pid"] in cluster.worker_pids() and record["pid"] != first_worker
    iterations = root / "trials" / registry.REGISTRY_DIR / registry.ITERATIONS_DIR
    assert [p.name for p in iterations.glob("*/*")] == ["0"]


def test_an_unreachable_scheduler_or_missing_dask_is_refused_with_nothing_written(
    investigation: Path, tmp_path: Path
) -> None:
    unreachable = run_cli(
        investigation, "run", "toy", "-p", "frequency=fast,slow",
        "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
    )  # fmt: skip
    assert unreachable.returncode == 2
    assert "cannot reach the Dask scheduler" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    started = time.monotonic()
    portless = run_cli(investigation, "run", "toy", "--scheduler", "tcp://127.0.0.1")
    assert portless.returncode == 2 and time.monotonic() - started < 30
    assert portless.stderr.count("\n") == 1 and "missing port number" in portless.stderr

    # An interpreter where `import distributed` fails, as it does without the [dask] extra.
    shadow = tmp_path / "no-dask"
    shadow.mkdir()
    (shadow / "distributed.py").write_text("raise ImportError('no dask here')\n")
    missing = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "run", "toy", "--scheduler", "tcp://127.0.0.1:1"],
        cwd=investigation,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        timeout=120,
    )
    assert missing.returncode == 2
    assert "pip install 'mitosis-nb[dask]'" in missing.stderr
    assert trial_dirs(investigation / "trials") == []


def test_a_scheduler_without_workers_is_said_and_ctrl_c_leaves_nothing_behind(
    investigation: Path,
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", address.rsplit(":", 1)[1], "--dashboard-address", "127.0.0.1:0"],
        cwd=investigation.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with distributed.Client(address, timeout=60):
            pass  # the scheduler is up
        runner = subprocess.Popen(
            [sys.executable, "-m", "mitosis.cli", "run", "toy", "-p", "frequency=fast,slow",
             "--scheduler", address],
            cwd=investigation, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert runner.stderr is not None
        warning = runner.stderr.readline()  # blocks until the runner has said it
        deadline = time.monotonic() + 60
        while len(trial_dirs(investigation / "trials")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the trials are reserved and submitted: they wait for a worker
        time.sleep(0.5)
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        _stop(scheduler)

    assert "has no workers yet" in warning and f"dask worker {address}" in warning
    assert runner.returncode == 130, stderr
    summary = [line.split() for line in stdout.splitlines()]
    assert ["not", "started", "2"] in [line[:3] for line in summary], stdout
    trials = investigation / "trials"
    assert trial_dirs(trials) == []  # no empty folder that no record explains


def test_a_lost_scheduler_leaves_running_trials_to_finish_and_the_summary_waits_for_them(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "holdable", HOLDABLE, HOLDABLE_PYPROJECT)
    trials = root / "trials"
    with _running_cluster(tmp_path, workers=2) as own:
        runner = subprocess.Popen(
            [sys.executable, "-m", "mitosis.cli", "run", "nap", "-e", "seconds=5", "-e", "x=1",
             "-e", "x=2", "--scheduler", own.address],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for_kernels(root, count=2)
            time.sleep(1)  # both trials are in their step
            own.scheduler.kill()
            stdout, stderr = runner.communicate(timeout=120)
        finally:
            _stop(runner)  # type: ignore[arg-type]
            _kill_kernels(root)

    assert runner.returncode == 0, stderr
    assert "Traceback" not in stderr
    found = records(trials)
    assert sorted(r["status"] for r in found) == ["succeeded", "succeeded"]
    summary = [line.split() for line in stdout.splitlines()]
    assert ["succeeded", "2"] in [line[:2] for line in summary], stdout
    page = site_text(trials)
    assert all(r["id"] in page for r in found)


def test_a_peer_that_is_no_scheduler_or_workers_without_mitosis_are_refused(
    investigation: Path, tmp_path: Path
) -> None:
    # A port that accepts and never answers, as a dashboard's HTTP port does for Dask.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        hanging = run_cli(investigation, "run", "toy", "--scheduler", address)
    assert hanging.returncode == 2 and time.monotonic() - started < 60
    assert "cannot reach the Dask scheduler" in hanging.stderr
    assert hanging.stderr.count("\n") == 1, hanging.stderr

    # A port whose service talks, but something else: an SSH server's banner.
    with socket.socket() as talker:
        talker.bind(("127.0.0.1", 0))
        talker.listen()

        def greet() -> None:
            with contextlib.suppress(OSError):
                peer, _ = talker.accept()
                peer.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n" + b"\xff" * 64)
                time.sleep(20)
                peer.close()

        threading.Thread(target=greet, daemon=True).start()
        address = f"tcp://127.0.0.1:{talker.getsockname()[1]}"
        other = run_cli(investigation, "run", "toy", "--scheduler", address)
    assert other.returncode == 2
    assert "answered, but not as a Dask scheduler" in other.stderr
    assert other.stderr.count("\n") == 1, other.stderr

    # Workers whose `import mitosis` fails: a fake, broken package ahead of the real one.
    broken = tmp_path / "broken" / "mitosis"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('mitosis is broken here')\n")
    with _running_cluster(tmp_path, workers=1, pythonpath=[broken.parent]) as own:
        refused = run_cli(investigation, "run", "toy", "-p", "frequency=fast,slow",
                          "--scheduler", own.address)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "the Dask workers cannot run mitosis-nb" in refused.stderr
    # Said by the package itself, or first by mitosis-nb's import guard where it is installed.
    assert (
        "mitosis is broken here" in refused.stderr
        or "is not mitosis-nb's whole package" in refused.stderr
    ), refused.stderr
    assert not (investigation / "trials").exists() or trial_dirs(investigation / "trials") == []
