"""``mitosis-nb serve``: the trials folder over HTTP, nothing outside it."""

from __future__ import annotations

import http.client
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthetic import dead_pid, write_trial, write_trials


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


def _request(url: str, path: str, host: str | None) -> tuple[int, bytes]:
    """A GET with the Host header a browser on ``host`` would send (None: none at all)."""
    address, port = url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=10)
    connection.putrequest("GET", path, skip_host=True)
    if host is not None:
        connection.putheader("Host", host)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read()


def test_a_foreign_host_is_refused_before_the_folder_is_touched(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    write_trials(trials, 1)
    server, url = _start(trials)
    port = url.rstrip("/").rsplit(":", 1)[1]
    try:
        # A runner that died after the server started: a good request would settle it.
        folder = write_trial(trials, 5, status="running", pid=dead_pid(), error=None)
        record = (folder / "trial.yaml").read_bytes()
        for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.nip.io:{port}"):
            for path in ("/", "/index.html", f"/{folder.name}/trial.yaml"):
                status, body = _request(url, path, host)
                assert status == 421 and b"running" not in body, (host, path, status)
        assert (folder / "trial.yaml").read_bytes() == record  # nothing rewritten
        # Any port: an SSH tunnel (ssh -L 9000:127.0.0.1:PORT) sends its own local one.
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", "localhost:9000", None):
            assert _request(url, f"/{folder.name}/trial.yaml", host)[0] == 200, host
        assert _request(url, "/", f"localhost:{port}")[0] == 200
        assert b"interrupted" in (folder / "trial.yaml").read_bytes()  # the page was refreshed
    finally:
        server.terminate()
        server.wait(10)


def test_bad_paths_are_400_and_listings_hide_dot_entries_and_outside_links(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, trials = served
    folder = sorted(p for p in trials.iterdir() if p.name[0] == "2")[0]
    (folder / ".env").write_text("TOKEN=secret")
    (tmp_path / "elsewhere").mkdir()
    (folder / "outside").symlink_to(tmp_path / "elsewhere")
    for path in (f"/{folder.name}/trial.yaml%00.html", "/%ff%fe", "/%00"):
        assert _get(url, path)[0] == 400, path
    status, listing = _get(url, f"/{folder.name}/")
    assert status == 200 and b"trial.yaml" in listing
    assert b".env" not in listing and b"outside" not in listing
    assert _get(url, f"/{folder.name}/.env")[0] == 404
    assert _get(url, "/variants/.iterations/")[0] == 404


def test_idle_connections_are_closed_and_a_vanished_client_is_one_line(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    (folder,) = write_trials(trials, 1)
    (folder / "results_0.pkl").write_bytes(b"\0" * 32_000_000)  # larger than socket buffers
    server, url = _start(trials, "--idle-timeout", "1")
    address, port = url.split("//")[1].rstrip("/").split(":")
    try:
        idle = socket.create_connection((address, int(port)), timeout=10)
        started = time.monotonic()
        assert idle.recv(1) == b""  # the server hung up on a client that said nothing
        assert time.monotonic() - started < 8
        idle.close()
        # A client that asks for a large file, then goes away without reading it.
        leaving = socket.create_connection((address, int(port)), timeout=10)
        leaving.sendall(
            f"GET /{folder.name}/results_0.pkl HTTP/1.1\r\nHost: {address}\r\n\r\n".encode()
        )
        leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        leaving.close()
        time.sleep(1.5)
        assert _get(url, "/")[0] == 200  # still serving
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "Traceback" not in stderr, stderr
    assert "went away" in stderr, stderr
