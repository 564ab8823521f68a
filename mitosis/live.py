"""While a trial runs, its folder says where it is, with no server: its heartbeat.

A ``TrialWatch`` runs beside the trial from its running record to its final one. papermill's
client tells it which cell starts (nbclient's hooks, in papermill's thread); once a second
its own thread looks at the notebook being executed (how many outputs it holds, how long
the last one is) and, when that or the cell changed, rewrites the heartbeat (at most every
``WRITE_EVERY_S`` seconds; ``liveness.write_heartbeat``: ``heartbeat`` and ``progress.js``)
with the cell running of how many, the step it runs and the time of the last output; when
nothing changed, it still beats every ``beat_s`` seconds.
From ``FIRST_PAGE_S`` into the execution on it also has the trial's page written from the
notebook so far, at most every ``PAGE_EVERY_S`` seconds (less often for a notebook so large
that its page costs more than ``PAGE_SHARE`` of that) and only when the notebook changed.

Only this trial's own files are written: no index, no listing, so it costs the same in a
trials folder of 100,000 trials; the index page reads ``progress.js`` itself.
"""

from __future__ import annotations

import contextlib
import copy
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mitosis import liveness

__all__ = ["BEAT_S", "FIRST_PAGE_S", "PAGE_EVERY_S", "TrialWatch", "watching"]

TICK_S = 1.0  # how often the watch looks at the notebook
WRITE_EVERY_S = 2.0  # a change reaches the folder at most this often...
BEAT_S = 10.0  # ...and the heartbeat at least this often when nothing changes
FIRST_PAGE_S = 3.0  # a trial done sooner gets no page of its run so far
PAGE_EVERY_S = 10.0
# A page of a notebook that has grown large takes long to render: the pages then come less
# often, so that they never take more than this share of the time between them.
PAGE_SHARE = 0.01

# Renders the page of the run so far from the notebook (a copy) and the heartbeat's fields,
# and returns what writes it: the writing is quick, so the trial's end never waits long.
PageRenderer = Callable[[Any, dict[str, Any]], Callable[[], None]]


@dataclass(frozen=True)
class _Look:
    """What the notebook shows at one look."""

    cell: int | None = None  # 1-based
    cells: int | None = None
    step: str | None = None
    outputs: tuple[int, int] = (0, 0)  # outputs in all cells; the length of the last one
    executed: bool = False  # the notebook has run to its end: the trial waits to be published


def _utc(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _output_size(output: Any) -> int:
    # A stream's text grows in place as the cell prints; other outputs arrive whole.
    text = output.get("text", "") if hasattr(output, "get") else ""
    return len(text) if isinstance(text, str) else 0


def _copy(notebook: Any) -> Any | None:
    """A copy of a notebook papermill is still writing into; None if it kept changing."""
    for _ in range(3):
        with contextlib.suppress(RuntimeError):  # a dict or list grew while being copied
            return copy.deepcopy(notebook)
    return None


class TrialWatch:
    """The heartbeat, progress and page of one trial in ``folder`` while it runs."""

    def __init__(
        self, folder: Path, beat_s: float = BEAT_S, render_page: PageRenderer | None = None
    ) -> None:
        self.folder = folder
        self.beat_s = beat_s
        self._render_page = render_page
        self._node = socket.gethostname()
        self._notebook: Any = None  # the notebook papermill executes, once it starts
        self._cell: tuple[int | None, int | None, str | None] = (None, None, None)
        self._since: datetime | None = None
        self._since_clock = math.inf
        self._last_output: datetime | None = None
        self._executed: datetime | None = None
        self._seen = _Look()
        self._written: _Look | None = None
        self._written_at = -math.inf
        self._paged: _Look | None = None
        self._paged_at = -math.inf
        self._page_every = PAGE_EVERY_S
        self._has_page = False
        self._ended: str | None = None
        self._pages_lock = threading.Lock()
        self._pages_stopped = render_page is None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"mitosis-live-{folder.name}", daemon=True
        )

    # --- nbclient's hooks, called in papermill's thread ---------------------------------

    def hooks(self) -> dict[str, Callable[..., None]]:
        """nbclient's hooks (papermill passes them to its client) that keep the watch told."""
        return {"on_notebook_start": self._notebook_started, "on_cell_start": self._cell_started}

    def _notebook_started(self, notebook: Any, **_: Any) -> None:
        self._since = datetime.now(timezone.utc)
        self._since_clock = time.monotonic()
        self._notebook = notebook

    def _cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        # Taken now: once a cell fails, papermill inserts cells of its own above it.
        cells = len(self._notebook.cells) if self._notebook is not None else None
        step = cell.get("metadata", {}).get("mitosis", {}).get("step")
        self._cell = (cell_index + 1, cells, step)

    # --- the watch's own thread -----------------------------------------------------------

    def start(self) -> TrialWatch:
        """Beat once now, then keep watching in the background."""
        self._beat(time.monotonic())
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(TICK_S):
            # A look that caught papermill mid-change fails: the next one will do.
            with contextlib.suppress(Exception):
                self._tick()

    def _look(self) -> _Look:
        notebook, (cell, cells, step) = self._notebook, self._cell
        executed = self._executed is not None
        if notebook is None or cell is None:
            return _Look(executed=executed)
        outputs = [output for each in list(notebook.cells) for output in each.get("outputs", ())]
        last = _output_size(outputs[-1]) if outputs else 0
        return _Look(cell, cells, step, (len(outputs), last), executed)

    def _observe(self) -> _Look:
        """Look at the notebook; new output since the last look is output now."""
        look = self._look()
        if look.outputs != self._seen.outputs:
            self._last_output = datetime.now(timezone.utc)
        self._seen = look
        return look

    def _tick(self) -> None:
        now = time.monotonic()
        look = self._observe()
        quiet = now - self._written_at
        if quiet >= self.beat_s or (look != self._written and quiet >= WRITE_EVERY_S):
            self._beat(now)
        if (
            look != self._paged
            and now - self._since_clock >= FIRST_PAGE_S
            and now - self._paged_at >= self._page_every
        ):
            self._page(now)

    def fields(self) -> dict[str, Any]:
        """The heartbeat's fields besides its time and node (``mitosis.core.progress``)."""
        look = self._seen
        return {
            "every_s": self.beat_s,
            "cell": look.cell,
            "cells": look.cells,
            "step": look.step,
            "since": _utc(self._since),
            "last_output": _utc(self._last_output),
            "executed": _utc(self._executed),
            "page": self._has_page,
            "ended": self._ended,
        }

    def _beat(self, now: float) -> None:
        with contextlib.suppress(OSError):  # a full disk: readers see the beats stop
            liveness.write_heartbeat(
                self.folder, datetime.now(timezone.utc), self._node, self.fields()
            )
        self._written, self._written_at = self._seen, now

    def _page(self, now: float) -> None:
        """Render the page of the run so far, then write it unless the notebook has run
        meanwhile (its final page is being written)."""
        if self._pages_stopped or self._render_page is None:
            return
        self._paged, self._paged_at = self._seen, now
        started = time.thread_time()
        notebook = _copy(self._notebook)
        try:
            write = self._render_page(notebook, self.fields()) if notebook is not None else None
            with self._pages_lock:
                if write is None or self._pages_stopped:
                    return
                write()
        except Exception:  # only a view of the run so far: the final page reports problems
            return
        finally:
            cost = time.thread_time() - started
            self._page_every = max(PAGE_EVERY_S, cost / PAGE_SHARE)
        if not self._has_page:
            self._has_page = True
            self._beat(now)  # the index page links the page from now on

    # --- the trial's end ------------------------------------------------------------------

    def executed(self) -> None:
        """The notebook has run: no more pages (one being written is finished first, one
        being rendered is dropped), so that the final page is never overwritten by one of
        the run so far. A trial still waiting to be published a beat later says so."""
        if self._executed is None:
            self._executed = datetime.now(timezone.utc)
        with self._pages_lock:
            self._pages_stopped = True

    def end(self, status: str) -> None:
        """The trial's final record is written, with ``status``: say so in the last beat."""
        self._ended = status

    def close(self) -> None:
        """Stop watching; the last beat says how the trial ended, if ``end`` was told."""
        self.executed()
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._ended is not None:
            with contextlib.suppress(Exception):  # as in a tick: the last look may fail
                self._observe()  # a trial shorter than a tick was never looked at
            self._beat(time.monotonic())


@contextlib.contextmanager
def watching(
    folder: Path, beat_s: float | None = None, render_page: PageRenderer | None = None
) -> Iterator[TrialWatch]:
    """A ``TrialWatch`` of the trial in ``folder`` for the block's duration."""
    watch = TrialWatch(folder, beat_s or BEAT_S, render_page).start()
    try:
        yield watch
    finally:
        watch.close()
