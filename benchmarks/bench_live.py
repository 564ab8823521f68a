"""What a running trial's live progress costs (target: it slows a trial by under 2%).

The worst case for the watch: a compute-bound step that prints a line every 0.2 s, so that
every look finds new output, the heartbeat is rewritten every 2 s and the page of the run so
far every 10 s. Two measures, each trial in this process through ``execute_trial``:

1. the watch's own CPU time (its thread's, over every look, beat and page), against the
   trial's wall time: its share of one core;
2. the trial's wall time with the watch against without (the watch replaced by one that
   does nothing), interleaved and repeated, medians compared as a ratio.

Run: python benchmarks/bench_live.py [--seconds 12] [--repeats 3]

Measured on 2 shared cores (load average 3.6-3.9, other test runs alongside), 6 pairs of
12-second trials: the watch's CPU 0.31 s over 69 looks in 75.8 s of trials, 0.40% of one
core; wall 12.61 s with the watch and 12.53 s without, a ratio of 1.006 (earlier runs of 3
and 5 pairs, each variant always first: 1.002 to 1.014). Trials of 1 s: 0.08% of a core.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from run import commit_repository  # benchmarks/run.py

import mitosis
from mitosis import live

BUSY = '''
import time

lookup = {}


def run(seconds=12.0, every=0.2):
    """Compute for ``seconds``, printing a line every ``every`` seconds."""
    end = time.perf_counter() + seconds
    next_line, lines, total = 0.0, 0, 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(2000))
        if time.perf_counter() >= next_line:
            print(f"line {lines}: {total}", flush=True)
            lines += 1
            next_line = time.perf_counter() + every
    return {"main": float(lines)}
'''

PYPROJECT = """
[project]
name = "bench-live"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
busy = ["busy:run", "busy:lookup"]
"""


def _investigation(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / "busy.py").write_text(BUSY)
    commit_repository(root)
    return root


class _WatchCost:
    """Adds up the CPU time the watch spends: each look of its thread, and its first and
    last beats in the trial's thread (``start`` and ``close``)."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.ticks = 0

    def _counted(self, method: Callable[..., Any]) -> Callable[..., Any]:
        look = method.__name__ == "_tick"

        def counted(watch: live.TrialWatch) -> Any:
            started = time.thread_time()  # this thread's CPU only: a join costs none
            try:
                return method(watch)
            finally:
                self.cpu_s += time.thread_time() - started
                self.ticks += look

        return counted

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        names = ("_tick", "start", "close")
        originals = {name: getattr(live.TrialWatch, name) for name in names}
        for name, method in originals.items():
            setattr(live.TrialWatch, name, self._counted(method))
        try:
            yield
        finally:
            for name, method in originals.items():
                setattr(live.TrialWatch, name, method)


class _NoWatch:
    """A watch that does nothing: the trial as it ran before live progress."""

    def hooks(self) -> dict[str, Callable[..., None]]:
        return {}

    def executed(self) -> None:
        pass

    def end(self, status: str) -> None:
        pass


@contextlib.contextmanager
def _no_watching(*_: Any, **__: Any) -> Iterator[_NoWatch]:
    yield _NoWatch()


@contextlib.contextmanager
def _without_watch() -> Iterator[None]:
    # The pipeline calls live.watching through the module: replaced here, it is replaced there.
    watching = live.watching
    live.watching = _no_watching  # type: ignore[assignment]
    try:
        yield
    finally:
        live.watching = watching


def _trial(root: Path, seconds: float) -> float:
    started = time.perf_counter()
    trial = mitosis.execute_trial(
        "busy", literals={"seconds": seconds}, config=root / "pyproject.toml"
    )
    wall = time.perf_counter() - started
    assert trial.status == "succeeded", trial.error
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="each trial's compute")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = _investigation(Path(temporary) / "investigation")
        _trial(root, 1.0)  # imports, exporters and caches warm for both variants
        cost, watched, unwatched = _WatchCost(), [], []
        for repeat in range(options.repeats):
            for watch in (True, False) if repeat % 2 == 0 else (False, True):  # either first
                if watch:
                    with cost.counting():
                        watched.append(_trial(root, options.seconds))
                else:
                    with _without_watch():
                        unwatched.append(_trial(root, options.seconds))
        pages = len(list((root / "trials").glob("2*/trial.html")))
    share = cost.cpu_s / sum(watched)
    ratio = statistics.median(watched) / statistics.median(unwatched)
    print(f"{options.repeats} trials of {options.seconds:g} s of compute printing every 0.2 s")
    print(
        f"watch's CPU: {cost.cpu_s:.3f} s over {cost.ticks} looks in {sum(watched):.1f} s of "
        f"trials: {share:.2%} of one core (target < 2%)"
    )
    print(
        f"wall with the watch {statistics.median(watched):.2f} s, without "
        f"{statistics.median(unwatched):.2f} s (medians): ratio {ratio:.3f} (target < 1.02)"
    )
    print(f"({pages} trial pages in the folder)", file=sys.stderr)


if __name__ == "__main__":
    main()
