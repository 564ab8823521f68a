"""What a trial costs, read from a real process tree: CPU time and peak memory (issue 19).

NVIDIA GPUs cannot exist on this machine: only their absence is tested here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from mitosis import search_trials
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


COST_EXPERIMENTS = """
import time

lookup = {}


def run(seconds=1.5, mb=300):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"main": len(block) // (1024 * 1024)}
"""
COST_PYPROJECT = """
[tool.mitosis.steps]
cost = ["cost_experiments:run", "cost_experiments:lookup"]
"""


def test_a_trial_records_what_it_cost_and_every_view_shows_it(tmp_path: Path) -> None:
    root = tmp_path / "investigation"
    root.mkdir()
    (root / "pyproject.toml").write_text(COST_PYPROJECT)
    (root / "cost_experiments.py").write_text(COST_EXPERIMENTS)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "cost")):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    ran = _cli(root, "run", "cost", "--json")
    assert ran.returncode == 0, ran.stderr
    (record,) = json.loads(ran.stdout)
    used = record["resources"]
    # 1.5 s burned, plus a kernel's start and the 300 MB touched: not less, not much more.
    assert 1.5 <= used["cpu_s"] <= 1.5 * 1.1 + 1.5
    assert 300 <= used["peak_rss_mb"] <= 300 * 1.1 + 200
    assert "gpus" not in used  # no NVIDIA GPU here
    folder = root / "trials" / record["id"]
    assert f"{used['cpu_s']} CPU-s" in (folder / "trial.html").read_text()
    shown = _cli(root, "show", record["id"])
    assert f"cost:     {used['cpu_s']} CPU-s, peak memory {used['peak_rss_mb']} MB" in shown.stdout
    (listed,) = json.loads(_cli(root, "list", "--json").stdout)
    assert listed["resources"] == used
    frame = search_trials(trials_folder=root / "trials")
    assert frame["resources.cpu_s"].iloc[0] == used["cpu_s"]


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args], cwd=root, capture_output=True, text=True
    )
