"""``index.sqlite``: a cache of every trial's summary, so ``list`` need not parse every record.

The records stay the truth. Each row keeps the size and modification time of the
``trial.yaml`` it was read from (its *stamp*), so a reader can tell a row that a
later write, a copy or a lost update made stale and read that one record again.
The file may vanish or be damaged at any time: every failure here is an
``IndexUnavailable``, and callers fall back to the records.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis.atomic import replacing
from mitosis.core.summary import TrialBrief, TrialSummary

INDEX_NAME = "index.sqlite"
INDEX_VERSION = "6"  # 6: what `list` shows in columns of its own, beside the whole summary
# Long enough to wait out another process's update or rebuild, short enough to fall back.
BUSY_TIMEOUT_S = 30.0

Stamp = tuple[int, int, int]  # the record file's mtime_ns, size, inode

# A row is its trial's whole summary as one JSON object, plus in columns of their own what
# `list` shows (``TrialBrief``; ``main`` as JSON): listing 100,000 trials reads those, and
# decodes a whole summary only for a CSV, a trial still running, or a query on a column
# SQLite cannot read out of the JSON.
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE trials (id TEXT PRIMARY KEY, status TEXT, started TEXT, experiment TEXT, "
    "variant TEXT, main TEXT, note TEXT, problem TEXT, summary TEXT NOT NULL, "
    "record_mtime_ns INTEGER, record_size INTEGER, record_inode INTEGER);"
    "CREATE INDEX trials_started ON trials (started);"
)
_INSERT = "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT = (
    "SELECT id, status, started, experiment, variant, main, note, problem, "
    "record_mtime_ns, record_size, record_inode"
)


@dataclass(frozen=True)
class Reading:
    """What a reader of the index will ask of each trial besides its brief: the values at
    JSON paths (``extract``, e.g. ``$.metrics."rmse"``, as ``Entry.extracted``), read by
    SQLite without decoding the rest, and whether it wants the summary's text now
    (``texts``; a table of briefs leaves it in the index, for ``read_texts`` if need be)."""

    extract: Sequence[str] = ()
    texts: bool = True


WHOLE_SUMMARIES = Reading()


class IndexUnavailable(Exception):
    """``index.sqlite`` is missing, damaged, locked too long, or from another version."""


class Entry:
    """A trial's summary and the stamp of the record it was read from (None: no record).

    An entry read from the index holds its ``brief`` and the summary's JSON text; the whole
    summary is decoded when first asked for (``decode_all`` decodes many at once).
    """

    __slots__ = ("_printable", "_summary", "_text", "brief", "extracted", "stamp")

    def __init__(self, summary: TrialSummary, stamp: Stamp | None) -> None:
        self._summary: TrialSummary | None = summary
        self._text: str | None = None
        self._printable = False
        self.brief = summary.brief()
        self.stamp = stamp
        # The values at the JSON paths ``read`` was asked for, in their order (None: not
        # read from the index, or its summary is JSON only Python reads, with a NaN).
        self.extracted: tuple[Any, ...] | None = None

    @classmethod
    def stored(
        cls,
        brief: TrialBrief,
        stamp: Stamp | None,
        text: str | None,
        printable: bool,
        extracted: tuple[Any, ...] | None = None,
    ) -> Entry:
        """An entry as the index holds it, its summary still encoded as ``text`` (None:
        left in the index), which ``list --json`` may print as it is if ``printable``."""
        entry = cls.__new__(cls)
        entry._summary, entry._text, entry.brief, entry.stamp = None, text, brief, stamp
        entry._printable, entry.extracted = printable, extracted
        return entry

    @property
    def undecodable(self) -> bool:
        """Whether this entry has neither its summary nor the text to decode it from."""
        return self._summary is None and self._text is None

    def with_text(self, text: str, printable: bool) -> Entry:
        """This entry, with the summary's text read from the index afterwards."""
        return Entry.stored(self.brief, self.stamp, text, printable, self.extracted)

    @property
    def summary(self) -> TrialSummary:
        """The whole summary (decoded now if it was not yet)."""
        if self._summary is None:
            decode_all([self])
        assert self._summary is not None
        return self._summary

    @property
    def encoded(self) -> str | None:
        """The index's JSON text of the summary, as ``list --json`` prints it (None: not
        from the index, or not standard JSON: with a NaN or an infinity, which that output
        spells otherwise, or damaged)."""
        return self._text if self._printable else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return (self.summary, self.stamp) == (other.summary, other.stamp)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entry({self.summary!r}, {self.stamp!r})"


def decode_all(entries: Iterable[Entry]) -> None:
    """Decode the summaries of ``entries`` not yet decoded, all in one ``json.loads``: one
    call for 100,000 rows costs half as much as 100,000 calls."""
    pending = [entry for entry in entries if entry._summary is None]
    if not pending:
        return
    if any(entry._text is None for entry in pending):
        raise ValueError("a summary left in the index: read its text first (read_texts)")
    decoded = json.loads("[" + ",".join(entry._text or "" for entry in pending) + "]")
    for entry, values in zip(pending, decoded, strict=True):
        values["tracked"] = tuple(values["tracked"])
        entry._summary = TrialSummary.from_fields(values)


def index_path(trials_folder: Path) -> Path:
    """Where a trials folder's index lives."""
    return trials_folder / INDEX_NAME


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    # mode=rw and mode=ro never create the file: a deleted index stays deleted until rebuilt.
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    return connection


def _connect_checked(path: Path, mode: str) -> sqlite3.Connection:
    connection = _connect(path, mode)
    try:
        version = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    except BaseException:
        connection.close()
        raise
    if version is None or version[0] != INDEX_VERSION:
        connection.close()
        raise IndexUnavailable(f"{path} was built by another version of mitosis-nb")
    return connection


@contextlib.contextmanager
def _opened(trials_folder: Path, mode: str) -> Iterator[sqlite3.Connection]:
    path = index_path(trials_folder)
    if not path.is_file():
        raise IndexUnavailable(f"{path} is missing")
    try:
        try:
            connection = _connect_checked(path, mode)
        except sqlite3.OperationalError as error:
            # A writer killed mid-update leaves a hot journal, which only a writable
            # connection can roll back: a reader that may write does so, then reads.
            if mode != "ro" or "readonly" not in str(error) or not os.access(path, os.W_OK):
                raise
            connection = _connect_checked(path, "rw")
    except sqlite3.Error as error:
        raise IndexUnavailable(f"{path} is damaged or locked ({error})") from None
    try:
        yield connection
    except sqlite3.Error as error:
        raise IndexUnavailable(f"{path} is damaged or locked ({error})") from None
    finally:
        connection.close()


def _row(entry: Entry) -> tuple[Any, ...]:
    summary = entry.summary
    stamp = entry.stamp or (None, None, None)
    encoded = json.dumps(summary.as_dict())
    main = json.dumps(summary.main)
    return (*summary.brief()[:5], main, summary.note, summary.problem, encoded, *stamp)


def _entries(rows: list[tuple[Any, ...]], paths: int) -> dict[str, Entry]:
    # Every row's main, and what it has at the paths, in one json.loads: 100,000 separate
    # calls cost twice as much. SQLite gives SQL NULL for a path a summary lacks.
    texts = [row[5] for row in rows]
    for row in rows:
        texts += ("null" if text is None else text for text in row[13 : 13 + paths])
    decoded = json.loads("[" + ",".join(texts) + "]")
    entries = {}
    mains = decoded[: len(rows)]
    for number, (row, main) in enumerate(zip(rows, mains, strict=True)):
        trial_id, status, started, experiment, variant, _, note, problem = row[:8]
        if not isinstance(trial_id, str) or not isinstance(status, str):
            raise TypeError(f"a row without an id or a status: {row[:2]!r}")
        brief = TrialBrief(trial_id, status, started, experiment, variant, main, note, problem)
        at = len(rows) + number * paths
        text, whole = row[11], bool(row[12])
        extracted = tuple(decoded[at : at + paths]) if paths and whole else None
        entries[trial_id] = Entry.stored(brief, _stamp(row[8:11]), text, whole, extracted)
    return entries


def _stamp(columns: tuple[Any, ...]) -> Stamp | None:
    return None if None in columns else (columns[0], columns[1], columns[2])


def read(trials_folder: Path, reading: Reading = WHOLE_SUMMARIES) -> dict[str, Entry]:
    """Every cached entry, by trial id, as ``reading`` asks; ``IndexUnavailable`` if the
    index cannot be used."""
    paths, texts = reading.extract, reading.texts
    # A row's text is printed as it is only if SQLite finds it whole. SQLite's JSON reader
    # refuses a NaN, which Python's writes: such a row extracts nothing, and is decoded in
    # Python when asked (as is one damaged, which then fails and is read from its record).
    text = "summary" if texts else "NULL"
    valid = "json_valid(summary)" if texts or paths else "0"
    extract = "".join(", CASE WHEN json_valid(summary) THEN summary -> ? END" for _ in paths)
    with _opened(trials_folder, "ro") as connection:
        query = f"{_SELECT}, {text}, {valid}{extract} FROM trials"
        rows = connection.execute(query, tuple(paths)).fetchall()
    try:
        return _entries(rows, len(paths))
    except (TypeError, ValueError, KeyError) as error:  # rows someone else wrote
        path = index_path(trials_folder)
        raise IndexUnavailable(f"{path} holds rows it cannot read ({error})") from None


def read_texts(trials_folder: Path) -> dict[str, tuple[Stamp | None, str, bool]]:
    """Each row's stamp, its summary's JSON text, and whether SQLite finds that whole JSON,
    by trial id; ``IndexUnavailable`` if the index cannot be used."""
    query = (
        "SELECT id, record_mtime_ns, record_size, record_inode, summary, json_valid(summary) "
        "FROM trials"
    )
    with _opened(trials_folder, "ro") as connection:
        rows = connection.execute(query).fetchall()
    return {row[0]: (_stamp(row[1:4]), row[4], bool(row[5])) for row in rows}


def update(
    trials_folder: Path,
    entries: Iterable[Entry],
    remove: Iterable[str] = (),
    while_locked: Callable[[], object] | None = None,
) -> None:
    """Insert or replace ``entries`` and drop the ``remove`` ids, in one transaction.

    Several processes may update at once: ``BEGIN IMMEDIATE`` takes the write lock up
    front and the busy timeout waits for it, so no update is half-applied.
    ``while_locked`` runs before the commit, still holding the lock (a file that must
    change with the index, one writer at a time); if it raises, nothing is committed.
    """
    rows = [_row(entry) for entry in entries]
    gone = [(trial_id,) for trial_id in remove]
    with _opened(trials_folder, "rw") as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(_INSERT, rows)
            connection.executemany("DELETE FROM trials WHERE id = ?", gone)
            if while_locked is not None:
                while_locked()
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def _build(path: Path, entries: Iterable[Entry]) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # A private file nobody else sees yet: no journal, no syncs; `replacing` syncs it once.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(_SCHEMA)
        connection.execute("BEGIN")
        connection.execute("INSERT INTO meta VALUES ('version', ?)", (INDEX_VERSION,))
        connection.executemany(_INSERT, (_row(entry) for entry in entries))
        connection.execute("COMMIT")
    finally:
        connection.close()


def _lock_old(path: Path) -> sqlite3.Connection | None:
    # Holding the old file's write lock while replacing it: a crashed writer's journal is
    # rolled back first (never onto the new file), and no one writes mid-replace.
    try:
        connection = _connect(path, "rw")
        connection.execute("BEGIN EXCLUSIVE")
        return connection
    except sqlite3.Error:
        return None


def rebuild(trials_folder: Path, entries: Iterable[Entry]) -> None:
    """Write a fresh index of exactly ``entries``, replacing the old one atomically."""
    path = index_path(trials_folder)
    with replacing(path) as temp:
        _build(temp, entries)
        old = _lock_old(path) if path.is_file() else None
        if old is None:
            # The old file is damaged or absent: a journal beside it belongs to nothing.
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + "-journal").unlink()
    if old is not None:
        with contextlib.suppress(sqlite3.Error):
            old.execute("ROLLBACK")
        old.close()
