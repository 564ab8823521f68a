"""Trial ids: short, sortable by start time, unique once their folder is created."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from mitosis.errors import TrialNotFoundError

_Match = TypeVar("_Match")

TRIAL_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def make_trial_id(started: datetime, random_hex: str) -> str:
    """Return an id like ``20261124-190512-3f9c2a`` from a UTC start time and 6 hex digits."""
    return f"{started:%Y%m%d-%H%M%S}-{random_hex[:6]}"


def is_trial_id(name: str) -> bool:
    """Whether a folder name is a trial id (and not ``variants``, a temp file, ...)."""
    return bool(TRIAL_ID_PATTERN.match(name))


def matches_id(trial_id: str, query: str) -> bool:
    """Whether ``query`` designates ``trial_id``: the whole id or a prefix of its random part."""
    return trial_id == query or (len(query) >= 1 and trial_id.rsplit("-", 1)[-1].startswith(query))


# What mitosis-nb itself writes at the top of a trials folder (DESIGN.md section 3 and
# docs/contract-changes.md), besides trial folders: the index, its journal and its data
# parts, the experiments' pages, the variant registry, shared assets, the step cache,
# submitit's folder, temp files.
_OWN_ENTRIES = re.compile(
    r"^(index\.(html|sqlite.*)|index-data|experiment-[^/]*\.html|variants|_assets|step-cache"
    r"|\.slurm|\.tmp-.*)$"
)


def is_own_entry(name: str) -> bool:
    """Whether a name at the top of a trials folder is one that mitosis-nb writes."""
    return is_trial_id(name) or bool(_OWN_ENTRIES.match(name))


def the_one_match(
    query: str, matches: Sequence[_Match], names: Sequence[str], where: object
) -> _Match:
    """The one trial ``query`` names among ``matches`` (``names`` are their ids), or a
    refusal that says there is none in ``where``, or that the query needs more of the id."""
    if not matches:
        raise TrialNotFoundError(f"no trial {query!r} in {where}; `mitosis-nb list` shows the ids.")
    if len(matches) > 1:
        shown = ", ".join(names[:5])
        raise TrialNotFoundError(f"{query!r} matches several trials ({shown}); give more of it.")
    return matches[0]
