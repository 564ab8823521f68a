"""Time index.html in headless Chromium: 10,000 synthetic trials loaded, then filtered.

Run: python benchmarks/bench_index_page.py [COUNT]   (needs /usr/bin/chromium)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cdp import Browser
from synthetic import make_record

from mitosis.adapters import site
from mitosis.core.summary import summarize_record


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        template = make_record(0)
        summaries = []
        for index in range(count):
            record = make_record(index, environment=template["environment"], steps=[])
            summaries.append(summarize_record(record["id"], record, True, True))
        page = site.write_index(folder, summaries)
        print(f"index.html of {count} trials: {page.stat().st_size / 1e6:.2f} MB")
        browser = Browser(folder / "profile")
        try:
            started = time.perf_counter()
            browser.navigate(page.as_uri())
            browser.wait_for("document.body.dataset.ready === 'true'", timeout=60)
            print(f"loaded and drawn:   {time.perf_counter() - started:6.2f} s")
            started = time.perf_counter()
            browser.evaluate("document.getElementById('filter').focus()")
            browser.call("Input.insertText", text="cosine")
            browser.wait_for(
                "document.getElementById('count').textContent.includes(' of ')", timeout=60
            )
            print(f"filtered (typing):  {time.perf_counter() - started:6.2f} s")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
