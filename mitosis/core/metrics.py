"""A step's metrics as the record keeps them: named numbers, whatever shape they came in.

The original mitosis needs only ``main``; its users return ``metrics`` as a list of names,
nested dicts, numpy scalars, or put numbers beside ``main``. None of that may fail a trial
whose result is already saved: what can be a number is recorded, the rest is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Keys of a step's returned dict that are not metrics even when they hold a number.
RESERVED_KEYS = ("main", "metrics", "data")


@dataclass(frozen=True)
class CollectedMetrics:
    """The metrics to record, by name, and a sentence for each value left out."""

    values: dict[str, Any]
    warnings: tuple[str, ...]


def _as_number(value: Any) -> int | float | bool | None:
    """``value`` as a plain Python number (a numpy scalar or 0-d array too), else None."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        try:
            value = value.item()
        except (TypeError, ValueError):
            return None
    if isinstance(value, (bool, int, float)):
        return value
    return None


def _flatten(
    prefix: str, metrics: Mapping[Any, Any], out: dict[str, Any], skipped: list[str]
) -> None:
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(f"{name}.", value, out, skipped)
            continue
        number = _as_number(value)
        if number is not None or value is None:
            out[name] = number
        else:
            skipped.append(f"{name} ({type(value).__name__})")


def collect_metrics(step: str, result: Mapping[Any, Any], results_file: str) -> CollectedMetrics:
    """The metrics of step ``step``'s ``result``: its ``metrics`` dict, flattened (``a.b``),
    and the numbers returned beside ``main``; an entry under ``metrics`` wins a name clash.

    None stays (a number that was not computed); booleans stay booleans.
    """
    values: dict[str, Any] = {}
    warnings: list[str] = []
    skipped: list[str] = []
    for key, value in result.items():
        if key in RESERVED_KEYS or not isinstance(key, str):
            continue
        number = _as_number(value)
        if number is not None:
            values[key] = number
    given = result.get("metrics")
    nested: dict[str, Any] = {}
    if isinstance(given, Mapping):
        _flatten("", given, nested, skipped)
    elif given is not None:
        warnings.append(
            f"step {step!r} returned 'metrics' as a {type(given).__name__}, not a dict of "
            f"name -> number: left out of the record, kept whole in {results_file}."
        )
    clashes = sorted(set(values) & set(nested))
    if clashes:
        warnings.append(
            f"step {step!r} returned {', '.join(clashes)} both beside 'main' and under "
            "'metrics': the record keeps the one under 'metrics'."
        )
    values.update(nested)
    if skipped:
        warnings.append(
            f"step {step!r} returned metrics that are not numbers: {', '.join(skipped)}; "
            f"left out of the record, kept whole in {results_file}."
        )
    return CollectedMetrics(values, tuple(warnings))
