"""``mitosis-nb experiments``: the steps, their arguments and variant names, with their locks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import RunCli, git, trial_dirs


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_every_step_is_listed_with_its_arguments_and_variants(cli: RunCli) -> None:
    run = cli("experiments", "--json")

    assert run.returncode == 0, run.stderr
    steps = _by_name(json.loads(run.stdout))
    assert list(steps) == ["toy", "gen", "fit"]
    gen = steps["gen"]
    assert (gen["run"], gen["lookup"], gen["problem"]) == (
        "toy_experiments:generate",
        "toy_experiments:gen_lookup",
        None,
    )
    arguments = _by_name(gen["arguments"])
    assert list(arguments) == ["length", "shape"]
    assert (arguments["length"]["default"], arguments["shape"]["default"]) == ("3", "'flat'")
    variants = _by_name(arguments["length"]["variants"])
    assert {name: v["value"] for name, v in variants.items()} == {"short": "3", "long": "10"}
    assert all(v["locked"] is None and v["trial"] is None for v in variants.values())
    # fit's first argument takes gen's data: it is listed, without a default.
    fit_arguments = _by_name(steps["fit"]["arguments"])
    assert fit_arguments["data"]["default"] is None
    solver = _by_name(_by_name(steps["toy"]["arguments"])["solver"]["variants"])
    assert solver["tight"]["value"] == "toy_experiments:Solver(tol=1e-08)"


def test_locked_variants_show_their_value_trial_and_changes(
    cli: RunCli, investigation: Path
) -> None:
    assert cli("run", "gen", "-p", "length=short").returncode == 0
    (trial,) = trial_dirs(investigation / "trials")
    assert f"    short = 3  locked by {trial.name}\n" in cli("experiments").stdout
    source = investigation / "toy_experiments.py"
    source.write_text(
        source.read_text().replace(
            '{"length": {"short": 3, "long": 10}}', '{"length": {"short": 4, "long": 10}}'
        )
    )
    git(investigation, "commit", "-q", "-am", "short is now 4")

    run = cli("experiments", "--json")
    length = _by_name(_by_name(json.loads(run.stdout))["gen"]["arguments"])["length"]
    short, long = (_by_name(length["variants"])[name] for name in ("short", "long"))
    assert short == {
        "name": "short",
        "value": "4",
        "locked": "3",
        "trial": trial.name,
        "changed": True,
    }
    assert (long["locked"], long["changed"]) == (None, False)

    text = cli("experiments").stdout
    assert "gen: toy_experiments:generate  lookup toy_experiments:gen_lookup" in text
    assert f"short = 4  CHANGED: locked to 3 by {trial.name}; trials refused" in text
    assert "    long = 10\n" in text

    # A name removed from the lookup stays taken, and is still listed.
    source.write_text(source.read_text().replace('"short": 4, ', ""))
    text = cli("experiments").stdout
    assert f"short  locked to 3 by {trial.name}; no longer in the lookup" in text


def test_a_step_that_does_not_import_is_reported_and_the_rest_listed(
    cli: RunCli, investigation: Path
) -> None:
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'broken = ["no_such_module:run"]\n')

    run = cli("experiments", "--json")

    assert run.returncode == 0, run.stderr
    steps = _by_name(json.loads(run.stdout))
    assert steps["gen"]["problem"] is None
    assert "no_such_module" in steps["broken"]["problem"]
    assert steps["broken"]["arguments"] == []
    assert "broken: no_such_module:run\n  cannot read it: " in cli("experiments").stdout
