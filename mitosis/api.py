"""``execute_trial``: one trial from Python or a notebook, exactly as ``mitosis-nb run``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mitosis.core.params import (
    ParamOption,
    parse_literal,
    parse_option,
)
from mitosis.core.request import TrialRequest
from mitosis.errors import (
    ParameterError,
)
from mitosis.planning import TrialPlan
from mitosis.session import Session
from mitosis.trials import Trial


def _check_api_arguments(steps: Sequence[Any], params: Any, literals: Any) -> None:
    """Refuse, in one sentence, arguments of the wrong kind, before they fail somewhere deep."""
    for step in steps:
        if not isinstance(step, str):
            raise ParameterError(
                f"steps are named by strings, as in execute_trial('gen', 'fit'); got {step!r}."
            )
    for name, given in (("params", params), ("literals", literals)):
        if given is not None and not isinstance(given, Mapping):
            raise ParameterError(
                f"{name} is a dict of argument names to values, not {type(given).__name__} "
                f"{given!r}."
            )
    for arg, variants in (params or {}).items():
        names = [variants] if isinstance(variants, str) else variants
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ParameterError(
                f"params[{arg!r}] is a variant name of the step's lookup dictionary, not "
                f"{variants!r}; give a value itself with literals={{{arg!r}: {variants!r}}}."
            )


def _options_from_mappings(
    params: Mapping[str, Any] | None, literals: Mapping[str, Any] | None
) -> tuple[ParamOption, ...]:
    options = []
    for name, variants in (params or {}).items():
        names = [variants] if isinstance(variants, str) else list(variants)
        options.append(parse_option(f"{name}={','.join(map(str, names))}", "lookup"))
    for name, value in (literals or {}).items():
        source = repr(value)
        try:
            same = parse_literal(source) == value
        except ParameterError:
            same = False
        if not same:
            raise ParameterError(
                f"literal {name}={source} is not a Python literal; put the value in the "
                "step's lookup dictionary and pass its variant name in params."
            )
        options.append(parse_option(f"{name}={source}", "literal"))
    return tuple(options)


def _api_call(
    steps: Sequence[str], params: Any, literals: Any, debug: bool, cache: bool = True
) -> str:
    """The record's ``command``: the call as it could be typed again."""
    arguments = [repr(step) for step in steps]
    arguments += [f"params={dict(params)!r}"] if params else []
    arguments += [f"literals={dict(literals)!r}"] if literals else []
    arguments += ["debug=True"] if debug else []
    arguments += [] if cache else ["cache=False"]
    return f"execute_trial({', '.join(arguments)})"


def _one_trial_only(plans: Sequence[TrialPlan]) -> str:
    values: dict[str, set[str]] = {}
    for plan in plans:
        for param in plan.params:
            choice = param.choice
            shown = f"{'' if choice.tracked else '+'}{choice.text}"
            values.setdefault(f"{choice.step}.{choice.arg}", set()).add(shown)
    several = sorted(name for name, texts in values.items() if len(texts) > 1)
    return (
        f"execute_trial runs one trial, but {', '.join(several)} "
        f"{'is' if len(several) == 1 else 'are'} given more than one value here (perhaps "
        "once with the step's name and once without, or tracked and untracked), which makes "
        f"{len(plans)} trials; give each argument once, or sweep with `mitosis-nb run`."
    )


def execute_trial(
    *steps: str,
    params: Mapping[str, str | Sequence[str]] | None = None,
    literals: Mapping[str, Any] | None = None,
    debug: bool = False,
    note: str | None = None,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    template: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    kernel: str | None = None,
    cache: bool = True,
) -> Trial:
    """Run one trial in a fresh kernel, exactly as ``mitosis-nb run`` does, and return it.

    ``params`` maps ``[+][STEP.]ARG`` to a variant name of the step's lookup dictionary;
    ``literals`` maps ``[+][STEP.]ARG`` to a Python literal. Refusals raise ``MitosisError``;
    a failing experiment returns a ``Trial`` whose ``status`` is ``"failed"``. Ctrl-C (a
    notebook's interrupt button) or SIGTERM stops the trial, records it as ``interrupted``
    and then raises ``KeyboardInterrupt``, so that a loop of trials stops too. With
    ``cache=False`` every step runs, taking no result from an earlier trial.
    """
    _check_api_arguments(steps, params, literals)
    request = TrialRequest(
        steps=tuple(steps),
        options=_options_from_mappings(params, literals),
        debug=debug,
        note=note,
        template=Path(template) if template else None,
        timeout=timeout,
        kernel=kernel,
        cache=cache,
        command=_api_call(steps, params, literals, debug, cache),
        config=Path(config) if config else None,
        trials_folder=Path(trials_folder) if trials_folder else None,
    )
    with Session(request) as session:
        plans = session.prepare()
        if len(plans) != 1:
            raise ParameterError(_one_trial_only(plans))
        (trial,) = session.run(plans).trials
    if trial.status == "interrupted":
        raise KeyboardInterrupt(
            f"trial {trial.id} was interrupted; its record is in {trial.folder}"
        )
    return trial
