"""``mitosis-nb serve``: the trials folder over HTTP, nothing outside it."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthetic import write_trials


def _start(trials: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "serve", "-F", str(trials), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    assert " at http://" in line, line
    return server, line.split(" at ")[1].split()[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    trials = tmp_path / "trials"
    write_trials(trials, 2)
    (tmp_path / "secret.txt").write_text("outside the trials folder")
    (trials / "escape").symlink_to(tmp_path / "secret.txt")
    (trials / "inside").symlink_to(trials / "index.html")
    server, url = _start(trials)
    yield url, trials
    server.terminate()
    server.wait(10)


def _get(url: str, path: str) -> tuple[int, bytes]:
    return _fetch(url, path)[:2]


def _fetch(url: str, path: str) -> tuple[int, bytes, str]:
    host, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalising
    response = connection.getresponse()
    return response.status, response.read(), response.getheader("Content-Type", "")


def test_serves_the_index_and_trial_files_on_loopback(served: tuple[str, Path]) -> None:
    url, trials = served
    assert url.startswith("http://127.0.0.1:")
    status, body = _get(url, "/")
    assert status == 200 and b"mitosis-data" in body  # index.html written on demand
    trial = sorted(p.name for p in trials.iterdir() if p.name[0] == "2")[0]
    status, _, kind = _fetch(url, f"/{trial}/trial.yaml")
    assert status == 200 and kind.startswith("text/plain")  # shown, not downloaded
    assert _get(url, "/inside")[0] == 200  # a symlink that stays inside is fine


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/x/..%2f..%2fsecret.txt", "/..\\secret.txt"]
)
def test_path_traversal_is_refused(served: tuple[str, Path], path: str) -> None:
    status, body = _get(served[0], path)
    assert status in (403, 404) and b"outside the trials folder" not in body


def test_a_symlink_leading_outside_is_refused(served: tuple[str, Path]) -> None:
    status, body = _get(served[0], "/escape")
    assert status == 404 and b"outside" not in body


def test_binding_all_interfaces_warns(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    write_trials(trials, 1)
    server, _ = _start(trials, "--bind", "0.0.0.0")
    server.terminate()
    _, stderr = server.communicate(timeout=10)
    assert "all interfaces" in stderr
