"""Synthetic trial records, written the way the pipeline writes them, for listing at scale."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from mitosis.adapters import environment, store
from mitosis.core.trial_id import make_trial_id
from mitosis.core.trial_record import parse_record

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=1)
def _environment() -> dict[str, Any]:
    # This machine's real package list and variables: records as large as real ones.
    return dict(environment.describe_environment("python3"))


def make_record(index: int, **fields: Any) -> dict[str, Any]:
    """A complete, valid record; ``fields`` override top-level fields."""
    started = START + timedelta(seconds=index)
    trial_id = make_trial_id(started, f"{index:06x}")
    experiment = ("sine", "cosine", "dmd")[index % 3]
    frequency = ("fast", "slow", "medium")[index % 3]
    main = float(index % 97) / 7
    record: dict[str, Any] = {
        "record": 1,
        "id": trial_id,
        "experiment": experiment,
        "variant": f"{experiment}.amplitude={index % 5},{experiment}.frequency={frequency}",
        "iteration": index // 15,
        "status": "failed" if index % 11 == 0 else "succeeded",
        "note": f"synthetic trial {index}",
        "pid": 1,
        "pid_start": None,
        "debug": False,
        "main": main,
        "metrics": {"err": main / 3, "n": index % 13},
        "error": None,
        "steps": [
            {
                "name": experiment,
                "run": f"{experiment}_experiment:run",
                "lookup": f"{experiment}_experiment:lookup",
                "params": {
                    "frequency": {
                        "kind": "lookup",
                        "variant": frequency,
                        "value": "10",
                        "fingerprint": "sha256:" + "0" * 64,
                        "tracked": True,
                    },
                },
                "main": main,
                "metrics": {"err": main / 3},
                "source": None,
            }
        ],
        "started": started.isoformat(),
        "finished": (started + timedelta(seconds=3)).isoformat(),
        "duration_s": 3.0,
        "timings": {},
        "git": {"commit": f"{index:040x}", "branch": "main", "dirty": False, "remote": None},
        "environment": {**_environment(), "hostname": socket.gethostname()},
        "command": "mitosis-nb run sine",
        "mitosis_version": "0.1.0",
        "reproduces": None,
    }
    if record["status"] == "failed":
        record["error"] = {
            "kind": "exception",
            "step": experiment,
            "type": "ValueError",
            "message": "exploded",
            "traceback": None,
        }
    record.update(fields)
    return record


def write_trial(trials: Path, index: int, **fields: Any) -> Path:
    """Write one synthetic trial's folder and record; returns the folder."""
    record = make_record(index, **fields)
    folder = trials / record["id"]
    folder.mkdir(parents=True, exist_ok=True)
    store.write_record(folder, parse_record(record))
    return folder


def write_trials(trials: Path, count: int) -> list[Path]:
    """``count`` synthetic trials, oldest first."""
    trials.mkdir(parents=True, exist_ok=True)
    return [write_trial(trials, index) for index in range(count)]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# A 3 noises x 3 seeds sweep of `sine` for the analysis tests; its trial (mid, 3) failed.
NOISES = {"low": 0.0, "mid": 0.1, "high": 0.5}
SEEDS = (1, 2, 3)
HOSTILE = "<img src=x onerror=\"window.pwned='param';document.title='pwned'\">"


def rmse_of(noise: float, seed: int) -> float:
    """The sweep's `rmse` (and `main`) for one noise and seed."""
    return noise * 2 + math.sin(seed) / 10 + 0.25


def _param(kind: str, text: str, value: str, tracked: bool = True) -> dict[str, Any]:
    key = "variant" if kind == "lookup" else "source"
    return {
        key: text,
        "kind": kind,
        "value": value,
        "fingerprint": "sha256:" + "1" * 64,
        "tracked": tracked,
    }


def write_seed_sweep(folder: Path) -> None:
    """The sweep's nine trials, then one trial of another experiment (cosine)."""
    index = 0
    for name, noise in NOISES.items():
        for seed in SEEDS:
            failed = name == "mid" and seed == 3
            rmse = rmse_of(noise, seed)
            params = {
                "noise": _param("lookup", name, repr(noise)),
                "seed": _param("literal", str(seed), str(seed)),
                "label": _param("literal", repr(HOSTILE), repr(HOSTILE), tracked=False),
            }
            write_trial(
                folder,
                index,
                experiment="sine",
                variant=f"sine.noise={name},sine.seed={seed}",
                status="failed" if failed else "succeeded",
                main=None if failed else rmse,
                metrics={} if failed else {"rmse": rmse, "cost": seed * 1.5},
                note=HOSTILE if seed == 1 else None,
                steps=[
                    {"name": "sine", "run": "sine:run", "lookup": "sine:lookup", "params": params}
                ],
            )
            index += 1
    write_trial(folder, 10)


def site_text(trials: Path) -> str:
    """All the index page loads: ``index.html``, then the part files of trials since."""
    from mitosis.adapters import site

    paths = [trials / site.INDEX_HTML, *site.part_paths(trials)]
    return "".join(path.read_text(encoding="utf-8") for path in paths if path.is_file())
