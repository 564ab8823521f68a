"""The issue's full load: 200 real-kernel trials from 4 processes while `list --json` is polled.

CI runs the same test with 24 trials (tests/fault/test_load.py); this runs it at full size:

    python benchmarks/bench_fault_load.py [TRIALS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    trials = sys.argv[1] if len(sys.argv) > 1 else "200"
    root = Path(__file__).resolve().parent.parent
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            str(root / "tests" / "fault" / "test_load.py"),
        ],
        cwd=root,
        env={**os.environ, "MITOSIS_LOAD_TRIALS": trials},
        check=False,
    )
    print(f"{trials} trials from 4 processes: {time.monotonic() - started:.0f} s")
    sys.exit(done.returncode)
