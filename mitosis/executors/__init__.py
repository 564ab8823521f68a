"""Where the trials of a sweep run: the seam between the sweep's loop and its executors.

The loop (``mitosis.sweeps``) submits every planned trial, collects outcomes until all are
in, and on Ctrl-C or SIGTERM asks the executor to stop and drains it. An executor knows
only how to run a trial somewhere and tell what became of it: ``threads`` runs them on this
machine, ``cluster`` on a Dask cluster, ``slurm`` as a Slurm job array, the loop
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mitosis.core.record import STORAGE_ERRNOS
from mitosis.errors import one_line

if TYPE_CHECKING:  # light at run time: the command line's printer imports this first
    from mitosis.lock_in import Reservation
    from mitosis.planning import TrialPlan
    from mitosis.trials import Trial

SUCCEEDED, FAILED, INTERRUPTED = "succeeded", "failed", "interrupted"
SKIPPED, NOT_STARTED = "skipped", "not started"
QUEUED = "queued"  # submitted to a batch scheduler that runs it later; nobody waits for it


@dataclass(frozen=True)
class Outcome:
    """What became of one trial of a sweep."""

    plan: TrialPlan
    status: str  # the trial's own status, or skipped, or not started
    trial_id: str | None = None
    trial: Trial | None = None
    message: str | None = None  # why it was skipped, or the refusal that stopped it
    storage: bool = False  # the disk refused a write before the trial had a record to say so


class Executor(Protocol):
    """Runs the trials of one sweep somewhere, once; closed when the sweep is over.

    Every method is called from the sweep's own thread.
    """

    # How long a stopped sweep waits for its trials to report; None: until they do.
    drain_timeout: float | None

    def submit(self, plan: TrialPlan, reservation: Reservation) -> None:
        """Queue one trial whose variants are claimed and whose folder is reserved."""

    def collect(self, timeout: float) -> list[Outcome]:
        """The trials that finished since the last call; waits up to ``timeout`` seconds
        for the first of them."""

    def pending(self) -> int:
        """How many submitted trials have not been collected yet."""

    def running(self) -> int:
        """How many trials run at this moment (for the progress bar)."""

    def stop(self) -> list[Outcome]:
        """Stop the running trials (they record ``interrupted``) and withdraw the queued
        ones; returns those withdrawn at once, the rest come through ``collect``."""

    def close(self) -> None:
        """Release what the executor holds once the sweep is over, whatever ended it."""


def finished_outcome(plan: TrialPlan, reservation: Reservation, trial: Trial | None) -> Outcome:
    """The outcome of a trial that returned: its record's status, or never started."""
    if trial is None:
        return Outcome(plan, NOT_STARTED, reservation.trial_id)
    return Outcome(plan, trial.status, trial.id, trial)


def refused_outcome(plan: TrialPlan, reservation: Reservation, error: BaseException) -> Outcome:
    """A trial whose runner raised (a full disk, a vanished folder): it failed, and the sweep
    goes on with the others."""
    storage = isinstance(error, OSError) and error.errno in STORAGE_ERRNOS
    message = one_line(error, limit=2000)
    return Outcome(plan, FAILED, reservation.trial_id, message=message, storage=storage)
