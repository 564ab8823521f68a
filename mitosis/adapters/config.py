"""Read ``[tool.mitosis]`` from the investigation's ``pyproject.toml``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mitosis.core.steps import StepConfig, is_object_path
from mitosis.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class InvestigationConfig:
    """Everything mitosis needs to know about one investigation."""

    root: Path
    pyproject: Path
    trials_folder: Path
    template: Path | None
    steps: dict[str, StepConfig]
    env_include: tuple[str, ...] = ()
    env_exclude: tuple[str, ...] = ()
    # [tool.mitosis.slurm], as written: checked by the Slurm executor when it is used.
    slurm: dict[str, Any] = field(default_factory=dict)

    def with_steps(self, extra: Sequence[StepConfig]) -> InvestigationConfig:
        """This configuration with steps given on the command line (``mitosis -m MODULE``);
        one that is registered under the same name must be the same step."""
        steps = dict(self.steps)
        for step in extra:
            known = steps.get(step.name)
            if known is not None and known != step:
                raise ConfigError(
                    f"step {step.name!r} is registered in {self.pyproject} as {known.run}, "
                    f"not {step.run}; run it by that name, or rename one of them."
                )
            steps[step.name] = step
        return replace(self, steps=steps)

    def step(self, name: str) -> StepConfig:
        """The step called ``name``, or a refusal listing the known ones."""
        try:
            return self.steps[name]
        except KeyError:
            known = ", ".join(sorted(self.steps)) or "none"
            raise ConfigError(
                f"unknown step {name!r}; steps registered in {self.pyproject}: {known}."
            ) from None


def _find_pyproject(start: Path) -> Path:
    """The ``pyproject.toml`` of the nearest enclosing git repository (or directory)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            candidate = directory / "pyproject.toml"
            if candidate.is_file():
                return candidate
            raise ConfigError(
                f"no pyproject.toml at the git root {directory}; create one with a "
                "[tool.mitosis.steps] table, or pass --config PATH (config= in Python)."
            )
    raise ConfigError(
        f"{start} is not inside a git repository; run mitosis-nb from your investigation's "
        "repository (`git init` one if it has none), or pass the pyproject.toml of one with "
        "--config PATH (config= in Python)."
    )


def _parse_step(name: str, entry: Any, pyproject: Path) -> StepConfig:
    where = f"[tool.mitosis.steps] {name} in {pyproject}"
    if not name.isidentifier():
        raise ConfigError(f"{where}: a step name must be a Python identifier.")
    cache = True
    if isinstance(entry, list) and len(entry) in (1, 2):
        run, lookup = entry[0], entry[1] if len(entry) == 2 else None
    elif isinstance(entry, dict) and "run" in entry and set(entry) <= {"run", "lookup", "cache"}:
        run, lookup, cache = entry["run"], entry.get("lookup"), entry.get("cache", True)
    else:
        raise ConfigError(
            f'{where} must be ["module:callable", "module:lookup_dict"] '
            'or { run = "module:callable", lookup = "module:lookup_dict", cache = false }.'
        )
    if not isinstance(cache, bool):
        raise ConfigError(f"{where}: cache must be true or false, not {cache!r}.")
    for label, path in (("callable", run), ("lookup", lookup)):
        if path is not None and not (isinstance(path, str) and is_object_path(path)):
            raise ConfigError(f"{where}: {label} {path!r} is not of the form 'module:name'.")
    return StepConfig(name=name, run=run, lookup=lookup, cache=cache)


def _string_list(table: dict[str, Any], key: str, pyproject: Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"[tool.mitosis] {key} in {pyproject} must be a list of strings.")
    return tuple(value)


def _table(table: dict[str, Any], key: str, pyproject: Path) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[tool.mitosis.{key}] in {pyproject} must be a table.")
    return value


KEYS = ("env-exclude", "env-include", "slurm", "steps", "template", "trials-folder")


def load_config(
    pyproject: Path | None = None, start: Path | None = None, require_steps: bool = True
) -> InvestigationConfig:
    """Load the investigation's configuration from ``pyproject`` or the enclosing git root.

    Without ``require_steps`` (steps given on the command line, as ``mitosis -m``), a
    pyproject with no ``[tool.mitosis]`` table, or no steps in it, reads as the defaults.
    """
    path = (pyproject or _find_pyproject(start or Path.cwd())).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; pass a pyproject.toml with --config (config= in Python)."
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}; fix that line.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}.") from None
    table = data.get("tool", {}).get("mitosis")
    if table is None and not require_steps:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path} has no [tool.mitosis] table; add [tool.mitosis.steps].")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:  # a misspelt trials-folder would otherwise put trials somewhere unexpected
        raise ConfigError(
            f"unknown key {unknown[0]!r} in [tool.mitosis] of {path}; known: {', '.join(KEYS)}."
        )
    steps_table = table.get("steps", None if require_steps else {})
    if not isinstance(steps_table, dict) or (require_steps and not steps_table):
        raise ConfigError(
            f"{path} has no [tool.mitosis.steps] table; register a step, e.g. "
            'sine = ["my_experiments:run", "my_experiments:lookup_dict"].'
        )
    root = path.parent
    steps = {name: _parse_step(name, entry, path) for name, entry in steps_table.items()}
    template = table.get("template")
    trials = table.get("trials-folder", "trials")
    for key, value in (("template", template), ("trials-folder", trials)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"[tool.mitosis] {key} in {path} must be a path string.")
    return InvestigationConfig(
        root=root,
        pyproject=path,
        trials_folder=(root / trials).resolve(),
        template=(root / template).resolve() if template else None,
        steps=steps,
        env_include=_string_list(table, "env-include", path),
        env_exclude=_string_list(table, "env-exclude", path),
        slurm=_table(table, "slurm", path),
    )
