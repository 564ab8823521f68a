"""Plain-text views for a terminal: the trial table, one trial, a comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mitosis.core.compare import Comparison
from mitosis.core.progress import Progress, progress_details, progress_label
from mitosis.core.summary import UNREADABLE, TrialBrief
from mitosis.core.terminal import inert

_LIST_COLUMNS = ("id", "started", "experiment", "variant", "status", "main", "note")
_HEADINGS = {"started": "STARTED (UTC)"}
# Columns that give way, widest first, when the table is wider than the terminal.
_SHRINKABLE = ("note", "variant", "experiment")


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return f"{text}.0" if text.lstrip("-").isdigit() else text  # 10.0 stays a float


def short(value: Any, limit: int = 60) -> str:
    """A value on one line, cut with an ellipsis past ``limit`` characters."""
    if type(value) is str and _plain_line(value):  # most cells: nothing to escape or join
        return _cut(value, limit)
    text = _number(value) if isinstance(value, float) else "" if value is None else str(value)
    return _cut(inert(" ".join(text.split()), multiline=False), limit)


def _plain_line(text: str) -> bool:
    return (
        text.isascii()
        and text.isprintable()
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def page_text(path: Path) -> str:
    """Where a trial's page is, or that it was never written (a full disk, a killed runner)."""
    return str(path) if path.is_file() else f"(no page: {path.name} was not written)"


def _row_cells(row: TrialBrief) -> list[str]:
    """One trial's cells of the ``list`` table, in ``_LIST_COLUMNS`` order, each one inert line
    (cut to fit its column later)."""
    status, problem, started, main = row.status, row.problem, row.started, row.main
    unreadable = status == UNREADABLE
    texts = [
        row.id,
        started[:19].replace("T", " ") if started else "",
        row.experiment or "",
        "(defaults)" if row.variant is None and not unreadable else row.variant or "",
        f"{status}?" if problem and not unreadable else status,
        main if type(main) is str else _number(main) if type(main) is float else short(main),
        (problem if unreadable else row.note) or "",
    ]
    # Most rows need nothing escaped, joined or cut: told for the whole row at once.
    line = "|".join(texts)
    if _plain_line(line) and " |" not in line and "| " not in line and len(line) < _WHOLE:
        return texts
    return [short(text, _WHOLE) for text in texts]


_WHOLE = 10_000  # a cell is cut to its column's width later, not here
PIPED_COLUMN = 200


def trial_table(rows: Sequence[TrialBrief], width: int | None) -> str:
    """The ``list`` table; with a ``width`` the long columns are cut to fit it.

    Without one (piped), a long column is still cut at ``PIPED_COLUMN`` characters: every
    row is padded to its column's width, so one huge value would widen them all
    (``--json`` keeps every value whole).
    """
    cells = [_row_cells(row) for row in rows]
    headings = [_HEADINGS.get(c, c.upper()) for c in _LIST_COLUMNS]
    columns = zip(*cells, strict=True)
    natural = [max(len(h), *map(len, c)) for h, c in zip(headings, columns, strict=True)]
    widths = list(natural)
    if width is None:
        for column in _SHRINKABLE:
            index = _LIST_COLUMNS.index(column)
            widths[index] = min(widths[index], PIPED_COLUMN)
    else:
        for column in _SHRINKABLE:
            index = _LIST_COLUMNS.index(column)
            excess = sum(widths) + 2 * (len(widths) - 1) - width
            if excess > 0:
                widths[index] = max(len(headings[index]), widths[index] - excess)
    for index, (wide, fits) in enumerate(zip(natural, widths, strict=True)):
        if wide > fits:  # cells are one line and inert already: only cut to their column
            for line in cells:
                line[index] = _cut(line[index], fits)
    template = "  ".join(f"{{:<{wide}}}" for wide in widths)
    return "\n".join(template.format(*line).rstrip() for line in [headings, *cells])


def _params(record: Mapping[str, Any]) -> list[str]:
    lines = []
    for step in record.get("steps") or []:
        for arg, param in (step.get("params") or {}).items():
            given = param.get("variant") if param.get("kind") == "lookup" else "literal"
            tracked = "" if param.get("tracked", True) else "  (untracked)"
            value = short(param.get("value"))
            lines.append(f"  {step.get('name')}.{arg} = {given}: {value}{tracked}")
    return lines


def _cached(record: Mapping[str, Any]) -> list[str]:
    lines = []
    for step in record.get("steps") or []:
        taken = step.get("cached_from") if isinstance(step, Mapping) else None
        if isinstance(taken, Mapping):
            lines.append(
                f"cached:   step {step.get('name')} did not run: its result is step "
                f"{taken.get('step')} of {taken.get('trial')}"
            )
    return lines


def _resources(record: Mapping[str, Any]) -> list[str]:
    used = record.get("resources")
    if not isinstance(used, Mapping):
        return []
    gpus = "".join(
        f", {gpu.get('name')} {gpu.get('memory_used_mb')} MB"
        for gpu in used.get("gpus") or []
        if isinstance(gpu, Mapping)
    )
    return [f"cost:     {used.get('cpu_s')} CPU-s, peak memory {used.get('peak_rss_mb')} MB{gpus}"]


def _heading(record: Mapping[str, Any], progress: Progress | None, now: datetime) -> list[str]:
    """The id, experiment and status (and where a running trial is), then the variant."""
    status = f"{record.get('status')}{' (debug)' if record.get('debug') else ''}"
    if progress is not None:  # as the index row says it: `running · cell 3/5 · 12 s`
        status = f"{status} · {progress_label(progress, now)}"
    lines = [
        f"{record.get('id')}  {short(record.get('experiment'), 500)}  {status}",
        f"variant:  {short(record.get('variant') or '(defaults)', 10_000)}  "
        f"(iteration {record.get('iteration')})",
    ]
    if progress is not None:
        lines.append(f"progress: {short(progress_details(progress, now), 500)}")
    return lines


def trial_text(
    record: Mapping[str, Any],
    page: str,
    flag: str | None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> str:
    """``show``: what a researcher looks for first, then where the rest is; for a running
    trial, where it is (``progress``, its heartbeat, as of ``now``)."""
    git = record.get("git") or {}
    environment = record.get("environment") or {}
    metrics = record.get("metrics") or {}
    lines = _heading(record, progress, now or datetime.now(timezone.utc))
    if flag:
        lines.append(f"warning:  {flag}")
    for text in record.get("warnings") or []:
        lines.append(f"warning:  {short(text, 500)}")
    if record.get("note"):
        lines.append(f"note:     {short(record['note'], 500)}")
    lines.append(f"main:     {short(record.get('main'), 500)}")
    if metrics:
        lines.append(
            "metrics:  "
            + "  ".join(
                f"{k}={short(v, 40) if v is not None else None}" for k, v in metrics.items()
            )
        )
    error = record.get("error")
    if error:
        where = f" in step {error.get('step')}" if error.get("step") else ""
        what = f"{error.get('type')}: {error.get('message')}"
        lines.append(f"error:    {error.get('kind')}{where}: {what}")
    params = _params(record)
    if params:
        lines += ["params:", *params]
    lines += _cached(record)
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    lines += [
        f"commit:   {git.get('commit')} ({git.get('branch')}){dirty}",
        f"started:  {record.get('started')}  duration {record.get('duration_s')} s",
        *_resources(record),
        f"ran on:   {environment.get('hostname')}, python {environment.get('python')}, "
        f"kernel {environment.get('kernel')}",
        f"command:  {record.get('command')}",
        f"page:     {page}",
    ]
    slurm = record.get("slurm")
    if isinstance(slurm, Mapping):  # a trial run through Slurm: its job, node and state
        task = f"{slurm.get('job_id')}" + (
            f"_{slurm['array_index']}" if slurm.get("array_index") is not None else ""
        )
        lines.append(
            f"slurm:    job {task}, {slurm.get('state')}, node {slurm.get('node') or '(none yet)'}"
        )
    return "\n".join(lines)


def _side(section: str, value: Any) -> str:
    if section == "patch":
        return "(none)" if value is None else f"{len(str(value).splitlines())} lines"
    return "(absent)" if value is None else short(value, 80)


def _where_they_differ(a: str, b: str, width: int) -> tuple[str, str]:
    """Both texts cut to the same window around their first difference, so a long value
    shows the part that differs rather than a shared prefix."""
    if len(a) <= width and len(b) <= width:
        return a, b
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if first is None:  # one is the other with more at its end
        first = min(len(a), len(b))
    start = max(0, first - width // 4)

    def window(text: str) -> str:
        end = start + width
        return f"{'…' if start else ''}{text[start:end]}{'…' if end < len(text) else ''}"

    return window(a), window(b)


def comparison_text(comparison: Comparison) -> str:
    """``compare``: only what differs, section by section, ``A -> B``."""
    lines = [f"A = {comparison.a}", f"B = {comparison.b}"]
    if not comparison.differences:
        return "\n".join([*lines, "no differences (besides ids and times)"])
    section = None
    for difference in comparison.differences:
        if difference.section != section:
            section = difference.section
            lines.append(f"{section}:")
        if section != "patch" and isinstance(difference.a, str) and isinstance(difference.b, str):
            a, b = _where_they_differ(short(difference.a, 10_000), short(difference.b, 10_000), 80)
        else:
            a, b = _side(section, difference.a), _side(section, difference.b)
            if a == b:  # numbers that differ past the digits shown: show them all
                a, b = repr(difference.a), repr(difference.b)
        lines.append(f"  {difference.name}: {a}  ->  {b}")
    return "\n".join(lines)


def reproduction_text(report: Mapping[str, Any]) -> str:
    """``reproduce``: the verdict, what differs, where it ran and what changed around it."""
    ended = report["status"]
    if report["reproduced"]:
        verdict, how = "REPRODUCED", ""
    elif ended != "succeeded":  # whatever it is compared with, a re-run that failed failed
        verdict, how = "FAILED", f", which ended {ended}"
    else:
        verdict, how = "DIVERGED", ""
    lines = [f"{verdict}: trial {report['original']} re-ran as {report['trial']}{how}"]
    differences: Mapping[str, Any] = report["differences"]
    compared = ", ".join(report["compared"])
    if differences:
        lines.append(f"differs (original -> new, rtol {report['rtol']:g}):")
        lines += [
            f"  {name}: {short(a, 60)}  ->  {short(b, 60)}" for name, (a, b) in differences.items()
        ]
    else:
        lines.append(f"same {compared} (rtol {report['rtol']:g})")
    if report.get("addresses_ignored"):
        lines.append(
            "equal once memory addresses (0x…) are set aside, which differ in every process: "
            + ", ".join(report["addresses_ignored"])
        )
    if report.get("ignored"):
        lines.append(f"not checked (--ignore): {', '.join(report['ignored'])}")
    if report["worktrees"]:
        lines.append(
            "ran at the recorded commits in a temporary git worktree of each of "
            f"{', '.join(report['worktrees'])}; your checkouts were not touched "
            f"(the investigation ran at {report['commit']}, its HEAD is {report['head']})"
        )
    for section, title in (
        ("sources", "step sources"),
        ("vcs_packages", "packages installed from git"),
        ("submodules", "submodules"),
    ):
        changed = report["provenance"].get(section, {})
        if changed:
            lines.append(f"{title} that differ (original -> now):")
            lines += [
                f"  {name}: {_side(section, a)}  ->  {_side(section, b)}"
                for name, (a, b) in changed.items()
            ]
    packages: Mapping[str, Any] = report["packages"]
    if packages:
        lines.append("package versions that differ (original -> now):")
        lines += [
            f"  {name}: {a or '(absent)'}  ->  {b or '(absent)'}"
            for name, (a, b) in packages.items()
        ]
    lines.append(f"page: {page_text(Path(report['page']))}")
    return "\n".join(lines)


def legacy_trial_text(trial: Mapping[str, Any], folder: str) -> str:
    """``show`` of a trial the original mitosis wrote: all that its files say, and where they are.

    The original kept no record: no parameters' values, environment or duration to show.
    """
    debug = " (debug)" if trial.get("debug") else ""
    page, metadata = trial.get("page"), trial.get("metadata_folder")
    lines = [
        f"{trial.get('id')}  {short(trial.get('experiment'), 500)}  legacy{debug}",
        f"variant:  {short(trial.get('variant'), 10_000)}  (iteration {trial.get('iteration')})",
        f"main:     {short(trial.get('main'), 500)}  (as the original printed it)",
        f"commit:   {short(trial.get('commit'))}",
        f"started:  {short(trial.get('started'))}  (the original's log, in its machine's time)",
        f"page:     {short(f'{folder}/{page}', 10_000) if page else '(none)'}",
        f"files:    {short(f'{folder}/{metadata}', 10_000) if metadata else '(none)'}",
        "written by the original mitosis (0.6.x); mitosis.load_trial_data(ID, "
        "trials_folder=...) loads its results.",
    ]
    return "\n".join(lines)
