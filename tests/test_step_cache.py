"""The step cache, on real trials: an upstream step whose code, arguments and inputs are
unchanged is not computed again; what changed it is told."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cache_helpers import SWEEP, commit, gen_runs, make_cache_investigation, run_json
from conftest import working_in
from sweep_helpers import run_cli

ONE = ("gen", "fit", "-p", "gen.length=a", "-p", "fit.scale=s2")


@pytest.fixture
def investigation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_cache_investigation(tmp_path / "investigation")
    with working_in(root, monkeypatch, "toy_experiments"):
        yield root


def _gen(record: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = record["steps"][0]
    assert step["name"] == "gen"
    return step


def test_a_sweep_computes_each_upstream_step_once(investigation: Path) -> None:
    records = run_json(investigation, *SWEEP, "--workers", "2")

    assert len(records) == 10 and {r["status"] for r in records} == {"succeeded"}
    assert gen_runs(investigation) == 2  # once per gen.length, not once per trial
    taken = [r for r in records if _gen(r).get("cached_from")]
    assert len(taken) == 8
    # Every trial of one length has the same key; the two lengths have two.
    keys = Counter(_gen(r)["cache_key"] for r in records)
    assert sorted(keys.values()) == [5, 5]
    trials = investigation / "trials"
    for record in taken:
        source = _gen(record)["cached_from"]
        assert source["step"] == "gen"
        given = (trials / record["id"] / "results_0.pkl").read_bytes()
        computed = (trials / source["trial"] / "results_0.pkl").read_bytes()
        assert given == computed  # the trial's own copy, bit for bit
        length = 3 if "gen.length=a" in record["variant"] else 4
        scale = float(record["variant"].split("fit.scale=s")[1].split(",")[0])
        assert record["main"] == pytest.approx(sum(i * 0.1 for i in range(length)) * scale)
    page = (trials / taken[0]["id"] / "trial.html").read_text()
    assert "Step gen did not run" in page and _gen(taken[0])["cached_from"]["trial"] in page
    shown = run_cli(investigation, "show", taken[0]["id"]).stdout
    source = _gen(taken[0])["cached_from"]["trial"]
    assert f"cached:   step gen did not run: its result is step gen of {source}" in shown


def test_what_changes_a_steps_code_decides_whether_it_runs_again(investigation: Path) -> None:
    experiments = investigation / "toy_experiments.py"
    (first,) = run_json(investigation, *ONE)
    assert gen_runs(investigation) == 1 and "cached_from" not in _gen(first)
    (again,) = run_json(investigation, *ONE)
    assert gen_runs(investigation) == 1
    assert _gen(again)["cached_from"] == {"trial": first["id"], "step": "gen"}

    # Comments, docstrings and an unrelated module change nothing it runs.
    text = experiments.read_text()
    edited = text.replace('    """Data for fit;', '    # a comment\n    """Data for the fit step;')
    experiments.write_text(edited)
    (investigation / "unrelated.py").write_text("def other():\n    return 1\n")
    commit(investigation, "comments and another module")
    run_json(investigation, *ONE)
    assert gen_runs(investigation) == 1

    # A helper it calls, in another module: it runs again.
    spread = investigation / "cache_spread.py"
    spread.write_text(spread.read_text().replace("i * 0.1", "i * 0.1 + 0.0"))
    commit(investigation, "the helper changes")
    run_json(investigation, *ONE)
    assert gen_runs(investigation) == 2

    # Its own body: it runs again.
    experiments.write_text(edited.replace("float(length)", "float(length) + 0"))
    commit(investigation, "the function changes")
    run_json(investigation, *ONE)
    assert gen_runs(investigation) == 3

    # --no-cache runs everything, whatever the cache holds.
    (forced,) = run_json(investigation, *ONE, "--no-cache")
    assert gen_runs(investigation) == 4 and "cached_from" not in _gen(forced)
    assert _gen(forced)["cache_key"] == _gen(run_json(investigation, *ONE)[0])["cache_key"]
    assert gen_runs(investigation) == 4


def test_a_package_version_is_part_of_the_key(investigation: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "cachepkg").mkdir(parents=True)
    (site / "cachepkg" / "__init__.py").write_text("WIDTH = 1\n")
    spread = investigation / "cache_spread.py"
    spread.write_text("import cachepkg\n\n" + spread.read_text())
    commit(investigation, "the helper uses a package")

    def install(version: str) -> None:
        for old in site.glob("cachepkg-*.dist-info"):
            for file in old.iterdir():
                file.unlink()
            old.rmdir()
        info = site / f"cachepkg-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: cachepkg\nVersion: {version}\n"
        )
        (info / "top_level.txt").write_text("cachepkg\n")

    env = {"PYTHONPATH": str(site)}
    install("1.0")
    (first,) = run_json(investigation, *ONE, env=env)
    assert _gen(first)["cache_parts"]["packages"] == {"cachepkg": "1.0"}
    run_json(investigation, *ONE, env=env)
    assert gen_runs(investigation) == 1
    install("1.1")
    (upgraded,) = run_json(investigation, *ONE, env=env)
    assert gen_runs(investigation) == 2
    assert _gen(upgraded)["cache_parts"]["packages"] == {"cachepkg": "1.1"}


def test_a_step_may_opt_out_and_a_debug_trial_never_feeds_the_cache(investigation: Path) -> None:
    (debug,) = run_json(investigation, *ONE, "--debug")
    assert gen_runs(investigation) == 1 and _gen(debug)["cache_key"]
    run_json(investigation, *ONE)
    assert gen_runs(investigation) == 2  # nothing came from the debug trial
    run_json(investigation, *ONE, "--debug")
    assert gen_runs(investigation) == 2  # a debug trial may take a committed trial's result

    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'lookup = "toy_experiments:gen_lookup" }',
            'lookup = "toy_experiments:gen_lookup", cache = false }',
        )
    )
    commit(investigation, "gen draws fresh randomness")
    (opted_out,) = run_json(investigation, *ONE)
    run_json(investigation, *ONE)
    assert gen_runs(investigation) == 4
    assert "cache_key" not in _gen(opted_out) and "cache_key" not in opted_out["steps"][1]

    pyproject.write_text(pyproject.read_text().replace("cache = false", 'cache = "no"'))
    refused = run_cli(investigation, "run", *ONE)
    assert refused.returncode == 2
    assert "cache must be true or false" in refused.stderr


def test_reproduce_runs_every_step_of_a_trial_that_took_a_cached_result(
    investigation: Path,
) -> None:
    run_json(investigation, *ONE)
    (cached,) = run_json(investigation, *ONE)
    assert gen_runs(investigation) == 1 and _gen(cached)["cached_from"]

    done = run_cli(investigation, "reproduce", cached["id"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"REPRODUCED: trial {cached['id']}")
    assert gen_runs(investigation) == 2


def test_a_cached_result_that_cannot_be_read_is_computed_again(investigation: Path) -> None:
    (first,) = run_json(investigation, *ONE)
    results = investigation / "trials" / first["id"] / "results_0.pkl"
    results.write_bytes(b"\0" * results.stat().st_size)  # same size: found, but unreadable

    (second,) = run_json(investigation, *ONE)

    assert gen_runs(investigation) == 2
    assert second["status"] == "succeeded" and "cached_from" not in _gen(second)
    assert second["main"] == first["main"]


def test_cache_why_compares_with_a_trial_whose_earlier_steps_had_the_same_variants(
    investigation: Path,
) -> None:
    first, _other = run_json(
        investigation, "gen", "fit", "-p", "gen.length=a,b", "-p", "fit.scale=s2"
    )
    (again,) = run_json(investigation, *ONE)  # gen a, fit s2: as the first, not the other

    said = run_cli(investigation, "cache", "why", again["id"], "fit")

    assert said.returncode == 0, said.stderr
    assert f"ran although trial {first['id']} had its key" in said.stdout
    assert "it is the trial's last step, which always runs" in said.stdout
