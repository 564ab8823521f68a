"""``mitosis-nb cache list`` and ``cache why`` over real trials of a two-step investigation.

One investigation lives through the story a user's week would tell (the same trial again, a
``--no-cache`` run, an edit of the step's function, of a helper module it imports, another
value of an untracked argument, a debug trial, a failed one, a step that opts out); each
test asks the command line about one chapter of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import run_cli

STEPS = '''
"""A first step whose data feeds a second; gen leans on a helper module."""
from helpers import doubled

gen_lookup = {"size": {"small": 3, "medium": 4, "large": 5}}
fit_lookup = {"power": {"one": 1, "two": 2}}


def generate(size, seed=0):
    values = doubled(list(range(size)))
    return {"main": float(size), "data": values}


def fit(data, power=1, fail=False):
    if fail:
        raise RuntimeError("fit failed on purpose")
    return {"main": float(sum(v**power for v in data))}
'''

HELPERS = '''
"""Helpers the steps import: the project's code, so part of gen's key."""


def doubled(values):
    return [2 * v for v in values]
'''

PYPROJECT = """
[project]
name = "cache-investigation"
version = "0.0.1"

[tool.mitosis]
trials-folder = "trials"

[tool.mitosis.steps]
gen = { run = "cached_steps:generate", lookup = "cached_steps:gen_lookup" }
fit = { run = "cached_steps:fit", lookup = "cached_steps:fit_lookup" }
fresh = { run = "cached_steps:generate", lookup = "cached_steps:gen_lookup", cache = false }
"""

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Researcher",
    "GIT_COMMITTER_NAME": "Test Researcher",
    "GIT_AUTHOR_EMAIL": "researcher@example.org",
    "GIT_COMMITTER_EMAIL": "researcher@example.org",
}


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, **_IDENTITY}
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)


def _edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    _git(root, "commit", "-q", "-am", f"edit {file}")


def _trial(root: Path, *args: str, status: str = "succeeded") -> str:
    """Run one trial; its id."""
    done = run_cli(root, "run", *args, "--json")
    records: list[dict[str, Any]] = json.loads(done.stdout)
    assert [r["status"] for r in records] == [status], done.stderr
    return str(records[0]["id"])


def _why(root: Path, trial: str, step: str) -> str:
    done = run_cli(root, "cache", "why", trial, step)
    assert done.returncode == 0, done.stderr
    return done.stdout


GEN_FIT = ("gen", "fit", "-p", "gen.size=small", "-p", "fit.power=one")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The investigation and the id of each trial of its story, run in this order."""
    root = tmp_path_factory.mktemp("cache") / "investigation"
    root.mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / "cached_steps.py").write_text(STEPS)
    (root / "helpers.py").write_text(HELPERS)
    (root / ".gitignore").write_text("__pycache__/\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "a cached investigation")
    ids = {"root": root, "first": _trial(root, *GEN_FIT)}
    ids["again"] = _trial(root, *GEN_FIT)
    ids["no_cache"] = _trial(root, *GEN_FIT, "--no-cache")
    _edit(root, "cached_steps.py", 'return {"main": float(size)', 'return {"main": 1.0 * size')
    ids["function_edit"] = _trial(root, *GEN_FIT)
    _edit(root, "helpers.py", "[2 * v for v in values]", "[v + v for v in values]")
    ids["helper_edit"] = _trial(root, *GEN_FIT)
    ids["seed"] = _trial(root, *GEN_FIT, "-e", "+gen.seed=2")
    ids["debug"] = _trial(root, "gen", "fit", "-p", "gen.size=large", "--debug")
    ids["after_debug"] = _trial(root, "gen", "fit", "-p", "gen.size=large")
    ids["failed"] = _trial(
        root, "gen", "fit", "-p", "gen.size=medium", "-e", "fit.fail=True", status="failed"
    )
    ids["after_failure"] = _trial(root, "gen", "fit", "-p", "gen.size=medium")
    ids["fresh"] = _trial(root, "fresh", "-p", "size=small")
    ids["after_fresh"] = _trial(root, "fresh", "fit", "-p", "fresh.size=small")
    (root / "trials" / ids["after_debug"] / "results_0.pkl").unlink()
    ids["results_gone"] = _trial(root, "gen", "fit", "-p", "gen.size=large")
    reproduced = run_cli(root, "reproduce", ids["seed"], "--json")
    assert reproduced.returncode == 0, reproduced.stderr
    ids["reproduction"] = json.loads(reproduced.stdout)["trial"]
    ids["gen_alone"] = _trial(root, "gen", "-p", "gen.size=small", "-e", "+gen.seed=2")
    return ids


def test_a_trials_last_step_always_runs_and_says_so(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["gen_alone"], "gen")

    assert "had its key" in said
    assert "it is the trial's last step, which always runs" in said


def test_a_first_run_has_nothing_earlier_to_take(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["first"], "gen")

    assert f"step gen of trial {story['first']} ran:" in said
    assert "no trial that started before it ran step gen with the variants gen.size=small" in said


def test_a_step_taken_from_the_cache_names_the_trial_that_computed_it(
    story: dict[str, Any],
) -> None:
    said = _why(story["root"], story["again"], "gen")

    assert "did not run" in said
    assert f"taken from step gen of trial {story['first']}, which computed it" in said


def test_a_no_cache_run_had_the_same_key_and_says_why_it_ran(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["no_cache"], "gen")

    assert f"ran although trial {story['again']} had its key" in said
    assert "--no-cache" in said


def test_a_reproduction_had_the_same_key_and_says_why_it_ran(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["reproduction"], "gen")

    assert f"ran although trial {story['seed']} had its key" in said
    assert f"this trial re-ran trial {story['seed']}: reproduce runs every step" in said


def test_an_edit_of_the_function_body_is_named(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["function_edit"], "gen")

    assert f"its key changed since trial {story['no_cache']}" in said
    assert "the function cached_steps:generate changed" in said
    assert "helpers" not in said  # only what changed is named
    assert "in the module" not in said  # nor the function again, as its module's part


def test_the_next_step_ran_because_the_step_before_it_changed(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["function_edit"], "fit")

    assert "a step before it changed" in said
    assert "the function" not in said


def test_an_edit_of_a_helper_in_another_module_names_its_file_and_function(
    story: dict[str, Any],
) -> None:
    said = _why(story["root"], story["helper_edit"], "gen")

    assert "in the module helpers (helpers.py), doubled changed" in said
    assert "the function cached_steps:generate changed" not in said


def test_another_value_of_an_untracked_argument_is_named(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["seed"], "gen")

    assert f"its key changed since trial {story['helper_edit']}" in said
    assert "the argument seed has another value" in said


def test_a_debug_trial_never_feeds_the_cache(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["after_debug"], "gen")

    assert f"ran although trial {story['debug']} had its key" in said
    assert "was a debug trial" in said


def test_a_failed_trial_does_not_serve_its_step(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["after_failure"], "gen")

    assert f"ran although trial {story['failed']} had its key" in said
    assert f"trial {story['failed']}, which computed it, failed" in said


def test_a_step_that_did_not_finish_says_so(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["failed"], "fit")

    assert f"step fit of trial {story['failed']} did not finish" in said


def test_a_step_whose_table_says_cache_false_has_no_key(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["fresh"], "fresh")

    assert "its step table says cache = false" in said


def test_cache_false_is_read_from_the_investigation_holding_the_trials_folder(
    story: dict[str, Any], tmp_path: Path
) -> None:
    trials = story["root"] / "trials"
    # From a folder in no investigation at all.
    done = run_cli(tmp_path, "cache", "why", "-F", str(trials), story["fresh"], "fresh")

    assert "its step table says cache = false (a step that draws" in done.stdout, done.stderr


def test_a_step_after_a_step_without_a_key_has_none(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["after_fresh"], "fit")

    assert "because step fresh before it has none" in said


def test_a_result_whose_file_is_gone_does_not_serve(story: dict[str, Any]) -> None:
    said = _why(story["root"], story["results_gone"], "gen")

    assert f"ran although trial {story['after_debug']} had its key" in said
    assert f"the results file of trial {story['after_debug']} is gone (results_0.pkl)" in said


def test_cache_why_as_json(story: dict[str, Any]) -> None:
    done = run_cli(story["root"], "cache", "why", story["seed"], "gen", "--json")

    answer = json.loads(done.stdout)
    assert (answer["outcome"], answer["earlier"]) == ("changed", story["helper_edit"])
    assert answer["reasons"] == ["the argument seed has another value"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ffffff", "gen"), "ffffff"),
        (("FIRST", "nosuch"), "has no step 'nosuch'; its steps are: gen, fit."),
    ],
)
def test_a_bad_id_or_step_is_one_sentence_and_exit_2(
    story: dict[str, Any], args: tuple[str, str], expected: str
) -> None:
    trial, step = args
    done = run_cli(
        story["root"], "cache", "why", story["first"] if trial == "FIRST" else trial, step
    )

    assert done.returncode == 2
    assert expected in done.stderr
    assert done.stderr.count("\n") == 1 and not done.stdout


def test_cache_list_shows_each_cached_result_and_the_total(story: dict[str, Any]) -> None:
    root = story["root"]
    done = run_cli(root, "cache", "list", "--json")

    listing = json.loads(done.stdout)
    entries = listing["entries"]
    trials = {(e["trial"], e["step"]) for e in entries}
    assert (story["first"], "gen") in trials
    assert (story["after_failure"], "gen") in trials
    assert (story["results_gone"], "gen") in trials  # what took the place of a lost result
    assert (story["after_debug"], "gen") not in trials  # its results file is gone
    assert not {story["debug"], story["again"], story["fresh"]} & {t for t, _ in trials}
    sizes = [(root / "trials" / e["results"]).stat().st_size for e in entries]
    assert [e["size"] for e in entries] == sizes
    assert listing["total_size"] == sum(sizes)
    text = run_cli(root, "cache", "list").stdout
    assert f"{story['first']}  gen " in text
    assert f"{len(entries)} cached results" in text


@pytest.mark.parametrize("command", [("list",), ("why", "ID", "STEP")])
def test_each_option_of_cache_help_is_one_line_with_an_example(
    story: dict[str, Any], command: tuple[str, ...]
) -> None:
    done = run_cli(story["root"], "cache", command[0], "--help")

    lines = done.stdout.splitlines()
    for option in ("-F DIR, --trials-folder DIR", "--config", "--json", "--verbose"):
        (line,) = [line for line in lines if line.strip().startswith(option)]
        assert "(e.g. " in line and line.rstrip().endswith(")"), line
    assert f"example: mitosis-nb cache {command[0]}" in done.stdout


def test_cache_list_of_an_empty_folder_says_so(tmp_path: Path, story: dict[str, Any]) -> None:
    (tmp_path / "trials").mkdir()
    done = run_cli(story["root"], "cache", "list", "-F", str(tmp_path / "trials"))

    assert done.returncode == 0
    assert done.stdout.strip() == (
        "the step cache is empty: no trial has fed it a step's result yet."
    )
