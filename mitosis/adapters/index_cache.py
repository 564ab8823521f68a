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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from mitosis.atomic import replacing
from mitosis.core.summary import TrialSummary

INDEX_NAME = "index.sqlite"
INDEX_VERSION = "5"  # 5: each summary whole, as one JSON object
# Long enough to wait out another process's update or rebuild, short enough to fall back.
BUSY_TIMEOUT_S = 30.0

Stamp = tuple[int, int, int]  # the record file's mtime_ns, size, inode

# A row is its trial's whole summary as one JSON object (listing 100,000 trials reads them
# all, and one object decodes faster than twenty columns become a summary), plus the few
# columns a person querying the file by hand would look for first.
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE trials (id TEXT PRIMARY KEY, status TEXT, started TEXT, experiment TEXT, "
    "summary TEXT NOT NULL, record_mtime_ns INTEGER, record_size INTEGER, record_inode INTEGER);"
    "CREATE INDEX trials_started ON trials (started);"
)
_INSERT = "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT = "SELECT summary, record_mtime_ns, record_size, record_inode FROM trials"


class IndexUnavailable(Exception):
    """``index.sqlite`` is missing, damaged, locked too long, or from another version."""


class Entry(NamedTuple):
    """A trial's summary and the stamp of the record it was read from (None: no record).

    A named tuple: 100,000 of them are made per listing, at a fraction of a dataclass's cost.
    """

    summary: TrialSummary
    stamp: Stamp | None
    # The row's JSON text, as ``list --json`` prints it (None: not from the index, or it
    # holds a NaN or an infinity, which that output spells otherwise).
    encoded: str | None = None


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
    return (summary.id, summary.status, summary.started, summary.experiment, encoded, *stamp)


def _entries(rows: list[tuple[Any, ...]]) -> dict[str, Entry]:
    # One json.loads for every row at once: 100,000 separate calls cost twice as much.
    decoded = json.loads("[" + ",".join(row[0] for row in rows) + "]")
    entries = {}
    for row, values in zip(rows, decoded, strict=True):
        values["tracked"] = tuple(values["tracked"])
        stamp = row[1:]
        summary = TrialSummary.from_fields(values)
        text = None if "NaN" in row[0] or "Infinity" in row[0] else row[0]
        entries[summary.id] = Entry(summary, None if None in stamp else stamp, text)
    return entries


def read(trials_folder: Path) -> dict[str, Entry]:
    """Every cached entry, by trial id; ``IndexUnavailable`` if the index cannot be used."""
    with _opened(trials_folder, "ro") as connection:
        rows = connection.execute(_SELECT).fetchall()
    try:
        return _entries(rows)
    except (TypeError, ValueError, KeyError) as error:  # rows someone else wrote
        path = index_path(trials_folder)
        raise IndexUnavailable(f"{path} holds rows it cannot read ({error})") from None


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
