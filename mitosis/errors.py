"""The exceptions mitosis raises when it refuses to do something.

A failing *experiment* is not an exception here: it becomes a ``failed`` trial record.
These errors mean mitosis refused to start (bad input, bad configuration) and nothing
was written. Every message ends by telling the user what to do next.
"""

from __future__ import annotations


class MitosisError(Exception):
    """Root of every refusal; the command line maps it to exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str]]:
        # Sweeps send errors back from Dask workers, so errors must pickle by message.
        return (type(self), (self.message,))


class ConfigError(MitosisError):
    """The investigation's ``pyproject.toml`` is missing, malformed or incomplete."""


class ParameterError(MitosisError):
    """A ``-p``/``-e`` parameter names an unknown step, argument or variant, or is malformed."""


class QueryError(ParameterError):
    """A ``--where`` query (or ``where=``) does not follow the query grammar."""


class MissingExtraError(MitosisError):
    """An optional dependency (an extra of mitosis-nb's) is needed and not installed."""


class UserCodeError(MitosisError):
    """A step's callable or lookup dictionary cannot be imported."""


class KernelError(MitosisError):
    """The trial's kernel did not start, or died before the trial began."""


class GitStateError(MitosisError):
    """The investigation is not a git repository, or its tree is dirty for a non-debug trial."""


class FingerprintError(MitosisError):
    """A value has no canonical fingerprint (a lambda, a ``__main__`` object, ...)."""


class VariantConflictError(MitosisError):
    """A variant name is already locked to a different value in the registry."""


class TrialNotFoundError(MitosisError):
    """No trial matches an id or id prefix, or the prefix is ambiguous."""


class LegacyResultsError(MitosisError):
    """A trial of the original mitosis has results that cannot be loaded here (no dill)."""


class RecordError(MitosisError):
    """A ``trial.yaml`` record cannot be read or does not follow the schema."""


class TrialsFolderError(MitosisError):
    """The trials folder cannot be created or written."""


class SchedulerError(MitosisError):
    """The Dask scheduler of ``--scheduler`` cannot be used (not installed or not reachable)."""


class MitosisWarning(UserWarning):
    """Something went wrong that did not stop the work (an index update, say)."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """``error`` as one short line: a refusal's message, else its type and text."""
    text = error.message if isinstance(error, MitosisError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit] + " …"
