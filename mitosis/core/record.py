"""The ``trial.yaml`` provenance record: its schema, statuses and summaries of results."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("running", "succeeded", "failed", "interrupted")
FINAL_STATUSES = STATUSES[1:]
ERROR_KINDS = ("exception", "timeout", "kernel_died", "interrupted")
REQUIRED_FIELDS = {"record": int, "id": str, "experiment": str, "status": str}


def summarize_value(value: Any, limit: int = 200) -> Any:
    """A YAML- and JSON-safe stand-in for a step's ``main`` or a metric.

    Numbers, strings, booleans and None are kept (numpy scalars become Python ones);
    anything else is shown by a shortened ``repr``, since records must never need the
    experiment's classes to be read.
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:limit]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    return None
