"""A trial's summary: the few fields of its record that listing, the index and the site show."""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol

UNREADABLE = "unreadable"
# A trial the original mitosis (0.6.x) wrote: listed and linked, never a record of ours.
LEGACY = "legacy"


@dataclass(frozen=True)
class TrialSummary:
    """One row of ``list``, of ``index.sqlite`` and of ``index.html``.

    ``problem`` says why a trial is ``unreadable``, or flags a run that cannot be checked
    (running on another host). ``has_page``/``has_notebook`` say which files exist, so the
    site never links to a page a dead run never published. ``page`` is set only for a
    ``legacy`` trial: its page's path from the trials folder (the original's own name for it).
    """

    id: str
    status: str
    started: str | None = None
    experiment: str | None = None
    variant: str | None = None
    iteration: int | None = None
    note: str | None = None
    main: Any = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    commit: str | None = None
    debug: bool = False
    error_kind: str | None = None
    hostname: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    has_page: bool = False
    has_notebook: bool = False
    problem: str | None = None
    page: str | None = None
    # Flat ``STEP.ARG`` keys: each parameter's value (see ``parameter_value``), its variant
    # name or literal source, and which of them are tracked (the trial's variant).
    params: Mapping[str, Any] = field(default_factory=dict)
    variants: Mapping[str, Any] = field(default_factory=dict)
    tracked: tuple[str, ...] = ()
    resources: Mapping[str, Any] = field(default_factory=dict)  # what the trial cost

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, for ``list --json`` and the site."""
        # Shallow on purpose: dataclasses.asdict deep-copies, which `list` pays 10,000 times.
        data = dict(self.__dict__)
        data["metrics"] = dict(self.metrics)
        data["params"] = dict(self.params)
        data["variants"] = dict(self.variants)
        data["tracked"] = list(self.tracked)
        data["resources"] = dict(self.resources)
        return data

    def field_values(self) -> Mapping[str, Any]:
        """Every field by name, uncopied and to be read only: ``list`` prints 100,000 rows,
        and ``as_dict``'s copies would cost more than printing them."""
        return self.__dict__

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> TrialSummary:
        """A summary of exactly these fields (``page`` may be left out), already checked.

        For the index's 100,000 rows: the generated ``__init__`` of a frozen dataclass sets
        each field through ``object.__setattr__``, which costs more than reading the row.
        """
        values.setdefault("page", None)
        if tuple(values) != _FIELDS:  # quick to tell, when they come in order
            if len(values) != len(_FIELDS):
                raise KeyError(f"fields {sorted(values.keys() ^ set(_FIELDS))}")
            values = {name: values[name] for name in _FIELDS}
        summary = object.__new__(cls)
        summary.__dict__.update(values)
        return summary

    def flagged(self, problem: str) -> TrialSummary:
        """The same summary with a flag a reader should see."""
        return replace(self, problem=problem)

    def brief(self) -> TrialBrief:
        """The fields a ``list`` table shows and filters on."""
        return TrialBrief(
            self.id,
            self.status,
            self.started,
            self.experiment,
            self.variant,
            self.main,
            self.note,
            self.problem,
        )


class TrialBrief(NamedTuple):
    """What ``list`` shows of a trial, and filters it on without a query: read from the
    index's own columns, so that listing 100,000 trials builds no whole summary."""

    id: str
    status: str
    started: str | None
    experiment: str | None
    variant: str | None
    main: Any
    note: str | None
    problem: str | None


_FIELDS = tuple(f.name for f in fields(TrialSummary))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summarize_record(
    trial_id: str, record: Mapping[str, Any], has_page: bool = False, has_notebook: bool = False
) -> TrialSummary:
    """The summary of a checked record; ``trial_id`` is its folder's name."""
    git, environment, error = (_mapping(record.get(key)) for key in ("git", "environment", "error"))
    metrics = record.get("metrics")
    pid = record.get("pid")
    iteration = record.get("iteration")
    return TrialSummary(
        id=trial_id,
        status=str(record["status"]),
        started=_text(record.get("started")),
        experiment=_text(record.get("experiment")),
        variant=_text(record.get("variant")),
        iteration=iteration if isinstance(iteration, int) else None,
        note=_text(record.get("note")),
        main=record.get("main"),
        metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
        duration_s=_number(record.get("duration_s")),
        commit=_text(git.get("commit")),
        debug=bool(record.get("debug")),
        error_kind=_text(error.get("kind")),
        hostname=_text(environment.get("hostname")),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        pid_start=_text(record.get("pid_start")),
        has_page=has_page,
        has_notebook=has_notebook,
        resources=dict(_mapping(record.get("resources"))),
        **_parameters(record),
    )


def parameter_value(rendering: Any) -> Any:
    """A parameter's value as listings hold it: numbers, strings and booleans as themselves,
    anything else as the record's short rendering of it."""
    if not isinstance(rendering, str):
        return rendering
    try:
        value = ast.literal_eval(rendering)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return rendering
    return value if isinstance(value, (bool, int, float, str)) else rendering


def _parameters(record: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    variants: dict[str, Any] = {}
    tracked: list[str] = []
    for step in record.get("steps") or []:
        if not isinstance(step, Mapping):
            continue
        for arg, param in _mapping(step.get("params")).items():
            param = _mapping(param)
            name = f"{step.get('name')}.{arg}"
            params[name] = parameter_value(param.get("value"))
            variants[name] = param.get("variant", param.get("source"))
            if param.get("tracked", True):
                tracked.append(name)
    return {"params": params, "variants": variants, "tracked": tuple(tracked)}


def unreadable_summary(
    trial_id: str, problem: str, has_page: bool = False, has_notebook: bool = False
) -> TrialSummary:
    """The row of a trial whose record cannot be read (its page may still be there)."""
    return TrialSummary(
        id=trial_id,
        status=UNREADABLE,
        problem=problem,
        has_page=has_page,
        has_notebook=has_notebook,
    )


class Dated(Protocol):
    """A summary or a brief: its trial's id and when it started."""

    @property
    def id(self) -> str: ...
    @property
    def started(self) -> str | None: ...


# How mitosis-nb writes ``started``: UTC, to the microsecond (isoformat leaves out a zero
# fraction). Such a text sorts as its time does: 100,000 of them need not be parsed.
_UTC = "+00:00"
_WHOLE_SECONDS = len("2026-01-01T00:00:00+00:00")
_MICROSECONDS = len("2026-01-01T00:00:00.000000+00:00")


def start_order(summary: Dated) -> tuple[str, str]:
    """The key that orders trials by when they started, oldest first.

    A sweep's ids all carry the moment it was submitted, so within a sweep only ``started``
    tells which trial ran first; a record without it falls back on its id's time.
    """
    started = summary.started
    if started and started.endswith(_UTC):
        if len(started) == _MICROSECONDS:
            return started[:-6], summary.id
        if len(started) == _WHOLE_SECONDS:
            return f"{started[:-6]}.000000", summary.id
    moment = _start_of(summary)
    with contextlib.suppress(OverflowError):
        moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}", summary.id


def start_key(summary: TrialSummary) -> str:
    """A text that sorts as ``start_order`` does: for a page's script to place a row."""
    return " ".join(start_order(summary))


def _start_of(summary: Dated) -> datetime:
    try:
        started = datetime.fromisoformat(summary.started or "")
    except ValueError:
        try:
            started = datetime.strptime(summary.id[:15], "%Y%m%d-%H%M%S")
        except ValueError:
            started = datetime.min
    return started if started.tzinfo else started.replace(tzinfo=timezone.utc)
