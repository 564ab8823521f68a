"""One static analysis page per experiment, beside ``index.html``: plots of each metric
against each parameter, parallel coordinates with brushing, and the summary over seeds.

Like the index page, it is one self-contained file (its small script is shipped in the
package and inlined; no CDN, no request), and user strings reach it only as JSON that the
script shows as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe

from mitosis.atomic import write_atomic
from mitosis.core.embed import embed_json, finite

_HTML_DIR = Path(__file__).resolve().parent.parent / "html"
PAGE_PREFIX = "experiment-"
# Parameters a summary averages over unless told otherwise: the seed-to-seed spread.
_SEED_NAMES = re.compile(r"(^|_)(seed|seeds|random_state|rng|replicate|repeat)$")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HTML_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("experiment.html.j2")


def page_name(experiment: str) -> str:
    """The page's file name beside ``index.html``; safe for any experiment name."""
    return PAGE_PREFIX + re.sub(r"[^A-Za-z0-9_.+-]", "_", experiment) + ".html"


def page_link(experiment: str) -> str:
    """The page's relative URL, as ``index.html`` links it."""
    return quote(page_name(experiment))


def page_data(rows: Sequence[Mapping[str, Any]], tracked: Sequence[str]) -> dict[str, Any]:
    """What the page's script draws: the rows, and which columns are parameters and metrics."""
    columns = {column for row in rows for column in row}
    metrics = ["main", *sorted(c for c in columns if c.startswith("metrics."))]
    return {
        "rows": [finite(dict(row)) for row in rows],
        "params": sorted(c for c in columns if c.startswith("params.")),
        "metrics": metrics,
        "tracked": list(tracked),
        "over_default": {p: True for p in tracked if _SEED_NAMES.search(p.rsplit(".", 1)[-1])},
    }


def render_page(
    experiment: str,
    rows: Sequence[Mapping[str, Any]],
    tracked: Sequence[str],
    generated: datetime,
) -> str:
    """The whole page of one experiment's trials."""
    return _template().render(
        experiment=experiment,
        count=len(rows),
        generated=generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        index="index.html",
        # Safe as markup: embed_json leaves no character that could end the script element.
        data=markupsafe.Markup(embed_json(page_data(rows, tracked))),  # noqa: S704
    )


def write_page(
    trials_folder: Path,
    experiment: str,
    rows: Sequence[Mapping[str, Any]],
    tracked: Sequence[str],
    generated: datetime,
) -> Path:
    """Rewrite one experiment's page atomically; return its path."""
    path = trials_folder / page_name(experiment)
    write_atomic(path, render_page(experiment, rows, tracked, generated))
    return path
