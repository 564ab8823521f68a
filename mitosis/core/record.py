"""The ``trial.yaml`` provenance record: its schema, statuses and summaries of results."""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

SCHEMA_VERSION = 1
# `queued`: submitted to Slurm, waiting for a node (the record holds its job's id).
STATUSES = ("running", "succeeded", "failed", "interrupted", "queued")
FINAL_STATUSES = ("succeeded", "failed", "interrupted")
ERROR_KINDS = ("exception", "timeout", "kernel_died", "interrupted", "storage")
# A write the disk refused (full, over quota, past a file-size limit, failing): a trial that
# ends on one is `failed` with `error.kind: storage`, and the run exits 74.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
REQUIRED_FIELDS = {"record": int, "id": str, "experiment": str, "status": str}


def summarize_value(value: Any, limit: int = 200) -> Any:
    """A YAML- and JSON-safe stand-in for a step's ``main`` or a metric.

    Numbers (NaN and infinity too), strings, booleans and None are kept (numpy scalars
    become Python ones);
    anything else is shown by a shortened ``repr``, since records must never need the
    experiment's classes to be read.
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) else value[:limit]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# JSON has no NaN or infinity, so across JSON (a notebook's outputs) they travel tagged.
_NON_FINITE = "mitosis-float"


def _replace_non_finite(value: Any, replace: Callable[[float], Any]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return replace(value)
    if isinstance(value, dict):
        return {key: _replace_non_finite(item, replace) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_non_finite(item, replace) for item in value]
    return value


def to_json_safe(value: Any) -> Any:
    """``value`` with every NaN and infinity tagged, so strict JSON can carry it."""
    return _replace_non_finite(value, lambda number: {_NON_FINITE: str(number)})


def from_json_safe(value: Any) -> Any:
    """The inverse of ``to_json_safe``."""
    if isinstance(value, dict):
        if set(value) == {_NON_FINITE}:
            return float(value[_NON_FINITE])
        return {key: from_json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_safe(item) for item in value]
    return value


def plain_json(value: Any) -> Any:
    """``value`` for JSON meant for other programs: NaN and infinity as ``"nan"``, ``"inf"``."""
    return _replace_non_finite(value, str)


# One encoder for every line: json.dumps with options builds a new one per call.
_PLAIN_ENCODER = json.JSONEncoder(default=str, allow_nan=False)


def dumps_plain(value: Any) -> str:
    """One line of JSON for other programs, as ``plain_json`` gives it; fast when ``value``
    holds no NaN or infinity, which is almost always."""
    try:
        return _PLAIN_ENCODER.encode(value)
    except ValueError:
        return json.dumps(plain_json(value), default=str)


def summarize_metrics(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    """Metrics with string names and summarized values."""
    return {str(name): summarize_value(value) for name, value in metrics.items()}


def record_problem(data: Any) -> tuple[str | None, str] | None:
    """What makes ``data`` unreadable as a record: ``(field or None, problem)``, or None."""
    if not isinstance(data, dict):
        return None, "is not a trial record (expected a mapping)"
    for field, kind in REQUIRED_FIELDS.items():
        value = data.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            return (field if field in data else None), f"has no valid {field!r} field"
    if data["record"] > SCHEMA_VERSION:
        return "record", (
            f"uses record schema {data['record']}, newer than this mitosis-nb "
            f"understands ({SCHEMA_VERSION}); upgrade mitosis-nb"
        )
    if data["status"] not in STATUSES:
        return "status", f"has an unknown status {data['status']!r}"
    return _structure_problem(data)


_MAPPINGS = ("metrics", "timings", "git", "environment", "error")


def _structure_problem(data: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """What in ``data``'s sections cannot be read as the record's parts (the values
    themselves are kept as written)."""
    for field in _MAPPINGS:
        if not isinstance(data.get(field), (Mapping, type(None))):
            return field, f"has no valid {field!r} field"
    steps = data.get("steps")
    if steps is None:
        return None
    if not isinstance(steps, list) or not all(_is_step(step) for step in steps):
        return "steps", "has no valid 'steps' field"
    return None


def _is_step(step: Any) -> bool:
    if not isinstance(step, Mapping) or not isinstance(step.get("name"), str):
        return False
    params = step.get("params")
    if params is None:
        return True
    return isinstance(params, Mapping) and all(isinstance(p, Mapping) for p in params.values())
