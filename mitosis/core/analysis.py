"""A trial as one flat row: the columns the query grammar, the analysis pages and
``search_trials`` share (``experiment``, ``metrics.<name>``, ``params.<step>.<arg>``, …)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mitosis.core.summary import TrialSummary

__all__ = ["TRIAL_COLUMNS", "analysis_row", "column_getter", "summary_path", "values_getter"]

# The columns every row has (a value or None), in the order a table shows them.
TRIAL_COLUMNS = (
    "id",
    "experiment",
    "status",
    "started",
    "duration_s",
    "iteration",
    "variant",
    "note",
    "debug",
    "commit",
    "host",
    "main",
)


# What a trial cost, as columns ``resources.<name>`` (GPUs stay in the record).
_RESOURCES = ("cpu_s", "peak_rss_mb")


def _plain(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) or value is None else repr(value)


# The attribute of TrialSummary behind each of the trial's own columns.
_ATTRIBUTES = {column: column for column in TRIAL_COLUMNS} | {"host": "hostname"}
_GROUPS = ("metrics", "params", "variants")


def column_getter(summary: TrialSummary) -> Callable[[str], Any]:
    """What ``analysis_row(summary).get`` gives, found column by column without building the
    row: a query over 100,000 trials reads a few columns of each."""

    def get(column: str) -> Any:
        attribute = _ATTRIBUTES.get(column)
        if attribute is not None:
            value = getattr(summary, attribute)
            return _plain(value) if column == "main" else value
        if column == "problem":
            return summary.problem or None
        group, _, name = column.partition(".")
        if group == "resources":
            return _plain(summary.resources.get(name)) if name in _RESOURCES else None
        if group not in _GROUPS:
            return None
        value = getattr(summary, group).get(name)
        return _plain(value) if group == "metrics" else value

    return get


def summary_path(column: str) -> str | None:
    """Where ``column_getter`` finds a column in a summary's JSON object (``as_dict``), as a
    JSON path (SQLite's ``->`` reads it there without decoding the rest); None for a column
    it works out otherwise."""
    attribute = _ATTRIBUTES.get(column)
    if attribute is not None:
        return f"$.{attribute}"
    group, _, name = column.partition(".")
    if not name or '"' in name or "\\" in name:
        return None
    if group in _GROUPS or (group == "resources" and name in _RESOURCES):
        return f'$.{group}."{name}"'
    return None


def values_getter(values: Mapping[str, Any]) -> Callable[[str], Any]:
    """What ``column_getter`` gives, from the raw values of the columns at ``summary_path``."""

    def get(column: str) -> Any:
        value = values.get(column)
        plain = column == "main" or column.startswith(("metrics.", "resources."))
        return _plain(value) if plain else value

    return get


def analysis_row(summary: TrialSummary) -> dict[str, Any]:
    """The flat row of one trial, every column ``column_getter`` reads; what a damaged record
    lacks is simply absent."""
    get = column_getter(summary)
    columns = [
        *TRIAL_COLUMNS,
        *(f"metrics.{name}" for name in summary.metrics),
        *(f"params.{name}" for name in summary.params),
        *(f"variants.{name}" for name in summary.variants),
        *(f"resources.{name}" for name in _RESOURCES if name in summary.resources),
        *(["problem"] if summary.problem else []),
    ]
    return {column: get(column) for column in columns}
