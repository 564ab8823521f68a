"""Lock-in: a trial's (or a whole sweep's) variants claimed in the registry, its folder and
iteration number taken, before anything runs."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mitosis.adapters import registry, store
from mitosis.planning import TrialPlan
from mitosis.recording import utc_now
from mitosis.trials_folder import TrialsFolder


def _claims(plan: TrialPlan, trial_id: str) -> list[registry.Claim]:
    if plan.request.debug:
        return []
    return [
        registry.Claim(
            p.choice.step, p.choice.arg, p.choice.text, p.fingerprint, p.rendering, trial_id
        )
        for p in plan.params
        if p.choice.kind == "lookup" and p.choice.tracked and p.fingerprint
    ]


def check_lock_in(plans: Sequence[TrialPlan]) -> None:
    """Refuse before anything is written if any variant already means another value."""
    for plan in plans:
        for wanted in _claims(plan, "(this run)"):
            TrialsFolder(plan.trials_folder).check_claim(wanted)


def claim_all(plan: TrialPlan, trial_id: str, folder: Path) -> int:
    """Claim the trial's variants and take its iteration number."""
    try:
        for wanted in _claims(plan, trial_id):
            TrialsFolder(plan.trials_folder).claim(wanted)
        return take_iteration(plan, trial_id, new_trial=True)
    except BaseException:
        # Lost a race for a variant, or the registry cannot be written: this trial never
        # happened, so leave no trace of it.
        with contextlib.suppress(OSError):
            folder.rmdir()
        raise


@dataclass(frozen=True)
class Reservation:
    """A sweep trial's id and folder, allocated by the submitting process before any trial runs."""

    trial_id: str
    folder: Path


def lock_in_sweep(plans: Sequence[TrialPlan]) -> list[Reservation]:
    """Claim every variant of a sweep once, and allocate each trial's id and folder.

    A conflict refuses the whole sweep before anything is written; a claim lost to a
    concurrent run removes the allocated folders again: every trial may run, or none.
    """
    check_lock_in(plans)
    reservations: list[Reservation] = []
    if not plans:
        return reservations
    trials = TrialsFolder(plans[0].trials_folder)
    trials.ensure()
    started = utc_now()
    try:
        for _plan in plans:
            trial_id, folder = trials.create_trial(started)
            reservations.append(Reservation(trial_id, folder))
        claimed: set[tuple[str, str, str]] = set()
        for plan, reservation in zip(plans, reservations, strict=True):
            for wanted in _claims(plan, reservation.trial_id):
                if (wanted.step, wanted.arg, wanted.variant) not in claimed:
                    trials.claim(wanted)
                    claimed.add((wanted.step, wanted.arg, wanted.variant))
    except BaseException:
        release(reservations)
        raise
    return reservations


def release(reservations: Sequence[Reservation]) -> None:
    """Remove the folders of reserved trials that never started (only empty ones go)."""
    for reservation in reservations:
        with contextlib.suppress(OSError):
            reservation.folder.rmdir()


def take_reserved(reservation: Reservation) -> tuple[str, Path]:
    """The id and folder a sweep reserved for this trial, taken by the runner that runs it."""
    # A rerun of a trial (its Dask worker died) starts again from an empty folder, so one
    # trial id never ends up with a mix of two attempts' files. The record stays until the
    # running one replaces it: a queued trial never vanishes from a listing as it starts.
    for child in list(reservation.folder.iterdir()):
        if child.name == store.RECORD_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
    return reservation.trial_id, reservation.folder


def take_iteration(plan: TrialPlan, trial_id: str, new_trial: bool = False) -> int:
    """The trial's iteration: how many non-debug trials of its variant came before it."""
    if plan.request.debug:
        return 0
    trials = TrialsFolder(plan.trials_folder)
    return trials.take_iteration(plan.experiment, plan.variant, trial_id, new_trial)
