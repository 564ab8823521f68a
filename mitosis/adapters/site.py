"""``index.html``: the trials folder's front page, one self-contained file.

Everything the page needs is inline (no CDN, no network) and every link is relative,
so it works over ``python -m http.server``, ``mitosis-nb serve`` and from a copied folder.
User strings reach the page only as autoescaped template text or as JSON inside a
``<script type="application/json">`` element that the page's script reads with
``JSON.parse`` and shows with ``textContent``: never as markup.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from mitosis.atomic import write_atomic
from mitosis.core.embed import embed_json
from mitosis.core.summary import TrialSummary

INDEX_HTML = "index.html"
# Beyond this many metric columns the table is unreadable: the page shows the most common
# ones and names the others.
MAX_METRIC_COLUMNS = 40
_HTML_DIR = Path(__file__).resolve().parent.parent / "html"
# Row layout shared with the page's script (ROW_FIELDS there); metrics follow as one list.
ROW_FIELDS = (
    "id",
    "started",
    "experiment",
    "variant",
    "status",
    "note",
    "main",
    "duration_s",
    "commit",
    "debug",
    "error_kind",
    "has_page",
    "has_notebook",
    "problem",
    "page",
)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HTML_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("index.html.j2")


def _plain(value: Any) -> Any:
    # JSON has no NaN or infinity, and a hand-edited record may hold any YAML value.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def metric_columns(summaries: Sequence[TrialSummary]) -> list[str]:
    """Every metric name, the most common first, then by name."""
    counts = Counter(name for summary in summaries for name in summary.metrics)
    return sorted(counts, key=lambda name: (-counts[name], name))


def page_data(
    summaries: Sequence[TrialSummary], trials_folder: Path | None = None
) -> dict[str, Any]:
    """What the page's script shows: field names, metric names and one list per trial.

    Paths inside ``trials_folder`` are shown from it: the page may be shared, and the
    reader's copy of the folder is elsewhere anyway.
    """
    metrics = metric_columns(summaries)
    folders = {trials_folder, trials_folder.resolve()} if trials_folder is not None else set()
    prefixes = [f"{folder}{os.sep}" for folder in folders]
    rows = []
    for summary in summaries:
        fields = summary.as_dict()
        for prefix in prefixes:
            if isinstance(fields["problem"], str):
                fields["problem"] = fields["problem"].replace(prefix, "")
        row = [_plain(fields[name]) for name in ROW_FIELDS]
        row.append([_plain(summary.metrics.get(name)) for name in metrics])
        rows.append(row)
    return {
        "fields": list(ROW_FIELDS),
        "metrics": metrics,
        "max_metric_columns": MAX_METRIC_COLUMNS,
        "rows": rows,
    }


def render_index(
    summaries: Sequence[TrialSummary],
    title: str,
    generated: datetime,
    trials_folder: Path | None = None,
) -> str:
    """The whole ``index.html`` for these trials."""
    return _template().render(
        title=title,
        count=len(summaries),
        generated=generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        # Safe as markup: embed_json leaves no character that could end the script element.
        data=markupsafe.Markup(embed_json(page_data(summaries, trials_folder))),  # noqa: S704
    )


def write_index(trials_folder: Path, summaries: Sequence[TrialSummary]) -> Path:
    """Rewrite ``index.html`` atomically; return its path."""
    path = trials_folder / INDEX_HTML
    generated = datetime.now(timezone.utc)
    title = trials_folder.resolve().name or "trials"
    write_atomic(path, render_index(summaries, title, generated, trials_folder))
    return path
