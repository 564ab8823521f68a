"""The step cache's saving: a 2 x 5 two-step sweep with and without ``--no-cache``.

A fresh investigation in a temporary git repository has two steps: ``gen``, which takes
about 2 s (``--gen-seconds``), and a cheap ``fit``. The sweep ``gen fit -p gen.x=a,b -p
fit.y=1,2,3,4,5 --workers 2`` runs ten trials; with the cache, ``gen`` runs twice (once per
``x``) and the other eight trials take its result; with ``--no-cache`` it runs ten times.
Each run writes to a fresh trials folder, so the cached run starts from an empty cache: the
saving shown is the one inside a single sweep. The two are interleaved ``--repeats`` times
and the ratio is that of the medians (the machine is shared).

Run from the repository root: python benchmarks/bench_cache.py [--repeats N] [--gen-seconds S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml
from run import commit_repository  # benchmarks/run.py

STEPS = '''
"""A slow first step whose data feeds a cheap second one."""
import time

gen_lookup = {"x": {"a": 1.0, "b": 2.0}}
fit_lookup = {"y": {str(n): n for n in range(1, 6)}}


def generate(x, seconds=2.0):
    time.sleep(seconds)  # stands in for an expensive simulation
    return {"main": x, "data": [x * i for i in range(1000)]}


def fit(data, y):
    return {"main": sum(v * y for v in data), "metrics": {"y": y}}
'''

PYPROJECT = """
[project]
name = "cache-bench"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
gen = { run = "bench_steps:generate", lookup = "bench_steps:gen_lookup" }
fit = { run = "bench_steps:fit", lookup = "bench_steps:fit_lookup" }
"""

SWEEP = ["gen", "fit", "-p", "gen.x=a,b", "-p", "fit.y=1,2,3,4,5", "--workers", "2"]


def make_investigation(parent: Path) -> Path:
    """The two-step investigation, committed in a fresh git repository."""
    root = parent / "investigation"
    root.mkdir()
    (root / "bench_steps.py").write_text(STEPS)
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / ".gitignore").write_text("trials/\n__pycache__/\n")
    commit_repository(root)
    return root


def timed_sweep(root: Path, trials: Path, cache: bool, seconds: float) -> float:
    """Wall seconds of the whole sweep, kernels included, into the fresh folder ``trials``."""
    command = [sys.executable, "-m", "mitosis.cli", "run", *SWEEP, "-F", str(trials)]
    command += ["-e", f"+gen.seconds={seconds}"] + ([] if cache else ["--no-cache"])
    print(
        f"  load average before the {'cached' if cache else '--no-cache'} sweep: "
        f"{os.getloadavg()[0]:.2f}"
    )
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the sweep failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def gen_runs(trials: Path) -> int:
    """How many trials computed ``gen`` rather than take it from the cache."""
    records = [yaml.safe_load(path.read_text()) for path in trials.glob("*/trial.yaml")]
    return sum(1 for record in records if not record["steps"][0].get("cached_from"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="interleaved pairs (default 1)")
    parser.add_argument(
        "--gen-seconds", type=float, default=2.0, help="how long gen takes (default 2)"
    )
    args = parser.parse_args()
    walls: dict[bool, list[float]] = {True: [], False: []}
    print(f"10 trials (gen x 2, fit y x 5), --workers 2, gen takes {args.gen_seconds} s")
    with tempfile.TemporaryDirectory(prefix="mitosis-bench-cache-") as temp:
        root = make_investigation(Path(temp))
        for repeat in range(args.repeats):
            for cache in (True, False):
                trials = Path(temp) / f"trials-{'cache' if cache else 'no-cache'}-{repeat}"
                wall = timed_sweep(root, trials, cache, args.gen_seconds)
                walls[cache].append(wall)
                label = "with the cache " if cache else "with --no-cache"
                print(f"{label}: {wall:6.2f} s wall, gen computed {gen_runs(trials)} times")
    cached, uncached = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"median with the cache: {cached:.2f} s; with --no-cache: {uncached:.2f} s")
    print(f"ratio: {uncached / cached:.2f}x (--no-cache time over cached time)")


if __name__ == "__main__":
    main()
