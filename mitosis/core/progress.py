"""Where a running trial is, as its heartbeat says: which cell of how many, when its notebook
last wrote output, and when its runner last said it was alive.

The runner writes these fields into the trial's ``heartbeat`` file (``mitosis.live``);
``show`` and the index page read them back and say, for instance,
``running · cell 3/5 · 12 s``: the third of five cells runs, and its last output (or, before
any, the start of the execution) was 12 seconds ago. Pure: the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "STALE_BEATS",
    "Progress",
    "parse_progress",
    "progress_details",
    "progress_label",
    "stale",
]

# A heartbeat older than this many beats is a runner gone quiet.
STALE_BEATS = 3


@dataclass(frozen=True)
class Progress:
    """A running trial's heartbeat: ``time`` it was written (every ``every_s`` seconds at
    least), the ``cell`` running of ``cells`` (1-based, the notebook's cells as it shows
    them), the ``step`` that cell runs, when the execution began (``since``), its last output,
    when the notebook had run to its end (``executed``: the trial is being published), whether
    a page of the run so far exists, and how the trial ``ended`` once it has."""

    time: datetime | None
    every_s: float | None = None
    cell: int | None = None
    cells: int | None = None
    step: str | None = None
    since: datetime | None = None
    last_output: datetime | None = None
    executed: datetime | None = None
    page: bool = False
    ended: str | None = None

    @property
    def publishing(self) -> bool:
        """Its notebook has run to its end, its final record is not written yet."""
        return self.executed is not None and self.ended is None


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_progress(data: Mapping[str, Any]) -> Progress:
    """A heartbeat's fields, whatever wrote them: a field of the wrong type is left out."""
    return Progress(
        time=_moment(data.get("time")),
        every_s=_number(data.get("every_s")),
        cell=_whole(data.get("cell")),
        cells=_whole(data.get("cells")),
        step=data.get("step") if isinstance(data.get("step"), str) else None,
        since=_moment(data.get("since")),
        last_output=_moment(data.get("last_output")),
        executed=_moment(data.get("executed")),
        page=data.get("page") is True,
        ended=data.get("ended") if isinstance(data.get("ended"), str) else None,
    )


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def stale(progress: Progress, now: datetime) -> bool:
    """Whether the heartbeat is older than ``STALE_BEATS`` of its own beats."""
    if progress.time is None or progress.every_s is None or progress.ended is not None:
        return False
    return (now - progress.time).total_seconds() > STALE_BEATS * progress.every_s


def progress_label(progress: Progress, now: datetime) -> str:
    """What follows ``running ·`` in the index row and ``show``: ``cell 3/5 · 12 s``, the age
    of the last output (or of the execution's start, before any output); and
    ``no heartbeat for 5 min`` once the runner has gone quiet; ``publishing · 3 s`` once the
    notebook has run to its end (3 s ago) and its page and final record wait to be written."""
    parts = []
    if progress.publishing and progress.executed is not None:
        parts += ["publishing", _ago(progress.executed, now)]
    else:
        if progress.cell is not None and progress.cells is not None:
            parts.append(f"cell {progress.cell}/{progress.cells}")
        quiet_since = progress.last_output or progress.since
        if quiet_since is not None:
            parts.append(_ago(quiet_since, now))
    if stale(progress, now) and progress.time is not None:
        parts.append(f"no heartbeat for {_ago(progress.time, now)}")
    return " · ".join(parts) or "starting"


def _clock(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%H:%M:%S} UTC"


def progress_details(progress: Progress, now: datetime) -> str:
    """The same at length, for ``show`` and the page: each time with its clock time."""
    parts = _where_details(progress, now)
    if progress.time is not None:
        beat = f"heartbeat {_ago(progress.time, now)} ago, at {_clock(progress.time)}"
        parts.append(beat + (" (stale: its runner has gone quiet)" if stale(progress, now) else ""))
    return ", ".join(parts) or "no progress yet"


def _where_details(progress: Progress, now: datetime) -> list[str]:
    """Where the trial is: its cell and last output, or that it is being published."""
    if progress.publishing and progress.executed is not None:
        ran = progress.executed
        return [
            f"its notebook ran to its end {_ago(ran, now)} ago, at {_clock(ran)}",
            "its page and record are being written",
        ]
    parts = []
    if progress.cell is not None and progress.cells is not None:
        step = f" (step {progress.step})" if progress.step else ""
        parts.append(f"cell {progress.cell} of {progress.cells}{step}")
    if progress.last_output is not None:
        last = progress.last_output
        parts.append(f"last output {_ago(last, now)} ago, at {_clock(last)}")
    elif progress.since is not None:
        parts.append(f"no output since the run began {_ago(progress.since, now)} ago")
    return parts
