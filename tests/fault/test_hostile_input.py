"""Hostile input: code in literals, paths in variant names, planted pickles and YAML tags."""

from __future__ import annotations

import json
import pickle
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from faultkit import (
    cli_command,
    lab_fixture,  # noqa: F401 - the `lab` fixture
    read_yaml,
    trial_folders,
)

import mitosis
from mitosis.errors import MitosisError

PAYLOADS = [
    "__import__('os').system('touch pwned')",
    "(lambda: __import__('os').system('touch pwned'))()",
    "{'a': __import__('os').system('touch pwned')}",
    "open('pwned', 'w')",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "1; import os; os.system('touch pwned')",
    'f\'{__import__("os").system("touch pwned")}\'',
]


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), cwd=root, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_code_in_a_literal_is_refused_and_never_runs(lab: Path, payload: str) -> None:
    done = _cli(lab, "run", "say", "-e", f"text={payload}")
    assert done.returncode == 2 and "not a Python literal" in done.stderr
    assert not (lab / "pwned").exists() and not (lab / "trials").exists()


def test_a_string_that_looks_like_code_stays_a_string_through_the_kernel(lab: Path) -> None:
    # papermill writes parameters into the notebook as source: quotes must not break out.
    text = "a\"+__import__('os').system('touch pwned')+\"b\\\\\"+__import__('os').system('x')#"
    done = _cli(lab, "run", "say", "-e", f"text={text!r}")
    assert done.returncode == 0, done.stderr
    assert not (lab / "pwned").exists()
    (folder,) = trial_folders(lab / "trials")
    assert read_yaml(folder / "trial.yaml")["main"] == text


def test_a_lying_repr_is_refused_by_the_library(lab: Path) -> None:
    class Lying:
        def __repr__(self) -> str:
            return "__import__('os').system('touch pwned')"

    with pytest.raises(MitosisError, match="not a Python literal"):
        mitosis.execute_trial("say", literals={"text": Lying()})
    assert not (lab / "pwned").exists()


HOSTILE_NAMES = [
    "../../escape",
    "a/b",
    "\u202egnp.exe",
    "v" * 10_000,
    "q\"+__import__('os').system('touch pwned')+\"",
    "b\\\"+__import__('os').system('touch pwned')#",
    "<script>alert('variant')</script>",
]


def _all_paths(root: Path) -> list[Path]:
    return [path.relative_to(root) for path in root.rglob("*")]


def test_hostile_variant_names_never_become_paths_nor_code(lab: Path) -> None:
    # One sweep over every name (a comma separates variants; none of these has one).
    done = _cli(lab, "run", "say", "-e", "text='x'", "-p", f"label={','.join(HOSTILE_NAMES)}")
    assert done.returncode == 0, done.stderr
    # NUL cannot travel in argv; the library takes it.
    trial = mitosis.execute_trial("say", params={"label": "nul\0byte"}, literals={"text": "x"})
    assert trial.status == "succeeded"
    trials = lab / "trials"
    assert not (lab / "pwned").exists()
    assert not (lab / "escape").exists() and not (lab.parent / "escape").exists()
    assert not (trials / "a").exists()
    for path in _all_paths(lab.parent):
        assert ".." not in path.parts and "\0" not in str(path) and "\u202e" not in str(path)
        assert len(path.name) <= 255
    records = [read_yaml(folder / "trial.yaml") for folder in trial_folders(trials)]
    labels = [r["steps"][0]["params"]["label"]["variant"] for r in records]
    assert sorted(labels) == sorted([*HOSTILE_NAMES, "nul\0byte"])
    claims = list((trials / "variants" / "say" / "label").iterdir())
    assert len(claims) == len(HOSTILE_NAMES) + 1
    listed = json.loads(_cli(lab, "list", "--json").stdout)
    assert sorted(row["variant"] for row in listed) == sorted(r["variant"] for r in records)


class _Planted:
    """A pickle whose loading creates a file: proof that someone unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        cli_command("serve", "--port", "0"), cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    return server, line.split(" at ")[1].split()[0]


def test_a_planted_pickle_is_loaded_only_by_load_trial_data(lab: Path) -> None:
    for seed in (1, 2):
        assert _cli(lab, "run", "nap", "-e", f"seed={seed}").returncode == 0
    first, second = trial_folders(lab / "trials")
    marker = lab.parent / "unpickled"
    (first / "results_0.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    for args in (
        ["list"],
        ["list", "--json"],
        ["show", first.name],
        ["show", first.name, "--json"],
        ["compare", first.name, second.name],
        ["index"],
        ["reproduce", first.name],
    ):
        done = _cli(lab, *args)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert not marker.exists(), args
    server, url = _serve(lab)
    try:
        with urllib.request.urlopen(f"{url}{first.name}/results_0.pkl") as response:
            assert response.read() == (first / "results_0.pkl").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not marker.exists()
    trial = mitosis.load_trial(first.name, lab / "trials")
    assert not marker.exists()  # loading the trial is not loading its data
    mitosis.load_trial_data(trial)
    assert marker.exists()  # the one documented, explicit way in


TAGS = [
    "!!python/object/apply:os.system ['touch pwned']",
    "!!python/object/new:subprocess.Popen [['touch', 'pwned']]",
    "!!python/name:os.system",
]


def test_python_tags_in_a_record_are_never_constructed(lab: Path) -> None:
    for seed in (1, 2):
        assert _cli(lab, "run", "nap", "-e", f"seed={seed}").returncode == 0
    planted, intact = trial_folders(lab / "trials")
    record = planted / "trial.yaml"
    original = record.read_text()
    for tag in TAGS:
        record.write_text(original.replace("note: null", f"note: {tag}"))
        listed = _cli(lab, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        statuses = {row["id"]: row["status"] for row in json.loads(listed.stdout)}
        assert statuses == {planted.name: "unreadable", intact.name: "succeeded"}
        assert "trial.yaml" in listed.stderr and "Traceback" not in listed.stderr
        shown = _cli(lab, "show", planted.name)
        assert shown.returncode == 2 and shown.stderr.count("\n") == 1 and "line" in shown.stderr
        assert _cli(lab, "index").returncode == 0
        assert not (lab / "pwned").exists(), tag
        with pytest.raises(yaml.constructor.ConstructorError):
            yaml.safe_load(record.read_text())
    assert _cli(lab, "show", intact.name).returncode == 0
