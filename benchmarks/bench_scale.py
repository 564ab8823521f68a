"""A trial's cost against the archive's size, over 100,000 synthetic trial records.

Prints, each beside its target:
1. one ``mitosis-nb run`` of one sine trial in a folder of COUNT records over the same run in
   an empty folder (median of REPEATS each, interleaved; <= 1.05x);
2. ``mitosis-nb list`` of COUNT records, as a table, as JSON and each with a ``--where``
   query (the median of 3 runs, <= 2 s each);
3. ``mitosis-nb index``, the rebuild from the records alone (<= 60 s);
4. ``index.html`` of COUNT trials in headless Chromium: loaded and drawn, then filtered
   (<= 2 s each).

Run from the repository root: python benchmarks/bench_scale.py [COUNT [REPEATS]]
(needs /usr/bin/chromium for 4). The records are written straight to disk from one YAML
template per experiment, by every core: 100,000 take a minute or two, not an hour.

Measured on the 2-core machine, 100,000 records (before: main at 7992ecc, the page rewritten
whole and every record re-checked at each trial's start and end; after: this branch):

                              before     after
    one trial, ratio          6.55x      0.99x   (2.59 s -> 16.95 s; 1.32 s -> 1.31 s)
    list --json               8.45 s     6.73 s  (target 2 s: not met)
    index (rebuild)           47.2 s     35.4 s
    index page loaded         1.93 s     1.22 s
    index page filtered       0.22 s     0.11 s
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import make_investigation  # benchmarks/run.py: the example, committed
from synthetic import make_record

from mitosis.adapters import store

MITOSIS = [sys.executable, "-m", "mitosis.cli"]
_ENV_MARK = "@@environment@@"
_templates: dict[int, str] = {}


def _environment_block() -> str:
    # The real environment, dumped once: it is most of a record's bytes.
    environment = make_record(0)["environment"]
    dumped = store.dump_yaml({"environment": environment})
    return dumped.rstrip("\n")


def _record_text(index: int, environment: str) -> str:
    record = make_record(index, environment=_ENV_MARK)
    return store.dump_yaml(record).replace(f"environment: '{_ENV_MARK}'", environment)


def _write_chunk(job: tuple[str, int, int, str]) -> int:
    trials, start, stop, environment = job
    for index in range(start, stop):
        text = _record_text(index, environment)
        trial_id = text.split("\nid: ", 1)[1].split("\n", 1)[0]
        folder = os.path.join(trials, trial_id)
        os.mkdir(folder)
        with open(os.path.join(folder, store.RECORD_NAME), "w", encoding="utf-8") as file:
            file.write(text)
    return stop - start


def write_records(trials: Path, count: int) -> None:
    """``count`` synthetic records under ``trials``, written by a pool of processes."""
    trials.mkdir(parents=True, exist_ok=True)
    environment = _environment_block()
    step = 2000
    jobs = [(str(trials), s, min(s + step, count), environment) for s in range(0, count, step)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        sum(pool.imap_unordered(_write_chunk, jobs))


def cli(*args: str, cwd: Path | None = None) -> float:
    """Seconds one run of the real command line takes (a fresh interpreter each time)."""
    started = time.perf_counter()
    done = subprocess.run([*MITOSIS, *args], capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"mitosis-nb {' '.join(args)} failed: {done.stderr}{done.stdout}")
    return elapsed


def _verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


def one_trial(empty: Path, full: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of one sine trial in each investigation, runs interleaved."""
    times: dict[Path, list[float]] = {empty: [], full: []}
    for _ in range(repeats):
        for root in (empty, full):
            times[root].append(cli("run", "sine", "-p", "frequency=fast", cwd=root))
    return statistics.median(times[empty]), statistics.median(times[full])


def browse(trials: Path, count: int) -> tuple[float, float]:
    """Seconds for the index page to load and draw, then to filter by typing."""
    from cdp import Browser

    # Chromium may still be writing its profile as it exits: left to the caller's folder.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Browser(Path(profile))
        try:
            started = time.perf_counter()
            browser.navigate((trials / "index.html").as_uri())
            browser.wait_for("document.body.dataset.ready === 'true'", timeout=120)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            browser.evaluate("document.getElementById('filter').focus()")
            browser.call("Input.insertText", text="cosine")
            browser.wait_for(
                "document.getElementById('count').textContent.includes(' of ')", timeout=120
            )
            filtered = time.perf_counter() - started
            shown = browser.evaluate("document.getElementById('count').textContent")
        finally:
            browser.close()
    print(f"  the page says: {shown}")
    return loaded, filtered


# The listings each held to 2 s: the table, the JSON, and both with a query.
LISTINGS = (
    ("list (table)        ", ()),
    ("list --json         ", ("--json",)),
    ("list --where        ", ("--where", "metrics.err > 0.5 and status == 'failed'")),
    ("list --where --json ", ("--where", "metrics.err > 0.5", "--json")),
)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as temp:
        empty = make_investigation(Path(temp) / "empty")
        full = make_investigation(Path(temp) / "full")
        trials = full / "trials"
        started = time.perf_counter()
        write_records(trials, count)
        print(f"wrote {count} records in {time.perf_counter() - started:.1f} s", flush=True)
        took = cli("index", "-F", str(trials))
        print(f"index (rebuild) of {count}: {took:6.2f} s (<= 60 s) {_verdict(took, 60)}")
        for shown, flags in LISTINGS:
            # The median of three: one listing can be slowed by whatever else this machine runs.
            took = statistics.median(cli("list", "-F", str(trials), *flags) for _ in range(3))
            print(f"{shown} of {count}: {took:6.2f} s (<= 2 s) {_verdict(took, 2)}", flush=True)
        alone, crowded = one_trial(empty, full, repeats)
        ratio = crowded / alone
        print(
            f"one trial: empty folder {alone:.2f} s, {count} records {crowded:.2f} s: "
            f"{ratio:.3f}x (<= 1.05x) {_verdict(ratio, 1.05)}",
            flush=True,
        )
        loaded, filtered = browse(trials, count)
        print(f"index page loaded: {loaded:6.2f} s (<= 2 s) {_verdict(loaded, 2)}")
        print(f"index page filtered: {filtered:6.2f} s (<= 2 s) {_verdict(filtered, 2)}")
        print(f"baseline (mitosis-nb --version): {cli('--version'):.2f} s")


if __name__ == "__main__":
    main()
