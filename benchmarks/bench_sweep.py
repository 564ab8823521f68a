"""Time a sweep of 8 sine trials with `--workers 1` and with `--workers 2`, and the speedup.

The example investigation is copied into a temporary git repository; each run writes its
own trials folder, so every run repeats every trial rather than skipping any. The two are
interleaved, ``--repeats`` times (default 3), and the speedup is the ratio of the medians:
this machine is shared and one pair of runs can be skewed by whatever else runs.

Beside the speedup it prints its ceiling: the `--workers 1` time over the shortest time in
which the cores could do the CPU work that `--workers 2` did. A serial sweep already boots
the next trial's kernel while a trial runs, so it keeps more than one core busy, and with
trials as short as the example's that ceiling is well under 2.

``--points N`` samples N points in each trial instead of the example's 200 (1,000,000 takes
about a second of computing and drawing), to see how a sweep scales when its trials compute.

Python modules are compiled once beforehand, as installing a package leaves them
(``--no-bytecode`` compiles them in every run, as PYTHONDONTWRITEBYTECODE=1 makes Python do).

Run: python benchmarks/bench_sweep.py [--repeats N] [--points N] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "investigation"
# 2 frequencies x 2 noise levels x 2 amplitudes = 8 trials.
SWEEP = ["sine", "-p", "frequency=slow,fast", "-p", "noise=low,high"]
SWEEP += ["-e", "amplitude=1", "-e", "amplitude=2"]
DEFAULT_POINTS = 200  # the default of the example's `run`


def keep_bytecode(*folders: Path) -> None:
    """Let Python keep compiled modules, as installing a wheel leaves them, and compile
    mitosis and ``folders`` now.

    With PYTHONDONTWRITEBYTECODE set (some sandboxes set it) every run would compile all of
    mitosis's modules again, in the runner and in each kernel: about 0.2 CPU-s a trial
    that an installed mitosis-nb never pays.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    spec = importlib.util.find_spec("mitosis")
    package = list(spec.submodule_search_locations or []) if spec else []
    command = [sys.executable, "-m", "compileall", "-q", *package, *map(str, folders)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def make_repository(root: Path) -> Path:
    """A committed copy of the example investigation, without its trials."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("trials", "__pycache__"))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)
    return root


@dataclass(frozen=True)
class Run:
    """One timed sweep: wall and CPU seconds of the whole command (kernels included), its
    trials folder, and the clock time it was started at."""

    wall: float
    cpu: float
    trials: Path
    launched: float


def timed_sweep(root: Path, workers: int, repeat: int, points: int) -> Run:
    """Run the sweep once and time it."""
    # Outside the repository: one run's trials would make the other's tree dirty.
    trials = root.parent / f"trials-workers-{workers}-{repeat}"
    command = [sys.executable, "-m", "mitosis.cli", "run", *SWEEP, "--workers", str(workers)]
    if points != DEFAULT_POINTS:
        command += ["-e", f"n_points={points}"]
    # Other work on the machine skews both runs: say how busy it was.
    print(f"  load average before --workers {workers}: {os.getloadavg()[0]:.2f}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    started = time.perf_counter()
    done = subprocess.run([*command, "-F", str(trials)], cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The runner reaps its kernels, so their CPU time is counted here too.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"the sweep with --workers {workers} failed:\n{done.stdout}{done.stderr}")
    return Run(elapsed, cpu, trials, launched)


def where_time_goes(trials: Path) -> str:
    """Mean per-trial prepare / execute / publish seconds, from the records' timings."""
    records = [yaml.safe_load(p.read_text()) for p in trials.glob("*/trial.yaml")]
    parts = ("prepare_s", "execute_s", "publish_s")
    means = {
        part: sum(r["timings"].get(part, 0.0) for r in records) / len(records) for part in parts
    }
    return ", ".join(f"{part[:-2]} {value:.2f} s" for part, value in means.items())


def serial_ends(run: Run) -> str:
    """How long the sweep ran before its first trial began, and at its end with one trial
    or none running: what keeps a core idle whatever the workers do."""
    records = [yaml.safe_load(p.read_text()) for p in run.trials.glob("*/trial.yaml")]
    starts = sorted(datetime.fromisoformat(r["started"]).timestamp() for r in records)
    ends = sorted(datetime.fromisoformat(r["finished"]).timestamp() for r in records)
    before = starts[0] - run.launched
    alone = run.launched + run.wall - (ends[-2] if len(ends) > 1 else starts[0])
    return f"{before:.2f} s before the first trial began, {alone:.2f} s with one trial or none"


def report(workers: int, run: Run) -> None:
    """One run's wall time, how many cores it kept busy, a trial's phases, its serial ends."""
    wall, cpu = run.wall, run.cpu
    print(
        f"--workers {workers}: {wall:6.2f} s wall, {cpu:6.2f} s CPU ({cpu / wall:.2f} cores busy)"
    )
    print(f"  per trial: {where_time_goes(run.trials)}")
    print(f"  serial: {serial_ends(run)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved pairs (default 3)")
    parser.add_argument(
        "--points", type=int, default=DEFAULT_POINTS, help="samples per trial (default 200)"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module on every run, as PYTHONDONTWRITEBYTECODE=1 makes Python do",
    )
    args = parser.parse_args()
    repeats, points = args.repeats, args.points
    cores = os.cpu_count() or 1
    print(f"{cores} CPUs; 8 trials of the example's `sine` step, {points} points, {repeats} pairs")
    walls: dict[int, list[float]] = {1: [], 2: []}
    busy: dict[int, list[float]] = {1: [], 2: []}
    ceilings: list[float] = []
    shares: list[float] = []  # each pair's speedup over its ceiling
    with tempfile.TemporaryDirectory() as temp:
        root = make_repository(Path(temp) / "investigation")
        if not args.no_bytecode:
            keep_bytecode(root)
        for repeat in range(repeats):
            for workers in (1, 2):
                run = timed_sweep(root, workers, repeat, points)
                report(workers, run)
                walls[workers].append(run.wall)
                busy[workers].append(run.cpu / run.wall)
            # No schedule of this run's CPU work on these cores ends sooner than this.
            ceilings.append(walls[1][-1] / (busy[2][-1] * walls[2][-1] / min(cores, 2)))
            shares.append(walls[1][-1] / walls[2][-1] / ceilings[-1])
    serial, parallel = statistics.median(walls[1]), statistics.median(walls[2])
    for workers, wall in ((1, serial), (2, parallel)):
        cores_busy = statistics.median(busy[workers])
        print(f"median --workers {workers}: {wall:.2f} s, {cores_busy:.2f} cores busy")
    ceiling = statistics.median(ceilings)
    speedup = serial / parallel
    print(
        f"speedup: {speedup:.2f}x; ceiling: {ceiling:.2f}x, the --workers 1 time over the CPU"
        f" time of --workers 2 spread over {min(cores, 2)} cores"
    )
    # Pair by pair, not the ratio of medians: a pair's --workers 1 time cancels out of its
    # share, which is --workers 2's cores busy over the cores; the ratio of medians keeps the
    # noise of every --workers 1 run.
    share = statistics.median(shares)
    print(f"speedup / ceiling: {share:.0%}, the median of the pairs' (target >= 95%)")
    print(f"cores busy with --workers 2: {statistics.median(busy[2]):.2f} (target >= 1.85)")


if __name__ == "__main__":
    main()
