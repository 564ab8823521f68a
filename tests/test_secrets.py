"""What a trial keeps of secrets: none of the known shapes in its record, notebook, page,
patch, ``compare`` or ``--json``, and no secret-looking untracked file in its patch."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from conftest import RunCli, git, trial_dirs

OPENAI_KEY = "sk-proj-S3CRETopenaiKEY0123456789abcdef"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nS3CRETsshKEYbody\n"


def _only_trial(root: Path) -> Path:
    (folder,) = trial_dirs(root / "trials")
    return folder


def test_a_debug_patch_leaves_out_secret_files_and_redacts_the_files_it_holds(
    investigation: Path, cli: RunCli
) -> None:
    (investigation / ".env").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\n")
    (investigation / "id_rsa").write_text(PRIVATE_KEY)
    (investigation / "notes").mkdir()
    (investigation / "notes" / "storage.txt").write_text(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=S3CRETazureKEY==;\n"
        f"client = OpenAI(api_key='{OPENAI_KEY}')\n"
        "an ordinary idea\n"
    )
    source = investigation / "toy_experiments.py"
    source.write_text(source.read_text() + "\n# an uncommitted idea\n")

    done = cli("run", "toy", "--debug")

    assert done.returncode == 0, done.stderr
    folder = _only_trial(investigation)
    patch = (folder / "uncommitted.patch").read_text()
    assert "S3CRET" not in patch
    assert ".env" not in patch and "id_rsa" not in patch
    assert "an uncommitted idea" in patch and "an ordinary idea" in patch
    assert "AccountName=acct;AccountKey=<redacted>;" in patch
    assert "OpenAI(api_key='<redacted>')" in patch
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    assert record["git"]["untracked"] == {
        "included": ["notes/storage.txt"],
        "excluded": [".env", "id_rsa"],
    }
    warnings = [line for line in done.stderr.splitlines() if "untracked" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("mitosis-nb: warning: ")
    for name in ("notes/storage.txt", ".env", "id_rsa"):
        assert name in warnings[0]
    # Redacting only what the patch adds keeps it applicable at its commit.
    clone = investigation.parent / "clone"
    git(investigation.parent, "clone", "-q", str(investigation), str(clone))
    applied = subprocess.run(
        ["git", "apply", "--check", str(folder / "uncommitted.patch")],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr


def test_a_debug_trial_without_untracked_files_warns_of_none(
    investigation: Path, cli: RunCli
) -> None:
    source = investigation / "toy_experiments.py"
    source.write_text(source.read_text() + "\n# an uncommitted idea\n")
    done = cli("run", "toy", "--debug")
    assert done.returncode == 0, done.stderr
    assert "untracked" not in done.stderr
    record = yaml.safe_load((_only_trial(investigation) / "trial.yaml").read_text())
    assert record["git"]["untracked"] == {"included": [], "excluded": []}


# Each secret form of issue 20, under a name that is redacted whole or a value that loses
# only its secret part. Every secret holds "S3CRET", which must appear nowhere afterwards.
def _secrets(run: int) -> dict[str, str]:
    return {
        "GITHUB_PAT": f"S3CRETpat{run}",
        "CI_JOB_JWT": f"S3CRETjobjwt{run}",
        "SLACK_HOOK_URL": f"https://example.org/S3CREThook{run}",
        "REQUEST_SIGNATURE": f"S3CRETsignature{run}",
        "AZURE_SAS": f"S3CRETsas{run}",
        "DB_CONNECTION_STRING": f"Server=db{run};S3CRETconn",
        "STORAGE_CONN": (
            f"DefaultEndpointsProtocol=https;AccountName=acct{run};"
            f"AccountKey=S3CRETaccountkey{run}==;EndpointSuffix=core.windows.net"
        ),
        "BUS_CONN": (
            f"Endpoint=sb://bus{run}.servicebus.windows.net/;SharedAccessKeyName=Root;"
            f"SharedAccessKey=S3CRETsharedkey{run}="
        ),
        "BLOB_URL": f"https://acct.blob.core.windows.net/c/f{run}?sv=2022-11-02&sig=S3CRETsig{run}",
        "S3_URL": (
            f"https://b.s3.amazonaws.com/k{run}?X-Amz-Date=1&X-Amz-Signature=S3CRETamz{run}"
        ),
        "GCS_URL": (
            f"https://storage.googleapis.com/b/o{run}?X-Goog-Date=1&X-Goog-Signature=S3CRETgoog"
        ),
        "NOTIFY_URL": f"https://hooks.slack.com/services/T00{run}/B00/S3CRETslack{run}",
        "LOGIN_BLOB": f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{run}In0.S3CRETjwtSignature{run}",
        "LLM_CONFIG": f"sk-S3CRET{run}abcdefghijklmnopqrstuvwxyz",
    }


# What stays readable around a redacted part, as the record shows it.
_KEPT = {
    "STORAGE_CONN": "AccountName=acct1;AccountKey=<redacted>;EndpointSuffix=core.windows.net",
    "BUS_CONN": "SharedAccessKeyName=Root;SharedAccessKey=<redacted>",
    "BLOB_URL": "https://acct.blob.core.windows.net/c/f1?sv=2022-11-02&sig=<redacted>",
    "S3_URL": "https://b.s3.amazonaws.com/k1?X-Amz-Date=1&X-Amz-Signature=<redacted>",
    "GCS_URL": "https://storage.googleapis.com/b/o1?X-Goog-Date=1&X-Goog-Signature=<redacted>",
    "NOTIFY_URL": "https://hooks.slack.com/services/<redacted>",
    "LOGIN_BLOB": "<redacted>",
    "LLM_CONFIG": "<redacted>",
}

# Set by the test; PATH and HOME are the test's own (the kernel needs them as they are).
_ORDINARY = ("LANG", "SHELL", "HOSTNAME", "TERM", "USER", "LOGNAME", "EDITOR")


def test_every_secret_form_is_redacted_wherever_a_trial_shows_its_environment(
    investigation: Path, cli: RunCli
) -> None:
    ordinary = {name: f"ordinary-{name.lower()}" for name in _ORDINARY}
    runs = []
    for run in (1, 2):
        env = {**_secrets(run), **ordinary, "RUN_LABEL": f"run{run}"}
        runs.append(cli("run", "toy", "--json", env=env))
        assert runs[-1].returncode == 0, runs[-1].stderr
    # Two trials started within one second sort by their random suffix: find each by its id.
    first, second = (investigation / "trials" / json.loads(done.stdout)[0]["id"] for done in runs)
    shown = {
        "run --json": runs[0].stdout + runs[1].stdout,
        "trial.yaml": (first / "trial.yaml").read_text(),
        "trial.ipynb": (first / "trial.ipynb").read_text(),
        "trial.html": (first / "trial.html").read_text(),
        "show --json": cli("show", first.name, "--json").stdout,
        "compare": cli("compare", first.name, second.name).stdout,
        "compare --json": cli("compare", first.name, second.name, "--json").stdout,
    }
    for where, text in shown.items():
        assert "S3CRET" not in text, where
    variables = yaml.safe_load(shown["trial.yaml"])["environment"]["variables"]
    for name in ("GITHUB_PAT", "CI_JOB_JWT", "SLACK_HOOK_URL", "REQUEST_SIGNATURE", "AZURE_SAS"):
        assert variables[name] == "<redacted>", name
    assert variables["DB_CONNECTION_STRING"] == "<redacted>"
    for name, kept in _KEPT.items():
        assert kept in variables[name], (name, variables[name])
    for name, value in ordinary.items():
        assert variables[name] == value, name
    for name in ("PATH", "HOME"):
        assert variables[name] == os.environ[name], name
    # compare shows the variables that differ, with only their secret parts redacted.
    differences = json.loads(shown["compare --json"])["differences"]["variables"]
    assert differences["RUN_LABEL"] == ["run1", "run2"]
    assert differences["STORAGE_CONN"][0] == variables["STORAGE_CONN"]
    assert "RUN_LABEL" in shown["compare"] and "AccountKey=<redacted>" in shown["compare"]
