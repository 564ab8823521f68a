"""Why a step ran although an earlier trial ran it: the logic of ``mitosis-nb cache why``,
which only prints what this returns.

The step's record is compared with that of the latest earlier trial that ran the same step
with the same variants: a changed key is explained part by part (``explain_change``); an
equal one by what this trial asked for or what became of the earlier result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from mitosis.adapters import store
from mitosis.cache_report import short_key
from mitosis.core.cache_key import KeyParts, explain_change
from mitosis.core.summary import TrialSummary
from mitosis.core.trial_record import RecordDamage, StepRecord, TrialRecord, parse_record
from mitosis.errors import ConfigError, ParameterError, RecordError
from mitosis.trials_folder import TrialsFolder

__all__ = ["CacheExplanation", "Outcome", "explain_step"]

# taken: the step did not run, its result came from the cache; changed: its key differs
# from an earlier run's; same_key: it ran although an earlier run had its key; no_earlier:
# no earlier trial ran it with these variants; no_key: it has no key, so it always runs;
# unfinished: the trial stopped before the step returned.
Outcome = Literal["taken", "changed", "same_key", "no_earlier", "no_key", "unfinished"]


@dataclass(frozen=True)
class CacheExplanation:
    """Why step ``step`` of trial ``trial`` ran, or did not: ``reasons``, one sentence each.

    ``earlier`` is the trial it was compared with (or, when it was taken, the trial whose
    result it took).
    """

    trial: str
    step: str
    outcome: Outcome
    reasons: tuple[str, ...]
    earlier: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For ``cache why --json``."""
        return {
            "trial": self.trial,
            "step": self.step,
            "outcome": self.outcome,
            "earlier": self.earlier,
            "reasons": list(self.reasons),
        }

    def as_text(self) -> str:
        """A headline, then the reasons as a list when there are several."""
        headline = _HEADLINES[self.outcome].format(
            step=self.step, trial=self.trial, earlier=self.earlier
        )
        if len(self.reasons) == 1 and self.outcome != "changed":
            return f"{headline} {self.reasons[0]}"
        return "\n".join([headline, *(f"  - {reason}" for reason in self.reasons)])


_HEADLINES: Mapping[str, str] = {
    "taken": "step {step} of trial {trial} did not run:",
    "changed": "step {step} of trial {trial} ran because its key changed since trial {earlier}:",
    "same_key": "step {step} of trial {trial} ran although trial {earlier} had its key:",
    "no_earlier": "step {step} of trial {trial} ran:",
    "no_key": "step {step} of trial {trial} ran:",
    "unfinished": "step {step} of trial {trial} did not finish:",
}


def explain_step(
    trials_folder: Path, query: str, step: str, config: Path | None = None
) -> CacheExplanation:
    """Why ``step`` of the trial ``query`` names ran although an earlier trial ran it.

    ``config``, the investigation's pyproject.toml, tells whether the step's table opts out
    of the cache. Raises ``TrialNotFoundError`` for an unknown trial and ``ParameterError``
    for a step the trial does not have.
    """
    folder = store.find_trial(trials_folder, query)
    record = store.read_record(folder)
    index, now = _the_step(record, step)
    if now.cached_from:
        return _taken(record, now)
    if not now.cache_key:
        return _without_key(trials_folder, record, index, now, config)
    found = _latest_earlier(trials_folder, record, now)
    if found is None:
        return CacheExplanation(record.id, step, "no_earlier", (_nothing_earlier(now),))
    earlier, before = found
    if before.cache_key != now.cache_key:
        return CacheExplanation(record.id, step, "changed", _what_changed(before, now), earlier.id)
    last = index == len(record.steps) - 1
    reasons = _why_it_ran_anyway(trials_folder, record, earlier, before, last)
    return CacheExplanation(record.id, step, "same_key", reasons, earlier.id)


def _the_step(record: TrialRecord, name: str) -> tuple[int, StepRecord]:
    for index, step in enumerate(record.steps):
        if step.name == name:
            return index, step
    names = ", ".join(step.name for step in record.steps) or "none"
    raise ParameterError(f"trial {record.id} has no step {name!r}; its steps are: {names}.")


def _taken(record: TrialRecord, now: StepRecord) -> CacheExplanation:
    origin = dict(now.cached_from or {})
    trial, step = origin.get("trial", "?"), origin.get("step", "?")
    reason = (
        f"its result was taken from step {step} of trial {trial}, which computed it "
        f"with the same key ({short_key(now.cache_key or '?')})."
    )
    return CacheExplanation(record.id, now.name, "taken", (reason,), str(trial))


def _without_key(
    trials_folder: Path, record: TrialRecord, index: int, now: StepRecord, config: Path | None
) -> CacheExplanation:
    if _did_not_finish(record, index):
        reason = "the trial stopped before it returned, so it has no key to explain."
        return CacheExplanation(record.id, now.name, "unfinished", (reason,))
    keyless = [step.name for step in record.steps[:index] if not step.cache_key]
    if keyless:
        reason = (
            f"it has no cache key because step {keyless[-1]} before it has none: "
            "its input cannot be matched to an earlier trial's, so it always runs."
        )
    else:
        reason = _why_no_key(_opted_out(trials_folder, now, config))
    return CacheExplanation(record.id, now.name, "no_key", (reason,))


def _why_no_key(opted_out: bool | None) -> str:
    if opted_out:
        return (
            "it has no cache key: its step table says cache = false "
            "(a step that draws fresh randomness or reads the outside world), so it always runs."
        )
    table = "" if opted_out is False else "its step table says cache = false, "
    return (
        f"it has no cache key, so it always runs: {table}its code's source could not be read, "
        "an argument has no stable fingerprint, or it ran before mitosis-nb had a step cache."
    )


def _did_not_finish(record: TrialRecord, index: int) -> bool:
    """Whether the trial stopped before step ``index`` returned: at or after the step at
    fault, or, for a trial stopped without one (interrupted, running), one with no result."""
    if record.status == "succeeded":
        return False
    names = [step.name for step in record.steps]
    at_fault = record.error.step if record.error else None
    if at_fault in names:
        return index >= names.index(at_fault)
    return record.steps[index].main is None


def _opted_out(trials_folder: Path, now: StepRecord, config: Path | None) -> bool | None:
    """Whether the investigation's step table for ``now`` says ``cache = false``; None when
    no investigation's tables can be read (``--config``, else the one holding the trials
    folder, else the one around the current directory)."""
    from mitosis.adapters.config import load_config

    attempts = [config] if config else [trials_folder, Path.cwd()]
    for attempt in attempts:
        try:
            steps = load_config(config, start=attempt).steps
        except ConfigError:
            continue
        table = steps.get(now.name)
        return table is not None and table.run == now.run and not table.cache
    return None


def _variants(step: StepRecord) -> dict[str, tuple[str, str | None]]:
    """A step's tracked parameters as its variant: names for lookups, text for literals."""
    return {
        arg: (param.kind, param.variant if param.kind == "lookup" else param.source or param.value)
        for arg, param in step.params.items()
        if param.tracked
    }


def _earlier_records(
    trials_folder: Path, now: TrialRecord, step: StepRecord
) -> Iterator[TrialRecord]:
    """The records of the trials that started before ``now`` with ``step``'s step and
    variants, as the listing's index says, latest start first: only those are read."""
    wanted = _listed_variants(step)
    before = _moment(now.started)
    candidates = [
        (started, summary.id)
        for summary in TrialsFolder(trials_folder).collect().summaries
        if summary.id != now.id
        and step.name in (summary.experiment or "").split("+")
        and _listed_variants_of(summary, step.name) == wanted
        and (started := _moment(summary.started)) is not None
        and before is not None
        and started < before
    ]
    for _, trial in sorted(candidates, reverse=True):
        record = _record_with_keys(trials_folder / trial)
        if record is not None:
            yield record


def _moment(started: str | None) -> datetime | None:
    """When a trial started, from its record's text; None if it does not say."""
    try:
        moment = datetime.fromisoformat(started) if started else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _record_with_keys(folder: Path) -> TrialRecord | None:
    """The trial's record if any of its steps has a cache key (a trial older than the
    cache has none: its text tells at a glance), without its environment (the bulk)."""
    try:
        if "cache_key:" not in (folder / store.RECORD_NAME).read_text("utf-8"):
            return None
        return parse_record(store.read_record_for_listing(folder))
    except (OSError, UnicodeDecodeError, RecordError, RecordDamage):
        return None  # `list` says what is wrong with it; here it is only not a candidate


def _listed_variants(step: StepRecord) -> dict[str, Any]:
    """``step``'s tracked parameters as the listing keeps them (``STEP.ARG``: the variant
    name or the literal's source)."""
    return {
        f"{step.name}.{arg}": param.variant if param.kind == "lookup" else param.source
        for arg, param in step.params.items()
        if param.tracked
    }


def _listed_variants_of(summary: TrialSummary, step: str) -> dict[str, Any]:
    prefix = f"{step}."
    return {name: summary.variants.get(name) for name in summary.tracked if name.startswith(prefix)}


def _latest_earlier(
    trials_folder: Path, record: TrialRecord, now: StepRecord
) -> tuple[TrialRecord, StepRecord] | None:
    """The trial started last before ``record`` that ran ``now``'s step with its variants
    and has a key for it: one whose steps before it had the same variants too, if one of the
    latest does (its input was meant to be the same), else the latest."""
    wanted, upstream = _variants(now), _upstream(record, now.name)
    latest: tuple[TrialRecord, StepRecord] | None = None
    looked = 0
    for earlier in _earlier_records(trials_folder, record, now):
        for step in earlier.steps:
            if step.name == now.name and step.cache_key and _variants(step) == wanted:
                if _upstream(earlier, step.name) == upstream:
                    return earlier, step
                latest = latest or (earlier, step)
        looked += latest is not None
        if looked > _MORE_LOOKS:
            break
    return latest


# Once a trial that ran the step from other input is found, how many more are read for one
# that ran it from the same.
_MORE_LOOKS = 20


def _upstream(record: TrialRecord, name: str) -> list[tuple[str, dict[str, Any]]]:
    """The steps before step ``name`` in ``record``, with their variants."""
    names = [step.name for step in record.steps]
    return [(step.name, _variants(step)) for step in record.steps[: names.index(name)]]


def _nothing_earlier(now: StepRecord) -> str:
    shown = ", ".join(
        f"{now.name}.{arg}={text}" for arg, (_, text) in sorted(_variants(now).items())
    )
    variants = f"the variants {shown}" if shown else "its default arguments"
    return (
        f"no trial that started before it ran step {now.name} with {variants} "
        "(and a cache key): there was no earlier result to take."
    )


def _what_changed(before: StepRecord, now: StepRecord) -> tuple[str, ...]:
    try:
        old = KeyParts.from_record(before.cache_parts or {})
        new = KeyParts.from_record(now.cache_parts or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        return ("the parts of one of the two keys are missing or damaged in its record.",)
    reasons = explain_change(_own_definition_as_in(old, new), new)
    return tuple(reasons) or (
        "the keys differ in a part this mitosis-nb cannot name (the key scheme changed).",
    )


def _own_definition_as_in(before: KeyParts, now: KeyParts) -> KeyParts:
    """``before`` with its module's digest of the step's own function taken from ``now``:
    once "the function changed" is said, that its module's definition of it changed too
    says nothing more."""
    module, _, name = now.function.partition(":")
    old = before.modules.get(module)
    new = now.modules.get(module, {})
    if before.function != now.function or before.function_digest == now.function_digest:
        return before
    if old is None or "." in name or name not in new:
        return before
    modules = {**before.modules, module: {**old, name: new[name]}}
    return replace(before, modules=modules)


def _why_it_ran_anyway(
    trials_folder: Path,
    record: TrialRecord,
    earlier: TrialRecord,
    before: StepRecord,
    last: bool,
) -> tuple[str, ...]:
    """Why a step whose key an earlier trial had ran all the same: it is the trial's last
    step, this trial's choice, or what became of the earlier result."""
    if last:
        return (
            "it is the trial's last step, which always runs: it is what the trial was asked "
            "for, and its figures and output are the trial's page. Only the steps that feed "
            "another are taken from the cache.",
        )
    reasons = []
    if record.reproduces:
        reasons.append(f"this trial re-ran trial {record.reproduces}: reproduce runs every step.")
    elif _ran_without_cache(record):
        reasons.append("this trial ran with --no-cache (cache=False): every step runs.")
    origin, origin_step = _origin(trials_folder, earlier, before)
    reasons += _origin_unusable(trials_folder, origin, origin_step)
    if not reasons:
        reasons.append(
            "the cache held no result for this key when the step started: trial "
            f"{origin.id} may still have been computing it, or step-cache/ was cleared."
        )
    return tuple(reasons)


def _ran_without_cache(record: TrialRecord) -> bool:
    command = record.command or ""
    return "--no-cache" in command.split() or "cache=False" in command


def _origin(
    trials_folder: Path, earlier: TrialRecord, before: StepRecord
) -> tuple[TrialRecord, StepRecord]:
    """The trial and step that computed ``before``'s result (itself, unless it was taken)."""
    taken = dict(before.cached_from or {})
    if not taken:
        return earlier, before
    try:
        origin = store.read_record(trials_folder / str(taken.get("trial")))
    except RecordError:
        return earlier, before
    for step in origin.steps:
        if step.name == taken.get("step"):
            return origin, step
    return earlier, before


def _origin_unusable(trials_folder: Path, origin: TrialRecord, step: StepRecord) -> list[str]:
    reasons = []
    if origin.debug:
        reasons.append(
            f"trial {origin.id}, which computed it, was a debug trial: "
            "debug trials never feed the cache."
        )
    if origin.status in ("failed", "interrupted"):
        reasons.append(
            f"trial {origin.id}, which computed it, {origin.status}: "
            "its results do not serve other trials."
        )
    index = [s.name for s in origin.steps].index(step.name)
    results = trials_folder / origin.id / f"results_{index}.pkl"
    if not results.is_file():
        reasons.append(f"the results file of trial {origin.id} is gone ({results.name}).")
    return reasons
