"""The pure logic of `reproduce`: asking for a recorded trial again, and judging the re-run."""

from __future__ import annotations

import math

import pytest

from mitosis.core.compare import compare_records
from mitosis.core.params import ParamOption
from mitosis.core.verify import (
    check_ignored,
    recorded_request,
    recorded_sources,
    same_result,
    verify,
)
from mitosis.errors import ParameterError, RecordError


def record(**fields: object) -> dict:
    base: dict = {
        "id": "20261125-100000-aaaaaa",
        "status": "succeeded",
        "debug": False,
        "main": 1.0,
        "metrics": {"err": 0.5},
        "git": {"commit": "c" * 40},
        "environment": {"kernel": "mitosis-same-python", "packages": {"numpy": "2.1.0"}},
        "steps": [
            {
                "name": "gen",
                "params": {
                    "length": {"kind": "lookup", "variant": "short", "tracked": True},
                    "out": {"kind": "literal", "source": "'/tmp/x'", "tracked": False},
                },
            },
            {"name": "fit", "params": {"scale": {"kind": "literal", "source": "2.0"}}},
        ],
    }
    base.update(fields)
    return base


def test_a_record_asks_for_the_same_steps_variants_literals_and_untracked_values() -> None:
    asked = recorded_request(record(debug=True))
    assert asked.steps == ("gen", "fit")
    assert asked.options == (
        ParamOption("gen", "length", "lookup", ("short",), True),
        ParamOption("gen", "out", "literal", ("'/tmp/x'",), False),
        ParamOption("fit", "scale", "literal", ("2.0",), True),
    )
    assert asked.debug is True and asked.commit == "c" * 40
    assert asked.kernel == "mitosis-same-python"


def test_a_record_without_literal_source_or_commit_cannot_be_asked_for_again() -> None:
    old = record(steps=[{"name": "fit", "params": {"scale": {"kind": "literal", "value": "2"}}}])
    with pytest.raises(RecordError, match=r"fit\.scale"):
        recorded_request(old)
    with pytest.raises(RecordError, match="no commit"):
        recorded_request(record(git={}))


def test_numbers_agree_within_the_relative_tolerance() -> None:
    assert same_result(1.0, 1.0 + 1e-12, 1e-9)
    assert not same_result(1.0, 1.001, 1e-9)
    assert same_result(1.0, 1.001, 1e-2)
    assert same_result(math.nan, math.nan, 1e-9)
    assert same_result([1.0, {"a": 2.0}], [1.0, {"a": 2.0 + 1e-15}], 1e-9)
    assert not same_result([1.0], [1.0, 2.0], 1e-9)
    assert not same_result("0.1", 0.1, 1e-9)


def test_the_verdict_lists_main_and_each_metric_that_differs() -> None:
    original = record()
    same = record(id="b", main=1.0 + 1e-13)
    verdict = verify(original, same)
    assert verdict.reproduced and not verdict.mismatches
    assert verdict.compared == ("status", "main", "metrics.err")

    diverged = record(id="c", main=2.0, metrics={"err": 0.5, "extra": 1})
    verdict = verify(original, diverged)
    assert not verdict.reproduced
    assert verdict.as_dict()["differences"] == {"main": [1.0, 2.0], "metrics.extra": [None, 1]}


def test_a_failed_rerun_never_reproduces_and_changed_packages_are_listed() -> None:
    failed = record(
        id="d",
        status="failed",
        main=None,
        metrics={},
        environment={"packages": {"numpy": "2.2.0", "scipy": "1.14"}},
    )
    verdict = verify(record(), failed)
    assert not verdict.reproduced
    assert verdict.as_dict()["differences"]["status"] == ["succeeded", "failed"]
    assert verdict.as_dict()["packages"] == {"numpy": ["2.1.0", "2.2.0"], "scipy": [None, "1.14"]}


def test_compare_shows_step_sources_git_packages_submodules_and_reproduces() -> None:
    def sourced(commit: str, dirty: bool) -> dict:
        entry = {"file": "lab.py", "repo": "/src/lab", "commit": commit, "dirty": dirty}
        return {"name": "lab", "params": {}, "source": {"run": entry, "lookup": entry}}

    def vcs(commit: str) -> dict:
        return {"labtools": {"url": "https://git.example.org/labtools.git", "commit": commit}}

    a = record(
        steps=[sourced("1" * 40, False)],
        git={"commit": "c" * 40, "submodules": {"vendor/lib": "e" * 40}},
        environment={"vcs_packages": vcs("a" * 40)},
    )
    b = record(
        id="b",
        reproduces=a["id"],
        steps=[sourced("2" * 40, True)],
        git={"commit": "c" * 40, "submodules": {"vendor/lib": "f" * 40}},
        environment={"vcs_packages": vcs("b" * 40)},
    )
    differences = compare_records(a, b).as_dict()["differences"]
    assert differences["trial"] == {"reproduces": [None, a["id"]]}
    old, new = differences["sources"]["lab.run"]
    assert old == f"lab.py @ {'1' * 40} in /src/lab"
    assert new == f"lab.py @ {'2' * 40} in /src/lab (dirty)"
    assert differences["submodules"] == {"vendor/lib": ["e" * 40, "f" * 40]}
    assert differences["vcs_packages"]["labtools"][1].endswith("@ " + "b" * 40)


def test_recorded_sources_name_each_module_and_where_it_imports_from() -> None:
    def step(name: str, run: str, file: str, repo: str | None) -> dict:
        entry = {"file": file, "repo": repo, "commit": "1" * 40}
        return {"name": name, "run": run, "lookup": None, "source": {"run": entry}}

    traced = recorded_sources(
        record(
            steps=[
                step("a", "lab.fits:run", "src/lab/fits.py", "/src/lab"),
                step("b", "lab:run", "src/lab/__init__.py", "/src/lab"),
                step("c", "tool:run", "/usr/lib/tool.py", None),  # not in a repository
                step("d", "other:run", "elsewhere/mod.py", "/src/x"),  # file and module disagree
            ]
        )
    )
    assert [(s.module, s.import_root) for s in traced] == [
        ("lab.fits", "src"),
        ("lab", "src"),
        ("other", None),
    ]


def test_the_results_of_every_step_are_checked_not_only_the_last() -> None:
    def two_steps(std: float) -> dict:
        gen = {"name": "gen", "main": 3.0, "metrics": {"y_std": std}}
        return record(steps=[gen, {"name": "fit", "main": 1.0, "metrics": {"err": 0.5}}])

    same = verify(two_steps(0.25), two_steps(0.25))
    assert same.reproduced and "gen.metrics.y_std" in same.compared and "gen.main" in same.compared
    changed = verify(two_steps(0.25), two_steps(0.5))
    assert not changed.reproduced
    assert [m.name for m in changed.mismatches] == ["gen.metrics.y_std"]


def test_compare_shows_a_default_that_changed_under_the_same_variant() -> None:
    def ran_with(helper: int) -> dict:
        steps = [{"name": "gen", "params": {}, "defaults": {"w": helper, "z": "same"}}]
        return record(steps=steps)

    differences = compare_records(ran_with(42), ran_with(43)).as_dict()["differences"]
    assert differences["params"] == {"gen.w": ["42 (default)", "43 (default)"]}


def test_compare_leaves_out_where_the_shell_has_been() -> None:
    def shell(level: str, last: str) -> dict:
        variables = {"SHLVL": level, "OLDPWD": last, "_": last, "OMP_NUM_THREADS": level}
        return record(environment={"variables": variables})

    differences = compare_records(shell("1", "/a"), shell("2", "/b")).as_dict()["differences"]
    assert differences["variables"] == {"OMP_NUM_THREADS": ["1", "2"]}


def test_text_that_differs_only_in_memory_addresses_is_equal_and_said_so() -> None:
    a = record(main="<function lorenz at 0x7fab12345678>")
    b = record(id="20261125-100001-bbbbbb", main="<function lorenz at 0x7f00deadbeef>")
    verdict = verify(a, b)
    assert verdict.reproduced and verdict.addresses == ("main",)
    other = record(id="20261125-100001-bbbbbb", main="<function rossler at 0x7f00deadbeef>")
    assert not verify(a, other).reproduced
    # A number that merely looks like an address in text is not set aside when short.
    assert not verify(record(main="0x1"), record(main="0x2")).reproduced


def test_ignored_fields_are_left_out_and_a_typo_is_refused() -> None:
    a = record(metrics={"err": 0.5, "runtime": 1.0})
    b = record(id="20261125-100001-bbbbbb", metrics={"err": 0.5, "runtime": 2.0})
    assert not verify(a, b).reproduced
    verdict = verify(a, b, ignore=["metrics.runtime"])
    assert verdict.reproduced and verdict.ignored == ("metrics.runtime",)
    assert "metrics.runtime" not in verdict.compared
    assert verify(a, b, ignore=["metrics"]).ignored == ("metrics.err", "metrics.runtime")
    check_ignored(a, ["metrics.runtime", "main", "metrics"])
    with pytest.raises(ParameterError, match="names no result"):
        check_ignored(a, ["metrics.runtim"])
