"""Time `mitosis-nb list --json` and `mitosis-nb index` over 10,000 synthetic trial records.

Run: python benchmarks/bench_listing.py [COUNT]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic import write_trials


def timed(*args: str) -> float:
    """Seconds one run of the real command line takes (a fresh interpreter each time)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mitosis-nb {' '.join(args)} failed: {done.stderr}")
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as temp:
        trials = Path(temp) / "trials"
        started = time.perf_counter()
        write_trials(trials, count)
        size = sum(f.stat().st_size for f in trials.glob("*/trial.yaml"))
        print(
            f"wrote {count} records ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s"
        )
        folder = str(trials)
        print(f"list --json, no index.sqlite:  {timed('list', '-F', folder, '--json'):6.2f} s")
        print(f"index (rebuild from records):  {timed('index', '-F', folder):6.2f} s")
        print(f"list --json, with index.sqlite:{timed('list', '-F', folder, '--json'):6.2f} s")
        html = trials / "index.html"
        print(f"index.html: {html.stat().st_size / 1e6:.1f} MB")
        print(f"baseline (mitosis-nb --version):{timed('--version'):6.2f} s")


if __name__ == "__main__":
    main()
