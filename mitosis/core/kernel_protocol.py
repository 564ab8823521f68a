"""What crosses the kernel boundary while a trial runs, each with one encoder and one decoder.

Into the kernel go each step's parameters (``KernelStep``), as the list papermill injects
into the notebook as ``mitosis_steps``: variant names and literal source text only, since
papermill would turn tuples, sets and bytes into strings if values were injected. Out of it
comes each step's summary (``StepSummary``), as a display output of its own mimetype that
the runner reads back from the executed notebook. What the kernel is asked before the trial,
and answers, is ``core.code_facts``.

The encoded forms are plain JSON-ready containers, unchanged from the first version, so a
kernel with another mitosis-nb version (``--kernel``) still understands them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mitosis.core.params import ParamKind
from mitosis.core.record import from_json_safe, to_json_safe

STEP_MIMETYPE = "application/vnd.mitosis.step+json"


@dataclass(frozen=True)
class KernelParam:
    """One parameter as the kernel resolves it: a variant name or a literal's source, and
    the fingerprint the value must have (None: untracked, or not locked)."""

    arg: str
    kind: ParamKind
    text: str
    fingerprint: str | None
    rendering: str


@dataclass(frozen=True)
class KernelStep:
    """One step as the kernel runs it: its callable, its lookup dictionary, its parameters,
    and how it uses the step cache (None: not at all, the step opted out)."""

    name: str
    run: str | None
    lookup: str | None
    params: tuple[KernelParam, ...] = ()
    cache: CachePolicy | None = None


@dataclass(frozen=True)
class CachePolicy:
    """Whether a step may take an earlier trial's result (``take``: not a trial's last step,
    nor with ``--no-cache`` or ``reproduce``), and whether its own result may serve later
    trials (``feed``: not from a ``--debug`` trial). Its key is computed either way."""

    take: bool = True
    feed: bool = True


def steps_to_notebook(steps: Sequence[KernelStep]) -> list[dict[str, Any]]:
    """The ``mitosis_steps`` papermill injects into the trial's notebook."""
    return [
        {
            "name": step.name,
            "run": step.run,
            "lookup": step.lookup,
            "params": [
                {
                    "arg": param.arg,
                    "kind": param.kind,
                    "text": param.text,
                    "fingerprint": param.fingerprint,
                    "rendering": param.rendering,
                }
                for param in step.params
            ],
            "cache": None
            if step.cache is None
            else {"take": step.cache.take, "feed": step.cache.feed},
        }
        for step in steps
    ]


def steps_from_notebook(steps: Sequence[Mapping[str, Any]]) -> tuple[KernelStep, ...]:
    """The steps ``steps_to_notebook`` encoded, read back in the kernel."""
    return tuple(
        KernelStep(
            name=step["name"],
            run=step.get("run"),
            lookup=step.get("lookup"),
            params=tuple(
                KernelParam(
                    arg=param["arg"],
                    kind=param["kind"],
                    text=param["text"],
                    fingerprint=param.get("fingerprint"),
                    rendering=param.get("rendering", "another value"),
                )
                for param in step.get("params", ())
            ),
            cache=_policy(step.get("cache")),
        )
        for step in steps
    )


def _policy(entry: Any) -> CachePolicy | None:
    if not isinstance(entry, Mapping):
        return None
    return CachePolicy(take=bool(entry.get("take")), feed=bool(entry.get("feed")))


@dataclass(frozen=True)
class StepSummary:
    """What a step returned, as the record keeps it: its main result and metrics
    (summarized), the defaults it ran with, and warnings about its metrics.

    ``defaults`` is None from a kernel whose mitosis-nb did not send them yet. ``cache``
    holds the step's ``key``, its ``parts`` and, if it did not run, ``cached_from``.
    """

    step: str
    index: int
    main: Any
    metrics: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    cache: Mapping[str, Any] | None = None

    def as_text(self) -> str:
        """The lines the notebook shows under the step's cell."""
        lines = [f"{self.step}: main = {self.main!r}"]
        taken = (self.cache or {}).get("cached_from")
        if taken:
            lines.append(
                f"  (not run: the result of step {taken['step']} of trial {taken['trial']})"
            )
        lines += [f"  {key} = {value!r}" for key, value in self.metrics.items()]
        lines += [f"  warning: {text}" for text in self.warnings]
        return "\n".join(lines)


def summary_to_display(summary: StepSummary) -> dict[str, Any]:
    """The display bundle the kernel shows for a step: the summary as JSON (NaN and
    infinity tagged, which JSON cannot carry), and as text for a person."""
    data = {
        "step": summary.step,
        "index": summary.index,
        "main": summary.main,
        "metrics": dict(summary.metrics),
        "defaults": None if summary.defaults is None else dict(summary.defaults),
        "warnings": list(summary.warnings),
        "cache": None if summary.cache is None else dict(summary.cache),
    }
    return {STEP_MIMETYPE: to_json_safe(data), "text/plain": summary.as_text()}


def summary_from_display(data: Mapping[str, Any]) -> StepSummary | None:
    """The summary in one output's ``data`` (plain JSON containers), or None if it holds
    none."""
    entry = data.get(STEP_MIMETYPE)
    if not isinstance(entry, Mapping) or "step" not in entry:
        return None
    entry = from_json_safe(dict(entry))
    defaults = entry.get("defaults")
    return StepSummary(
        step=entry["step"],
        index=entry.get("index", 0),
        main=entry.get("main"),
        metrics=entry.get("metrics") or {},
        defaults=defaults if isinstance(defaults, Mapping) else None,
        warnings=tuple(entry.get("warnings") or ()),
        cache=entry.get("cache") if isinstance(entry.get("cache"), Mapping) else None,
    )
