"""mitosis-nb: every computational experiment a reproducible, browsable trial.

- ``execute_trial(*steps, params=, literals=, ...)`` runs one trial, as ``mitosis-nb run``;
- ``load_trial(id)`` and ``load_trial_data(trial)`` read a trial back;
- ``reproduce_trial(id)`` runs a trial again at its commit and compares the results;
- ``search_trials(where)`` gives the trials as a pandas DataFrame, ``summarize(frame,
  over=["seed"])`` their aggregates (``pip install 'mitosis-nb[analysis]'``);
- ``Trial`` is what they return; ``MitosisError`` is what refusals raise.

The public API is imported lazily, so that a trial's kernel, which imports
``mitosis.kernel_side``, does not pay for papermill and nbconvert at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__distribution__ = "mitosis-nb"  # the package guard looks for this line: keep it as it is
__all__ = [
    "MitosisError",
    "MitosisWarning",
    "Trial",
    "execute_trial",
    "load_trial",
    "load_trial_data",
    "reproduce_trial",
    "search_trials",
    "summarize",
]

if TYPE_CHECKING:
    from mitosis.analysis import search_trials, summarize
    from mitosis.api import execute_trial
    from mitosis.errors import MitosisError, MitosisWarning
    from mitosis.reproduce import reproduce_trial
    from mitosis.trials import Trial, load_trial, load_trial_data

_HOMES = {
    "MitosisError": "mitosis.errors",
    "MitosisWarning": "mitosis.errors",
    "Trial": "mitosis.trials",
    "load_trial": "mitosis.trials",
    "load_trial_data": "mitosis.trials",
    "execute_trial": "mitosis.api",
    "reproduce_trial": "mitosis.reproduce",
    "search_trials": "mitosis.analysis",
    "summarize": "mitosis.analysis",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mitosis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    # help() and tab completion see the lazily imported API too.
    return sorted({*globals(), *__all__})
