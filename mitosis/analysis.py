"""Knowledge out of the archive: trials as a table (``search_trials``), filtered by the
query grammar, and aggregated over seeds (``summarize``).

pandas is the optional extra ``analysis``: only the two functions that return a DataFrame
import it; filtering (``list_selected``) and the rows themselves need nothing beyond mitosis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitosis.adapters.index_cache import Entry, Reading
from mitosis.core.analysis import (
    TRIAL_COLUMNS,
    analysis_row,
    column_getter,
    summary_path,
    values_getter,
)
from mitosis.core.query import parse_query
from mitosis.core.record import dumps_plain
from mitosis.core.summary import TrialBrief, TrialSummary
from mitosis.errors import MissingExtraError, ParameterError
from mitosis.trials import default_trials_folder
from mitosis.trials_folder import TrialsFolder

if TYPE_CHECKING:
    import pandas

__all__ = [
    "Selection",
    "list_selected",
    "row_columns",
    "search_trials",
    "summarize",
    "summarize_experiment",
]

# Trials whose outcome is known; running ones are neither counted nor averaged.
_FAILED = ("failed", "interrupted")
_STATS = ("n", "failed", "mean", "std", "min", "max")


def _as_decoded(entries: list[Entry]) -> list[Entry]:
    return entries


@dataclass(frozen=True)
class Selection:
    """The trials a listing selected, and what a reader should be warned of.

    ``decoded`` gives entries back with their summaries decoded, all in one go (the
    catalogue's, which reads again from its record a row the index cannot decode).
    """

    entries: list[Entry]
    warnings: list[str]
    decoded: Callable[[list[Entry]], list[Entry]] = _as_decoded

    @property
    def briefs(self) -> list[TrialBrief]:
        """What the ``list`` table shows of each selected trial."""
        return [entry.brief for entry in self.entries]

    @property
    def summaries(self) -> list[TrialSummary]:
        """The selected trials' whole summaries."""
        return [entry.summary for entry in self.decoded(self.entries)]

    def rows(self) -> list[dict[str, Any]]:
        """The selected trials as flat rows (``list --csv``)."""
        return [analysis_row(summary) for summary in self.summaries]

    def json_lines(self) -> list[str]:
        """Each selected trial as one line of JSON (``list --json``): the index's own text
        of a trial unchanged since it was indexed, else its summary encoded now."""
        pending = [entry for entry in self.entries if entry.encoded is None]
        encoded = {
            id(old): dumps_plain(new.summary.field_values())
            for old, new in zip(pending, self.decoded(pending), strict=True)
        }
        return [entry.encoded or encoded[id(entry)] for entry in self.entries]


def list_selected(
    trials_folder: Path,
    where: str | None = None,
    experiment: str | None = None,
    status: str | None = None,
    whole: bool = True,
) -> Selection:
    """``mitosis-nb list``: the trials of ``experiment`` and ``status`` passing ``where``,
    oldest first. Raises ``QueryError`` for a bad query before anything is read.

    Without ``whole`` (for a table of their ``briefs``), the selected trials' summaries are
    left in the index until asked for.
    """
    query = parse_query(where) if where is not None else None
    columns = query.columns if query is not None else ()
    paths = [summary_path(column) for column in columns]
    # The index gives each trial's values of the query's columns, read by SQLite: the
    # whole summary is decoded only for a trial it could not read them from, or for every
    # trial if a column has no path in the summary's JSON.
    extract = [path for path in paths if path is not None]
    if len(extract) < len(paths):
        extract = []
    collected = TrialsFolder(trials_folder).collect(reading=Reading(extract, texts=whole))
    if query is not None:
        collected.decode(lambda entry: not extract or entry.extracted is None)
    chosen = []
    for entry in collected.entries:
        brief = entry.brief
        if experiment is not None and brief.experiment != experiment:
            continue
        if status is not None and brief.status != status:
            continue
        if query is not None:
            values = entry.extracted if extract else None
            get = (
                column_getter(entry.summary)
                if values is None
                else values_getter(dict(zip(columns, values, strict=True)))
            )
            if not query.matches(get):
                continue
        chosen.append(entry)
    return Selection(chosen, collected.warnings(), collected.decoded)


def summarize_experiment(
    trials_folder: Path, experiment: str, over: Sequence[str] = (), where: str | None = None
) -> pandas.DataFrame:
    """``mitosis-nb summary``: ``summarize`` of one experiment's trials passing ``where``.

    Raises ``ParameterError`` for an experiment with no trials, naming those there are.
    """
    frame = search_trials(where, experiment=experiment, trials_folder=trials_folder)
    if frame.empty and where is None:
        known = sorted(
            {s.experiment for s in TrialsFolder(trials_folder).collect().summaries if s.experiment}
        )
        raise ParameterError(
            f"no trials of experiment {experiment!r} in {trials_folder}; its experiments: "
            f"{', '.join(known) or 'none yet'}."
        )
    return summarize(frame, over)


def row_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every column of ``rows``: the trial's own, then metrics, parameters, variants, problem."""
    seen = {column for row in rows for column in row}
    ordered = [c for c in TRIAL_COLUMNS if c != "id"]
    for prefix in ("metrics.", "params.", "variants.", "resources."):
        ordered += sorted(c for c in seen if c.startswith(prefix))
    return ["id", *ordered, *(["problem"] if "problem" in seen else [])]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtraError(
            "this needs pandas, which mitosis-nb installs as its 'analysis' extra: "
            "pip install 'mitosis-nb[analysis]'."
        ) from None
    return pandas


def search_trials(
    where: str | None = None,
    *,
    experiment: str | None = None,
    status: str | None = None,
    trials_folder: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> pandas.DataFrame:
    """Every trial of the trials folder as one row of a DataFrame indexed by ``id``.

    Columns: ``experiment``, ``status``, ``started`` (UTC), ``duration_s``, ``iteration``,
    ``variant``, ``note``, ``debug``, ``commit``, ``host``, ``main``, ``metrics.<name>``,
    ``params.<step>.<arg>`` and ``variants.<step>.<arg>``; a legacy or damaged record shows
    what could be read and a ``problem``. ``where`` is a query (``mitosis-nb list --help``).
    Raises ``QueryError`` for a bad query and ``MissingExtraError`` without pandas.
    """
    pandas = _pandas()
    folder = Path(trials_folder) if trials_folder else default_trials_folder(config)
    found = list_selected(folder, where, experiment, status).summaries
    rows = [analysis_row(summary) for summary in found]
    columns = row_columns(rows)
    frame = pandas.DataFrame.from_records(rows, columns=columns).set_index("id")
    frame["started"] = pandas.to_datetime(frame["started"], utc=True, errors="coerce")
    frame["iteration"] = frame["iteration"].astype("Int64")
    frame["debug"] = frame["debug"].astype(bool)
    for column in ("duration_s", *(c for c in columns if c.startswith("metrics."))):
        # Floats even where every value is a whole number: a count averages as a metric.
        frame[column] = pandas.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in (c for c in columns if c.startswith("resources.")):
        frame[column] = pandas.to_numeric(frame[column], errors="coerce")
    frame.attrs["tracked"] = sorted({f"params.{n}" for s in found for n in s.tracked})
    return frame


def summarize(frame: pandas.DataFrame, over: Sequence[str] = ()) -> pandas.DataFrame:
    """Aggregates of ``main`` and each metric, per group of trials with the same tracked
    parameters but those in ``over`` (and any iteration): one row per group and metric,
    with ``n``, ``mean``, ``std`` (n-1), ``min`` and ``max`` of the succeeded trials and how
    many ``failed`` (or were interrupted).

    ``over`` names parameters as ``seed``, ``step.seed`` or ``params.step.seed``. Raises
    ``ParameterError`` for one the frame does not have.
    """
    pandas = _pandas()
    params = list(
        frame.attrs.get("tracked") or [c for c in frame.columns if c.startswith("params.")]
    )
    averaged = {_parameter_column(name, list(frame.columns)) for name in over}
    by = [p for p in params if p not in averaged and p in frame.columns]
    metrics = ["main", *sorted(c for c in frame.columns if c.startswith("metrics."))]
    records = []
    groups = frame.groupby(by, dropna=False, sort=True) if by else [((), frame)]
    for key, group in groups:
        values = key if isinstance(key, tuple) else (key,)
        done = group[group["status"] == "succeeded"]
        failed = int(group["status"].isin(_FAILED).sum())
        for metric in metrics:
            numbers = pandas.to_numeric(done[metric], errors="coerce").dropna()
            if numbers.empty and not failed:
                continue
            records.append(
                {
                    **dict(zip(by, values, strict=True)),
                    "metric": metric,
                    "n": int(numbers.size),
                    "failed": failed,
                    "mean": numbers.mean() if numbers.size else None,
                    "std": numbers.std(ddof=1) if numbers.size > 1 else None,
                    "min": numbers.min() if numbers.size else None,
                    "max": numbers.max() if numbers.size else None,
                }
            )
    return pandas.DataFrame.from_records(records, columns=[*by, "metric", *_STATS])


def _parameter_column(name: str, columns: list[str]) -> str:
    wanted = name if name.startswith("params.") else f"params.{name}"
    if wanted in columns:
        return wanted
    by_arg = [c for c in columns if c.startswith("params.") and c.rsplit(".", 1)[-1] == name]
    if len(by_arg) == 1:
        return by_arg[0]
    known = ", ".join(c.removeprefix("params.") for c in columns if c.startswith("params."))
    raise ParameterError(
        f"these trials have no parameter {name!r} to average over"
        + (f" ({len(by_arg)} steps take it: name the step, e.g. STEP.{name})" if by_arg else "")
        + f"; their parameters: {known or 'none'}."
    )
