"""A two-step investigation for the step cache: ``gen`` counts its runs in a file beside
the repository, ``fit`` is cheap; a helper module that ``gen`` calls; an unrelated module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import git, make_investigation
from sweep_helpers import run_cli

EXPERIMENTS = '''\
from pathlib import Path

from cache_spread import spread

COUNTER = Path(__file__).resolve().parent.parent / "gen_runs.log"


def generate(length=3, offset=0.0):
    """Data for fit; writes a line to COUNTER each time it really runs."""
    with COUNTER.open("a") as log:
        log.write(f"{length}\\n")
    return {"main": float(length), "data": spread(length, offset)}


def fit(data, scale=1.0):
    return {"main": sum(data) * scale, "metrics": {"n": len(data)}}


gen_lookup = {"length": {"a": 3, "b": 4}}
fit_lookup = {"scale": {f"s{i}": float(i) for i in range(1, 6)}}
'''
SPREAD = "def spread(length, offset):\n    return [i * 0.1 + offset for i in range(length)]\n"
PYPROJECT = """
[project]
name = "cache-investigation"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
gen = { run = "toy_experiments:generate", lookup = "toy_experiments:gen_lookup" }
fit = { run = "toy_experiments:fit", lookup = "toy_experiments:fit_lookup" }
"""
SWEEP = ("gen", "fit", "-p", "gen.length=a,b", "-p", "fit.scale=s1,s2,s3,s4,s5")


def make_cache_investigation(root: Path) -> Path:
    """The investigation, committed, in ``root``; its trials folder is git-ignored."""
    make_investigation(root, EXPERIMENTS, PYPROJECT)
    (root / "cache_spread.py").write_text(SPREAD)
    (root / ".gitignore").write_text("trials/\n")
    commit(root, "the helper")
    return root


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def gen_runs(root: Path) -> int:
    """How many times ``gen`` really ran in the investigation at ``root``."""
    counter = root.parent / "gen_runs.log"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def run_json(root: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``run ... --json``'s records; the run must succeed."""
    done = run_cli(root, "run", *args, "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records
