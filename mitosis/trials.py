"""The public ``Trial``: a finished (or running) trial read back from its folder."""

from __future__ import annotations

import html
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.adapters import legacy_store, store
from mitosis.adapters.legacy_store import LegacyTrial
from mitosis.catalog import Listing
from mitosis.core.trial_id import the_one_match
from mitosis.core.trial_record import Status, StepRecord, TrialRecord, error_data, record_data
from mitosis.core.verify import recorded_sources
from mitosis.dead_runs import settle_record
from mitosis.errors import ParameterError, TrialNotFoundError
from mitosis.trials_folder import TrialsFolder


@dataclass(frozen=True)
class Trial:
    """One trial: its record (``trial_record``, every field typed) and where its files are."""

    trial_record: TrialRecord
    folder: Path

    @property
    def record(self) -> dict[str, Any]:
        """The record as ``trial.yaml`` holds it: plain mappings, as ``--json`` prints it."""
        return record_data(self.trial_record)

    @property
    def id(self) -> str:
        """The trial id, e.g. ``20261124-190512-3f9c2a``."""
        return self.trial_record.id

    @property
    def status(self) -> Status:
        """``running``, ``succeeded``, ``failed`` or ``interrupted``."""
        return self.trial_record.status

    @property
    def experiment(self) -> str:
        """The trial's step names joined by ``+``."""
        return self.trial_record.experiment

    @property
    def variant(self) -> str | None:
        """The trial's tracked parameters, e.g. ``sine.frequency=fast``."""
        return self.trial_record.variant

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        """Each step: what ran, with which parameters, and what it returned."""
        return self.trial_record.steps

    @property
    def main(self) -> Any:
        """The last step's headline result."""
        return self.trial_record.main

    @property
    def metrics(self) -> dict[str, Any]:
        """The last step's named metrics."""
        return dict(self.trial_record.metrics)

    @property
    def error(self) -> dict[str, Any] | None:
        """What went wrong, for a failed or interrupted trial, as the record's mapping
        (``trial_record.error`` is the typed one)."""
        error = self.trial_record.error
        return None if error is None else error_data(error)

    @property
    def html_path(self) -> Path:
        """The published page."""
        return self.folder / "trial.html"

    @property
    def notebook_path(self) -> Path:
        """The executed notebook."""
        return self.folder / "trial.ipynb"

    @property
    def patch(self) -> str | None:
        """What a debug trial ran beyond its commit (``uncommitted.patch``), or None."""
        path = self.folder / store.PATCH_NAME
        return path.read_text("utf-8", errors="replace") if path.is_file() else None

    @property
    def results(self) -> list[dict[str, Any]]:
        """Each step's returned dict, unpickled: only do this for trials you trust."""
        return load_trial_data(self)

    def _repr_html_(self) -> str:
        colour = {"succeeded": "#2a7", "failed": "#c33"}.get(self.status, "#888")
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.metrics.items()
        )
        link = html.escape(os.path.relpath(self.html_path, Path.cwd()))
        table = f"<table>{rows}</table>" if rows else "<br>"
        error = self.trial_record.error
        why = (
            f"<span style='color:{colour}'>{html.escape(str(error.type))}: "
            f"{html.escape(str(error.message))}</span><br>"
            if error
            else ""
        )
        return (
            f"<div style='border:1px solid {colour};border-radius:6px;padding:.5em 1em'>"
            f"<b>{html.escape(self.experiment)}</b> "
            f"<code>{html.escape(self.id)}</code> "
            f"<span style='color:{colour}'>{html.escape(self.status)}</span><br>"
            f"variant: {html.escape(str(self.variant or '(defaults)'))}<br>"
            f"main: <b>{html.escape(str(self.main))}</b>{table}{why}"
            f"<a href='{link}' target='_blank'>trial page</a></div>"
        )

    def __repr__(self) -> str:
        return f"Trial(id={self.id!r}, status={self.status!r}, main={self.main!r})"


def default_trials_folder(config: str | os.PathLike[str] | None = None) -> Path:
    """The trials folder of the investigation configured by ``config`` (a pyproject.toml),
    else of the one around the current directory."""
    from mitosis.adapters.config import load_config

    return load_config(Path(config) if config else None).trials_folder


def load_trial(
    query: str,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> Trial:
    """The trial named by its id or a unique prefix of the id's random part.

    It is looked for in ``trials_folder``, else in the trials folder that ``config`` (the
    investigation's pyproject.toml, as for ``execute_trial``) names, else in the
    investigation around the current directory.
    """
    if not isinstance(query, str):
        raise TrialNotFoundError(f"a trial is named by its id as a string, not {query!r}.")
    folder = Path(trials_folder) if trials_folder else default_trials_folder(config)
    folder = store.find_trial(folder, query)
    return Trial(settle_record(folder, store.read_record(folder)), folder)


def load_legacy_trial(query: str, trials_folder: Path) -> LegacyTrial:
    """The trial of the original mitosis (0.6.x) in ``trials_folder`` named by its hex key.

    As the original did, ``query`` matches the end of the trial's metadata folder's name
    (``2024-03-01_3f9c2a``): its six hex digits, or fewer if they are unique.
    """
    return _the_legacy_trial(
        query, trials_folder, legacy_store.find_legacy_trials(trials_folder, query)
    )


def _the_legacy_trial(query: str, trials_folder: Path, matches: list[LegacyTrial]) -> LegacyTrial:
    return the_one_match(query, matches, [trial.id for trial in matches], trials_folder)


def load_trial_data(
    trial: Trial | str | None = None,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    *,
    hexstr: str | None = None,
) -> list[Any]:
    """Unpickle each step's returned dict. Pickles can run code: load only trusted trials.

    ``trial`` is a ``Trial`` or a query for ``load_trial``, with the same ``trials_folder``
    and ``config``. A query that names no trial of mitosis-nb's but the hex key of one the
    original mitosis (0.6.x) wrote there returns that trial's results as the original's
    ``load_trial_data`` did: each ``results_<k>.dill`` loaded with dill (``pip install
    'mitosis-nb[legacy]'``), first step first. ``hexstr=`` is the original's name for
    ``trial``, which its users' scripts pass by keyword.
    """
    if hexstr is not None:
        if trial is not None:
            raise ParameterError("give load_trial_data the trial or hexstr=, not both.")
        trial = hexstr
    if trial is None:
        raise ParameterError("load_trial_data needs a trial: its id, e.g. '3f9c2a'.")
    if not isinstance(trial, Trial):
        try:
            trial = load_trial(trial, trials_folder, config)
        except TrialNotFoundError:
            folder = Path(trials_folder) if trials_folder else default_trials_folder(config)
            matches = (
                legacy_store.find_legacy_trials(folder, trial) if isinstance(trial, str) else []
            )
            if not matches:
                raise
            return legacy_store.load_results(folder, _the_legacy_trial(str(trial), folder, matches))
    _make_steps_importable(trial.record)
    results = []
    for index in range(len(trial.steps)):
        path = trial.folder / f"results_{index}.pkl"
        if not path.is_file():
            break
        with path.open("rb") as handle:
            results.append(pickle.load(handle))  # noqa: S301 - the documented, explicit opt-in
    return results


def _make_steps_importable(record: dict[str, Any]) -> None:
    # A step may return objects of its own classes, which unpickle only where its modules
    # import. The folders they were imported from go last on sys.path: they never shadow
    # what this process imports already.
    for source in recorded_sources(record):
        if source.import_root is None:
            continue
        folder = os.path.normpath(Path(source.repo) / source.import_root)
        if folder not in sys.path and Path(folder).is_dir():
            sys.path.append(folder)


def list_trials(trials_folder: Path) -> Listing:
    """Every trial, oldest first: from ``index.sqlite`` where it is current, else the records.

    A damaged record is listed as ``unreadable`` with a warning; a ``running`` trial whose
    runner died on this host is re-recorded as ``interrupted``.
    """
    return TrialsFolder(trials_folder).list_trials()
