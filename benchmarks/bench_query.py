"""Time the analysis side of the archive over synthetic trial records:
`search_trials` over 10,000 (target <= 1 s with the index) and `mitosis-nb list --where`
over 100,000 (target <= 2 s), each after `mitosis-nb index` has built the index.

Run: python benchmarks/bench_query.py [SEARCH_COUNT [LIST_COUNT]]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synthetic import write_trials

WHERE = 'metrics.err < 3 and status == "succeeded" and params.sine.frequency == 10'


def _cli(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"mitosis-nb {' '.join(args)} failed: {done.stderr}")
    return time.perf_counter() - started


def _indexed(count: int, temp: str) -> Path:
    trials = Path(temp) / f"trials-{count}"
    started = time.perf_counter()
    write_trials(trials, count)
    print(f"wrote {count} records in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"  mitosis-nb index: {_cli('index', '-F', str(trials)):.1f} s", flush=True)
    return trials


def main() -> None:
    search_count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    list_count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    with tempfile.TemporaryDirectory() as temp:
        trials = _indexed(search_count, temp)
        from mitosis import search_trials

        search_trials(trials_folder=trials)  # imports pandas once, as a session would
        started = time.perf_counter()
        frame = search_trials(WHERE, trials_folder=trials)
        took = time.perf_counter() - started
        print(f"search_trials(where) over {search_count}: {took:.2f} s ({len(frame)} rows; <= 1 s)")
        trials = _indexed(list_count, temp)
        took = _cli("list", "-F", str(trials), "--where", WHERE, "--json")
        print(f"mitosis-nb list --where over {list_count}: {took:.2f} s (<= 2 s)")
        print(f"mitosis-nb --version (the interpreter's start): {_cli('--version'):.2f} s")


if __name__ == "__main__":
    main()
