"""The trials folder as a catalogue: listing it, and keeping its index and site current.

Records are the truth; ``index.sqlite`` makes listing fast and ``index.html`` shows it
in a browser. Listing trusts an index row only while its record's stamp is unchanged,
so a trial copied in, hand-edited, or whose index update was lost is read again.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mitosis import dead_runs, liveness
from mitosis.adapters import index_cache, legacy_store, processes, site, store
from mitosis.adapters.index_cache import WHOLE_SUMMARIES, Entry, IndexUnavailable, Reading
from mitosis.adapters.legacy_store import LegacyTrial
from mitosis.core.summary import (
    LEGACY,
    UNREADABLE,
    TrialBrief,
    TrialSummary,
    start_order,
    summarize_record,
    unreadable_summary,
)
from mitosis.core.trial_record import record_data
from mitosis.errors import MitosisWarning, RecordError


@dataclass(frozen=True)
class Listing:
    """Every trial of a folder, oldest first, and the warnings a reader should see."""

    trials: list[dict[str, Any]]
    warnings: list[str]


class Summaries:
    """Every trial of a folder, oldest first; ``index_problem`` if the index could not be used.

    Each trial's ``brief`` is at hand at once; the whole ``summaries`` are decoded from the
    index's rows when first asked for, all in one go.
    """

    def __init__(
        self, trials_folder: Path, entries: list[Entry], index_problem: str | None
    ) -> None:
        self.trials_folder = trials_folder
        self.entries = entries
        self.index_problem = index_problem
        self._summaries: list[TrialSummary] | None = None

    @property
    def briefs(self) -> list[TrialBrief]:
        """What ``list`` shows of each trial."""
        return [entry.brief for entry in self.entries]

    @property
    def summaries(self) -> list[TrialSummary]:
        """Each trial's whole summary."""
        if self._summaries is None:
            self.decode(lambda entry: True)
            self._summaries = [entry.summary for entry in self.entries]
        return self._summaries

    def decoded(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` (of this folder) with their summaries decoded, all in one go; a row
        the index holds but cannot decode (someone else wrote it) is read from its record."""
        return _decoded(self.trials_folder, entries)

    def decode(self, needed: Callable[[Entry], bool]) -> None:
        """Decode, all in one go, the summaries of the entries ``needed`` picks."""
        picked = [entry for entry in self.entries if needed(entry)]
        decoded = self.decoded(picked)
        pairs = zip(picked, decoded, strict=True)
        replaced = {id(old): new for old, new in pairs if old is not new}
        if replaced:
            self.entries = [replaced.get(id(entry), entry) for entry in self.entries]

    def warnings(self) -> list[str]:
        """One warning for a missing or damaged index, one per unreadable record."""
        found = []
        if self.index_problem is not None:
            found.append(
                f"{self.index_problem}; read every trial.yaml instead "
                "(`mitosis-nb index` rebuilds it)."
            )
        found += [b.problem or b.id for b in self.briefs if b.status == UNREADABLE]
        return found


def _decoded(trials_folder: Path, entries: list[Entry]) -> list[Entry]:
    """``entries`` with their summaries decoded; a row the index holds but cannot decode
    (someone else wrote it, or changed it since) is read again from its record."""
    if any(entry.undecodable for entry in entries):
        entries = _with_texts(trials_folder, entries)
    try:
        index_cache.decode_all(entries)
        return entries
    except (TypeError, ValueError, KeyError):
        pass
    decoded = []
    for entry in entries:
        try:
            index_cache.decode_all([entry])
        except (TypeError, ValueError, KeyError):
            entry = _entry(trials_folder / entry.brief.id)
        decoded.append(entry)
    return decoded


def _with_texts(trials_folder: Path, entries: list[Entry]) -> list[Entry]:
    """``entries`` with the summaries' texts a listing left in the index, read now; one
    whose row has changed since (or is gone) is read from its record instead."""
    try:
        texts = index_cache.read_texts(trials_folder)
    except IndexUnavailable:
        texts = {}
    found = []
    for entry in entries:
        if entry.undecodable:
            stamp, text, printable = texts.get(entry.brief.id, (None, None, False))
            if text is not None and stamp is not None and stamp == entry.stamp:
                entry = entry.with_text(text, printable)
            else:
                entry = _entry(trials_folder / entry.brief.id)
        found.append(entry)
    return found


def _entry(folder: Path, record: dict[str, Any] | None = None) -> Entry:
    """A trial's summary from its record (read unless given) and the files beside it."""
    stamp = store.record_stamp(folder)
    has_page = (folder / "trial.html").is_file()
    has_notebook = (folder / "trial.ipynb").is_file()
    try:
        data = store.read_record_for_listing(folder) if record is None else record
    except RecordError as error:
        adopted = dead_runs.adopt_unfinished(folder)
        if adopted is not None:
            return _entry(folder, record_data(adopted))
        return Entry(unreadable_summary(folder.name, error.message, has_page, has_notebook), stamp)
    return Entry(summarize_record(folder.name, data, has_page, has_notebook), stamp)


# Below this many records one process reads them faster than starting workers would.
_PARALLEL_FROM = 1000


def _read_entries(folders: list[Path]) -> list[Entry]:
    """The entries of ``folders`` from their records, in order; many are read in parallel.

    Parsing YAML is CPU-bound, so listing 10,000 trials without the index spreads it over
    forked worker processes, one per core. Only a process with no other thread forks: a
    thread holding a lock at the fork would leave the workers stuck on it.
    """
    cores = os.cpu_count() or 1
    if (
        len(folders) < _PARALLEL_FROM
        or cores < 2
        or threading.active_count() > 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return [_entry(folder) for folder in folders]
    context = multiprocessing.get_context("fork")
    workers = min(cores, 8)
    chunk = max(64, len(folders) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_entry, folders, chunksize=chunk))


def _settle(trials_folder: Path, entry: Entry) -> tuple[Entry, bool]:
    """Re-record a dead run; flag one that cannot be checked. True if the record changed."""
    if entry.brief.status not in ("running", liveness.QUEUED):
        return entry, False  # ended: nothing to check (and no path to build, 100,000 times)
    summary = entry.summary
    if (settled := liveness.settle(trials_folder / summary.id, summary.status)) is not None:
        return _entry(trials_folder / summary.id, settled.record), settled.changed
    if summary.status != "running":
        return entry, False
    state = processes.runner_state(summary.hostname, summary.pid, summary.pid_start)
    if state == "dead":
        folder = trials_folder / summary.id
        try:
            return _entry(folder, record_data(dead_runs.mark_interrupted(folder))), True
        except (RecordError, OSError):
            return _entry(folder), False
    flag = dead_runs.runner_flag(summary)
    return (Entry(summary.flagged(flag), entry.stamp) if flag else entry), False


def legacy_summary(trial: LegacyTrial) -> TrialSummary:
    """A trial of the original mitosis as a ``legacy`` row: what its files say, as they say it."""
    return TrialSummary(
        id=trial.id,
        status=LEGACY,
        started=trial.started,
        experiment=trial.experiment,
        variant=trial.variant,
        iteration=trial.iteration,
        main=trial.main,
        commit=trial.commit,
        debug=trial.debug,
        has_page=trial.page is not None,
        page=trial.page,
    )


def _legacy_summaries(legacy: legacy_store.LegacyFolder) -> list[TrialSummary]:
    # Read afresh each time: a handful of small SQLite tables, and never part of the index,
    # which caches only mitosis-nb's own records.
    return [legacy_summary(trial) for trial in legacy.trials]


def _legacy_newer_than_page(trials_folder: Path, legacy: legacy_store.LegacyFolder) -> bool:
    # The original, run again into this folder, adds trials the index never hears of.
    written = legacy.last_written
    if written is None:
        return False
    try:
        return written > (trials_folder / site.INDEX_HTML).stat().st_mtime
    except OSError:
        return False  # no page yet: `index`, or the next trial, writes it


def _read_cached(
    trials_folder: Path, reading: Reading
) -> tuple[dict[str, Entry] | None, str | None]:
    try:
        return index_cache.read(trials_folder, reading), None
    except IndexUnavailable as error:
        return None, str(error)


def _store_entries(trials_folder: Path, entries: Iterable[Entry], remove: Iterable[str]) -> None:
    # Best effort: a read-only or busy index only means the next reader reads records again.
    with contextlib.suppress(IndexUnavailable, OSError):
        index_cache.update(trials_folder, entries, remove)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector: reading 100,000 rows allocates many small objects and
    frees none, and its passes over them would take a third of a listing's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect(
    trials_folder: Path,
    use_index: bool = True,
    write_page: bool = True,
    reading: Reading = WHOLE_SUMMARIES,
) -> Summaries:
    """Every trial's summary: from the index where its record is unchanged, else the record.

    The page is rewritten when a record changed since the index last saw it, unless the
    caller writes it next anyway (``write_page=False``).
    """
    with _no_cycle_collection():
        return _collect(trials_folder, use_index, write_page, reading)


def _collect(trials_folder: Path, use_index: bool, write_page: bool, reading: Reading) -> Summaries:
    store.check_folder(trials_folder)
    names = store.trial_names(trials_folder)
    cached, problem = _read_cached(trials_folder, reading) if use_index else ({}, None)
    if not names:
        problem = None  # nothing to list: a missing index is no news
    known = cached or {}
    current: dict[str, Entry] = {}
    stale = []
    for name, stamp in zip(names, store.record_stamps(trials_folder, names), strict=True):
        entry = known.get(name)
        if entry is not None and entry.stamp is not None and entry.stamp == stamp:
            current[name] = entry
        elif stamp is not None or not store.never_started(trials_folder / name):
            stale.append(trials_folder / name)
    fresh = _read_entries(stale)
    current.update((folder.name, entry) for folder, entry in zip(stale, fresh, strict=True))
    # Those still running or queued are checked, which takes their whole summaries.
    unsettled = [e for e in current.values() if e.brief.status in ("running", liveness.QUEUED)]
    current.update((e.brief.id, e) for e in _decoded(trials_folder, unsettled))
    entries, died, listed = [], [], set()
    for name in names:
        if name not in current:
            continue
        listed.add(name)
        entry, changed = _settle(trials_folder, current[name])
        if changed:
            died.append(entry)
        entries.append(entry)
    legacy = legacy_store.read_legacy_folder(trials_folder)
    changed = bool(died) or _legacy_newer_than_page(trials_folder, legacy)
    if cached is not None:
        gone = set(cached) - listed
        if fresh or died or gone:
            _store_entries(trials_folder, [*fresh, *died], gone)
            # The page showed what the index held: a folder deleted or copied in by hand,
            # or a trial that has moved on since, would leave it wrong (or linking nowhere).
            changed = True
    found = Summaries(trials_folder, _oldest_first(entries, legacy), problem)
    if changed and write_page:
        with contextlib.suppress(OSError):
            _write_site(trials_folder, found.summaries)
    return found


def list_trials(trials_folder: Path) -> Listing:
    """Every trial as a plain dict, oldest first; damaged ones listed as ``unreadable``."""
    found = collect(trials_folder)
    return Listing([s.as_dict() for s in found.summaries], found.warnings())


def rebuild(trials_folder: Path) -> Summaries:
    """Rebuild ``index.sqlite`` and ``index.html`` from the records alone."""
    store.ensure_folder(trials_folder)
    started = [f for f in store.trial_folders(trials_folder) if not store.never_started(f)]
    entries = [_settle(trials_folder, entry)[0] for entry in _read_entries(started)]
    # The index keeps records as they are; flags are worked out afresh by each reader.
    index_cache.rebuild(trials_folder, [_unflagged(entry) for entry in entries])
    legacy = legacy_store.read_legacy_folder(trials_folder)
    found = Summaries(trials_folder, _oldest_first(entries, legacy), None)
    _write_site(trials_folder, found.summaries)
    return found


def _oldest_first(entries: list[Entry], legacy: legacy_store.LegacyFolder) -> list[Entry]:
    everything = [*entries, *(Entry(s, None) for s in _legacy_summaries(legacy))]
    return sorted(everything, key=lambda entry: start_order(entry.brief))


def _write_site(trials_folder: Path, summaries: list[TrialSummary]) -> None:
    """``index.html`` and each experiment's analysis page beside it."""
    site.write_index(trials_folder, summaries)
    site.write_experiment_pages(trials_folder, summaries)


def refresh(trials_folder: Path) -> None:
    """Bring ``index.html`` up to date with the records before anyone browses it."""
    if (trials_folder / site.INDEX_HTML).is_file():
        collect(trials_folder)  # rewrites the page if a trial changed, came or went
    else:
        rebuild(trials_folder)


def _unflagged(entry: Entry) -> Entry:
    if entry.summary.status == UNREADABLE or entry.summary.problem is None:
        return entry
    return Entry(replace(entry.summary, problem=None), entry.stamp)


def record_trial(trials_folder: Path, record: dict[str, Any], warn: bool = True) -> None:
    """After a trial's record is written: its index row and its row on the page. Never raises.
    Only this trial is touched, so a trial costs the same in a folder of 100,000: other
    trials' dead runs are settled by ``list``, ``index`` and ``serve``. The page's part file is
    written holding the index's write lock: two trials ending at once each add their row.
    Failures only warn (the trial has happened); ``list`` or ``index`` catches up.
    """
    try:
        entry = _entry(trials_folder / str(record["id"]), record)
        added: list[bool] = []
        try:
            index_cache.update(
                trials_folder,
                [entry],
                while_locked=lambda: added.append(
                    site.add_to_index(trials_folder, [entry.summary])
                ),
            )
        except IndexUnavailable:
            rebuild(trials_folder)
            return
        if added != [True]:  # no page yet to add to
            _write_site(trials_folder, collect(trials_folder, write_page=False).summaries)
    except Exception as error:  # whatever it is, the trial itself stands
        if warn:
            message = f"could not update the index of {trials_folder}: {error}"
            warnings.warn(message, MitosisWarning, stacklevel=2)
