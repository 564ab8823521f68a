"""Trials of several steps: each step's "data" feeds the next, each step keeps its results."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import yaml
from conftest import RunCli, add_step, trial_dirs


def _record(run: Any) -> dict[str, Any]:
    records: list[dict[str, Any]] = json.loads(run.stdout)
    assert len(records) == 1, run.stderr
    return records[0]


def test_each_steps_data_is_the_next_steps_first_argument(cli: RunCli, investigation: Path) -> None:
    run = cli("run", "gen", "fit", "-p", "gen.length=short", "-p", "fit.scale=double", "--json")

    assert run.returncode == 0, run.stderr
    record = _record(run)
    assert record["status"] == "succeeded"
    assert record["main"] == sum(range(3)) * 2
    assert record["experiment"] == "gen+fit"
    assert record["variant"] == "fit.scale=double,gen.length=short"
    gen, fit = record["steps"]
    assert (gen["name"], gen["main"], gen["metrics"]) == ("gen", 3.0, {"n": 3})
    assert (fit["name"], fit["main"], fit["metrics"]) == ("fit", 6.0, {"scale": 2.0})
    length = gen["params"]["length"]
    assert (length["kind"], length["variant"], length["value"]) == ("lookup", "short", "3")
    assert length["tracked"] is True
    assert length["fingerprint"].startswith("sha256:")
    assert set(fit["params"]) == {"scale"}
    assert fit["params"]["scale"]["value"] == "2.0"
    folder = investigation / "trials" / record["id"]
    assert pickle.loads((folder / "results_0.pkl").read_bytes())["data"] == [0, 1, 2]
    assert pickle.loads((folder / "results_1.pkl").read_bytes())["main"] == 6.0


def test_a_failure_in_step_two_keeps_step_ones_results(cli: RunCli, investigation: Path) -> None:
    run = cli("run", "gen", "fit", "-p", "gen.length=long", "-e", "fit.fail=True")

    assert run.returncode == 1
    assert "in step 'fit': RuntimeError: fit failed on purpose" in run.stderr
    (folder,) = trial_dirs(investigation / "trials")
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    assert record["status"] == "failed"
    assert (record["error"]["step"], record["error"]["type"]) == ("fit", "RuntimeError")
    assert record["steps"][0]["main"] == 10.0
    assert record["steps"][0]["metrics"] == {"n": 10}
    assert record["steps"][1]["main"] is None
    assert (folder / "results_0.pkl").is_file()
    assert not (folder / "results_1.pkl").exists()


def test_a_step_before_the_last_must_return_data(cli: RunCli) -> None:
    run = cli("run", "toy", "gen", "-p", "toy.mode=ok", "--json")

    record = _record(run)
    assert record["status"] == "failed"
    assert (record["error"]["step"], record["error"]["type"]) == ("toy", "StepResultError")
    message = record["error"]["message"]
    assert "step 'toy' returned no 'data' key" in message
    assert "'gen'" in message  # the step that needed it
    assert record["steps"][1]["main"] is None


def test_the_last_step_must_return_main(cli: RunCli) -> None:
    # gen's data [0, 1, 2] becomes toy's first argument, frequency; mode=nomain drops "main".
    run = cli("run", "gen", "toy", "-p", "toy.mode=nomain", "--json")

    record = _record(run)
    assert record["status"] == "failed"
    assert (record["error"]["step"], record["error"]["type"]) == ("toy", "StepResultError")
    assert "step 'toy' returned no 'main' key" in record["error"]["message"]
    assert record["steps"][0]["main"] == 3.0


def test_several_steps_need_step_names_on_parameters(cli: RunCli, investigation: Path) -> None:
    run = cli("run", "gen", "fit", "-p", "length=short")

    assert run.returncode == 2
    assert "STEP.length" in run.stderr
    assert "gen, fit" in run.stderr
    assert trial_dirs(investigation / "trials") == []


def test_a_later_step_that_cannot_take_the_data_is_refused_before_anything_runs(
    cli: RunCli, investigation: Path
) -> None:
    source = (
        "lookup = {}\n\n\ndef nothing():\n    return {'main': 1}\n\n\n"
        "def keywords_only(*, k=1):\n    return {'main': k}\n"
    )
    add_step(investigation, "nothing", "later", source, run="nothing")
    add_step(investigation, "keywords", "later", source, run="keywords_only")
    for step in ("nothing", "keywords"):
        run = cli("run", "gen", step)
        assert run.returncode == 2, run.stderr
        assert f"step {step!r} comes after 'gen'" in run.stderr
        assert "takes no positional argument" in run.stderr
    assert trial_dirs(investigation / "trials") == []
    alone = cli("run", "nothing")  # first in its trial, it is given no data
    assert alone.returncode == 0, alone.stderr
