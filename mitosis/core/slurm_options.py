"""The Slurm options of a run: ``[tool.mitosis.slurm]`` with ``--slurm KEY=VALUE`` on top.

Pure: the table as read from pyproject and the command line's words in, submitit's
parameters and the heartbeat's period out, or one sentence saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mitosis.errors import ConfigError

# Our key -> submitit's SlurmExecutor parameter.
_SUBMITIT_NAMES = {
    "partition": "partition",
    "time": "time",
    "cpus-per-task": "cpus_per_task",
    "mem": "mem",
    "gpus": "gpus_per_node",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "array-parallelism": "array_parallelism",
    "job-name": "job_name",
}
_INTEGERS = ("cpus-per-task", "gpus", "array-parallelism")
KEYS = (*_SUBMITIT_NAMES, "setup", "heartbeat")


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how a run's jobs go: submitit's parameters, and the heartbeat's period."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    heartbeat_s: float = 30.0

    @property
    def partition(self) -> str | None:
        """The partition asked for, or None for the cluster's default."""
        value = self.parameters.get("partition")
        return None if value is None else str(value)


def slurm_options(table: Mapping[str, Any], overrides: Sequence[str], where: str) -> SlurmOptions:
    """The options of ``table`` (``[tool.mitosis.slurm]`` of ``where``) with ``overrides``
    (``KEY=VALUE`` each; a ``setup`` line is added after the table's)."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        values[key] = _checked(key, value, f"[tool.mitosis.slurm] of {where}")
    for text in overrides:
        key, equals, value = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(f"--slurm {text!r} is not KEY=VALUE, e.g. --slurm partition=gpu.")
        if key == "setup":
            values["setup"] = [*values.get("setup", []), value]
        else:
            values[key] = _checked(key, _from_text(key, value), "--slurm")
    heartbeat = float(values.pop("heartbeat", 30.0))
    parameters: dict[str, Any] = {_SUBMITIT_NAMES.get(key, key): v for key, v in values.items()}
    if "mem" in parameters and not isinstance(parameters["mem"], str):
        parameters["mem"] = f"{parameters['mem']}G"  # a bare number means gigabytes
    return SlurmOptions(parameters, heartbeat)


def _from_text(key: str, value: str) -> Any:
    if key in (*_INTEGERS, "heartbeat") or (key == "time" and value.isdigit()):
        try:
            return float(value) if key == "heartbeat" else int(value)
        except ValueError:
            raise ConfigError(f"--slurm {key}={value}: {key} must be a number.") from None
    return value


def _checked(key: str, value: Any, where: str) -> Any:
    if key not in KEYS:
        raise ConfigError(f"unknown Slurm option {key!r} in {where}; known: {', '.join(KEYS)}.")
    if key == "setup":
        if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
            raise ConfigError(f"setup in {where} must be a list of shell lines.")
        return list(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "heartbeat" and not (number and value > 0):
        raise ConfigError(f"heartbeat in {where} must be a number of seconds above 0.")
    if key in _INTEGERS and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{key} in {where} must be a whole number.")
    if not (number or isinstance(value, str)):
        raise ConfigError(f"{key} in {where} must be a string or a number.")
    return value
