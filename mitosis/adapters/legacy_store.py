"""Trials written by the original mitosis (0.6.x), read in place and never changed.

The original keeps, at the top of its trials folder, one ``<experiment>.db`` SQLite file per
experiment (a ``trials_<experiment>`` table of variant, iteration, commit, cpu_time, the
printed ``main`` and the page's file name), one ``trial_<variant>_<iteration>_<key>.html``
page per trial (``...<key>debug.html`` for a debug trial, which no table records), and one
``<date>_<key>/`` folder per trial holding ``results_<k>.dill``, ``experiment.log`` and the
rest. ``<key>`` is six hex digits: the "hexstr" its users pass to ``load_trial_data``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.errors import LegacyResultsError

_PAGE = re.compile(
    r"^trial_(?P<variant>.+)_(?P<iteration>\d+)_(?P<key>[0-9a-f]{6})(?P<debug>debug)?"
    r"\.(?:html|ipynb)$"
)
_METADATA_FOLDER = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})_(?P<key>[0-9a-f]{6})$")
_TRIALS_TABLE = re.compile(r"^trials_(?P<experiment>.+)$")
# The first line of experiment.log: "INFO:2024-03-01 12:00:00,123:<module>:<line>:Initialized..."
_LOG_TIME = re.compile(r"^[A-Z]+:(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
_RESULTS = re.compile(r"^results_(?P<step>\d+)\.dill$")


@dataclass(frozen=True)
class LegacyTrial:
    """One trial of the original mitosis, as its files describe it.

    ``main`` is the text the original printed and stored (it never kept the value itself);
    ``started`` is the time its log wrote, in that machine's local time, or only the date.
    ``key`` is None for a trial whose table row has no page (it never finished).
    """

    key: str | None
    experiment: str | None
    variant: str
    iteration: int | None
    commit: str | None
    main: str | None
    started: str | None
    page: str | None
    metadata_folder: str | None
    debug: bool

    @property
    def id(self) -> str:
        """The six hex digits the original named it by, or a name made of its table row."""
        if self.key is not None:
            return self.key
        return f"{self.experiment}:{self.variant}:{self.iteration}"


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # immutable=1: SQLite neither locks, journals nor writes; the original's files stay as they are.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def _table_rows(database: Path) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Each trial row of one ``<experiment>.db``, with its experiment's name."""
    try:
        connection = _connect_read_only(database)
    except sqlite3.Error:
        return
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        for table in tables:
            named = _TRIALS_TABLE.match(table)
            if named is None:
                continue
            quoted = table.replace('"', '""')
            query = (
                'SELECT variant, iteration, "commit", results, filename '  # noqa: S608
                f'FROM "{quoted}" ORDER BY iteration'
            )
            for row in connection.execute(query):
                yield named["experiment"], row
    except sqlite3.Error:
        return  # not the original's database after all: nothing of it is listed
    finally:
        connection.close()


def _metadata_folders(trials_folder: Path, names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        named = _METADATA_FOLDER.match(name)
        if named is not None and (trials_folder / name).is_dir():
            found[named["key"]] = name
    return found


def _originals_files(trials_folder: Path) -> tuple[list[str], list[str], list[str]]:
    """The names at the top of the folder (one listing of it), its databases and its pages."""
    try:
        names = sorted(os.listdir(trials_folder))
    except OSError:
        return [], [], []
    databases = [name for name in names if name.endswith(".db")]
    pages = [name for name in names if name.startswith("trial_")]
    return names, databases, pages


def _started(trials_folder: Path, metadata_folder: str | None) -> str | None:
    if metadata_folder is None:
        return None
    try:
        with (trials_folder / metadata_folder / "experiment.log").open(encoding="utf-8") as log:
            first = log.readline()
    except (OSError, UnicodeDecodeError):
        first = ""
    named = _LOG_TIME.match(first)
    return named["time"] if named else metadata_folder[:10]


def _experiment_of(variant: str) -> str | None:
    # The original joins its steps' names with "_" into the experiment's name and their
    # variants, each "<step>-<variant>...", with "+"; "noparams" names no step.
    steps = [part.split("-", 1)[0] for part in variant.split("+")]
    return None if "noparams" in steps else "_".join(steps)


def _recorded(
    trials_folder: Path, folders: dict[str, str], experiment: str, row: tuple[Any, ...]
) -> LegacyTrial:
    """A trial its table holds; a row without a page is one that never finished."""
    variant, iteration, commit, main, page = row
    named = _PAGE.match(page) if isinstance(page, str) else None
    key = named["key"] if named else None
    metadata_folder = folders.get(key) if key else None
    return LegacyTrial(
        key=key,
        experiment=experiment,
        variant=str(variant),
        iteration=iteration if isinstance(iteration, int) else None,
        commit=None if commit is None else str(commit),
        main=None if main is None else str(main),
        started=_started(trials_folder, metadata_folder),
        page=page if named and (trials_folder / page).is_file() else None,
        metadata_folder=metadata_folder,
        debug=False,
    )


def _unrecorded(trials_folder: Path, folders: dict[str, str], page: str) -> LegacyTrial | None:
    """A trial only its page names: a debug trial, or one whose table is gone."""
    named = _PAGE.match(page)
    if named is None:
        return None
    debug = bool(named["debug"])
    metadata_folder = folders.get(named["key"])
    return LegacyTrial(
        key=named["key"],
        experiment=_experiment_of(named["variant"]),
        variant=named["variant"],
        iteration=int(named["iteration"]),
        commit="0000000" if debug else None,  # the original's commit for a debug trial
        main=None,  # the original stores main in its table, and only there
        started=_started(trials_folder, metadata_folder),
        page=page,
        metadata_folder=metadata_folder,
        debug=debug,
    )


@dataclass(frozen=True)
class LegacyFolder:
    """What the original mitosis wrote into a trials folder: its trials, and when it last
    wrote a table or a page there (a modification time; None if it wrote none)."""

    trials: list[LegacyTrial]
    last_written: float | None


def read_legacy_folder(trials_folder: Path) -> LegacyFolder:
    """The original's trials in ``trials_folder``, from one listing of its top."""
    names, databases, pages = _originals_files(trials_folder)
    if not databases and not pages:
        return LegacyFolder([], None)  # mitosis-nb's own folder: nothing more to look at
    times = []
    for name in (*databases, *pages):
        with contextlib.suppress(OSError):
            times.append((trials_folder / name).stat().st_mtime)
    trials = _read_trials(trials_folder, names, databases, pages)
    return LegacyFolder(trials, max(times, default=None))


def _read_legacy_trials(trials_folder: Path) -> list[LegacyTrial]:
    """Every trial the original mitosis wrote into ``trials_folder``; [] if it wrote none."""
    return read_legacy_folder(trials_folder).trials


def _read_trials(
    trials_folder: Path, names: list[str], databases: list[str], pages: list[str]
) -> list[LegacyTrial]:
    """Its tables give the trials it recorded; its pages alone give the debug trials (and
    any whose database is gone)."""
    folders = _metadata_folders(trials_folder, names)
    found: list[LegacyTrial] = []
    recorded_pages = set()
    for database in databases:
        for experiment, row in _table_rows(trials_folder / database):
            trial = _recorded(trials_folder, folders, experiment, row)
            recorded_pages.add(trial.page)
            found.append(trial)
    for page in pages:
        if page not in recorded_pages:
            unrecorded = _unrecorded(trials_folder, folders, page)
            if unrecorded is not None:
                found.append(unrecorded)
    return found


def find_legacy_trials(trials_folder: Path, key: str) -> list[LegacyTrial]:
    """The original's trials that ``key`` names as the original did: the end of the name
    of their metadata folder (``2024-03-01_3f9c2a``), so their six hex digits or fewer."""
    return [
        trial
        for trial in _read_legacy_trials(trials_folder)
        if key and trial.key is not None and (trial.metadata_folder or trial.key).endswith(key)
    ]


def _results_files(trials_folder: Path, trial: LegacyTrial) -> list[Path]:
    """The trial's ``results_<k>.dill`` files, first step first."""
    if trial.metadata_folder is None:
        return []
    folder = trials_folder / trial.metadata_folder
    steps = []
    for path in folder.iterdir():
        named = _RESULTS.match(path.name)
        if named is not None:
            steps.append((int(named["step"]), path))
    return [path for _, path in sorted(steps)]


def load_results(trials_folder: Path, trial: LegacyTrial) -> list[Any]:
    """Each step's result, unpickled with dill as the original saved it, first step first.

    dill is imported only here: it is optional, and needed only for the original's trials.
    """
    try:
        import dill
    except ImportError:
        raise LegacyResultsError(
            f"trial {trial.id} was written by the original mitosis, whose results need dill: "
            "pip install 'mitosis-nb[legacy]'."
        ) from None
    results = []
    for path in _results_files(trials_folder, trial):
        with path.open("rb") as handle:
            results.append(dill.load(handle))  # noqa: S301 - the documented, explicit opt-in
    return results
