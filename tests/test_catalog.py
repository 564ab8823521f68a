"""Listing trials: index.sqlite as a disposable cache, damaged records, dead runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import RunCli
from synthetic import dead_pid, make_record, site_text, write_trial, write_trials

from mitosis import catalog, dead_runs
from mitosis.adapters import index_cache, processes, site, store
from mitosis.core.trial_record import record_data


@pytest.fixture
def trials(tmp_path: Path) -> Path:
    """A trials folder of 12 synthetic trials, indexed."""
    folder = tmp_path / "trials"
    write_trials(folder, 12)
    catalog.rebuild(folder)
    return folder


def listed(cli: RunCli, trials: Path, *args: str) -> tuple[list[dict], list[str]]:
    result = cli("list", "-F", str(trials), "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr.splitlines()


def test_list_reads_the_index_and_filters(cli: RunCli, trials: Path) -> None:
    rows, warnings = listed(cli, trials)
    assert warnings == []
    assert [row["id"] for row in rows] == [p.name for p in store.trial_folders(trials)]
    assert rows[1]["metrics"] == {"err": pytest.approx(1 / 21), "n": 1}
    failed, _ = listed(cli, trials, "--status", "failed")
    assert {row["id"] for row in failed} == {rows[0]["id"], rows[11]["id"]}
    dmd, _ = listed(cli, trials, "--experiment", "dmd")
    assert all(row["experiment"] == "dmd" for row in dmd) and len(dmd) == 4
    table = cli("list", "-F", str(trials))
    assert "STATUS" in table.stdout and rows[3]["id"] in table.stdout
    assert not table.stdout.lstrip().startswith("[")


def test_list_json_prints_the_same_from_the_index_as_from_the_records(
    cli: RunCli, trials: Path
) -> None:
    # The index's own text is printed for a trial it holds unchanged; a NaN is spelled as
    # list --json spells it either way.
    write_trial(trials, 40, metrics={"err": float("nan"), "n": 3})
    catalog.rebuild(trials)
    from_index = cli("list", "-F", str(trials), "--json")
    index_cache.index_path(trials).unlink()
    from_records = cli("list", "-F", str(trials), "--json")
    assert from_index.returncode == from_records.returncode == 0
    assert from_index.stdout == from_records.stdout
    assert '"err": "nan"' in from_index.stdout
    assert len(json.loads(from_index.stdout)) == 13


QUERIES = (
    "metrics.err > 0.5",
    "metrics.err is missing or metrics.n == 3",
    "debug == true",
    'main ~ "^[[]" or host is missing',
    "params.sine.frequency == 10 and variants.sine.frequency in ['fast', 'slow']",
    "status != 'failed' and not (note ~ '1$')",
    "problem is missing and metrics.n < 5",  # no path for `problem`: every summary decoded
)


def test_list_where_selects_the_same_from_the_index_as_from_the_records(
    cli: RunCli, trials: Path
) -> None:
    # The index answers a query from the values SQLite reads out of each row; a NaN (which
    # SQLite's JSON cannot hold), a list, a boolean and a record changed since it was
    # indexed must all select as the records themselves do.
    write_trial(trials, 40, metrics={"err": float("nan"), "n": 3})
    write_trial(trials, 41, main=[1, 2], debug=True)
    catalog.rebuild(trials)
    write_trial(trials, 5, note="changed since indexed", metrics={"err": 9.0, "n": 3})
    from_index = [cli("list", "-F", str(trials), "--json", "--where", q) for q in QUERIES]
    index_cache.index_path(trials).unlink()
    from_records = [cli("list", "-F", str(trials), "--json", "--where", q) for q in QUERIES]
    for query, indexed, read in zip(QUERIES, from_index, from_records, strict=True):
        assert indexed.returncode == read.returncode == 0, (query, indexed.stderr)
        assert indexed.stdout == read.stdout, query
    selected = [[row["id"] for row in json.loads(r.stdout)] for r in from_index]
    assert all(selected), "every query selects some trial"
    assert all(len(ids) < 14 for ids in selected), "and leaves some out"


def test_a_summary_the_index_cannot_decode_is_read_from_its_record(
    cli: RunCli, trials: Path
) -> None:
    names = [folder.name for folder in store.trial_folders(trials)]
    expected = {
        flags: cli("list", "-F", str(trials), *flags).stdout
        for flags in (("--json",), ("--csv",), ("--where", "metrics.n >= 0", "--json"))
    }
    with sqlite3.connect(index_cache.index_path(trials)) as connection:
        connection.execute("UPDATE trials SET summary = '{\"id\": [' WHERE id = ?", (names[3],))
    for flags, before in expected.items():
        now = cli("list", "-F", str(trials), *flags)
        assert now.returncode == 0, now.stderr
        assert now.stdout == before, flags


def test_list_uses_the_index_not_the_records(trials: Path) -> None:
    # A row whose record is unchanged comes from the index: change only the index, and see it.
    entries = index_cache.read(trials)
    first = next(iter(entries.values()))
    changed = index_cache.Entry(first.summary.flagged("from the index"), first.stamp)
    index_cache.update(trials, [changed])
    rows = catalog.list_trials(trials).trials
    assert rows[0]["problem"] == "from the index"


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate"])
def test_damaged_index_falls_back_with_one_warning_and_index_rebuilds_it(
    cli: RunCli, trials: Path, damage: str
) -> None:
    path = trials / "index.sqlite"
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    else:
        path.write_bytes(path.read_bytes()[:1000])
    rows, warnings = listed(cli, trials)
    assert len(rows) == 12
    assert (
        len(warnings) == 1 and "index.sqlite" in warnings[0] and "mitosis-nb index" in warnings[0]
    )
    rebuilt = cli("index", "-F", str(trials))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "12 trials" in rebuilt.stdout
    again, warnings = listed(cli, trials)
    assert warnings == [] and again == rows


def test_a_trial_added_or_rewritten_behind_the_index_is_still_listed_right(trials: Path) -> None:
    write_trial(trials, 50, status="failed", note="copied in from a colleague")
    folder = store.trial_folders(trials)
    first = next(iter(folder))
    record = store.read_record(first)
    store.write_record(first, replace(record, note="edited by hand"))
    rows = {row["id"]: row for row in catalog.list_trials(trials).trials}
    assert len(rows) == 13
    assert rows[first.name]["note"] == "edited by hand"
    assert any(row["note"] == "copied in from a colleague" for row in rows.values())
    # ...and listing healed the index, so the next reader trusts it again.
    assert len(index_cache.read(trials)) == 13


def test_list_and_serve_bring_the_page_up_to_date_after_hand_edits(
    cli: RunCli, trials: Path
) -> None:
    # A folder deleted by hand must not stay on the page as links to nothing, and one
    # copied in must appear, whichever reader notices first.
    html = trials / "index.html"
    deleted = next(iter(store.trial_folders(trials)))
    assert deleted.name in html.read_text()
    for path in sorted(deleted.iterdir()):
        path.unlink()
    deleted.rmdir()
    listed(cli, trials)
    assert deleted.name not in html.read_text()
    copied = write_trial(trials, 60, note="copied in")
    server = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "serve", "-F", str(trials), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        announced = server.stdout.readline()
        assert "serving" in announced and copied.name in html.read_text()
        # While it serves: each request for the page sees the folder as it is now.
        shutil.rmtree(copied)
        url = announced.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.html", timeout=30) as response:
            assert copied.name not in response.read().decode()
    finally:
        server.terminate()
        server.wait(10)
    # An index page that already shows every record is left alone.
    before = html.stat().st_mtime_ns
    listed(cli, trials)
    assert html.stat().st_mtime_ns == before


def _update_many(trials: Path, start: int) -> None:
    for index in range(start, start + 10):
        catalog.record_trial(trials, record_data(store.read_record(write_trial(trials, index))))


def test_concurrent_updaters_lose_nothing(trials: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_update_many, args=(trials, 100 + 10 * k)) for k in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(index_cache.read(trials)) == 52
    listing = catalog.list_trials(trials)
    assert len(listing.trials) == 52 and listing.warnings == []


HEAD = b"record: 1\nid: x\nexperiment: sine\n"
DAMAGE = {
    "empty": (b"", "line 1", "empty"),
    "truncated": (b"record: 1\nid: x\nexperiment: [sine\n", "line 4", "not valid YAML"),
    "garbage": (b"record: 1\n\xff\xfe\x00garbage", "line 2", "not UTF-8"),
    "schema": (
        b"record: 1\nid: x\nexperiment: sine\nstatus: exploded\n",
        "line 4",
        "unknown status",
    ),
    "newer": (
        b"record: 99\nid: x\nexperiment: sine\nstatus: running\n",
        "line 1",
        "upgrade mitosis-nb",
    ),
    "unsafe": (
        b"record: !!python/object/apply:os.system ['echo pwned']\n",
        "line 1",
        "not valid YAML",
    ),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_record_is_listed_unreadable_and_show_names_file_and_line(
    cli: RunCli, trials: Path, kind: str
) -> None:
    content, line, problem = DAMAGE[kind]
    folder = sorted(store.trial_folders(trials))[5]
    (folder / "trial.yaml").write_bytes(content)
    (folder / "trial.html").write_text("<html>the page it had</html>")
    rows, warnings = listed(cli, trials)
    assert len(rows) == 12
    assert rows[5]["status"] == "unreadable" and rows[5]["id"] == folder.name
    assert len(warnings) == 1 and str(folder / "trial.yaml") in warnings[0]
    shown = cli("show", folder.name, "-F", str(trials))
    assert shown.returncode == 2
    assert (
        str(folder / "trial.yaml") in shown.stderr
        and line in shown.stderr
        and problem in shown.stderr
    )
    assert "Traceback" not in shown.stderr
    # The published page names the file from the trials folder, and links the page it has.
    page = (trials / "index.html").read_text()
    assert str(trials) not in page and f"{folder.name}/trial.yaml (line" in page
    rows_shown = site.page_data(catalog.collect(trials).summaries, trials)["rows"]
    (row,) = [r for r in rows_shown if r[0] == folder.name]
    assert row[site.ROW_FIELDS.index("has_page")] is True


def test_a_stray_temp_file_without_its_record_is_named(cli: RunCli, tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    folder = write_trial(trials, 1)
    (folder / "trial.yaml").rename(folder / ".tmp-0123456789ab-trial.yaml")
    (trials / ".tmp-feedbeef0000-index.html").write_text("<html>half")
    rows, warnings = listed(cli, trials)
    assert [row["status"] for row in rows] == ["unreadable"]
    assert len(warnings) == 2  # no index yet, and the one damaged trial
    assert any(".tmp-0123456789ab-trial.yaml" in warning for warning in warnings)


def test_a_trial_that_never_started_is_not_listed_and_show_says_why(
    cli: RunCli, trials: Path
) -> None:
    # The folder a sweep set aside for a trial, before its runner was killed outright.
    (trials / "20261124-190512-abcdef").mkdir()
    rows, _ = listed(cli, trials)
    assert "20261124-190512-abcdef" not in [row["id"] for row in rows] and len(rows) == 12
    shown = cli("show", "abcdef", "-F", str(trials))
    assert shown.returncode == 2
    assert "trial 20261124-190512-abcdef never started" in shown.stderr


def test_a_dead_runner_is_recorded_as_interrupted(cli: RunCli, trials: Path) -> None:
    folder = write_trial(trials, 70, status="running", pid=dead_pid(), main=None, error=None)
    rows, _ = listed(cli, trials)
    row = next(row for row in rows if row["id"] == folder.name)
    assert row["status"] == "interrupted" and row["error_kind"] == "interrupted"
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    assert record["status"] == "interrupted"
    assert record["error"]["kind"] == "interrupted" and "died" in record["error"]["message"]
    assert index_cache.read(trials)[folder.name].summary.status == "interrupted"


def test_a_table_listing_settles_an_indexed_dead_run_and_rewrites_the_page_whole(
    cli: RunCli, trials: Path
) -> None:
    # A table reads only briefs from the index: the running trial's summary, and every
    # other one for the page it rewrites, are read from the index when they are needed.
    folder = write_trial(trials, 74, status="running", pid=dead_pid(), main=None, error=None)
    index_cache.update(trials, [catalog._entry(folder)])
    assert index_cache.read(trials)[folder.name].summary.status == "running"

    table = cli("list", "-F", str(trials))
    assert table.returncode == 0, table.stderr
    (line,) = [line for line in table.stdout.splitlines() if line.startswith(folder.name)]
    assert " interrupted " in line
    assert yaml.safe_load((folder / "trial.yaml").read_text())["status"] == "interrupted"
    page = site_text(trials)
    assert all(other.name in page for other in store.trial_folders(trials))
    assert len(list(store.trial_folders(trials))) == 13


def test_a_runner_killed_while_writing_its_first_record_leaves_an_interrupted_trial(
    cli: RunCli, trials: Path
) -> None:
    # kill -9 between writing the temporary copy and os.replace: only the copy is there.
    folder = write_trial(trials, 72, status="running", pid=dead_pid(), main=None, error=None)
    (folder / "trial.yaml").rename(folder / ".tmp-0123456789ab-trial.yaml")
    rows, warnings = listed(cli, trials)
    row = next(row for row in rows if row["id"] == folder.name)
    assert row["status"] == "interrupted" and warnings == []
    assert sorted(p.name for p in folder.iterdir()) == ["trial.yaml"]
    assert yaml.safe_load((folder / "trial.yaml").read_text())["status"] == "interrupted"


def test_a_reused_pid_is_a_dead_runner(trials: Path) -> None:
    # Our own pid is alive, but the record says its runner started at another moment.
    folder = write_trial(trials, 71, status="running", pid=os.getpid(), pid_start="other-boot/1")
    record = dead_runs.settle_record(folder, store.read_record(folder))
    assert record.status == "interrupted"


def test_a_live_runner_stays_running(trials: Path) -> None:
    token = processes.start_token(os.getpid())
    folder = write_trial(trials, 72, status="running", pid=os.getpid(), pid_start=token)
    rows = {row["id"]: row for row in catalog.list_trials(trials).trials}
    assert rows[folder.name]["status"] == "running" and rows[folder.name]["problem"] is None


def test_another_hosts_running_trial_is_flagged_never_rewritten(cli: RunCli, trials: Path) -> None:
    elsewhere = {**make_record(73)["environment"], "hostname": "not-" + socket.gethostname()}
    folder = write_trial(trials, 73, status="running", pid=dead_pid(), environment=elsewhere)
    before = (folder / "trial.yaml").read_bytes()
    rows, _ = listed(cli, trials)
    row = next(row for row in rows if row["id"] == folder.name)
    assert row["status"] == "running" and "not-" in row["problem"]
    table = cli("list", "-F", str(trials))
    assert "running?" in table.stdout
    shown = cli("show", folder.name, "-F", str(trials))
    assert shown.returncode == 0 and "cannot be checked" in shown.stdout
    assert (folder / "trial.yaml").read_bytes() == before


def test_a_sweeps_trials_are_listed_in_the_order_they_started(tmp_path: Path) -> None:
    # A sweep's ids all carry its submission second; their random parts order them anyhow.
    trials = tmp_path / "trials"
    submitted = "2026-11-24T19:05:12+00:00"
    for index, (trial_id, started) in enumerate(
        [
            ("20261124-190512-ffffff", "2026-11-24T19:05:13.200000+00:00"),
            ("20261124-190512-000000", "2026-11-24T19:05:15.900000+00:00"),
            ("20261124-190512-777777", "2026-11-24T19:05:14.100000+00:00"),
        ]
    ):
        write_trial(trials, index, id=trial_id, started=started, finished=submitted)
    ran_first = ["20261124-190512-ffffff", "20261124-190512-777777", "20261124-190512-000000"]

    assert [row["id"] for row in catalog.list_trials(trials).trials] == ran_first
    catalog.rebuild(trials)
    assert [row["id"] for row in catalog.list_trials(trials).trials] == ran_first


def test_one_huge_variant_does_not_widen_every_row_of_a_piped_list(
    cli: RunCli, trials: Path
) -> None:
    write_trial(trials, 40, variant="sine.x=" + "9" * 30_000)
    table = cli("list", "-F", str(trials))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert len(lines) == 14 and max(len(line) for line in lines) < 600
    assert "…" in lines[-1]  # cut, not lost: `list --json` has it whole
    rows, _ = listed(cli, trials)
    assert rows[-1]["variant"] == "sine.x=" + "9" * 30_000


KILLED_MIDWAY = """
import os, signal, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # changed pages reach the file before COMMIT
connection.execute("BEGIN IMMEDIATE")
connection.execute("DELETE FROM trials")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_index_update_killed_midway_is_rolled_back_by_the_next_reader(trials: Path) -> None:
    before = index_cache.read(trials)
    index = index_cache.index_path(trials)
    subprocess.run([sys.executable, "-c", KILLED_MIDWAY, str(index)], check=False)
    assert index.with_name(index.name + "-journal").exists()  # a hot journal is left

    assert index_cache.read(trials) == before
