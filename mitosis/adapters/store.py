"""The trials folder on disk: trial folders, their records, and finding them again."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from mitosis.atomic import write_atomic
from mitosis.core.record import check_record
from mitosis.core.trial_id import is_trial_id, make_trial_id, matches_id
from mitosis.errors import RecordError, TrialNotFoundError, TrialsFolderError

RECORD_NAME = "trial.yaml"


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


class _PlainDumper(yaml.SafeDumper):
    """A safe dumper that writes shared values twice instead of as ``&id001`` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """YAML as mitosis writes it: block style, keys in insertion order, unicode kept."""
    return yaml.dump(
        data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write a trial's record atomically."""
    write_atomic(folder / RECORD_NAME, dump_yaml(record))


def read_record(folder: Path) -> dict[str, Any]:
    """Read and check a trial's record; ``RecordError`` names the file and line if broken."""
    path = folder / RECORD_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path} is missing.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} cannot be read: {error}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise RecordError(f"{path} is not a valid record{line}: {problem}.") from None
    return check_record(data, str(path))


def trial_folders(trials_folder: Path) -> Iterator[Path]:
    """Every trial folder, oldest first."""
    if not trials_folder.is_dir():
        return iter(())
    names = sorted(entry.name for entry in os.scandir(trials_folder) if is_trial_id(entry.name))
    return (trials_folder / name for name in names)


def find_trial(trials_folder: Path, query: str) -> Path:
    """The folder of the trial named by a whole id or a unique prefix of its random part."""
    matches = [folder for folder in trial_folders(trials_folder) if matches_id(folder.name, query)]
    if not matches:
        raise TrialNotFoundError(
            f"no trial {query!r} in {trials_folder}; `mitosis-nb list` shows the ids."
        )
    if len(matches) > 1:
        shown = ", ".join(folder.name for folder in matches[:5])
        raise TrialNotFoundError(f"{query!r} matches several trials ({shown}); give more of it.")
    return matches[0]
