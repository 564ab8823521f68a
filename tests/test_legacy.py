"""Trials written by the original mitosis 0.6.1, browsed and loaded; never changed.

The folder ``tests/legacy/original_trials`` was made by the real original: see
``tests/legacy/make_fixture.sh``. Its trials' hex keys are read from the original's page
names, so the fixture can be made again without touching these tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cdp import Browser, chromium_path
from conftest import RunCli, trial_dirs
from synthetic import write_trials

import mitosis
from mitosis import catalog
from mitosis.errors import LegacyResultsError, TrialNotFoundError

FIXTURE = Path(__file__).parent / "legacy" / "original_trials"


def key_of(folder: Path, page_prefix: str) -> str:
    """The hex key of the original's trial whose page name starts with ``page_prefix``."""
    (page,) = folder.glob(f"{glob_escape(page_prefix)}*.html")
    found = re.search(r"_([0-9a-f]{6})(?:debug)?\.html$", page.name)
    assert found is not None
    return found.group(1)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def hashes(folder: Path) -> dict[str, str]:
    """Every file's content hash and every link's target, by path: what must never change."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def old_trials(tmp_path: Path) -> Path:
    """A copy of the original's trials folder, so a test can see whether anything changes it."""
    folder = tmp_path / "old_trials"
    shutil.copytree(FIXTURE, folder, symlinks=True)
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def page_rows(folder: Path) -> list[dict[str, object]]:
    """The rows ``index.html`` shows, as field name -> value."""
    page = (folder / "index.html").read_text()
    data = re.search(
        r'<script type="application/json" id="mitosis-data">(.*?)</script>', page, re.S
    )
    assert data is not None
    parsed = json.loads(data.group(1))
    return [dict(zip(parsed["fields"], row, strict=False)) for row in parsed["rows"]]


def test_list_index_and_page_show_the_originals_trials_as_legacy_entries(
    old_trials: Path,
) -> None:
    before = hashes(old_trials)
    first = key_of(old_trials, "trial_fit-none-one_0_")
    again = key_of(old_trials, "trial_fit-none-one_1_")
    two_steps = key_of(old_trials, "trial_fit-none-two+score-half_0_")
    debug = key_of(old_trials, "trial_fit-0.25-one_0_")

    listed = run_cli("list", "-F", str(old_trials), "--json")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert len(rows) == 5 and {row["status"] for row in rows.values()} == {"legacy"}
    assert rows[first]["experiment"] == "fit" and rows[first]["variant"] == "fit-none-one"
    assert (rows[first]["iteration"], rows[again]["iteration"]) == (0, 1)
    # main as the original stored it: the text it printed.
    assert (rows[first]["main"], rows[two_steps]["main"]) == ("1.5", "6.0")
    assert rows[two_steps]["experiment"] == "fit_score"
    assert re.fullmatch(r"[0-9a-f]{40}", rows[first]["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", rows[first]["started"])
    assert rows[first]["page"] == f"trial_fit-none-one_0_{first}.html"
    # The debug trial is in no table of the original's: its page alone names it.
    assert rows[debug]["debug"] is True and rows[debug]["commit"] == "0000000"
    assert rows[debug]["main"] is None

    table = run_cli("list", "-F", str(old_trials), "--status", "legacy")
    assert table.returncode == 0
    assert re.search(
        rf"^{two_steps} .*fit_score .*fit-none-two\+score-half .*legacy .*6\.0", table.stdout, re.M
    )

    indexed = run_cli("index", "-F", str(old_trials))
    assert indexed.returncode == 0, indexed.stderr
    assert "indexed 5 trials" in indexed.stdout
    shown = {row["id"]: row for row in page_rows(old_trials)}
    assert set(shown) == set(rows) and shown[again]["status"] == "legacy"
    page = shown[again]["page"]
    assert isinstance(page, str) and not page.startswith("/") and (old_trials / page).is_file()
    assert shown[again]["has_page"] is True

    after = hashes(old_trials)
    assert {name: after.get(name) for name in before} == before
    assert set(after) - set(before) == {"index.html", "index.sqlite"}


def test_a_folder_of_both_lists_both_and_a_new_trial_leaves_the_originals_files_alone(
    cli: RunCli, investigation: Path
) -> None:
    trials = investigation / "trials"
    shutil.copytree(FIXTURE, trials, symlinks=True)
    before = hashes(trials)

    ran = cli("run", "toy", "-p", "frequency=fast")
    assert ran.returncode == 0, ran.stderr
    (ours,) = (folder.name for folder in trial_dirs(trials) if "_" not in folder.name)

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    statuses = {row["id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses.pop(ours) == "succeeded"
    assert list(statuses.values()) == ["legacy"] * 5
    # The page rewritten after the new trial shows both kinds, each linking its own page.
    links = {row["id"]: row["page"] for row in page_rows(trials)}
    assert links[ours] is None and len([page for page in links.values() if page]) == 5
    assert cli("index").returncode == 0 and cli("show", ours).returncode == 0

    after = hashes(trials)
    assert {name: after.get(name) for name in before} == before


def test_show_of_an_old_trial_prints_what_its_files_say(old_trials: Path) -> None:
    two_steps = key_of(old_trials, "trial_fit-none-two+score-half_0_")
    before = hashes(old_trials)

    shown = run_cli("show", "-F", str(old_trials), two_steps)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"{two_steps}  fit_score  legacy"
    assert "main:     6.0" in shown.stdout
    assert f"trial_fit-none-two+score-half_0_{two_steps}.html" in shown.stdout

    as_json = json.loads(run_cli("show", "-F", str(old_trials), two_steps, "--json").stdout)
    assert as_json["status"] == "legacy" and as_json["iteration"] == 0

    missing = run_cli("show", "-F", str(old_trials), "ffffff")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "no trial 'ffffff'" in missing.stderr
    assert hashes(old_trials) == before


def test_load_trial_data_of_an_old_trial_returns_its_results_as_the_original_did(
    old_trials: Path,
) -> None:
    """What a figure script written for the original (``composite_plots.py``) calls."""
    two_steps = key_of(old_trials, "trial_fit-none-two+score-half_0_")
    debug = key_of(old_trials, "trial_fit-0.25-one_0_")
    before = hashes(old_trials)

    results = mitosis.load_trial_data(two_steps, trials_folder=old_trials)
    assert results == [
        {"main": 3.0, "metrics": {"mse": 0}, "data": [0, 2, 4, 6]},
        {"main": 6.0, "metrics": ["sum", "scale"]},
    ]
    # The original looks a trial up by the end of its folder's name: fewer digits do too.
    assert mitosis.load_trial_data(two_steps[1:], trials_folder=str(old_trials)) == results
    # Its users' scripts name the argument as the original did.
    assert mitosis.load_trial_data(hexstr=two_steps, trials_folder=old_trials) == results
    (debug_result,) = mitosis.load_trial_data(debug, trials_folder=old_trials)
    assert debug_result["metrics"] == {"mse": 0.0625}
    with pytest.raises(TrialNotFoundError, match="no trial 'ffffff'"):
        mitosis.load_trial_data("ffffff", trials_folder=old_trials)
    assert hashes(old_trials) == before


def test_without_dill_loading_an_old_trial_says_what_to_install(
    old_trials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_of(old_trials, "trial_fit-some-two_0_")
    # dill is absent as it is in an environment without the `legacy` extra.
    monkeypatch.setitem(sys.modules, "dill", None)
    with pytest.raises(LegacyResultsError) as refused:
        mitosis.load_trial_data(key, trials_folder=old_trials)
    assert str(refused.value).endswith("pip install 'mitosis-nb[legacy]'.")
    # Listing never needs dill.
    assert len(catalog.list_trials(old_trials).trials) == 5


def test_listing_does_not_import_dill(old_trials: Path) -> None:
    probe = (
        "import sys; from pathlib import Path; from mitosis import catalog; "
        f"catalog.rebuild(Path({str(old_trials)!r})); print('dill' in sys.modules)"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert ran.stdout.strip() == "False"


def test_old_trials_copied_into_an_indexed_folder_reach_its_page_on_the_next_list(
    tmp_path: Path,
) -> None:
    trials = tmp_path / "trials"
    write_trials(trials, 2)
    catalog.rebuild(trials)
    assert "legacy" not in {row["status"] for row in page_rows(trials)}
    page_written = (trials / "index.html").stat().st_mtime
    for path in FIXTURE.iterdir():
        target = trials / path.name
        if path.is_dir():
            shutil.copytree(path, target, symlinks=True)
        else:
            shutil.copy2(path, target)
            os.utime(target, (page_written + 1, page_written + 1))

    listed = run_cli("list", "-F", str(trials), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["status"] for row in page_rows(trials)].count("legacy") == 5


def test_serving_an_old_folder_serves_the_originals_pages_unchanged(old_trials: Path) -> None:
    before = hashes(old_trials)
    again = key_of(old_trials, "trial_fit-none-one_1_")
    server = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "serve", "-F", str(old_trials), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        announced = server.stdout.readline()
        url = announced.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.html", timeout=30) as response:
            assert again in response.read().decode()
        two_steps = key_of(old_trials, "trial_fit-none-two+score-half_0_")
        for page in (
            f"trial_fit-none-one_1_{again}.html",
            f"trial_fit-none-two+score-half_0_{two_steps}.html",
        ):
            # As the index page links it: the name encoded whole, "+" as %2B.
            link = urllib.parse.quote(page, safe="")
            with urllib.request.urlopen(url + link, timeout=30) as response:
                assert response.read() == (old_trials / page).read_bytes()
    finally:
        server.terminate()
        server.wait(10)
    after = hashes(old_trials)
    assert {name: after.get(name) for name in before} == before


def test_a_trial_the_original_started_but_never_finished_is_listed_without_a_page(
    old_trials: Path,
) -> None:
    # What the original leaves when it is killed mid-trial: a row with no result or page.
    with contextlib.closing(sqlite3.connect(old_trials / "fit.db")) as database, database:
        database.execute(
            'INSERT INTO trials_fit (variant, iteration, "commit") VALUES (?, ?, ?)',
            ("fit-some-two", 1, "cb02f3e53d4a7a65586762c9225d80767e2da7c9"),
        )

    listed = run_cli("list", "-F", str(old_trials), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    unfinished = rows["fit:fit-some-two:1"]
    assert unfinished["status"] == "legacy" and unfinished["iteration"] == 1
    assert (unfinished["main"], unfinished["page"], unfinished["has_page"]) == (None, None, False)
    assert run_cli("index", "-F", str(old_trials)).returncode == 0
    on_page = {row["id"]: row for row in page_rows(old_trials)}
    assert len(on_page) == 6 and on_page["fit:fit-some-two:1"]["has_page"] is False


def test_the_index_page_in_a_browser_links_each_old_trial_to_its_own_page(
    old_trials: Path, tmp_path: Path
) -> None:
    chromium_path()
    two_steps = key_of(old_trials, "trial_fit-none-two+score-half_0_")
    server = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "serve", "-F", str(old_trials), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    browser = Browser(tmp_path / "chromium-profile")
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" at ")[1].split()[0]
        browser.navigate(url + "index.html")
        browser.wait_for("document.body.dataset.ready === 'true'")
        rows = browser.evaluate(
            "[...document.querySelectorAll('#rows tr')].map(tr => [tr.dataset.id, "
            "tr.querySelector('a') && tr.querySelector('a').getAttribute('href'), "
            "[...tr.querySelectorAll('a')].map(a => a.textContent)])"
        )
        links = {row[0]: row[1] for row in rows}
        assert len(links) == 5
        assert links[two_steps] == f"trial_fit-none-two%2Bscore-half_0_{two_steps}.html"
        # Only the page: the original kept no trial.yaml to link as a record.
        assert all(row[2][-1] == "page" and "record" not in row[2] for row in rows)
        assert browser.event_params("Runtime.exceptionThrown") == []
        browser.navigate(url + links[two_steps])
        browser.wait_for("document.readyState === 'complete'")
        assert "Loaded step 1 as fit.steps:score" in browser.evaluate("document.body.innerText")
    finally:
        browser.close()
        server.terminate()
        server.wait(10)
