"""index.html in real headless Chromium, served by the real ``mitosis-nb serve``.

Chromium must be installed (`apt-get install -y chromium`): without it these tests fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Browser, chromium_path
from conftest import TOY_EXPERIMENTS, make_investigation
from synthetic import make_record

from mitosis.adapters import site
from mitosis.core.summary import summarize_record

SCRIPT_VARIANT = "<script>window.pwned='variant';document.title='pwned'</script>"
IMG_VARIANT = "<img src=x onerror=\"window.pwned='img';document.title='pwned'\">"
EVIL_NOTE = "</script><script>window.pwned='note'</script><img src=x onerror=\"window.pwned='n'\">"
HEADS = "document.querySelectorAll('#head th')"
ROWS = "document.querySelectorAll('#rows tr')"
EXPERIMENTS = TOY_EXPERIMENTS.replace(
    '"frequency": {"fast": 10, "slow": 1},',
    f'"frequency": {{"fast": 10, "slow": 1, {SCRIPT_VARIANT!r}: 3, {IMG_VARIANT!r}: 4}},',
)


def _mitosis(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mitosis.cli", *args], cwd=root, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Five real trials (one failed, two with hostile variant names), served over HTTP."""
    root = tmp_path_factory.mktemp("browse") / "investigation"
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "GIT_AUTHOR_NAME",
            "GIT_COMMITTER_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_EMAIL",
        ):
            patch.setenv(name, "tester@example.org")
        make_investigation(root, experiments=EXPERIMENTS)
    sweep = f"frequency=fast,slow,{SCRIPT_VARIANT},{IMG_VARIANT}"
    ran = _mitosis(root, "run", "toy", "-p", sweep, "--note", EVIL_NOTE)
    assert ran.returncode == 0, ran.stderr
    failed = _mitosis(root, "run", "toy", "-p", "mode=boom")
    assert failed.returncode == 1, failed.stderr
    trials = root / "trials"
    log = (root.parent / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mitosis.cli", "serve", "-F", str(trials), "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        url = line.split(" at ")[1].split()[0]
        yield url, trials
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium_path()
    page = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield page
    page.close()


def _open_index(browser: Browser, url: str) -> None:
    browser.navigate(url + "index.html")
    browser.wait_for("document.body.dataset.ready === 'true'")


def _column(browser: Browser, heading: str) -> list[str]:
    return browser.evaluate(
        f"""(() => {{
          const i = [...{HEADS}].findIndex(th => th.textContent === {heading!r});
          return [...{ROWS}].map(tr => tr.children[i].textContent);
        }})()"""
    )


def test_the_index_shows_every_trial_with_its_results(
    browser: Browser, served: tuple[str, Path], tmp_path: Path
) -> None:
    url, trials = served
    _open_index(browser, url)
    ids = sorted(p.name for p in trials.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert (
        sorted(
            browser.evaluate("[...document.querySelectorAll('#rows tr')].map(r => r.dataset.id)")
        )
        == ids
    )
    headings = browser.evaluate(
        "[...document.querySelectorAll('#head th')].map(th => th.textContent)"
    )
    assert {"id", "experiment", "variant", "status", "note", "main", "double", "commit"} <= set(
        headings
    )
    assert sorted(_column(browser, "status")) == ["failed"] + ["succeeded"] * 4
    assert browser.evaluate("document.querySelectorAll('#plots canvas').length") == 1
    assert browser.event_params("Runtime.exceptionThrown") == []
    # Self-contained: every request the page made went to the server it came from.
    requested = [p["request"]["url"] for p in browser.event_params("Network.requestWillBeSent")]
    assert requested and all(address.startswith(url) for address in requested)
    browser.screenshot(tmp_path / "index.png", Path("/tmp/index-screenshot.png"))
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_hostile_variant_names_and_notes_show_as_text_and_never_run(
    browser: Browser, served: tuple[str, Path]
) -> None:
    url, _ = served
    _open_index(browser, url)
    assert browser.evaluate("window.pwned === undefined")
    assert "pwned" not in browser.evaluate("document.title")
    assert browser.evaluate("document.querySelectorAll('#rows img, #rows script').length") == 0
    variants = _column(browser, "variant")
    assert (
        f"toy.frequency={SCRIPT_VARIANT}" in variants and f"toy.frequency={IMG_VARIANT}" in variants
    )
    assert EVIL_NOTE in _column(browser, "note")


def test_filtering_narrows_the_rows(browser: Browser, served: tuple[str, Path]) -> None:
    url, _ = served
    _open_index(browser, url)
    browser.evaluate("document.getElementById('filter').focus()")
    browser.call("Input.insertText", text="slow")
    browser.wait_for("document.querySelectorAll('#rows tr').length === 1")
    assert _column(browser, "variant") == ["toy.frequency=slow"]
    assert browser.evaluate("document.getElementById('count').textContent") == "1 of 5 trials"
    browser.evaluate("""(() => { const f = document.getElementById('filter'); f.value = '';
        f.dispatchEvent(new Event('input')); const s = document.getElementById('status');
        s.value = 'failed'; s.dispatchEvent(new Event('change')); })()""")
    browser.wait_for("document.querySelectorAll('#rows tr').length === 1")
    assert _column(browser, "status") == ["failed"]


def test_sorting_by_a_column_reorders_the_rows(browser: Browser, served: tuple[str, Path]) -> None:
    url, _ = served
    _open_index(browser, url)
    click_main = (
        "[...document.querySelectorAll('#head th')].find(th => th.textContent === 'main').click()"
    )
    browser.evaluate(click_main)
    ascending = _column(browser, "main")
    assert ascending[:4] == ["1", "3", "4", "10"] and ascending[4] == ""  # failed: no main
    browser.evaluate(click_main)
    assert _column(browser, "main")[:4] == ["10", "4", "3", "1"]


def test_a_link_opens_the_trial_page(browser: Browser, served: tuple[str, Path]) -> None:
    url, _ = served
    _open_index(browser, url)
    trial_id = browser.evaluate("document.querySelector('#rows tr').dataset.id")
    browser.evaluate("document.querySelector('#rows tr td.links a').click()")
    browser.wait_for(
        "location.pathname.endsWith('/trial.html') && document.readyState === 'complete'"
    )
    assert browser.evaluate("location.pathname") == f"/{trial_id}/trial.html"
    assert trial_id in browser.evaluate("document.body.innerText")
    back = browser.evaluate("document.querySelector('a[href=\"../index.html\"]').href")
    assert back == url + "index.html"


def test_ten_thousand_trials_load_in_under_two_seconds(browser: Browser, tmp_path: Path) -> None:
    template = make_record(0)
    summaries = []
    for index in range(10_000):
        record = make_record(index, environment=template["environment"], steps=[])
        summaries.append(summarize_record(record["id"], record, has_page=True, has_notebook=True))
    site.write_index(tmp_path, summaries)
    started = time.monotonic()
    browser.navigate((tmp_path / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'")
    elapsed = time.monotonic() - started
    assert browser.evaluate("document.getElementById('count').textContent") == "10000 trials"
    print(f"10,000 trials loaded in {elapsed:.2f} s")
    assert elapsed < 2.0, f"10,000 trials took {elapsed:.2f} s to load"
    started = time.monotonic()
    browser.evaluate("document.getElementById('filter').focus()")
    browser.call("Input.insertText", text="cosine")
    browser.wait_for("document.getElementById('count').textContent.startsWith('3333 of')")
    assert time.monotonic() - started < 1.0
    assert os.path.getsize(tmp_path / "index.html") < 8_000_000
