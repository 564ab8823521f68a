"""The trial record as frozen types: ``trial.yaml`` read into them, and written back.

One reader, ``parse_record`` (a YAML mapping to a ``TrialRecord``, or ``RecordDamage``
naming the field at fault), and one writer, ``record_data`` (the mapping the YAML holds).
The schema stays ``record: 1`` as DESIGN section 3 and docs/contract-changes.md describe it.
A record read and written back is the mapping it was: values are kept as read (only the
structure is checked), a field an older mitosis-nb did not write stays unwritten
(``absent``), and fields this version does not know (a later version's) are kept
(``extra``), after the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mitosis.core.record import SCHEMA_VERSION, record_problem

Status = Literal["running", "succeeded", "failed", "interrupted"]


class RecordDamage(Exception):
    """A mapping that is not a readable record: ``field`` (None: the whole) and why."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ParamRecord:
    """One parameter of a step as the record keeps it (``steps[].params.<arg>``)."""

    kind: str  # lookup | literal
    value: str | None  # the value's readable rendering
    fingerprint: str | None
    tracked: bool = True
    variant: str | None = None  # a lookup's variant name
    source: str | None = None  # a literal's canonical source (records since it was added)
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorRecord:
    """What went wrong (``error``): ``kind`` is exception, timeout, kernel_died, interrupted
    or storage; ``step`` the step at fault, if any; ``storage`` a refused write's message
    beside an experiment's own error."""

    kind: str
    step: str | None = None
    type: str | None = None
    message: str | None = None
    traceback: str | None = None
    storage: str | None = None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """One step of the trial (``steps[]``): what ran, with what, and what it returned.

    ``module_step`` marks a step ``mitosis -m`` defined; ``warnings`` and ``defaults`` are
    set once the step has returned (None: not written). ``cache_key`` and its
    ``cache_parts`` say what the step's result depends on; ``cached_from`` (``trial``,
    ``step``) that the step did not run, its result taken from that earlier trial's step."""

    name: str
    run: str | None = None
    lookup: str | None = None
    params: Mapping[str, ParamRecord] = field(default_factory=dict)
    main: Any = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] | None = None
    module_step: bool | None = None
    warnings: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] | None = None
    cache_key: str | None = None
    cache_parts: Mapping[str, Any] | None = None
    cached_from: Mapping[str, Any] | None = None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialRecord:
    """A trial's provenance record (``trial.yaml``), field for field.

    ``schema`` is the YAML's ``record``; ``warnings`` (every step's, set at the end) is
    None when there were none. ``git`` and ``environment`` are kept as mappings: their
    entries are the machine's and the repository's, not the schema's.
    """

    id: str
    experiment: str
    status: Status
    schema: int = SCHEMA_VERSION
    variant: str | None = None
    iteration: int | None = None
    note: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    debug: bool = False
    main: Any = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: ErrorRecord | None = None
    steps: tuple[StepRecord, ...] = ()
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    git: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    command: str | None = None
    template: str | None = None
    mitosis_version: str | None = None
    reproduces: str | None = None
    warnings: tuple[str, ...] | None = None
    # What the trial's kernel tree cost: cpu_s, peak_rss_mb, and gpus where one was visible.
    resources: Mapping[str, Any] | None = None
    absent: frozenset[str] = frozenset()
    extra: Mapping[str, Any] = field(default_factory=dict)


# Each type's fields in the order the YAML holds them, and of those the ones written only
# when set (None: left out), which records before them lack.
_PARAM_FIELDS = ("kind", "variant", "source", "value", "fingerprint", "tracked")
_PARAM_WHEN_SET = frozenset({"variant", "source"})
_ERROR_FIELDS = ("kind", "step", "type", "message", "traceback", "storage")
_ERROR_WHEN_SET = frozenset({"storage"})
_STEP_FIELDS = (
    *("name", "run", "lookup", "params", "main", "metrics", "source"),
    *("module_step", "warnings", "defaults", "cache_key", "cache_parts", "cached_from"),
)
_STEP_WHEN_SET = frozenset(
    {"module_step", "warnings", "defaults", "cache_key", "cache_parts", "cached_from"}
)
_TRIAL_FIELDS = (
    *("record", "id", "experiment", "variant", "iteration", "status", "note", "pid"),
    *("pid_start", "debug", "main", "metrics", "error", "steps", "started", "finished"),
    *("duration_s", "timings", "git", "environment", "command", "template"),
    *("mitosis_version", "reproduces", "warnings", "resources"),
)
_TRIAL_WHEN_SET = frozenset({"warnings", "resources"})


def _absent(
    data: Mapping[str, Any], known: tuple[str, ...], when_set: frozenset[str]
) -> frozenset[str]:
    return frozenset(name for name in known if name not in data and name not in when_set)


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


def _emit(
    pairs: Iterable[tuple[str, Any]],
    when_set: frozenset[str],
    absent: frozenset[str],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    data = {
        name: value
        for name, value in pairs
        if name not in absent and not (name in when_set and value is None)
    }
    data.update(extra)
    return data


def _texts(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if isinstance(value, list) else None


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _param_from(data: Mapping[str, Any]) -> ParamRecord:
    return ParamRecord(
        kind=data.get("kind", ""),
        value=data.get("value"),
        fingerprint=data.get("fingerprint"),
        tracked=data.get("tracked", True),
        variant=data.get("variant"),
        source=data.get("source"),
        absent=_absent(data, _PARAM_FIELDS, _PARAM_WHEN_SET),
        extra=_extra(data, _PARAM_FIELDS),
    )


def _param_data(param: ParamRecord) -> dict[str, Any]:
    pairs = ((name, getattr(param, name)) for name in _PARAM_FIELDS)
    return _emit(pairs, _PARAM_WHEN_SET, param.absent, param.extra)


def _error_from(data: Mapping[str, Any]) -> ErrorRecord:
    return ErrorRecord(
        kind=data.get("kind", ""),
        step=data.get("step"),
        type=data.get("type"),
        message=data.get("message"),
        traceback=data.get("traceback"),
        storage=data.get("storage"),
        absent=_absent(data, _ERROR_FIELDS, _ERROR_WHEN_SET),
        extra=_extra(data, _ERROR_FIELDS),
    )


def error_data(error: ErrorRecord) -> dict[str, Any]:
    """The record's ``error`` mapping for ``error``."""
    pairs = ((name, getattr(error, name)) for name in _ERROR_FIELDS)
    return _emit(pairs, _ERROR_WHEN_SET, error.absent, error.extra)


def _step_from(data: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        name=data["name"],
        run=data.get("run"),
        lookup=data.get("lookup"),
        params={arg: _param_from(entry) for arg, entry in _mapping(data.get("params")).items()},
        main=data.get("main"),
        metrics=_mapping(data.get("metrics")),
        source=data.get("source"),
        module_step=data.get("module_step"),
        warnings=_texts(data.get("warnings")),
        defaults=data.get("defaults"),
        cache_key=data.get("cache_key"),
        cache_parts=data.get("cache_parts"),
        cached_from=data.get("cached_from"),
        absent=_absent(data, _STEP_FIELDS, _STEP_WHEN_SET),
        extra=_extra(data, _STEP_FIELDS),
    )


def _step_data(step: StepRecord) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(step, name) for name in _STEP_FIELDS}
    values["params"] = {arg: _param_data(param) for arg, param in step.params.items()}
    values["metrics"] = dict(step.metrics)
    values["warnings"] = None if step.warnings is None else list(step.warnings)
    return _emit(values.items(), _STEP_WHEN_SET, step.absent, step.extra)


def parse_record(data: Any) -> TrialRecord:
    """The record a YAML mapping holds; ``RecordDamage`` if it is not a readable one."""
    problem = record_problem(data)
    if problem is not None:
        raise RecordDamage(*problem)
    error = data.get("error")
    values = {name: data.get(name) for name in _TRIAL_FIELDS if name != "record"}
    values.update(
        metrics=_mapping(data.get("metrics")),
        error=None if error is None else _error_from(error),
        steps=tuple(_step_from(step) for step in data.get("steps") or ()),
        timings=_mapping(data.get("timings")),
        git=_mapping(data.get("git")),
        environment=_mapping(data.get("environment")),
        debug=bool(data.get("debug")),
        warnings=_texts(data.get("warnings")),
        resources=_mapping(data["resources"]) if data.get("resources") is not None else None,
    )
    return TrialRecord(
        schema=data["record"],
        **values,
        absent=_absent(data, _TRIAL_FIELDS, _TRIAL_WHEN_SET),
        extra=_extra(data, _TRIAL_FIELDS),
    )


def record_data(record: TrialRecord) -> dict[str, Any]:
    """The mapping ``trial.yaml`` holds for ``record``: plain dicts, lists and scalars, in
    the schema's order."""
    values: dict[str, Any] = {name: getattr(record, name, None) for name in _TRIAL_FIELDS}
    values.update(
        record=record.schema,
        metrics=dict(record.metrics),
        error=None if record.error is None else error_data(record.error),
        steps=[_step_data(step) for step in record.steps],
        timings=dict(record.timings),
        git=dict(record.git),
        environment=dict(record.environment),
        warnings=None if record.warnings is None else list(record.warnings),
        resources=None if record.resources is None else dict(record.resources),
    )
    return _emit(values.items(), _TRIAL_WHEN_SET, record.absent, record.extra)


def final_status(error: ErrorRecord | None) -> Status:
    """The status a trial ends with, by its error."""
    if error is None:
        return "succeeded"
    if error.kind == "interrupted":
        return "interrupted"
    return "failed"
