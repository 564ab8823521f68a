"""The static site: ``index.html``, the trials folder's front page, and one analysis page
per experiment beside it (each metric against each parameter, parallel coordinates, the
summary over seeds), each one self-contained file.

Everything the page needs is inline (no CDN, no network) and every link is relative,
so it works over ``python -m http.server``, ``mitosis-nb serve`` and from a copied folder.
User strings reach the page only as autoescaped template text or as JSON inside a
``<script type="application/json">`` element that the page's script reads with
``JSON.parse`` (or a part file's data object, below) and shows with ``textContent``: never
as markup.

A trial's start and end must not rewrite a page of every trial: ``index.html`` holds the
trials as they stood when it was last written whole, and each trial since adds its row to
the last of the ``index-data/part-NNNNNN.js`` files (a few hundred rows each), which the page
loads in turn with ``<script src>`` (so it works from ``file://`` too) until one is missing.
A later row of a trial replaces its earlier one.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe

from mitosis.atomic import write_atomic
from mitosis.core.analysis import analysis_row
from mitosis.core.embed import embed_json, finite
from mitosis.core.summary import TrialSummary, start_key
from mitosis.user_cache import jinja_bytecode_cache

INDEX_HTML = "index.html"
PARTS_DIR = "index-data"
# Rows per part file: rewriting one costs a few milliseconds however large the archive.
PART_ROWS = 500
_PART_PREFIX = "mitosisParts.push("
_PART_SUFFIX = ");\n"
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


@lru_cache(maxsize=2)
def _template(name: str = "index.html.j2") -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HTML_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=jinja_bytecode_cache(),
    )
    return environment.get_template(name)


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


def _row(
    summary: TrialSummary, prefixes: Sequence[str], metrics: Sequence[str] | None
) -> list[Any]:
    """One trial as the page's script reads it: the fields, the metrics (a list in the order
    of ``metrics``, or by name where a part file's rows meet columns worked out later), what a
    query may ask beyond the columns, and the key the page sorts by."""
    fields = summary.as_dict()
    for prefix in prefixes:
        if isinstance(fields["problem"], str):
            fields["problem"] = fields["problem"].replace(prefix, "")
    row: list[Any] = [_plain(fields[name]) for name in ROW_FIELDS]
    if metrics is None:
        row.append({name: _plain(value) for name, value in summary.metrics.items()})
    else:
        row.append([_plain(summary.metrics.get(name)) for name in metrics])
    # What a query may ask beyond the columns: parameters, variants, the host, iteration.
    extra = {f"params.{k}": _plain(v) for k, v in summary.params.items()}
    extra.update((f"variants.{k}", _plain(v)) for k, v in summary.variants.items())
    extra.update(host=summary.hostname, iteration=summary.iteration)
    row.append(extra)
    row.append(start_key(summary))
    return row


def _prefixes(trials_folder: Path | None) -> list[str]:
    # Paths inside the trials folder are shown from it: the page may be shared, and the
    # reader's copy of the folder is elsewhere anyway.
    folders = {trials_folder, trials_folder.resolve()} if trials_folder is not None else set()
    return [f"{folder}{os.sep}" for folder in folders]


def _experiment_pages(summaries: Sequence[TrialSummary]) -> dict[str, str]:
    experiments = sorted({s.experiment for s in summaries if s.experiment and s.status != "legacy"})
    return {e: experiment_page_link(e) for e in experiments}


def page_data(
    summaries: Sequence[TrialSummary], trials_folder: Path | None = None
) -> dict[str, Any]:
    """What the page's script shows: field names, metric names and one list per trial."""
    metrics = metric_columns(summaries)
    prefixes = _prefixes(trials_folder)
    return {
        "fields": list(ROW_FIELDS),
        "metrics": metrics,
        "max_metric_columns": MAX_METRIC_COLUMNS,
        "rows": [_row(summary, prefixes, metrics) for summary in summaries],
        "experiment_pages": _experiment_pages(summaries),
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
        parts=PARTS_DIR,
    )


def part_paths(trials_folder: Path) -> list[Path]:
    """The part files the page loads after ``index.html``'s own rows, in order."""
    folder = trials_folder / PARTS_DIR
    paths: list[Path] = []
    while (path := folder / f"part-{len(paths):06d}.js").is_file():
        paths.append(path)
    return paths


def write_index(trials_folder: Path, summaries: Sequence[TrialSummary]) -> Path:
    """Rewrite ``index.html`` atomically with every trial, then drop the part files that
    it now holds; return its path."""
    path = trials_folder / INDEX_HTML
    generated = datetime.now(timezone.utc)
    title = trials_folder.resolve().name or "trials"
    write_atomic(path, render_index(summaries, title, generated, trials_folder))
    # The last first: the page stops at the first one missing, so none is left unreachable.
    for part in reversed(part_paths(trials_folder)):
        part.unlink()
    return path


def _read_part(path: Path) -> dict[str, Any] | None:
    """A part file's data; None if it is damaged (left as it is: the next part follows it)."""
    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith(_PART_PREFIX) and text.endswith(_PART_SUFFIX):
            data: dict[str, Any] = json.loads(text[len(_PART_PREFIX) : -len(_PART_SUFFIX)])
            if isinstance(data.get("rows"), list) and isinstance(
                data.get("experiment_pages"), dict
            ):
                return data
    except (OSError, ValueError):
        pass
    return None


def add_to_index(trials_folder: Path, summaries: Sequence[TrialSummary]) -> bool:
    """Show ``summaries`` on the page by rewriting only the last part file (or starting the
    next one). False, and nothing written, if there is no ``index.html`` to add to."""
    if not (trials_folder / INDEX_HTML).is_file():
        return False
    parts = part_paths(trials_folder)
    data: dict[str, Any] = {"rows": [], "experiment_pages": {}}
    last = _read_part(parts[-1]) if parts else None
    if last is not None and len(last["rows"]) + len(summaries) <= PART_ROWS:
        data, parts = last, parts[:-1]
    prefixes = _prefixes(trials_folder)
    data["rows"].extend(_row(summary, prefixes, None) for summary in summaries)
    data["experiment_pages"].update(_experiment_pages(summaries))
    data["written"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    path = trials_folder / PARTS_DIR / f"part-{len(parts):06d}.js"
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, _PART_PREFIX + embed_json(data) + _PART_SUFFIX)
    return True


# --- one analysis page per experiment, beside index.html ------------------------------------

PAGE_PREFIX = "experiment-"
# Parameters a summary averages over unless told otherwise: the seed-to-seed spread.
_SEED_NAMES = re.compile(r"(^|_)(seed|seeds|random_state|rng|replicate|repeat)$")


def experiment_page_name(experiment: str) -> str:
    """The page's file name beside ``index.html``; safe for any experiment name."""
    return PAGE_PREFIX + re.sub(r"[^A-Za-z0-9_.+-]", "_", experiment) + ".html"


def experiment_page_link(experiment: str) -> str:
    """The page's relative URL, as ``index.html`` links it."""
    return quote(experiment_page_name(experiment))


def experiment_page_data(
    rows: Sequence[Mapping[str, Any]], tracked: Sequence[str]
) -> dict[str, Any]:
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


def render_experiment_page(
    experiment: str,
    rows: Sequence[Mapping[str, Any]],
    tracked: Sequence[str],
    generated: datetime,
) -> str:
    """The whole page of one experiment's trials."""
    return _template("experiment.html.j2").render(
        experiment=experiment,
        count=len(rows),
        generated=generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        index="index.html",
        # Safe as markup: embed_json leaves no character that could end the script element.
        data=markupsafe.Markup(embed_json(experiment_page_data(rows, tracked))),  # noqa: S704
    )


def write_experiment_page(
    trials_folder: Path,
    experiment: str,
    rows: Sequence[Mapping[str, Any]],
    tracked: Sequence[str],
    generated: datetime,
) -> Path:
    """Rewrite one experiment's page atomically; return its path."""
    path = trials_folder / experiment_page_name(experiment)
    write_atomic(path, render_experiment_page(experiment, rows, tracked, generated))
    return path


def write_experiment_pages(trials_folder: Path, summaries: Sequence[TrialSummary]) -> None:
    """Rewrite the analysis page of every experiment of ``summaries`` (legacy and unreadable
    trials have none)."""
    by_experiment: dict[str, list[TrialSummary]] = {}
    for summary in summaries:
        if summary.experiment and summary.status not in ("legacy", "unreadable"):
            by_experiment.setdefault(summary.experiment, []).append(summary)
    generated = datetime.now(timezone.utc)
    for experiment, members in by_experiment.items():
        tracked = list(dict.fromkeys(name for s in members for name in s.tracked))
        rows = [analysis_row(s) for s in members]
        for row, summary in zip(rows, members, strict=True):
            row["page"] = f"{summary.id}/trial.html" if summary.has_page else None
        write_experiment_page(
            trials_folder, experiment, rows, [f"params.{name}" for name in tracked], generated
        )
