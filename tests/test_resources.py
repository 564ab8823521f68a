"""What a trial costs, read from a real process tree: CPU time and peak memory (issue 19).

NVIDIA GPUs cannot exist on this machine: only their absence is tested here.
"""

from __future__ import annotations

import subprocess
import sys
import time

from mitosis.adapters.resources import ProcessTreeMonitor, gpu_devices

# Burns about `seconds` of CPU in this process and as much again in a child it waits for,
# then allocates and touches `mb` megabytes, and waits to be measured.
CHILD = "import time\nend = time.process_time() + {}\nwhile time.process_time() < end: pass"
# Burns `seconds` of CPU here and as much in a child it waits for, allocates and touches `mb`
# megabytes, then says how much CPU it and its child used (getrusage: the truth to compare
# with) and waits to be measured.
WORK = """
import resource, sys, time, subprocess
seconds, mb, child = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
worker = subprocess.Popen([sys.executable, "-c", child.format(seconds)])
end = time.process_time() + seconds
while time.process_time() < end:
    pass
worker.wait()
block = bytearray(mb * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(sum(u.ru_utime + u.ru_stime for u in used), flush=True)
time.sleep(30)
"""


def _idle_rss_mb() -> float:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        monitor = ProcessTreeMonitor(idle.pid, interval=0.1).start()
        monitor.sample()
        return monitor.stop().peak_rss_mb
    finally:
        idle.kill()
        idle.wait()


def test_cpu_time_of_the_tree_and_peak_memory_are_read_within_ten_percent() -> None:
    baseline = _idle_rss_mb()
    worker = subprocess.Popen(
        [sys.executable, "-c", WORK, "1.0", "500", CHILD], stdout=subprocess.PIPE, text=True
    )
    try:
        monitor = ProcessTreeMonitor(worker.pid, interval=0.2).start()
        assert worker.stdout is not None
        used = float(worker.stdout.readline())
        monitor.sample()  # as the runner does right before the kernel stops
        resources = monitor.stop()
    finally:
        worker.kill()
        worker.wait()
    assert used >= 2.0  # 1 s here and 1 s in the child, at least
    assert used * 0.9 <= resources.cpu_s <= used * 1.1
    assert 500 * 0.9 <= resources.peak_rss_mb - baseline <= 500 * 1.1
    assert resources.gpus == ()  # no NVIDIA GPU here
    assert set(resources.as_record()) == {"cpu_s", "peak_rss_mb"}


def test_no_gpu_means_no_gpu_entry() -> None:
    assert gpu_devices() == []
