"""The trials folder, the one object a reader meets first: what lives in it and what it does.

A trials folder holds one folder per trial (``<id>/trial.yaml`` and what the trial wrote
beside it), the variant claims and iteration counters of the registry (``variants/``), the
step cache's entries (``step-cache/``), the listing cache ``index.sqlite`` and the site
(``index.html``, ``index-data/`` and one page per experiment). Its methods are the whole of
what the rest of mitosis-nb asks of it; the modules behind them (the store, the registry, the
index, the catalogue) each keep one part.

What a trial's start and end do here costs the same in an empty folder as in one of
100,000 trials: its record, its index row and one small part file of the page. Checking
for dead runs and reading the whole folder is for ``list``, ``index`` and ``serve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mitosis import catalog
from mitosis.adapters import registry, store
from mitosis.adapters.index_cache import WHOLE_SUMMARIES, Reading


@dataclass(frozen=True)
class TrialsFolder:
    """One trials folder on disk, by its path."""

    path: Path

    # --- the folder and its trials (store) ---------------------------------------------

    def check(self) -> None:
        """Raise ``TrialsFolderError`` if the path exists and is not a trials folder."""
        store.check_folder(self.path)

    def ensure(self) -> None:
        """Create the folder if it is missing (and check it)."""
        store.ensure_folder(self.path)

    def create_trial(self, started: datetime) -> tuple[str, Path]:
        """A new, empty trial folder for a trial started at ``started``: its id and path."""
        return store.create_trial_folder(self.path, started)

    def trial_names(self) -> list[str]:
        """The name of every trial folder, oldest first."""
        return store.trial_names(self.path)

    def find_trial(self, query: str) -> Path:
        """The folder of the trial named by a whole id or a unique prefix of its random part."""
        return store.find_trial(self.path, query)

    # --- variant claims and iteration counters (registry) ------------------------------

    def check_claim(self, wanted: registry.Claim) -> bool:
        """Whether ``wanted`` is already claimed as it is; raises on a conflicting claim."""
        return registry.check_claim(self.path, wanted)

    def claim(self, wanted: registry.Claim) -> bool:
        """Claim a variant name for a value; True if this call made the claim."""
        return registry.claim(self.path, wanted)

    def list_claims(self) -> list[registry.Claim]:
        """Every variant claim in the folder."""
        return registry.list_claims(self.path)

    def take_iteration(
        self, experiment: str, variant: str, trial_id: str, new_trial: bool = False
    ) -> int:
        """The next iteration number of ``experiment`` in ``variant``, taken for ``trial_id``
        (or the one it took before: a rerun); ``new_trial``: an id allocated just now."""
        return registry.take_iteration(self.path, experiment, variant, trial_id, new_trial)

    # --- the listing, the index and the site (catalog) ---------------------------------

    def collect(
        self,
        use_index: bool = True,
        write_page: bool = True,
        reading: Reading = WHOLE_SUMMARIES,
    ) -> catalog.Summaries:
        """Every trial's summary, dead runs settled; the site rewritten if a trial changed.
        ``reading`` says what will be asked of the trials read from the index."""
        return catalog.collect(self.path, use_index, write_page, reading)

    def list_trials(self) -> catalog.Listing:
        """Every trial as a plain dict, oldest first, and the warnings a reader should see."""
        return catalog.list_trials(self.path)

    def rebuild_index(self) -> catalog.Summaries:
        """Rebuild ``index.sqlite`` and the site from the records alone."""
        return catalog.rebuild(self.path)

    def refresh_site(self) -> None:
        """Bring the site up to date with the records before anyone browses it."""
        catalog.refresh(self.path)

    def show_running(self, record: dict[str, Any]) -> None:
        """List a trial that has just started, in its index row and on the page.

        Silent when it cannot: the trial's final ``record_trial`` tries again, and warns.
        """
        catalog.record_trial(self.path, record, warn=False)

    def record_trial(self, record: dict[str, Any], warn: bool = True) -> None:
        """After a trial's record is written: its index row and page row. Never raises."""
        catalog.record_trial(self.path, record, warn=warn)
