"""Time an experiment's analysis page in headless Chromium: 5,000 synthetic trials of one
experiment (four parameters, three metrics) drawn, then filtered by a query and brushed.

Run: python benchmarks/bench_analysis_page.py [COUNT]   (needs /usr/bin/chromium)
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cdp import Browser

from mitosis.adapters import site
from mitosis.core.analysis import analysis_row
from mitosis.core.summary import TrialSummary


def _summary(index: int) -> TrialSummary:
    noise, seed, degree = (0.0, 0.1, 0.5)[index % 3], index % 10, 1 + index % 5
    rmse = noise * 2 + math.sin(seed) / 10 + degree / 50
    return TrialSummary(
        id=f"20260101-{index // 3600:02d}{index // 60 % 60:02d}{index % 60:02d}-{index:06x}",
        status="failed" if index % 17 == 0 else "succeeded",
        experiment="sine",
        main=rmse,
        metrics={"rmse": rmse, "cost": seed * 1.5, "n": index % 13},
        params={
            "sine.noise": noise,
            "sine.seed": seed,
            "sine.degree": degree,
            "sine.method": ("lstsq", "qr")[index % 2],
        },
        variants={},
        tracked=("sine.noise", "sine.seed", "sine.degree", "sine.method"),
        has_page=True,
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        summaries = [_summary(i) for i in range(count)]
        rows = [analysis_row(s) for s in summaries]
        tracked = [f"params.{n}" for n in summaries[0].tracked]
        page = site.write_experiment_page(folder, "sine", rows, tracked, datetime.now(timezone.utc))
        print(f"experiment page of {count} trials: {page.stat().st_size / 1e6:.2f} MB")
        browser = Browser(folder / "profile")
        try:
            started = time.perf_counter()
            browser.navigate(page.as_uri())
            browser.wait_for("document.body.dataset.ready === 'true'", timeout=60)
            print(f"loaded and drawn:   {time.perf_counter() - started:6.2f} s (<= 2 s)")
            started = time.perf_counter()
            browser.evaluate(
                """(() => { const q = document.getElementById('query');
                   q.value = 'params.sine.noise >= 0.1 and metrics.rmse < 0.5';
                   q.dispatchEvent(new Event('input')); })()"""
            )
            shown = browser.evaluate("document.getElementById('count').textContent")
            print(f"filtered (query):   {time.perf_counter() - started:6.2f} s (<= 2 s): {shown}")
            started = time.perf_counter()
            browser.evaluate(
                """(() => { const i = document.querySelector(
                     '#ranges input[data-axis="metrics.cost"][data-end="hi"]');
                   i.value = '6'; i.dispatchEvent(new Event('change')); })()"""
            )
            shown = browser.evaluate("document.getElementById('count').textContent")
            print(f"brushed (a range):  {time.perf_counter() - started:6.2f} s (<= 2 s): {shown}")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
