"""Each experiment's static analysis page, in real headless Chromium, opened from file://.

Chromium must be installed (`apt-get install -y chromium`): without it these tests fail.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cdp import Browser, chromium_path
from synthetic import NOISES, SEEDS, rmse_of, write_seed_sweep

NOISE_PLOT = "#by-param figure[data-param='params.sine.noise']"


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 noises x 3 seeds sweep of `sine` (one failed), and another experiment beside it."""
    folder = tmp_path_factory.mktemp("analysis") / "trials"
    write_seed_sweep(folder)
    made = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "index", "-F", str(folder)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium_path()
    page = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield page
    page.close()


@pytest.fixture()
def page(browser: Browser, trials: Path) -> Browser:
    browser.navigate((trials / "experiment-sine.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'")
    return browser


def _table_ids(browser: Browser) -> list[str]:
    return browser.evaluate(
        "[...document.querySelectorAll('#trials tbody tr')].map(r => r.dataset.id)"
    )


def test_the_page_draws_each_parameter_and_asks_the_network_for_nothing(
    page: Browser, trials: Path
) -> None:
    requested = [p["request"]["url"] for p in page.event_params("Network.requestWillBeSent")]
    assert requested == [(trials / "experiment-sine.html").as_uri()]
    figures = page.evaluate(
        "[...document.querySelectorAll('#by-param figure')].map(f => f.dataset.param)"
    )
    assert figures == ["params.sine.noise", "params.sine.seed"]  # label takes one value
    # Each trial with a result is a point on each plot; the failed one has none.
    points = page.evaluate(f'document.querySelectorAll("{NOISE_PLOT} .point").length')
    assert points == 8
    means = page.evaluate(
        f'[...document.querySelectorAll("{NOISE_PLOT} .mean")].map(m => +m.dataset.mean)'
    )
    expected = [
        np.mean([rmse_of(v, s) for s in SEEDS if not (n == "mid" and s == 3)])
        for n, v in NOISES.items()
    ]
    assert means == pytest.approx(expected, abs=1e-12)
    assert page.evaluate("document.querySelectorAll('#parallel .line').length") == 9
    assert _table_ids(page) and len(_table_ids(page)) == 9


def test_the_summary_averages_over_seeds_as_numpy_does(page: Browser) -> None:
    stats = page.evaluate(
        """[...document.querySelectorAll('#summary tbody tr')].map(tr => {
             const cells = {};
             tr.querySelectorAll('[data-stat]').forEach(
               td => cells[td.dataset.stat] = td.dataset.value ?? td.textContent);
             return [tr.firstChild.textContent, cells];
           })"""
    )
    assert [row[0] for row in stats] == ["0", "0.1", "0.5"]
    for (shown, cells), (name, noise) in zip(stats, NOISES.items(), strict=True):
        ok = [rmse_of(noise, s) for s in SEEDS if not (name == "mid" and s == 3)]
        assert float(shown) == noise
        assert cells["failed"] == ("1" if name == "mid" else "0")
        assert float(cells["mean"]) == pytest.approx(np.mean(ok), abs=1e-12)
        assert float(cells["std"]) == pytest.approx(np.std(ok, ddof=1), abs=1e-12)
        assert float(cells["min"]) == min(ok) and float(cells["max"]) == max(ok)


def test_unticking_the_seed_groups_by_it_too(page: Browser) -> None:
    page.evaluate("document.querySelector('#over input[data-param=\"params.sine.seed\"]').click()")
    assert page.evaluate("document.querySelectorAll('#summary tbody tr').length") == 9


def test_brushing_an_axis_filters_the_table(page: Browser, trials: Path) -> None:
    grip = page.evaluate(
        """(() => {
             const grip = '#parallel rect.grip[data-axis="params.sine.noise"]';
             const r = document.querySelector(grip).getBoundingClientRect();
             return [r.x + r.width / 2, r.y, r.height]; })()"""
    )
    x, top, height = grip
    # Drag over the top third of the noise axis: only noise 0.5 lies there.
    for kind, y in (
        ("mousePressed", top + 2),
        ("mouseMoved", top + height / 3),
        ("mouseReleased", top + height / 3),
    ):
        page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
    page.wait_for("document.querySelectorAll('#trials tbody tr').length === 3")
    noises = page.evaluate(
        "[...document.querySelectorAll('#trials tbody tr')].map(r => r.children[3].textContent)"
    )
    assert set(noises) == {"0.5"}
    assert page.evaluate("document.querySelectorAll('#parallel .line.out').length") == 6


def test_a_range_typed_from_the_keyboard_filters_too(page: Browser) -> None:
    page.evaluate(
        """(() => {
             const input = document.querySelector(
               '#ranges input[data-axis="metrics.cost"][data-end="lo"]');
             input.focus(); input.value = '4'; input.dispatchEvent(new Event('change')); })()"""
    )
    # Seed 3 costs 4.5; its failed trial has no cost, so it is left out too.
    assert page.evaluate("document.querySelectorAll('#trials tbody tr').length") == 2


def test_the_query_box_filters_and_a_bad_query_says_where(page: Browser) -> None:
    page.evaluate(
        """(() => {
             const q = document.getElementById('query');
             q.value = 'params.sine.noise >= 0.1 and params.sine.seed in [1, 2]';
             q.dispatchEvent(new Event('input')); })()"""
    )
    assert len(_table_ids(page)) == 4
    page.evaluate(
        """(() => { const q = document.getElementById('query'); q.value = 'params.sine.noise >';
                    q.dispatchEvent(new Event('input')); })()"""
    )
    assert page.evaluate("document.getElementById('query-error').textContent") == (
        'expected a number, a "string", true or false here (at character 20)'
    )


def test_hostile_parameter_values_show_as_text(page: Browser) -> None:
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.title") == "sine · analysis · mitosis-nb"
    assert page.evaluate("document.querySelectorAll('img').length") == 0


@pytest.fixture()
def index(browser: Browser, trials: Path) -> Browser:
    browser.navigate((trials / "index.html").as_uri())
    browser.wait_for("document.body.dataset.ready === 'true'")
    return browser


def _type_where(browser: Browser, query: str) -> None:
    browser.evaluate(
        f"""(() => {{ const q = document.getElementById('where'); q.value = {query!r};
                     q.dispatchEvent(new Event('input')); }})()"""
    )


def test_the_index_filters_by_the_same_query_grammar(index: Browser) -> None:
    _type_where(index, "params.sine.noise == 0.5 and metrics.rmse > 0")
    index.wait_for("document.querySelectorAll('#rows tr').length === 3")
    _type_where(index, "params.sine.noise ==")
    index.wait_for("document.getElementById('where-error').textContent !== ''")
    assert "(at character 21)" in index.evaluate(
        "document.getElementById('where-error').textContent"
    )
    assert index.evaluate("document.querySelectorAll('#rows tr').length") == 3  # kept the last


def test_the_index_compares_the_ticked_trials_showing_only_what_differs(index: Browser) -> None:
    _type_where(index, 'variants.sine.noise == "low"')
    index.wait_for("document.querySelectorAll('#rows tr').length === 3")
    assert index.evaluate("document.getElementById('compare').disabled")
    index.evaluate("document.querySelectorAll('#rows input.pick').forEach(box => box.click())")
    assert index.evaluate("document.getElementById('compare').textContent") == "compare 3 selected"
    index.evaluate("document.getElementById('compare').click()")
    fields = index.evaluate(
        "[...document.querySelectorAll('#comparison-table tbody tr')].map(r => r.dataset.field)"
    )
    assert {"params.sine.seed", "variant", "main", "metrics.rmse", "metrics.cost"} <= set(fields)
    assert not {"experiment", "params.sine.noise", "variants.sine.noise", "status"} & set(fields)
    assert index.evaluate("document.activeElement.id") == "comparison-close"
    heads = index.evaluate("[...document.querySelectorAll('#comparison-table thead th')].length")
    assert heads == 4


def test_the_index_links_each_experiments_analysis_page(index: Browser, trials: Path) -> None:
    links = index.evaluate("[...document.querySelectorAll('.plot a.analysis')].map(a => a.href)")
    assert sorted(links) == sorted(
        (trials / name).as_uri() for name in ("experiment-cosine.html", "experiment-sine.html")
    )
    index.evaluate(
        "document.querySelector('.plot a.analysis[href=\"experiment-sine.html\"]').click()"
    )
    index.wait_for("location.href.endsWith('experiment-sine.html')")
