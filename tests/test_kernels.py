"""Stopping a kernel never signals a process that merely took over its pid.

A kernel leads a process group of its own, and jupyter_client kills a kernel by signalling
that group. Once a dead kernel has been reaped, its pid (and so its group id) is free, and
the next process can get it: on a busy machine, another run's kernel, started ahead of its
trial, which then "died before the trial began" (issue 14, item 8). The test gives the freed
pid to another kernel on purpose, in a pid namespace of its own (so nothing else on the
machine takes it first, and nothing else is touched), then stops the dead kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Run as pid 1 of a new pid namespace, where writing ns_last_pid picks the next pid.
SCENARIO = r"""
import os, signal, sys, time
from pathlib import Path
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_core.utils import run_sync
from mitosis.adapters.kernels.launch import start_kernel

root = Path(sys.argv[1])
dead = start_kernel(None, root)
pid = dead.pid
os.kill(pid, signal.SIGKILL)  # it dies mid-trial: a crash, or the OOM killer
while run_sync(dead.manager.is_alive)():  # noticed as nbclient notices it, which reaps it
    time.sleep(0.05)
for _ in range(20):  # the freed pid goes to another run's kernel, started ahead
    Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
    other = start_kernel(None, root)
    if other.pid == pid:
        break
    other.stop()
else:
    sys.exit(f"no kernel got the freed pid {pid}")
print(f"kernel {pid} died; another kernel now has pid {other.pid}", flush=True)

dead.stop()

time.sleep(0.5)
ending = other.manager.provisioner.process.poll()
if ending is not None:
    print(f"the other kernel ended: {ending}")
    sys.exit(0)
client = BlockingKernelClient()
client.load_connection_info(other.manager.get_connection_info())
client.start_channels()
try:
    client.wait_for_ready(timeout=60)
    print("the other kernel answers")
finally:
    client.stop_channels()
    other.stop()
"""


def test_stopping_a_dead_kernel_spares_the_kernel_that_took_its_pid(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to pick pids in a pid namespace")
    run = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", SCENARIO, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no pid namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert "another kernel now has pid" in run.stdout, run.stdout
    assert "the other kernel answers" in run.stdout, run.stdout + run.stderr
