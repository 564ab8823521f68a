"""index.html in real headless Chromium, served by the real ``mitosis-nb serve``.

Chromium must be installed (`apt-get install -y chromium`): without it these tests fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    _open_index(browser, url)  # the id itself opens the page too
    browser.evaluate("document.querySelector('#rows tr td a code').parentElement.click()")
    browser.wait_for(f"location.pathname === '/{trial_id}/trial.html'")
    assert trial_id in browser.evaluate("document.body.innerText")
    back = browser.evaluate("document.querySelector('a[href=\"../index.html\"]').href")
    assert back == url + "index.html"


def test_ten_thousand_trials_load_a_page_at_a_time_and_filter(
    browser: Browser, tmp_path: Path
) -> None:
    # How fast: benchmarks/bench_index_page.py. Here: that it all works at this size.
    template = make_record(0)
    summaries = []
    for index in range(10_000):
        record = make_record(index, environment=template["environment"], steps=[])
        summaries.append(summarize_record(record["id"], record, has_page=True, has_notebook=True))
    site.write_index(tmp_path, summaries)
    browser.navigate((tmp_path / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'", timeout=60)
    assert browser.evaluate("document.getElementById('count').textContent") == "10000 trials"
    assert browser.evaluate(f"{ROWS}.length") == 200
    assert browser.evaluate("document.getElementById('page').textContent") == "page 1 of 50"
    browser.evaluate("document.getElementById('filter').focus()")
    browser.call("Input.insertText", text="cosine")
    browser.wait_for("document.getElementById('count').textContent.startsWith('3333 of')", 60)
    assert set(_column(browser, "experiment")) == {"cosine"}
    assert os.path.getsize(tmp_path / "index.html") < 8_000_000


def _wide_and_narrow(folder: Path) -> None:
    """One trial reporting 45 metrics and one reporting 2, of two experiments."""
    wide = make_record(1, experiment="wide", metrics={f"m{k:02d}": k for k in range(45)})
    narrow = make_record(2, experiment="narrow", main=0.25, metrics={"only": 1, "zz_last": 2})
    site.write_index(
        folder,
        [summarize_record(r["id"], r, has_page=True, has_notebook=True) for r in (wide, narrow)],
    )


def _headings(browser: Browser) -> list[str]:
    return browser.evaluate(f"[...{HEADS}].map(th => th.textContent)")


def test_metrics_beyond_the_columns_are_named_and_each_experiment_shows_its_own(
    browser: Browser, tmp_path: Path
) -> None:
    _wide_and_narrow(tmp_path)
    browser.navigate((tmp_path / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'")
    metric_headings = [
        h for h in _headings(browser) if h != "main" and (h[0] == "m" or h in ("only", "zz_last"))
    ]
    assert len(metric_headings) == 40
    note = browser.evaluate("document.getElementById('hidden-metrics').textContent")
    assert note.startswith("7 more metrics not shown") and "choose an experiment" in note
    # Picking an experiment shows its own metrics: the narrow one's two come back.
    browser.evaluate("""(() => { const s = document.getElementById('experiment');
        s.value = 'narrow'; s.dispatchEvent(new Event('change')); })()""")
    browser.wait_for(f"[...{HEADS}].some(th => th.textContent === 'zz_last')")
    assert {"only", "zz_last"} <= set(_headings(browser))
    assert not any(h.startswith("m0") for h in _headings(browser))
    assert browser.evaluate("document.getElementById('hidden-metrics').textContent") == ""
    assert _column(browser, "zz_last") == ["2"]
    # A plot of one trial states its value, not an invented range around it.
    captions = browser.evaluate("[...document.querySelectorAll('.plot p')].map(p => p.textContent)")
    assert any(c.startswith("main of 1 trial") and c.endswith("all 0.25") for c in captions)


def test_sorting_and_the_experiment_plots_work_from_the_keyboard(
    browser: Browser, served: tuple[str, Path]
) -> None:
    url, _ = served
    _open_index(browser, url)
    press = (
        "(el => { el.focus(); el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); })"
    )
    # Enter on a focused button is a click: drive it as the keyboard would.
    main_heading = f"[...{HEADS}].find(th => th.textContent === 'main')"
    browser.evaluate(f"{main_heading}.querySelector('button').focus()")
    browser.call(
        "Input.dispatchKeyEvent",
        type="keyDown",
        key="Enter",
        code="Enter",
        windowsVirtualKeyCode=13,
        text="\r",
    )
    browser.call(
        "Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter", windowsVirtualKeyCode=13
    )
    browser.wait_for(f"{main_heading}.getAttribute('aria-sort') === 'ascending'")
    assert _column(browser, "main")[:4] == ["1", "3", "4", "10"]
    assert browser.evaluate("document.querySelector('.plot').getAttribute('role')") == "button"
    browser.evaluate(f"{press}(document.querySelector('.plot'))")
    browser.wait_for("document.querySelector('.plot').getAttribute('aria-pressed') === 'true'")
    assert browser.evaluate("document.getElementById('experiment').value") == "toy"
    labels = browser.evaluate(
        "[...document.querySelectorAll('.pager button')].map(b => b.ariaLabel)"
    )
    assert labels == ["previous page", "next page"]


def test_a_trial_page_is_titled_and_a_long_variant_wraps(
    browser: Browser, served: tuple[str, Path]
) -> None:
    url, trials = served
    folder = next(p for p in sorted(trials.iterdir()) if (p / "trial.html").is_file())
    browser.navigate(f"{url}{folder.name}/trial.html")
    assert browser.evaluate("document.title") == f"toy {folder.name} (succeeded)"
    assert browser.evaluate("document.querySelectorAll('h1').length") == 1
    # Stretch the variant to 3,000 characters: the page must not scroll sideways.
    browser.evaluate(
        "document.querySelector('.mitosis-header p:nth-of-type(2)').append('x'.repeat(3000))"
    )
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_pipeline_page_never_breaks_a_step_name_mid_word(
    browser: Browser, tmp_path: Path
) -> None:
    from mitosis.adapters.publish import render_missing_notebook

    crowded = {f"metric_{i}": "m" * 300 for i in range(3)}
    steps = [
        {"name": name, "main": 1.0, "metrics": crowded, "params": {}}
        for name in ("generate_trajectories", "fit_sparse_regression")
    ]
    record = make_record(7, steps=steps, metrics=crowded)
    page = tmp_path / "trial.html"
    page.write_text(render_missing_notebook(record, []))
    browser.navigate(page.as_uri())
    lines = browser.evaluate(
        """[...document.querySelectorAll('.mitosis-steps tr td:first-child')].map(td => {
             const range = document.createRange();
             range.selectNodeContents(td);
             return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
           })"""
    )
    assert lines == [1, 1], lines
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_trial_page_gives_its_figures_alt_text_and_its_cells_the_keyboard(
    browser: Browser, tmp_path: Path
) -> None:
    import nbformat

    from mitosis.adapters.publish import render_page

    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2O"
        "UAAAAABJRU5ErkJggg=="
    )
    figure = nbformat.v4.new_output("display_data", data={"image/png": pixel})
    printed = nbformat.v4.new_output("stream", name="stdout", text="4\n")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("print(2 + 2)", execution_count=1, outputs=[printed]),
            nbformat.v4.new_code_cell("plot()", execution_count=2, outputs=[figure]),
        ],
        metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},
    )
    page = render_page(notebook, make_record(3), beside=())
    (tmp_path / "trial.html").write_text(page.html)
    for name, data in page.figures.items():
        (tmp_path / name).write_bytes(data)
    browser.navigate((tmp_path / "trial.html").as_uri())
    browser.wait_for("document.readyState === 'complete'")
    # A screen reader names every figure, and Tab reaches every cell's code and output.
    alts = browser.evaluate("[...document.querySelectorAll('main img')].map(i => i.alt)")
    assert alts == ["No description has been provided for this image"]
    focusable = browser.evaluate(
        """[...document.querySelectorAll('.jp-Cell-inputWrapper, .jp-OutputArea-output')]
             .map(e => e.tabIndex)"""
    )
    assert focusable == [0, 0, 0, 0], focusable
    browser.evaluate("document.querySelector('.jp-OutputArea-output').focus()")
    assert browser.evaluate("document.activeElement.textContent.trim()") == "4"
