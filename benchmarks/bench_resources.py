"""What measuring a trial's resources costs: the time of one look at a kernel-sized process
tree, against the interval between looks (target: under 2% of a trial's wall time).

Run: python benchmarks/bench_resources.py
"""

from __future__ import annotations

import subprocess
import sys
import time

from mitosis.adapters.resources import ProcessTreeMonitor

# A kernel-like tree: a Python process with two children.
TREE = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    " for _ in range(2)]\n"
    "time.sleep(60)\n"
)


def main() -> None:
    root = subprocess.Popen([sys.executable, "-c", TREE])
    try:
        time.sleep(1.0)
        monitor = ProcessTreeMonitor(root.pid)
        looks = 200
        started = time.perf_counter()
        for _ in range(looks):
            monitor.sample()
        each = (time.perf_counter() - started) / looks
        share = each / monitor.interval
        print(f"one look at a 3-process tree: {each * 1e3:.2f} ms")
        print(f"every {monitor.interval} s: {share:.2%} of one core (< 2%)")
    finally:
        root.kill()
        root.wait()


if __name__ == "__main__":
    main()
