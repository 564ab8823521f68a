"""A lock-in conflict is refused as a conflict even when every CPU is busy.

Once, under load, such a run reported that "the kernel died before the trial began".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import RunCli, git, trial_dirs


@contextlib.contextmanager
def busy_cpus() -> Iterator[None]:
    """Two spinning processes per CPU for the block's duration, killed on every path."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def test_a_lock_in_conflict_is_refused_as_one_while_the_cpus_are_saturated(
    investigation: Path, cli: RunCli
) -> None:
    first = cli("run", "toy", "-p", "frequency=fast")
    assert first.returncode == 0, first.stderr
    source = investigation / "toy_experiments.py"
    source.write_text(source.read_text().replace('"fast": 10', '"fast": 11'))
    git(investigation, "commit", "-q", "-am", "fast is now 11")
    trials = investigation / "trials"
    before = trial_dirs(trials)
    with busy_cpus():
        for _ in range(3):
            refused = cli("run", "toy", "-p", "frequency=fast", timeout=300)
            assert refused.returncode == 2, refused.stderr
            assert "is locked to 10" in refused.stderr and "now means 11" in refused.stderr
            assert "kernel" not in refused.stderr, refused.stderr
            assert trial_dirs(trials) == before
