"""What ``mitosis-nb`` does with its arguments: parse them, run the command they name, and
map what it raises to one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mitosis.cli import browse
from mitosis.cli.output import EXIT_CLOSED_PIPE, EXIT_INTERRUPTED, EXIT_STORAGE, EXIT_USAGE, say
from mitosis.cli.parser import build_parser
from mitosis.cli.run import run_command
from mitosis.errors import MitosisError

__all__ = ["handle", "main"]


def _show_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    say(f"mitosis-nb: warning: {message}", file=sys.stderr)


def _quiet_libraries() -> None:
    """One line per warning, and no library log lines that repeat what the record says."""
    warnings.showwarning = _show_warning
    # nbclient logs "Kernel died while waiting for execute reply" through papermill's
    # logger; the trial's error line already says so.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mitosis-nb``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    handlers = {
        "run": lambda: run_command(args, argv),
        "show": lambda: browse.show_command(args),
        "list": lambda: browse.list_command(args),
        "compare": lambda: browse.compare_command(args),
        "experiments": lambda: browse.experiments_command(args),
        "index": lambda: browse.index_command(args),
        "serve": lambda: browse.serve_command(args),
        "reproduce": lambda: browse.reproduce_command(args, argv),
        "summary": lambda: browse.summary_command(args),
        "cancel": lambda: browse.cancel_command(args),
        "cache": lambda: browse.cache_command(args),
    }
    return handle(args, handlers[args.command])


def handle(args: argparse.Namespace, command: Callable[[], int]) -> int:
    """Run ``command`` and map what it raises to one line on stderr and an exit code."""
    if not args.verbose:
        _quiet_libraries()
    try:
        code = command()
        sys.stdout.flush()  # so that a closed pipe shows here, not as Python exits
        return code
    except MitosisError as error:
        if args.verbose:
            raise
        say(f"mitosis-nb: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        say("mitosis-nb: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mitosis-nb list | head`: the reader has all it wanted
        # Python would flush stdout again at exit, and complain that the pipe is closed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except OSError as error:  # a full disk or a lost share mid-trial: say so, no traceback
        if args.verbose:
            raise
        where = f" {error.filename}" if error.filename else ""
        say(
            f"mitosis-nb: cannot access{where}: {error.strerror or error}; check the free "
            "space and permissions of the trials folder (files already written are kept).",
            file=sys.stderr,
        )
        from mitosis.core.record import STORAGE_ERRNOS

        return EXIT_STORAGE if error.errno in STORAGE_ERRNOS else EXIT_USAGE
