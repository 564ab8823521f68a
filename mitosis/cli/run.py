"""``run``: build the request from the arguments, run it, print how each trial went."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mitosis.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    print_json,
    say,
)

if TYPE_CHECKING:
    from mitosis.session import RunResult


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``run``: parse the request, run it (one trial or a sweep), print how it went."""
    from mitosis.core.params import parse_option
    from mitosis.core.request import TrialRequest
    from mitosis.session import RunOptions, run_request

    options = [parse_option(text, "lookup") for text in args.lookups]
    options += [parse_option(text, "literal") for text in args.literals]
    request = TrialRequest(
        steps=tuple(args.steps),
        options=tuple(options),
        debug=args.debug,
        note=args.note,
        template=args.template,
        timeout=args.timeout,
        kernel=args.kernel,
        progress=not args.json and sys.stderr.isatty(),
        command=shlex.join([getattr(args, "program", "mitosis-nb"), *argv]),
        config=args.config,
        trials_folder=args.trials_folder,
        extra_steps=tuple(getattr(args, "extra_steps", ())),
        cache=getattr(args, "cache", True),
    )
    if args.scheduler and args.scheduler != "slurm":
        _quiet_dask()
    from mitosis.progress import SweepPrinter

    # A bar and a line per trial if this turns out to be a sweep; a lone trial has its own.
    printer = SweepPrinter(bar=sys.stderr.isatty(), quiet=args.json)
    try:
        result = run_request(
            request,
            RunOptions(
                args.workers,
                args.scheduler,
                args.skip_existing,
                getattr(args, "wait", False),
                tuple(getattr(args, "slurm", ())),
            ),
            printer,
        )
    finally:
        printer.close()
    return _print_sweep(args, result) if result.sweep is not None else _print_trials(args, result)


def _print_trials(args: argparse.Namespace, result: RunResult) -> int:
    from mitosis.progress import trial_lines

    if args.json:
        print_json([trial.record for trial in result.trials])
    else:
        for trial in result.trials:
            for text, stream in trial_lines(trial):
                say(text, file=stream)
    return _exit_code(result)


def _print_sweep(args: argparse.Namespace, result: RunResult) -> int:
    from mitosis.progress import summary_table

    assert result.sweep is not None
    if args.json:
        print_json([trial.record for trial in result.trials])
        if len(result.trials) < len(result.sweep.outcomes):
            # Skipped and never-started trials have no record in the JSON: say so aside.
            say(summary_table(result.sweep), file=sys.stderr)
    else:
        say(summary_table(result.sweep))
    return _exit_code(result)


def _exit_code(result: RunResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.refused_by_disk:
        return EXIT_STORAGE
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _quiet_dask() -> None:
    """Dask's client logs tracebacks when it loses the scheduler; the summary says what
    became of each trial. Its loggers get their levels when it is imported: hence now."""
    with contextlib.suppress(ImportError):  # said, in one sentence, when the sweep connects
        import distributed  # noqa: F401
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)
