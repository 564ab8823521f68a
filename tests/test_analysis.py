"""The archive as a DataFrame, filtered by the query grammar and aggregated over seeds: the
library (`search_trials`, `summarize`) and the command line (`list --where/--csv`, `summary`)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import HOSTILE, NOISES, SEEDS, rmse_of, write_seed_sweep, write_trial

from mitosis import catalog, search_trials, summarize
from mitosis.core.analysis import analysis_row, column_getter
from mitosis.errors import ParameterError, QueryError


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frame") / "trials"
    write_seed_sweep(folder)
    broken = folder / "20260301-000000-bad000"
    broken.mkdir()
    (broken / "trial.yaml").write_text("record: 1\nstatus: [unterminated\n")
    return folder


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args], capture_output=True, text=True
    )


def test_the_frame_has_a_row_per_trial_and_typed_columns(trials: Path) -> None:
    frame = search_trials(trials_folder=trials)
    assert frame.index.name == "id" and len(frame) == 11
    for column in (
        "experiment",
        "status",
        "started",
        "duration_s",
        "iteration",
        "variant",
        "note",
        "debug",
        "commit",
        "host",
        "main",
        "metrics.rmse",
        "params.sine.noise",
        "params.sine.seed",
        "variants.sine.noise",
        "problem",
    ):
        assert column in frame.columns, column
    assert isinstance(frame["started"].dtype, pd.DatetimeTZDtype)
    assert str(frame["started"].dt.tz) == "UTC"
    assert frame["metrics.rmse"].dtype == float and frame["duration_s"].dtype == float
    assert str(frame["iteration"].dtype) == "Int64" and frame["debug"].dtype == bool
    assert frame["metrics.cost"].dtype == float  # whole numbers too: a metric is a float
    sine = frame[frame["experiment"] == "sine"]
    assert sorted(sine["params.sine.noise"].unique()) == sorted(NOISES.values())
    assert set(sine["variants.sine.noise"]) == set(NOISES)
    assert set(sine["params.sine.seed"]) == set(SEEDS)
    assert set(sine["params.sine.label"]) == {HOSTILE}  # a string parameter, as itself
    damaged = frame.loc["20260301-000000-bad000"]
    assert damaged["status"] == "unreadable" and "trial.yaml" in damaged["problem"]


def test_where_filters_the_frame_and_a_bad_query_is_refused(trials: Path) -> None:
    frame = search_trials("params.sine.noise >= 0.1 and metrics.rmse < 1.2", trials_folder=trials)
    expected = {
        (n, s)
        for n, v in NOISES.items()
        for s in SEEDS
        if v >= 0.1 and not (n == "mid" and s == 3) and rmse_of(v, s) < 1.2
    }
    assert {
        (v, s) for v, s in zip(frame["variants.sine.noise"], frame["params.sine.seed"], strict=True)
    } == expected
    assert list(search_trials(experiment="cosine", trials_folder=trials)["experiment"]) == [
        "cosine"
    ]
    with pytest.raises(QueryError, match="at character 18 "):
        search_trials("metrics.rmse < 1 an status", trials_folder=trials)


def test_the_frame_exports_as_it_is(trials: Path, tmp_path: Path) -> None:
    frame = search_trials(trials_folder=trials)
    frame.to_csv(tmp_path / "trials.csv")
    back = pd.read_csv(tmp_path / "trials.csv", index_col="id")
    assert list(back.index) == list(frame.index)


def test_summaries_over_seeds_equal_numpys(trials: Path) -> None:
    table = summarize(search_trials(experiment="sine", trials_folder=trials), over=["seed"])
    rmse = table[table["metric"] == "metrics.rmse"].set_index("params.sine.noise")
    for name, noise in NOISES.items():
        values = [rmse_of(noise, s) for s in SEEDS if not (name == "mid" and s == 3)]
        row = rmse.loc[noise]
        assert row["n"] == len(values) and row["failed"] == (1 if name == "mid" else 0)
        assert abs(row["mean"] - np.mean(values)) <= 1e-12
        assert abs(row["std"] - np.std(values, ddof=1)) <= 1e-12
        assert row["min"] == min(values) and row["max"] == max(values)
    assert set(table["metric"]) == {"main", "metrics.rmse", "metrics.cost"}


def test_averaging_over_an_unknown_parameter_is_refused(trials: Path) -> None:
    frame = search_trials(experiment="sine", trials_folder=trials)
    with pytest.raises(ParameterError, match=r"no parameter 'sed'.*sine\.seed"):
        summarize(frame, over=["sed"])


def test_list_where_and_csv_on_the_command_line(trials: Path) -> None:
    listed = _cli("list", "-F", str(trials), "--where", 'note ~ "onerror"', "--csv")
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert len(rows) == 3 and {row["note"] for row in rows} == {HOSTILE}
    assert {row["params.sine.seed"] for row in rows} == {"1"}
    bad = _cli("list", "-F", str(trials), "--where", "metrics.rmse <")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "at character 15" in bad.stderr


def test_summary_on_the_command_line(trials: Path) -> None:
    ran = _cli("summary", "sine", "-F", str(trials), "--over", "seed", "--json")
    assert ran.returncode == 0, ran.stderr
    groups = [g for g in json.loads(ran.stdout) if g["metric"] == "main"]
    assert [g["params.sine.noise"] for g in groups] == sorted(NOISES.values())
    text = _cli("summary", "sine", "-F", str(trials), "--over", "sine.seed")
    assert text.returncode == 0 and "metrics.rmse" in text.stdout
    unknown = _cli("summary", "sin", "-F", str(trials))
    assert unknown.returncode == 2 and "cosine, sine" in unknown.stderr
    bad = _cli("summary", "sine", "-F", str(trials), "--where", "main >> 1")
    assert bad.returncode == 2 and bad.stdout == "" and "at character 7 " in bad.stderr


def test_a_query_reads_each_column_as_the_row_has_it(trials: Path) -> None:
    _assert_a_query_reads_each_column_as_the_row_has_it(trials)


def _assert_a_query_reads_each_column_as_the_row_has_it(trials: Path) -> None:
    for summary in catalog.collect(trials).summaries:
        row, get = analysis_row(summary), column_getter(summary)
        for column in [*row, "metrics.none", "params.sine.none", "resources.gpus", "problem", "x"]:
            assert repr(get(column)) == repr(row.get(column)), (summary.id, column)


# Text a spreadsheet would take for a formula, with the CSV's own separators and quotes.
NASTY_NOTE = '=HYPERLINK("http://evil.example","x"),\n"quoted", <b>bold</b>\r\nnext line'


def test_hostile_text_in_a_note_stays_text_in_the_csv(tmp_path: Path) -> None:
    write_trial(tmp_path, 0, note=NASTY_NOTE)
    write_trial(tmp_path, 1, note="plain", resources={"cpu_s": 1.5, "peak_rss_mb": 20.0})
    where = 'note ~ "^=HYPER"'
    listed = subprocess.run(  # bytes: text mode would turn the note's \r\n into \n
        [
            sys.executable,
            "-m",
            "mitosis.cli",
            "list",
            "-F",
            str(tmp_path),
            "--csv",
            "--where",
            where,
        ],
        capture_output=True,
    )
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout.decode(), newline="")))
    assert [row["note"] for row in rows] == [NASTY_NOTE]
    assert search_trials(trials_folder=tmp_path)["note"].tolist() == [NASTY_NOTE, "plain"]
    _assert_a_query_reads_each_column_as_the_row_has_it(tmp_path)  # with resources


def test_without_pandas_one_sentence_says_how_to_install_it(trials: Path) -> None:
    hidden = (
        "import sys; sys.modules['pandas'] = None; from mitosis.cli import main; "
        f"sys.exit(main(['summary', 'sine', '-F', {str(trials)!r}]))"
    )
    ran = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True)
    assert ran.returncode == 2
    assert ran.stderr.strip().endswith("pip install 'mitosis-nb[analysis]'.")
