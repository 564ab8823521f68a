"""The trials folder on disk: trial folders, their records, and finding them again."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mitosis.atomic import TEMP_PREFIX, create_marker, write_atomic
from mitosis.core.record import record_problem
from mitosis.core.trial_id import is_trial_id, make_trial_id, matches_id, the_one_match
from mitosis.core.trial_record import RecordDamage, TrialRecord, parse_record, record_data
from mitosis.errors import RecordError, TrialsFolderError

Stamp = tuple[int, int, int]  # a record file's mtime_ns, size, inode
RECORD_NAME = "trial.yaml"
# What a debug trial ran beyond its commit: ``git diff`` plus untracked files.
PATCH_NAME = "uncommitted.patch"
RECORD_REFUSED_NAME = ".final-record-refused"


def check_folder(trials_folder: Path) -> None:
    """Refuse a trials folder that is a file, or lies under one, before anything reads it."""
    for place in (trials_folder, *trials_folder.parents):
        if place.is_dir():
            return
        if place.exists():
            under = "" if place == trials_folder else f" (it lies under the file {place})"
            raise TrialsFolderError(
                f"the trials folder {trials_folder} is not a directory{under}; choose a folder "
                "with -F or set [tool.mitosis] trials-folder."
            )


def ensure_folder(trials_folder: Path) -> None:
    """Create the trials folder, or refuse clearly when that is impossible."""
    try:
        trials_folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TrialsFolderError(
            f"the trials folder {trials_folder} exists but is not a directory; "
            "move that file away or set [tool.mitosis] trials-folder."
        ) from None
    except OSError as error:
        raise TrialsFolderError(
            f"cannot create the trials folder {trials_folder}: {error.strerror}."
        ) from None
    if not os.access(trials_folder, os.W_OK | os.X_OK):
        raise TrialsFolderError(
            f"the trials folder {trials_folder} is not writable; fix its permissions "
            "or choose another with -F."
        )


def create_trial_folder(trials_folder: Path, started: datetime) -> tuple[str, Path]:
    """Allocate a new trial id by creating its folder; ``mkdir`` makes ids unique."""
    for _ in range(100):
        trial_id = make_trial_id(started, secrets.token_hex(3))
        folder = trials_folder / trial_id
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise TrialsFolderError(f"cannot create {folder}: {error.strerror}.") from None
        return trial_id, folder
    raise TrialsFolderError(f"could not allocate a fresh trial id in {trials_folder}.")


# libyaml's emitter where installed: the same safe YAML, written about ten times faster,
# which a trial pays twice and the synthetic records of the listing benchmark 10,000 times.
if TYPE_CHECKING or not yaml.__with_libyaml__:  # noqa: SIM108 (mypy takes no conditional base)
    _SafeDumper = yaml.SafeDumper
else:
    _SafeDumper = yaml.CSafeDumper


class _PlainDumper(_SafeDumper):
    """A safe dumper that writes shared values twice instead of as ``&id001`` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """YAML as mitosis writes it: block style, keys in insertion order, unicode kept."""
    return yaml.dump(
        data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def write_record(folder: Path, record: TrialRecord) -> None:
    """Write a trial's record atomically."""
    write_atomic(folder / RECORD_NAME, dump_yaml(record_data(record)))


def write_final_record(folder: Path, record: TrialRecord) -> None:
    """Write a trial's last record; if the disk refuses it, leave a mark that says so for
    whoever finds the trial still ``running`` later, then raise."""
    try:
        write_record(folder, record)
    except OSError:
        with contextlib.suppress(OSError):
            create_marker(folder / RECORD_REFUSED_NAME)
        raise


def final_record_refused(folder: Path) -> bool:
    """Whether the runner of a trial could not write its final record (a full disk)."""
    return (folder / RECORD_REFUSED_NAME).exists()


def _safe_load(text: str) -> Any:
    # libyaml's safe loader where installed: the same safe subset as yaml.safe_load, and
    # several times faster, which `list` and `index` over thousands of records need.
    if yaml.__with_libyaml__:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    return yaml.safe_load(text)


def _line_of(text: str, field: str | None) -> int:
    found = re.search(rf"^{re.escape(field)}\s*:", text, re.MULTILINE) if field else None
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _missing(path: Path) -> str:
    temps = sorted(p.name for p in path.parent.glob(f"{TEMP_PREFIX}*"))
    if temps:
        return (
            f"{path} is missing; only the partly written {temps[0]} is there "
            "(its runner was stopped while writing it)."
        )
    if never_started(path.parent):
        return (
            f"trial {path.parent.name} never started: its id was set aside for a sweep that "
            "was stopped (or is still running) before this trial began."
        )
    return f"{path} is missing."


def read_record(folder: Path) -> TrialRecord:
    """Read and check a trial's record; ``RecordError`` names the file and line if broken."""
    return read_record_file(folder / RECORD_NAME)


def drop_reserves(folder: Path) -> None:
    """Give back the room a dead runner held for its final record (``reserve_space``)."""
    for reserve in folder.glob(f"{TEMP_PREFIX}*-reserve"):
        with contextlib.suppress(OSError):
            reserve.unlink()


def unfinished_records(folder: Path) -> list[Path]:
    """Temporary copies of the record that a runner was writing when it stopped."""
    return sorted(folder.glob(f"{TEMP_PREFIX}*-{RECORD_NAME}"))


def read_record_file(path: Path) -> TrialRecord:
    """``read_record`` of the record file at ``path``, wherever it is."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(_missing(path)) from None
    except OSError as error:
        raise RecordError(f"{path} cannot be read: {error.strerror}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise RecordError(f"{path} (line {line}) is not UTF-8 text.") from None
    if not text.strip():
        raise RecordError(f"{path} (line 1) is empty.")
    try:
        data = _safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise RecordError(f"{path} (line {line}) is not valid YAML: {problem}.") from None
    try:
        return parse_record(data)
    except RecordDamage as damage:
        line = _line_of(text, damage.field)
        raise RecordError(f"{path} (line {line}) {damage.problem}.") from None


# A record's environment (every package and variable) is most of its text; listing needs
# only the host from it. Mitosis writes top-level keys at column 0 and the section's
# entries indented below, so the section ends at the next line that is not indented.
_ENVIRONMENT = re.compile(r"^environment:\n(?:[ \t].*\n|\n)*", re.MULTILINE)
_HOSTNAME = re.compile(r"^  hostname: .*\n", re.MULTILINE)


def read_record_for_listing(folder: Path) -> dict[str, Any]:
    """The record as ``read_record`` gives it, but of its ``environment`` only ``hostname``.

    Parsing skips the packages and variables, several times faster for ``list`` and
    ``index`` over thousands of records; anything unusual is read whole, as before.
    """
    try:
        text = (folder / RECORD_NAME).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return record_data(read_record(folder))  # says exactly what is wrong
    section = _ENVIRONMENT.search(text)
    if section is None:
        return record_data(read_record(folder))
    host = _HOSTNAME.search(section.group(0))
    kept = "environment:\n" + host.group(0) if host else "environment: {}\n"
    try:
        data = _safe_load(text[: section.start()] + kept + text[section.end() :])
    except yaml.YAMLError:
        return record_data(read_record(folder))
    if record_problem(data) is not None:
        return record_data(read_record(folder))
    return data  # type: ignore[no-any-return]


def trial_names(trials_folder: Path) -> list[str]:
    """The name of every trial folder, oldest first."""
    if not trials_folder.is_dir():
        return []
    return sorted(entry.name for entry in os.scandir(trials_folder) if is_trial_id(entry.name))


def trial_folders(trials_folder: Path) -> Iterator[Path]:
    """Every trial folder, oldest first."""
    return (trials_folder / name for name in trial_names(trials_folder))


def never_started(folder: Path) -> bool:
    """Whether a trial folder is empty: its id was allocated, but no trial ever wrote to it.

    A runner killed between allocating the folder and writing the first record, or a
    sweep stopped before its reserved trials ran, leaves one; there is nothing in it to lose.
    """
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def find_trial(trials_folder: Path, query: str) -> Path:
    """The folder of the trial named by a whole id or a unique prefix of its random part."""
    matches = [folder for folder in trial_folders(trials_folder) if matches_id(folder.name, query)]
    return the_one_match(query, matches, [folder.name for folder in matches], trials_folder)


def record_stamps(trials_folder: Path, names: Iterable[str]) -> list[Stamp | None]:
    """``record_stamp`` of each named trial: one ``stat`` each, no path objects (100,000)."""
    base = f"{trials_folder}{os.sep}"
    stamps: list[Stamp | None] = []
    for name in names:
        try:
            stat = os.stat(f"{base}{name}{os.sep}{RECORD_NAME}")
        except OSError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return stamps


def record_stamp(folder: Path | str) -> Stamp | None:
    """The record's modification time (ns), size and inode; None if it is absent.

    Records are only ever replaced whole (a new inode each time), so any rewrite changes
    the stamp, even one within the file system's timestamp granularity.
    """
    try:
        stat = os.stat(os.path.join(folder, RECORD_NAME))  # a str: 100,000 of them per list
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
