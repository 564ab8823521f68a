"""A real single-node Slurm on this machine, from Debian's slurm-wlm and munge packages.

munged, slurmctld and slurmd run as root with a configuration written into a temporary
folder (no cgroups, no accounting database); ``SLURM_CONF`` points the commands at it.
Everything started here is stopped by its pid file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PID = Path("/run/munge/munged.pid")

CONF = """\
ClusterName=mitosis-test
SlurmctldHost={host}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=5
# A time limit is enforced within this many seconds of being reached.
InactiveLimit=0
MessageTimeout=10
SlurmUser=root
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmdSpoolDir={dir}/spool
StateSaveLocation={dir}/state
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
JobAcctGatherType=jobacct_gather/none
NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why no Slurm can be started here, or None."""
    absent = [path for path in (*DAEMONS, "/usr/bin/sbatch") if not Path(path).exists()]
    if absent:
        return (
            f"Slurm is not installed ({', '.join(absent)} missing): "
            "apt-get install -y slurm-wlm munge"
        )
    if os.geteuid() != 0:
        return "the test Slurm's daemons must run as root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_munge() -> bool:
    """Start munged unless one answers already; True if this started it."""
    if MUNGE_PID.is_file() and _alive(int(MUNGE_PID.read_text().split()[0])):
        return False
    if not MUNGE_KEY.is_file():
        MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
        MUNGE_KEY.write_bytes(os.urandom(1024))
        MUNGE_KEY.chmod(0o400)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    subprocess.run(["/usr/sbin/munged", "--force"], check=True, timeout=30)
    return True


def _alive(pid: int) -> bool:
    """Running, not a zombie (this machine's pid 1 may never reap what it inherits)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def _drain_jobs(env: dict[str, str], within: float = 30) -> None:
    """Cancel every job and wait for their processes to go, before the daemons do."""
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, check=False)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answer = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING,COMPLETING,PENDING", "-o", "%i"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if answer.returncode != 0 or not answer.stdout.strip():
            return
        time.sleep(0.5)


def _stop_by_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def _wait_idle(env: dict[str, str], within: float = 60) -> None:
    deadline = time.monotonic() + within
    answer = ""
    while time.monotonic() < deadline:
        answer = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
        ).stdout.strip()
        if answer == "idle":
            return
        time.sleep(0.5)
    raise RuntimeError(f"the test Slurm did not become idle within {within} s (sinfo: {answer!r})")


@contextlib.contextmanager
def running_slurm(folder: Path) -> Iterator[Path]:
    """munged, slurmctld and slurmd configured in ``folder``; yields the slurm.conf."""
    host = socket.gethostname().split(".")[0]
    for part in ("spool", "state"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(
        CONF.format(
            host=host,
            dir=folder,
            cpus=os.cpu_count() or 1,
            ctld_port=_free_port(),
            d_port=_free_port(),
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started_munge = _start_munge()
    try:
        subprocess.run(["/usr/sbin/slurmctld"], env=env, check=True, timeout=60)
        subprocess.run(["/usr/sbin/slurmd"], env=env, check=True, timeout=60)
        _wait_idle(env)
        yield conf
    finally:
        _drain_jobs(env)
        _stop_by_pid_file(folder / "slurmd.pid")
        _stop_by_pid_file(folder / "slurmctld.pid")
        if started_munge:
            _stop_by_pid_file(MUNGE_PID)


def empty_queue(conf: Path) -> None:
    """Cancel every job and wait until the node is idle again: the next test finds all its
    CPUs free, not held by a job still completing."""
    env = {**os.environ, "SLURM_CONF": str(conf)}
    _drain_jobs(env)
    _wait_idle(env)


def state_report(conf: Path) -> str:
    """What Slurm says now (queue, node, end of the controller's log), for a failing test."""
    env = {**os.environ, "SLURM_CONF": str(conf)}
    said = []
    for command in (["squeue", "-r", "-t", "all"], ["sinfo", "-N", "-l"]):
        answer = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        said.append(f"$ {' '.join(command)}\n{answer.stdout}{answer.stderr}")
    log = (conf.parent / "slurmctld.log").read_text(errors="replace").splitlines()
    said.append("slurmctld.log, last lines:\n" + "\n".join(log[-15:]))
    return "\n".join(said)


def squeue_state(conf: Path, task: str) -> str:
    """What squeue says of one task now, as the tests see it."""
    answer = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", task.split("_")[0], "-o", "%i %T"],
        env={**os.environ, "SLURM_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    states = dict(line.split() for line in answer.splitlines() if line.strip())
    return states.get(task, "")
