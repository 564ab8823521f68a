"""A trial in a large folder: it adds its own row and leaves every other one as it was;
the page shows it at once, from its part file; dead runs are settled by ``list``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cdp import Browser, chromium_path
from conftest import RunCli
from synthetic import dead_pid, site_text, write_trial, write_trials

from mitosis.adapters import index_cache, site, store
from mitosis.core.trial_record import record_data
from mitosis.trials_folder import TrialsFolder

ROWS = "document.querySelectorAll('#rows tr')"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium_path()
    page = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield page
    page.close()


def _open(browser: Browser, trials: Path) -> str:
    """Open the page from ``file://``, as a copied folder is read; the count it shows."""
    browser.navigate((trials / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'", timeout=60)
    count: str = browser.evaluate("document.getElementById('count').textContent")
    return count


def _filter(browser: Browser, text: str) -> list[str]:
    """The rows' text once the page is filtered by ``text``."""
    browser.evaluate("document.getElementById('filter').focus()")
    browser.call("Input.insertText", text=text)
    browser.wait_for("document.getElementById('count').textContent.includes(' of ')", timeout=60)
    rows: list[str] = browser.evaluate(f"[...{ROWS}].map(tr => tr.textContent)")
    return rows


def test_a_trial_in_a_large_folder_adds_its_row_and_the_page_shows_it(
    cli: RunCli, investigation: Path, browser: Browser
) -> None:
    trials = investigation / "trials"
    write_trials(trials, 300)
    assert cli("index", "-F", str(trials)).returncode == 0
    before = index_cache.read(trials)
    page_before = (trials / "index.html").read_bytes()

    ran = cli("run", "toy", "-p", "frequency=fast")
    assert ran.returncode == 0, ran.stderr

    (new,) = set(store.trial_names(trials)) - set(before)
    after = index_cache.read(trials)
    assert {name: after[name] for name in before} == before  # every other row as it was
    assert after[new].summary.status == "succeeded"
    # Not the whole page again: the new trial's row went to a part file beside it.
    assert (trials / "index.html").read_bytes() == page_before
    assert new in site_text(trials)
    assert _open(browser, trials) == "301 trials"
    (row,) = _filter(browser, new)
    assert "succeeded" in row and "toy" in row


def test_a_dead_run_is_settled_by_list_and_shown_so(cli: RunCli, investigation: Path) -> None:
    trials = investigation / "trials"
    write_trials(trials, 20)
    assert cli("index", "-F", str(trials)).returncode == 0
    # A runner that died without a word: its record still says running.
    dead = write_trial(trials, 20, status="running", pid=dead_pid(), main=None, finished=None)
    assert cli("run", "toy", "-p", "frequency=fast").returncode == 0

    listed = cli("list", "-F", str(trials), "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["id"] == dead.name]
    assert row["status"] == "interrupted"
    assert yaml.safe_load((dead / "trial.yaml").read_text())["status"] == "interrupted"
    # `list` saw a trial change, so it wrote the page whole, the run settled on it.
    assert site.part_paths(trials) == []
    page = (trials / "index.html").read_text()
    data = json.loads(page.split('id="mitosis-data">', 1)[1].split("</script>", 1)[0])
    status = data["fields"].index("status")
    assert {row[0]: row[status] for row in data["rows"]}[dead.name] == "interrupted"


def test_the_page_reads_every_part_file_and_a_trials_latest_row(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small parts, so that a few trials fill several of them.
    monkeypatch.setattr(site, "PART_ROWS", 4)
    trials = TrialsFolder(tmp_path / "trials")
    write_trials(trials.path, 3)
    trials.rebuild_index()
    for index in range(3, 13):
        folder = write_trial(trials.path, index, experiment="late")
        trials.record_trial(yaml.safe_load((folder / "trial.yaml").read_text()))
    # A trial recorded again (its note changed) shows once, as it is now.
    first = replace(
        store.read_record(next(store.trial_folders(trials.path))),
        note="edited after the page was written",
    )
    store.write_record(trials.path / first.id, first)
    trials.record_trial(record_data(first))
    assert len(site.part_paths(trials.path)) == 3

    assert _open(browser, trials.path) == "13 trials"
    rows = _filter(browser, "late")
    assert len(rows) == 10
    _open(browser, trials.path)
    (row,) = _filter(browser, "edited after")
    assert first.id in row

    # `index` writes the page whole again: the parts it now holds are gone.
    trials.rebuild_index()
    assert site.part_paths(trials.path) == []
    assert _open(browser, trials.path) == "13 trials"


def test_a_damaged_part_file_neither_stops_trials_nor_hides_the_rows_after_it(
    tmp_path: Path, browser: Browser
) -> None:
    trials = TrialsFolder(tmp_path / "trials")
    write_trials(trials.path, 2)
    trials.rebuild_index()
    folder = write_trial(trials.path, 2)
    trials.record_trial(record_data(store.read_record(folder)))
    (part,) = site.part_paths(trials.path)
    part.write_text("mitosisParts.push({cut short")  # a hand edit, a lost write
    later = write_trial(trials.path, 3, note="after the damage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recorded without a word
        trials.record_trial(record_data(store.read_record(later)))
    assert len(site.part_paths(trials.path)) == 2
    assert _open(browser, trials.path) == "3 trials"
    (row,) = _filter(browser, "after the damage")
    assert later.name in row
