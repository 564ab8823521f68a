"""A run's first kernels start before jupyter_client is imported (it takes the runner about
0.2 s), and jupyter_client then drives them as kernels of its own; ``mitosis-nb run`` starts
the first before it even reads its arguments. The first kernel, which checks the request,
imports the steps' code as soon as it is up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_investigation, trial_dirs
from sweep_helpers import records, run_cli

from mitosis.cli import starts_a_kernel

KERNELS_STARTED_HERE = r"""
import os
from pathlib import Path

def kernels_started_here():
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"ipykernel" in (entry / "cmdline").read_bytes():
                yield int(entry.name)
        except (OSError, ValueError, IndexError):
            continue
"""
SCENARIO = (
    KERNELS_STARTED_HERE
    + r"""
import sys, threading

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
from mitosis.adapters.kernels.ahead import KernelAhead

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
)


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


COUNTED = """
import os

# In the trials folder: a change there leaves the tree clean.
with open(os.path.join("trials", "imports.log"), "a") as log:
    print(os.getpid(), file=log)
if os.path.exists(os.path.join("trials", "broken")):
    raise RuntimeError("this module cannot be imported today")

lookup = {"x": {"one": 1}}


def run(x=0):
    return {"main": float(x), "metrics": {"pid": os.getpid()}}
"""
COUNTED_PYPROJECT = """
[tool.mitosis.steps]
nap = ["toy_experiments:run", "toy_experiments:lookup"]
"""


def _imports(root: Path) -> list[int]:
    return [int(line) for line in (root / "trials" / "imports.log").read_text().split()]


def test_the_checking_kernel_imports_the_steps_code_once_and_runs_the_first_trial_with_it(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "counted", COUNTED, COUNTED_PYPROJECT)
    (root / "trials").mkdir()
    done = run_cli(root, "run", "nap", "-ex=1", "-ex=2", "--workers", "2")

    assert done.returncode == 0, done.stderr
    pids = [r["metrics"]["pid"] for r in records(root / "trials")]
    # The kernel that checked the request imported the module as it started, once, and ran
    # a trial with it; the other trial's kernel imported it in the trial.
    assert sorted(_imports(root)) == sorted(pids)


def test_a_module_that_fails_to_import_is_reported_as_it_failed_the_first_time(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "broken", COUNTED, COUNTED_PYPROJECT)
    (root / "trials").mkdir()
    (root / "trials" / "broken").write_text("")
    done = run_cli(root, "run", "nap", "-ex=1", "-ex=2", "--workers", "2")

    assert done.returncode == 2
    assert "cannot import module 'toy_experiments'" in done.stderr
    assert "RuntimeError: this module cannot be imported today" in done.stderr
    assert len(_imports(root)) == 1  # imported once, by the kernel that checked
    assert trial_dirs(root / "trials") == []


EARLY = (
    KERNELS_STARTED_HERE
    + r"""
import sys

class SeeKernelsAsArgumentsAreRead:
    def find_spec(self, name, path=None, target=None):
        if name == "argparse":  # what reading the arguments imports first
            print("kernels:", *kernels_started_here(), flush=True)
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, SeeKernelsAsArgumentsAreRead())
sys.argv = ["mitosis-nb", *sys.argv[1:]]
from mitosis.cli import command
command()
"""
)


def test_run_starts_the_first_trials_kernel_before_reading_its_arguments(
    tmp_path: Path,
) -> None:
    root = make_investigation(tmp_path / "counted", COUNTED, COUNTED_PYPROJECT)
    (root / "trials").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", EARLY, "run", "nap", "-ex=1"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    early = done.stdout.splitlines()[0].split()[1:]
    assert len(early) == 1
    # That kernel learnt where the investigation is once the runner knew, and ran the trial.
    [record] = records(root / "trials")
    assert [str(record["metrics"]["pid"])] == early
    assert _imports(root) == [record["metrics"]["pid"]]


@pytest.mark.parametrize(
    ("refused", "said"),
    [
        (["no-such-step"], "no-such-step"),  # by the check, in the kernel
        (["nap", "--workers", "many"], "invalid int value"),  # by argparse, before any use
    ],
)
def test_a_kernel_started_for_a_run_that_is_refused_is_killed_and_leaves_no_files(
    tmp_path: Path, refused: list[str], said: str
) -> None:
    root = make_investigation(tmp_path / "counted", COUNTED, COUNTED_PYPROJECT)
    temp = tmp_path / "temp"
    temp.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", EARLY, "run", *refused],
        cwd=root,
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    assert said in done.stderr
    [early] = done.stdout.split()[1:]
    assert not Path(f"/proc/{early}").exists()
    assert list(temp.iterdir()) == []  # its connection file and sockets are gone too


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["run", "sine"], True),
        (["--verbose", "run", "sine", "-p", "noise=low", "--workers", "2"], True),
        (["run", "sine", "--kernel", "julia"], False),  # not this interpreter's kernel
        (["run", "sine", "--kern=julia"], False),  # argparse takes abbreviations
        (["run", "--help"], False),
        (["list"], False),
        (["show", "run"], False),
        ([], False),
    ],
)
def test_which_command_lines_start_a_kernel_at_once(argv: list[str], starts: bool) -> None:
    assert starts_a_kernel(argv) is starts
