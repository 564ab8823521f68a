"""A run's first kernels start before jupyter_client is imported (it takes the runner about
0.2 s), and jupyter_client then drives them as kernels of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCENARIO = r"""
import os, sys, threading
from pathlib import Path

# jupyter_client's import waits, in any thread but this one, until the kernel is seen.
released = threading.Event()
importers = []
class HoldJupyterClient:
    def find_spec(self, name, path=None, target=None):
        if name == "jupyter_client":
            importers.append(threading.current_thread().name)
            if threading.current_thread() is not threading.main_thread():
                released.wait(30)
        return None
sys.meta_path.insert(0, HoldJupyterClient())

from mitosis.session import Session  # what `mitosis-nb run` imports before starting kernels
from mitosis.adapters.kernels import KernelAhead

def kernels_started_here():
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"ipykernel" in (entry / "cmdline").read_bytes():
                yield int(entry.name)
        except (OSError, ValueError, IndexError):
            continue

kernel = KernelAhead(None, Path(sys.argv[1]))
started = list(kernels_started_here())
print("kernels running without jupyter_client:", len(started))
print("jupyter_client imported here:", "MainThread" in importers)
released.set()
pid = started[0]
print("answer:", kernel.evaluate("str(6 * 7)"))
print("same process:", kernel.evaluate("str(__import__('os').getpid())") == str(pid))
kernel.close()
print("gone after close:", not Path(f"/proc/{pid}").exists())
"""


def test_a_kernel_starts_before_jupyter_client_is_imported_and_is_driven_by_it(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "kernels running without jupyter_client: 1",
        "jupyter_client imported here: False",
        "answer: 42",
        "same process: True",
        "gone after close: True",
    ]
