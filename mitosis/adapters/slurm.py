"""A Slurm cluster as a place to run trials: submitit submits, squeue and scancel answer.

Imported by a ``--scheduler slurm`` run and by readers of a folder that holds trials a
Slurm job runs; submitit only for submitting (``pip install 'mitosis-nb[slurm]'``).
Nothing here waits for a job: Slurm keeps the jobs, the trials folder keeps the records.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.errors import SchedulerError, one_line

# States in which a job still holds, or waits for, its place on a node.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)
# Slurm forgets a finished job after MinJobAge (300 s by default): then it says nothing.
GONE = "GONE"
_COMMAND_TIMEOUT_S = 30
# How long one answer of squeue serves every reader in this process (a listing asks per trial).
_ANSWER_TTL_S = 2.0


@dataclass(frozen=True)
class TaskPlace:
    """Where a trial's Slurm task is: its job, its index in the array, its node."""

    job_id: str  # the array's job id (the job's own for a lone job)
    array_index: int | None
    node: str

    @property
    def task_id(self) -> str:
        """The id squeue and scancel take for this one task."""
        return self.job_id if self.array_index is None else f"{self.job_id}_{self.array_index}"


def task_id(job_id: str, array_index: int | None) -> str:
    """The id of one task of a job array (``123_4``), or of a lone job."""
    return job_id if array_index is None else f"{job_id}_{array_index}"


def available() -> bool:
    """Whether this host can ask Slurm about jobs (``squeue`` is on the PATH)."""
    return shutil.which("squeue") is not None


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SchedulerError(f"cannot run {command[0]}: {one_line(error)}.") from None


def _first_line(text: str, otherwise: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else otherwise


def check_partition(partition: str | None) -> None:
    """Refuse, in one sentence, a cluster this host cannot reach or a partition it lacks."""
    if not available() or shutil.which("sbatch") is None:
        raise SchedulerError(
            "--scheduler slurm needs Slurm's commands (sbatch, squeue) on this host; run "
            "from a login node of the cluster."
        )
    answer = _run(["sinfo", "-h", "-o", "%R"])
    if answer.returncode != 0:
        raise SchedulerError(
            f"Slurm does not answer on this host ({_first_line(answer.stderr, 'no answer')}); "
            "check that its controller runs (`sinfo`)."
        )
    known = answer.stdout.split()
    if partition is not None and partition not in known:
        raise SchedulerError(
            f"Slurm has no partition {partition!r} (it has {', '.join(known) or 'none'}); fix "
            "partition in [tool.mitosis.slurm] or --slurm partition=NAME."
        )


def require_submitit() -> None:
    """Refuse, in one sentence, a run on Slurm where submitit is not installed."""
    _submitit()


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise SchedulerError(
            "--scheduler slurm needs submitit, which is not installed; "
            "pip install 'mitosis-nb[slurm]'."
        ) from None
    return submitit


def submit_array(
    folder: Path,
    parameters: Mapping[str, Any],
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
) -> list[str]:
    """Submit ``function(*args)`` for each of ``arguments`` as one job array; the task ids.

    ``parameters`` are submitit's Slurm parameters (``partition``, ``time``, ``setup`` …);
    ``folder`` keeps submitit's pickles and the jobs' logs, on the shared filesystem.
    """
    submitit = _submitit()
    executor = submitit.SlurmExecutor(folder=folder / "%j")
    try:
        executor.update_parameters(**parameters)
    except ValueError as error:
        raise SchedulerError(
            f"submitit refuses these Slurm options ({one_line(error, 160)}); check "
            "[tool.mitosis.slurm] and --slurm."
        ) from None
    columns = list(zip(*arguments, strict=True))
    try:
        jobs = executor.map_array(function, *columns)
    except Exception as error:  # sbatch's own refusal, as submitit reports it
        raise SchedulerError(f"sbatch refused the job array: {one_line(error, 300)}") from None
    return [str(job.job_id) for job in jobs]


def split_task_id(text: str) -> tuple[str, int | None]:
    """``123_4`` as (``123``, 4); a lone job's ``123`` as (``123``, None)."""
    job, _, index = text.partition("_")
    return job, int(index) if index.isdigit() else None


_answers: dict[str, tuple[float, dict[str, tuple[str, str]]]] = {}


def task_states(job_ids: Iterable[str]) -> dict[str, tuple[str, str]] | None:
    """Each task of the jobs ``job_ids`` with its state and node, as squeue says it.

    A job Slurm no longer knows (ended more than MinJobAge ago) has no entries; None if
    this host cannot ask Slurm at all.
    """
    if not available():
        return None
    found: dict[str, tuple[str, str]] = {}
    for job_id in sorted(set(job_ids)):
        cached = _answers.get(job_id)
        if cached is None or time.monotonic() - cached[0] > _ANSWER_TTL_S:
            cached = (time.monotonic(), _ask_squeue(job_id))
            _answers[job_id] = cached
        found.update(cached[1])
    return found


def _ask_squeue(job_id: str) -> dict[str, tuple[str, str]]:
    command = ["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i|%T|%N"]
    try:
        answer = _run(command)
    except SchedulerError:
        return {}
    tasks = {}
    for line in answer.stdout.splitlines():
        task, state, node = ([*line.split("|"), "", ""])[:3]
        tasks[task.strip()] = (state.strip(), node.strip())
    return tasks


def state_of(task: str) -> str | None:
    """The state of one task (``RUNNING``, ``TIMEOUT`` …), ``GONE`` if Slurm forgot it, or
    None if this host cannot ask Slurm."""
    states = task_states([split_task_id(task)[0]])
    if states is None:
        return None
    return states.get(task, (GONE, ""))[0]


def why_signalled(task: str) -> str | None:
    """Inside a task that Slurm just signalled: the state its job ends in, or None.

    Until the task's processes are gone Slurm shows the job only as COMPLETING, so a time
    limit reached reads as TIMEOUT, and any other end while running as CANCELLED.
    """
    answer = _run(["scontrol", "-o", "show", "job", task])
    fields = dict(
        word.split("=", 1)
        for word in answer.stdout.split()
        if "=" in word and answer.returncode == 0
    )
    state = fields.get("JobState")
    if state is None or state not in ACTIVE_STATES:
        return state
    limit, ran = _seconds(fields.get("TimeLimit", "")), _seconds(fields.get("RunTime", ""))
    if limit is not None and ran is not None and ran >= limit:
        return "TIMEOUT"
    return "CANCELLED"


def _seconds(text: str) -> int | None:
    """Slurm's ``[D-]HH:MM:SS`` (or ``MM:SS``) as seconds; None for UNLIMITED and the like."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(part.isdigit() for part in parts) or not (days.isdigit() or not days):
        return None
    total = 0
    for part in parts:
        total = total * 60 + int(part)
    return total + int(days or 0) * 86400


def forget_answers() -> None:
    """Ask squeue afresh next time (after a cancel, say)."""
    _answers.clear()


def cancel(tasks: Iterable[str]) -> None:
    """Cancel the given tasks (``123_4``), queued or running."""
    tasks = list(tasks)
    if not tasks:
        return
    answer = _run(["scancel", *tasks])
    forget_answers()
    if answer.returncode != 0:
        raise SchedulerError(f"scancel refused: {_first_line(answer.stderr, 'no reason')}.")


def this_task() -> TaskPlace | None:
    """Inside a Slurm job: the task this process runs; None outside one."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = array_job or os.environ.get("SLURM_JOB_ID")
    if job is None:
        return None
    index = os.environ.get("SLURM_ARRAY_TASK_ID") if array_job else None
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    return TaskPlace(job, int(index) if index and index.isdigit() else None, node)


def log_file(folder: Path, task: str) -> Path:
    """Where submitit keeps the standard error of ``task``, submitted from ``folder``."""
    return folder / task / f"{task}_0_log.err"
