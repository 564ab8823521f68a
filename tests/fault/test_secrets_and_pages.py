"""Secrets never reach the trials folder; hostile strings are escaped on every page; no eval.

The kernel inherits the runner's environment, as any Python the user starts would: a step
that prints ``os.environ`` puts it in its own notebook, which is the user's choice. mitosis
itself never writes a secret: the records, pages, index, registry and notebook it writes
are scanned here byte for byte.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from faultkit import (
    cli_command,
    every_file,
    git,
    lab_fixture,  # noqa: F401 - the `lab` fixture
    read_yaml,
    trial_folders,
)

from mitosis.adapters import site

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-aws-secret-1f3a",
    "GITHUB_TOKEN": "ghp_githubtoken2b4c6d8e",
    "MY_PASSWORD": "hunter2-my-password-9z",
    "DATABASE_URL": "postgres://alice:db-pass-77q@db.example.org:5432/lab",
    "REPLICA_URL": "postgres://bob:at@sign-pass-4r@replica.example.org/lab",  # an unencoded @
    "SESSION_NAME": "visible-session-name",
    "NOISY_VARIABLE": "dropped-by-env-exclude",
}
REMOTE_TOKEN = "tok-git-remote-5k3j"
PIP_TOKEN = "tok-pip-vcs-8h2g"
LEAKS = [
    "wJalrXUtnFEMI-aws-secret-1f3a",
    "ghp_githubtoken2b4c6d8e",
    "hunter2-my-password-9z",
    "db-pass-77q",
    "sign-pass-4r",
    REMOTE_TOKEN,
    PIP_TOKEN,
]


def _pip_vcs_package(site: Path) -> None:
    """A distribution installed from ``git+https://TOKEN@...``, as pip records it (PEP 610)."""
    info = site / "labtools-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labtools\nVersion: 1.0\n")
    origin = {
        "url": f"https://{PIP_TOKEN}@git.example.org/lab/labtools.git",
        "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "main"},
    }
    (info / "direct_url.json").write_text(json.dumps(origin))


def test_no_secret_reaches_any_file_of_the_trials_folder(lab: Path, tmp_path: Path) -> None:
    pyproject = lab / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'trials-folder = "trials"',
            'trials-folder = "trials"\nenv-include = ["SESSION_NAME"]\nenv-exclude = ["NOISY_*"]',
        )
    )
    git(lab, "commit", "-qam", "environment rules")
    git(lab, "remote", "add", "origin", f"https://researcher:{REMOTE_TOKEN}@git.example.org/x.git")
    site = tmp_path / "site"
    _pip_vcs_package(site)
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(site)}
    for args in (["nap", "-e", "seed=1"], ["say", "-e", "text='boom'", "-e", "fail=True"]):
        done = subprocess.run(
            cli_command("run", *args), cwd=lab, capture_output=True, text=True, env=env
        )
        assert done.returncode in (0, 1), done.stderr
    # Every other writer too: the index, the site, a reconciled record, a claim.
    for args in (["index"], ["list", "--json"]):
        subprocess.run(cli_command(*args), cwd=lab, capture_output=True, env=env, check=True)
    trials = lab / "trials"
    scanned = 0
    for path in every_file(trials):
        content = path.read_bytes()
        scanned += 1
        for value in LEAKS:
            assert value.encode() not in content, (path, value)
    assert scanned >= 10
    record = read_yaml(trial_folders(trials)[0] / "trial.yaml")
    variables = record["environment"]["variables"]
    assert variables["AWS_SECRET_ACCESS_KEY"] == variables["GITHUB_TOKEN"] == "<redacted>"
    assert variables["MY_PASSWORD"] == "<redacted>"
    assert variables["DATABASE_URL"] == "postgres://<redacted>@db.example.org:5432/lab"
    assert variables["REPLICA_URL"] == "postgres://<redacted>@replica.example.org/lab"
    assert variables["SESSION_NAME"] == "visible-session-name"  # env-include
    assert "NOISY_VARIABLE" not in variables  # env-exclude
    assert record["git"]["remote"] == "https://<redacted>@git.example.org/x.git"
    packages = json.dumps(record["environment"])
    assert "labtools" in packages and "git.example.org/lab/labtools.git" in packages


HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>&amp;\u202e"


def test_hostile_strings_are_escaped_on_trial_and_index_pages(lab: Path) -> None:
    done = subprocess.run(
        cli_command(
            "run",
            "say",
            "-e",
            f"text={HOSTILE!r}",
            "-e",
            "fail=True",
            "--note",
            HOSTILE,
            "-p",
            "label=<script>alert('variant')</script>",
        ),
        cwd=lab,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    (folder,) = trial_folders(lab / "trials")
    record = read_yaml(folder / "trial.yaml")
    assert record["note"] == HOSTILE and HOSTILE in record["error"]["message"]
    pages = [folder / "trial.html", lab / "trials" / "index.html"]
    pages += site.part_paths(lab / "trials")  # the page's rows of trials since it was written
    for page in pages:
        text = page.read_text()
        assert "<script>alert(" not in text, page
        assert "<img src=x" not in text, page
    header = (folder / "trial.html").read_text()
    assert "<strong>Note:</strong> &lt;script&gt;alert(" in header  # the note, shown
    notebook = nbformat.read(str(folder / "trial.ipynb"), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            assert "alert" not in cell.source and "script" not in cell.source


def test_serve_refuses_traversal_and_symlinks_leading_out(lab: Path, tmp_path: Path) -> None:
    trials = lab / "trials"
    trials.mkdir()
    (trials / "index.html").write_text("<html></html>")
    secret = tmp_path / "outside.txt"
    secret.write_text("outside the trials folder")
    (trials / "leak").symlink_to(secret)
    (trials / "leakdir").symlink_to(tmp_path)
    server = subprocess.Popen(
        cli_command("serve", "--port", "0"), cwd=lab, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" at ")[1].split()[0]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        for raw in (
            "/../outside.txt",
            "/%2e%2e/outside.txt",
            "/leak",
            "/leakdir/outside.txt",
            "/..%2foutside.txt",
            "//etc/passwd",
        ):
            reply = _raw_get(host, int(port), raw)
            assert reply.split()[1] in (b"403", b"404"), (raw, reply[:80])
            assert b"outside the trials folder" not in reply and b"root:" not in reply
        assert _raw_get(host, int(port), "/index.html").split()[1] == b"200"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _raw_get(host: str, port: int, path: str) -> bytes:
    import socket

    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# Only results the trials folder's own trials saved are ever unpickled: by the documented
# load_trial_data (trials.py), and by a trial's kernel taking a cached step's result.
_UNPICKLING = ("trials.py", "kernel_steps.py")


def test_ruff_security_rules_are_on_and_mitosis_has_no_eval_exec_or_unsafe_yaml() -> None:
    root = Path(__file__).resolve().parents[2]
    config = (root / "pyproject.toml").read_text()
    selected = re.search(r"^select = \[(.*)\]", config, re.MULTILINE)
    assert selected is not None and '"S"' in selected.group(1)
    findings = []
    for source in sorted((root / "mitosis").rglob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            loader = keywords.get("Loader", "")
            if (
                name in ("eval", "exec", "compile", "os.system", "yaml.unsafe_load")
                or (name == "yaml.load" and loader not in ("yaml.CSafeLoader", "yaml.SafeLoader"))
                or keywords.get("shell") == "True"
                or (name in ("pickle.load", "pickle.loads") and source.name not in _UNPICKLING)
            ):
                findings.append(f"{source.relative_to(root)}:{node.lineno}: {name}")
    assert not findings, findings
    ruff = subprocess.run(
        # The security rules with pyproject's own exceptions (assert; subprocess argv lists).
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "S",
            "--ignore",
            "S101,S603,S607",
            "--quiet",
            "mitosis",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
