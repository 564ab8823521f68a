"""Where a trial's time, bytes and memory go, next to the unavoidable cost, as ratios.

Run from the repository root: ``python benchmarks/run.py`` (``--help`` for the knobs).

Every variant runs in a fresh process, the variants interleaved within each repeat, and
medians are compared as ratios: on a shared, noisy machine absolute times mean little.

1. floor: a fresh kernel of this interpreter (jupyter_client) imports the sine experiment,
   runs it (one inline figure) and is shut down;
2. ``mitosis-nb run`` of one sine trial, end to end;
3. the same by hand: the ``papermill`` command, then ``jupyter nbconvert --to html``;
4. a 16-trial sweep with ``--workers 2``, per trial;
5. bytes on disk of one trial with one figure;
6. ``list --json`` and ``index`` over 10,000 synthetic records;
and the peak resident memory of the runner process (its own, not its kernels'). One trial is
compared with the floor in wall time and in CPU time (the command and every process it
reaped, its kernel included; issue 19's targets: 1.1x and 1.5x), and, for the record, in wall
time again while a second process keeps one core busy. Python modules are compiled once
beforehand, as installing a package leaves them (``--no-bytecode`` compiles them in every run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_listing  # benchmarks/ is on sys.path: this script's own folder
from bench_sweep import keep_bytecode
from synthetic import write_trials  # the listing benchmark's generator; it put tests/ on the path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "investigation"
BIN = Path(sys.executable).parent
SWEEP_ARGS = ("-p", "frequency=fast,slow", "-p", "noise=low,high")
SWEEP_AMPLITUDES = ("1", "2", "3", "4")  # with the two above: 2 x 2 x 4 = 16 trials

# The floor, run by a fresh interpreter so that it pays the same start-up as the others.
FLOOR_SCRIPT = """
import os, sys
from jupyter_client.manager import start_new_kernel
root = sys.argv[1]
env = dict(os.environ, PYTHONPATH=root, MPLBACKEND="module://matplotlib_inline.backend_inline")
manager, client = start_new_kernel(kernel_name="python3", cwd=root, env=env)
outputs = []
try:
    reply = client.execute_interactive(
        "from experiments.sine import run\\nresult = run(frequency=10.0)",
        output_hook=outputs.append, timeout=300,
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    assert any(m["msg_type"] == "display_data" for m in outputs), "no figure came back"
finally:
    client.stop_channels()
    manager.shutdown_kernel(now=True)
"""


@dataclass
class Sample:
    """One timed run of a command: wall seconds, the process's own peak memory, and the CPU
    seconds of it and every process it started and reaped (a kernel included)."""

    seconds: float
    peak_rss_mb: float
    cpu_s: float = 0.0


@dataclass
class Series:
    """Every sample of one variant."""

    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median wall time, seconds."""
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu_median(self) -> float:
        """The median CPU time (user + system, children included), seconds."""
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def peak_rss_mb(self) -> float:
        """The largest peak memory of any sample, MB."""
        return max(s.peak_rss_mb for s in self.samples)


def _peak_rss_mb(pid: int) -> float:
    # VmHWM is the process's own high-water mark: the kernels it starts are not counted.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Sample:
    """Run ``command`` to its end; its wall time and peak memory (polled from /proc)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak = [0.0]

    def watch() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _peak_rss_mb(process.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = process.communicate()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({process.returncode}):\n{err.decode()}{out.decode()}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(elapsed, peak[0], cpu)


def make_investigation(parent: Path) -> Path:
    """The example investigation, committed in a fresh git repository."""
    root = parent / "investigation"
    shutil.copytree(EXAMPLE, root)
    (root / ".gitignore").write_text("trials/\nbyhand/\n__pycache__/\n")
    commit_repository(root)
    return root


def commit_repository(root: Path) -> None:
    """Make ``root`` a git repository with everything in it committed, as a benchmark."""
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=root, check=True)


def _byhand_notebook(path: Path) -> None:
    def cell(source: str, tags: list[str]) -> dict[str, object]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": tags},
            "outputs": [],
            "source": source,
        }

    notebook = {
        "cells": [
            cell("frequency = 1.0", ["parameters"]),
            cell("from experiments.sine import run\n\nresult = run(frequency)", []),
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


class Bench:
    """The variants, each a callable that runs once and returns its sample."""

    def __init__(self, root: Path, sweep_workers: int) -> None:
        self.root = root
        self.sweep_workers = sweep_workers
        self.byhand = root / "byhand"
        self.byhand.mkdir()
        _byhand_notebook(self.byhand / "sine.ipynb")
        self.kernel_env = dict(os.environ, PYTHONPATH=str(root))
        self.mitosis = str(BIN / "mitosis-nb")

    def floor(self) -> Sample:
        """A bare kernel runs the experiment."""
        return timed([sys.executable, "-c", FLOOR_SCRIPT, str(self.root)], self.root)

    def single(self) -> Sample:
        """One trial with mitosis-nb."""
        return timed([self.mitosis, "run", "sine", "-p", "frequency=fast"], self.root)

    def by_hand(self) -> Sample:
        """papermill, then nbconvert, as a researcher would type them."""
        out = self.byhand / "sine.out.ipynb"
        papermill = [str(BIN / "papermill"), "sine.ipynb", out.name, "-p", "frequency", "10.0"]
        first = timed([*papermill, "-k", "python3", "--cwd", str(self.root)], self.byhand)
        nbconvert = [str(BIN / "jupyter"), "nbconvert", "--to", "html", out.name]
        second = timed(nbconvert, self.byhand, self.kernel_env)
        peak = max(first.peak_rss_mb, second.peak_rss_mb)
        return Sample(first.seconds + second.seconds, peak, first.cpu_s + second.cpu_s)

    def sweep(self) -> Sample:
        """A 16-trial sweep; the sample's wall and CPU time are per trial."""
        amplitudes = [arg for value in SWEEP_AMPLITUDES for arg in ("-e", f"amplitude={value}")]
        command = [self.mitosis, "run", "sine", *SWEEP_ARGS, *amplitudes]
        if self.sweep_workers > 1:
            command += ["--workers", str(self.sweep_workers)]
        whole = timed(command, self.root)
        count = 4 * len(SWEEP_AMPLITUDES)
        return Sample(whole.seconds / count, whole.peak_rss_mb, whole.cpu_s / count)


def trial_bytes(trials: Path) -> dict[str, int]:
    """The newest trial's files, by name, in bytes; and the shared assets."""
    newest = sorted(p for p in trials.iterdir() if p.is_dir() and p.name[0].isdigit())[-1]
    sizes = {p.name: p.stat().st_size for p in sorted(newest.iterdir()) if p.is_file()}
    sizes["(trial folder)"] = sum(sizes.values())
    assets = trials / "_assets"
    if assets.is_dir():
        sizes["(shared _assets/, once per folder)"] = sum(
            p.stat().st_size for p in assets.iterdir()
        )
    return sizes


def _has_workers() -> bool:
    done = subprocess.run(
        [str(BIN / "mitosis-nb"), "run", "--help"], capture_output=True, text=True, check=False
    )
    return "--workers" in done.stdout


def run_interleaved(
    variants: dict[str, Callable[[], Sample]], repeats: int, warm: Sequence[str]
) -> dict[str, Series]:
    """Each repeat runs every variant once, in turn, after an uncounted warm-up of ``warm``."""
    series = {name: Series() for name in variants}
    for name in warm:
        variant = variants[name]
        print(f"  warm-up: {name}", file=sys.stderr, flush=True)
        variant()
    for repeat in range(repeats):
        for name, variant in variants.items():
            sample = variant()
            series[name].samples.append(sample)
            print(
                f"  repeat {repeat + 1}/{repeats}: {name:<10} {sample.seconds:7.2f} s",
                file=sys.stderr,
                flush=True,
            )
    return series


def listing(parent: Path, count: int) -> dict[str, float]:
    """``list --json`` and ``index`` over ``count`` synthetic records."""
    trials = parent / "listing"
    started = time.perf_counter()
    write_trials(trials, count)
    print(f"  wrote {count} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    folder = str(trials)
    found = {"list --json, no index": bench_listing.timed("list", "-F", folder, "--json")}
    found["index (rebuild)"] = bench_listing.timed("index", "-F", folder)
    found["list --json, indexed"] = bench_listing.timed("list", "-F", folder, "--json")
    found["mitosis-nb --version"] = bench_listing.timed("--version")
    return found


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """A second process spinning on one core while the block runs: a machine doing other work."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def report(
    series: dict[str, Series],
    sizes: dict[str, int],
    lists: dict[str, float],
    busy: dict[str, Series] | None = None,
) -> None:
    """Print medians, ratios against the targets, sizes and memory."""
    print("\nmedians (s): wall, then CPU (the command and every process it reaped)")
    for name, found in series.items():
        spread = ", ".join(f"{s.seconds:.2f}" for s in found.samples)
        cpu = ", ".join(f"{s.cpu_s:.2f}" for s in found.samples)
        print(f"  {name:<10} {found.median:7.2f}   ({spread})")
        print(f"  {'':<10} {found.cpu_median:7.2f}   ({cpu}) CPU")
    floor, single = series["floor"].median, series["single"].median
    print("\nratios                                       found   target")
    rows = [("one trial / floor, wall", single / floor, 1.1)]
    cpu_ratio = series["single"].cpu_median / series["floor"].cpu_median
    rows.append(("one trial / floor, CPU (runner + kernel)", cpu_ratio, 1.5))
    rows.append(("one trial / papermill + nbconvert", single / series["by hand"].median, 0.6))
    if "sweep" in series:
        rows.append(("sweep per trial / one trial", series["sweep"].median / single, 0.6))
    for label, ratio, target in rows:
        print(f"  {label:<40} {ratio:6.2f}   <= {target}  {_verdict(ratio, target)}")
    print("\nbytes of one trial with one figure")
    for name, size in sizes.items():
        print(f"  {name:<40} {size / 1000:8.1f} KB")
    kb = sizes["(trial folder)"] / 1000
    print(f"  trial folder target <= 150 KB: {_verdict(kb, 150)}")
    print("\npeak memory of the runner process (MB)")
    for name in ("single", "sweep"):
        if name in series:
            peak = series[name].peak_rss_mb
            print(f"  {name:<10} {peak:7.1f}   <= 250  {_verdict(peak, 250)}")
    if busy:
        ratio = busy["single"].median / busy["floor"].median
        print(f"\nwith one core kept busy: one trial / floor, wall {ratio:.2f} (for the record)")
    if lists:
        print("\nlisting (s)")
        for name, seconds in lists.items():
            print(f"  {name:<30} {seconds:7.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--records", type=int, default=10_000, help="0 skips the listing")
    parser.add_argument("--no-sweep", action="store_true", help="skip the 16-trial sweep")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module on every run, as PYTHONDONTWRITEBYTECODE=1 makes Python do",
    )
    args = parser.parse_args(argv)
    parent = Path(tempfile.mkdtemp(prefix="mitosis-bench-"))
    try:
        root = make_investigation(parent)
        if not args.no_bytecode:
            keep_bytecode(root)
        workers = 2 if _has_workers() else 1
        if workers == 1:
            print("note: this mitosis-nb has no --workers; the sweep runs serially.")
        bench = Bench(root, workers)
        variants: dict[str, Callable[[], Sample]] = {
            "floor": bench.floor,
            "single": bench.single,
            "by hand": bench.by_hand,
        }
        if not args.no_sweep:
            variants["sweep"] = bench.sweep
        # The sweep is long and warms the same files as a single trial: no warm-up of its own.
        series = run_interleaved(variants, args.repeats, warm=("floor", "single", "by hand"))
        with one_core_busy():
            duo = {"floor": bench.floor, "single": bench.single}
            busy = run_interleaved(duo, args.repeats, warm=())
        bench.single()  # the newest trial is a single, one-figure trial
        sizes = trial_bytes(root / "trials")
        lists = listing(parent, args.records) if args.records else {}
        report(series, sizes, lists, busy)
    finally:
        if args.keep:
            print(f"\nkept {parent}")
        else:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
