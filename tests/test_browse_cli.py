"""Real trials, then list / show / compare / index over them; the site's escaping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import RunCli, git, trial_dirs
from synthetic import make_record, site_text, write_trials

from mitosis.adapters import site
from mitosis.core.compare import compare_records
from mitosis.core.summary import summarize_record
from mitosis.views import comparison_text


def test_real_trials_are_indexed_listed_shown_and_compared(
    cli: RunCli, investigation: Path
) -> None:
    ran = cli("run", "toy", "-p", "frequency=fast,slow", "--note", "first sweep")
    assert ran.returncode == 0, ran.stderr
    (investigation / "toy_experiments.py").write_text(
        (investigation / "toy_experiments.py").read_text() + "\n# tweak\n"
    )
    debug = cli("run", "toy", "-p", "frequency=fast", "--debug")
    assert debug.returncode == 0, debug.stderr
    trials = investigation / "trials"
    *sweep, tweaked = (folder.name for folder in trial_dirs(trials))
    # A sweep's trials may start within one second, where ids order by their random part.
    by_variant = {
        yaml.safe_load((trials / name / "trial.yaml").read_text())["variant"]: name
        for name in sweep
    }
    fast, slow = by_variant["toy.frequency=fast"], by_variant["toy.frequency=slow"]

    # The index and the page were updated after every trial, without `index`.
    html = site_text(trials)
    assert all(trial_id in html for trial_id in (fast, slow, tweaked))
    listed = cli("list", "--json")
    rows = json.loads(listed.stdout)
    assert listed.stderr == "" and {row["id"] for row in rows[:2]} == {fast, slow}
    assert rows[2]["id"] == tweaked
    assert {row["id"]: row["main"] for row in rows} == {fast: 10.0, slow: 1.0, tweaked: 10.0}
    assert rows[2]["debug"] is True and rows[0]["note"] == "first sweep"

    shown = cli("show", slow[-6:])
    assert shown.returncode == 0
    assert "toy.frequency=slow" in shown.stdout and "main:     1.0" in shown.stdout
    assert json.loads(cli("show", slow, "--json").stdout)["id"] == slow

    compared = json.loads(cli("compare", fast, slow, "--json").stdout)["differences"]
    assert compared["params"] == {"toy.frequency": ["fast = 10", "slow = 1"]}
    assert compared["main"] == {"main": [10.0, 1.0]}
    assert "packages" not in compared and "commit" not in compared
    against_debug = json.loads(cli("compare", fast, tweaked, "--json").stdout)["differences"]
    assert "params" not in against_debug and "main" not in against_debug
    assert against_debug["commit"]["dirty"] == [False, True]
    assert against_debug["patch"]["uncommitted.patch"][0] is None
    assert "# tweak" in against_debug["patch"]["uncommitted.patch"][1]
    text = cli("compare", fast, slow).stdout
    assert "toy.frequency: fast = 10  ->  slow = 1" in text and "packages" not in text

    (trials / "index.sqlite").unlink()
    (trials / "index.html").unlink()
    rebuilt = cli("index")
    assert rebuilt.returncode == 0 and "3 trials" in rebuilt.stdout
    assert (trials / "index.sqlite").is_file() and fast in (trials / "index.html").read_text()
    git(investigation, "status")  # the trials folder's churn never needs a commit


def test_compare_shows_only_what_differs() -> None:
    a = make_record(1)
    b = make_record(1, main=2.5, metrics={"err": 0.1, "extra": 3})
    b["environment"] = {
        **a["environment"],
        "packages": {**a["environment"]["packages"], "numpy": "9.9.9"},
        "variables": {**a["environment"]["variables"], "OMP_NUM_THREADS": "8"},
    }
    found = compare_records(a, b).as_dict()["differences"]
    assert set(found) == {"main", "metrics", "packages", "variables"}
    assert found["metrics"] == {
        "err": [a["metrics"]["err"], 0.1],
        "n": [1, None],
        "extra": [None, 3],
    }
    assert found["packages"]["numpy"][1] == "9.9.9"
    assert found["variables"] == {
        "OMP_NUM_THREADS": [a["environment"]["variables"].get("OMP_NUM_THREADS"), "8"]
    }
    assert compare_records(a, a).differences == ()


def test_compare_shows_where_two_long_values_differ() -> None:
    prefix = "sine.amplitude=4,sine.frequency=fast,sine.solver=" + "x" * 120
    a = make_record(1, variant=prefix + ",sine.noise=low", note="n" * 300 + "A")
    b = make_record(1, variant=prefix + ",sine.noise=high", note="n" * 300 + "B")
    text = comparison_text(compare_records(a, b))
    variant = next(line for line in text.splitlines() if line.startswith("  variant:"))
    shown_a, shown_b = variant.removeprefix("  variant: ").split("  ->  ")
    assert shown_a != shown_b, variant
    assert "noise=low" in shown_a and "noise=high" in shown_b
    assert shown_a.startswith("…") and len(shown_a) <= 82
    note = next(line for line in text.splitlines() if line.startswith("  note:"))
    note_a, note_b = note.removeprefix("  note: ").split("  ->  ")
    assert note_a.endswith("nA") and note_b.endswith("nB") and note_a.startswith("…")


def test_the_site_escapes_every_user_string() -> None:
    hostile = "</script><script>alert(1)</script><img src=x onerror=alert(2)>&amp;"
    record = make_record(3, variant=hostile, note=hostile, experiment=hostile)
    page = site.render_index(
        [summarize_record(record["id"], record)], title=hostile, generated=site.datetime(2026, 1, 1)
    )
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/script&gt;" in page  # the title, escaped by the template
    data = re.search(
        r'<script type="application/json" id="mitosis-data">(.*?)</script>', page, re.S
    )
    assert data is not None
    assert json.loads(data.group(1))["rows"][0][3] == hostile  # intact once parsed
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from afar


def test_usage_slips_get_one_sentence_and_a_closed_pipe_ends_quietly(
    cli: RunCli, investigation: Path
) -> None:
    write_trials(investigation / "trials", 50)
    assert cli("index").returncode == 0

    # --verbose also after the command's name; an unknown status is refused, not "no trials".
    assert cli("list", "--verbose").returncode == 0
    bogus = cli("list", "--status", "bogus")
    assert bogus.returncode == 2 and bogus.stdout == ""
    assert bogus.stderr.startswith("mitosis-nb: argument --status: invalid choice: 'bogus'")
    assert bogus.stderr.rstrip().endswith("see mitosis-nb list --help.")
    unknown = cli("bogus")
    assert unknown.returncode == 2 and "see mitosis-nb --help." in unknown.stderr

    # `mitosis-nb list --json | head -1`, where head has already exited.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        closed = subprocess.run(
            [sys.executable, "-m", "mitosis.cli", "list", "--json"],
            cwd=investigation,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert closed.returncode == 141 and closed.stderr == ""


def test_terminal_control_characters_in_a_note_are_shown_escaped(
    cli: RunCli, investigation: Path
) -> None:
    trials = investigation / "trials"
    folder = write_trials(trials, 1)[0]
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    record["note"] = "clean \x1b[2J\x1b[31mred\u202eevil"
    (folder / "trial.yaml").write_text(yaml.safe_dump(record))

    for args in (["list"], ["show", folder.name]):
        shown = cli(*args)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
        assert "clean \\x1b[2J\\x1b[31mred\\u202eevil" in shown.stdout


def test_a_misspelt_trials_folder_is_named_not_listed_as_empty(cli: RunCli, tmp_path: Path) -> None:
    typo = tmp_path / "trails"
    for command in (["list"], ["index"], ["show", "abc"], ["serve", "--port", "0"]):
        done = cli(*command, "-F", str(typo))
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr == f"mitosis-nb: no trials folder at {typo}; check -F.\n"
    assert not typo.exists()


def test_compare_shows_numbers_that_differ_past_the_digits_it_prints_in_full() -> None:
    a, b = make_record(1, main=0.1 + 0.2), make_record(1, main=0.3)
    text = comparison_text(compare_records(a, b))
    line = next(x for x in text.splitlines() if x.startswith("  main"))
    assert line.endswith("0.30000000000000004  ->  0.3"), line
