"""What a sweep shows: one line per finished trial, a progress bar, and a closing summary."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from mitosis.core.terminal import inert
from mitosis.executors import (
    FAILED,
    INTERRUPTED,
    NOT_STARTED,
    QUEUED,
    SKIPPED,
    SUCCEEDED,
    Outcome,
)
from mitosis.views import page_text

if TYPE_CHECKING:
    from mitosis.sweeps import SweepResult
    from mitosis.trials import Trial

_ORDER = (QUEUED, SUCCEEDED, FAILED, INTERRUPTED, SKIPPED, NOT_STARTED)


def _outcome_lines(outcome: Outcome) -> list[tuple[str, TextIO]]:
    """The lines ``run`` prints for a finished trial, and where each goes."""
    if outcome.status == QUEUED and outcome.trial is not None:  # submitted: its job's id
        variant = outcome.trial.record.get("variant") or "(defaults)"
        return [(f"{QUEUED}: {outcome.trial_id}  {variant}  {outcome.message}", sys.stdout)]
    if outcome.trial is None:
        return [(f"{outcome.status}: {outcome.trial_id}  {outcome.message}", sys.stderr)]
    # A sweep's trials are told apart by their variants.
    return trial_lines(outcome.trial, with_variant=True)


def trial_lines(trial: Trial, with_variant: bool = False) -> list[tuple[str, TextIO]]:
    """A finished trial's status, main result (if it has one) and page; then its error."""
    variant = f"{trial.record.get('variant') or '(defaults)'}  " if with_variant else ""
    main = "" if trial.main is None and trial.status != SUCCEEDED else f"main={trial.main!r}  "
    page = page_text(trial.html_path)
    lines = [(f"{trial.status}: {trial.id}  {variant}{main}{page}", sys.stdout)]
    lines += [(f"  warning: {text}", sys.stderr) for text in trial.record.get("warnings") or []]
    error = trial.error
    if error:
        where = f" in step {error['step']!r}" if error.get("step") else ""
        text = f"  {error['kind']}{where}: {error['type']}: {error['message']}"
        lines.append((text, sys.stderr))
    return lines


def summary_table(result: SweepResult) -> str:
    """Each status with its count and trial ids; skipped trials name the trial that covers them."""
    rows = []
    for status in _ORDER:
        outcomes = result.with_status(status)
        if outcomes:
            ids = " ".join(str(o.trial_id) for o in outcomes if status != NOT_STARTED)
            rows.append((status, len(outcomes), ids))
    width = max(len(status) for status, _, _ in rows) if rows else 0
    count = len(result.outcomes)
    lines = [f"sweep of {count} trial{'' if count == 1 else 's'}:"]
    lines += [f"  {status:<{width}}  {count:>4}  {ids}".rstrip() for status, count, ids in rows]
    return "\n".join(lines)


class SweepBar:
    """One tqdm bar on stderr: trials finished of the total, failed and running, and an ETA.

    Lines printed through ``write`` appear above the bar instead of tearing it.
    """

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        # A terminal that reports no size (a new pseudo-terminal, some CI runners) would get
        # no bar at all from tqdm: give it 80 columns and 24 lines.
        try:
            sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except (OSError, ValueError):
            sized = False
        self._bar: Any = tqdm(
            total=total,
            desc="sweep",
            unit="trial",
            file=sys.stderr,
            dynamic_ncols=sized,
            ncols=None if sized else 80,
            nrows=None if sized else 24,
        )

    def progress(self, finished: int, failed: int, running: int) -> None:
        """Move the bar to the latest counts."""
        self._bar.set_postfix_str(
            f"done {finished - failed}, failed {failed}, running {running}", refresh=False
        )
        self._bar.update(finished - self._bar.n)  # update() refreshes, and keeps the ETA moving

    def write(self, text: str, stream: TextIO) -> None:
        """Print a line above the bar."""
        self._bar.write(inert(text), file=stream)

    def close(self) -> None:
        """Leave the finished bar on the terminal."""
        self._bar.close()


class SweepPrinter:
    """A ``SweepObserver`` for the command line: a bar on a terminal, plain lines otherwise."""

    def __init__(self, bar: bool, quiet: bool) -> None:
        self._want_bar = bar and not quiet
        self._bar: SweepBar | None = None
        self._quiet = quiet

    def start(self, total: int) -> None:
        """The sweep is locked in: ``total`` trials will run (skipped ones are not counted)."""
        if self._want_bar:
            self._bar = SweepBar(total)

    def progress(self, finished: int, failed: int, running: int) -> None:
        """Forward the counts to the bar, if there is one."""
        if self._bar is not None:
            self._bar.progress(finished, failed, running)

    def finished(self, outcome: Outcome) -> None:
        """Print the trial's line as soon as it ends (nothing with ``--json``)."""
        if self._quiet:
            return
        write: Callable[[str, TextIO], None] = self._bar.write if self._bar is not None else _print
        for text, stream in _outcome_lines(outcome):
            write(text, stream)

    def close(self) -> None:
        """Take the bar down before the summary is printed."""
        if self._bar is not None:
            self._bar.close()


def _print(text: str, stream: TextIO) -> None:
    print(inert(text), file=stream, flush=True)
