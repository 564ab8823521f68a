"""The command line's grammar: every command, every option, and its one-line help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mitosis import __version__
from mitosis.cli.output import EXIT_USAGE

STATUSES = ("queued", "running", "succeeded", "failed", "interrupted", "unreadable", "legacy")

_FOLDER_HELP = "the trials folder (default: trials-folder of [tool.mitosis])"
_CONFIG_HELP = "the investigation's pyproject.toml (default: the git root's)"
_WHERE_HELP = (
    'only trials passing this query: == != < <= > >= on any column, in [..], ~ "regex", '
    "is missing, and/or/not, (..); e.g. --where 'params.sine.noise > 0.1 and "
    "metrics.rmse < 1' (see mitosis-nb list --csv for the columns)"
)
_ID_HELP = "a trial id, or a unique prefix of its last part (e.g. 3f9c2a)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"mitosis-nb: {message}; see {self.prog} --help.\n")


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0:  # also NaN
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return seconds


def _address(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty: give the Dask scheduler's, e.g. tcp://HOST:8786, or slurm"
        )
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mitosis-nb", description="Every experiment a reproducible, browsable trial."
    )
    parser.add_argument("--version", action="version", version=f"mitosis-nb {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run one trial, or a sweep of trials")
    run.add_argument("steps", nargs="+", metavar="STEP", help="registered steps, run in order")
    add_run_options(run)

    _add_browse_parsers(commands)

    experiments = commands.add_parser(
        "experiments", help="the steps, their arguments and variant names (the vocabulary)"
    )
    experiments.add_argument(
        "-F", "--trials-folder", type=Path, metavar="DIR", help="whose registry names the locks"
    )
    experiments.add_argument("--config", type=Path, metavar="PYPROJECT", help=_CONFIG_HELP)
    experiments.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    for command in commands.choices.values():
        # Also after the command's name; SUPPRESS keeps one given before it.
        command.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )
    return parser


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The options of a run, for ``mitosis-nb run`` and the original's ``mitosis``."""
    run.add_argument(
        "-p",
        "--param",
        dest="lookups",
        action="append",
        default=[],
        metavar="[+][STEP.]ARG=VARIANT",
        help="a variant from the lookup dictionary; commas sweep, + leaves it untracked "
        "(e.g. -p sine.frequency=fast,slow -p +gpu=first)",
    )
    run.add_argument(
        "-e",
        "--eval-param",
        dest="literals",
        action="append",
        default=[],
        metavar="[+][STEP.]ARG=LITERAL",
        help="a Python literal, never evaluated as code; repeat to sweep "
        "(e.g. -e amplitude=4 -e \"opts={'tol': 1e-3}\")",
    )
    run.add_argument(
        "-d", "--debug", action="store_true", help="run with uncommitted changes; lock nothing"
    )
    run.add_argument(
        "-F", "--trials-folder", type=Path, metavar="DIR", help="the trials folder to write to"
    )
    run.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="run every step, taking no result from earlier trials (results still feed the cache)",
    )
    run.add_argument(
        "--template", type=Path, metavar="NB", help="the notebook template to render the trial from"
    )
    run.add_argument(
        "--timeout", type=_seconds, metavar="S", help="stop a trial that runs longer than S seconds"
    )
    run.add_argument(
        "--kernel", metavar="NAME", help="run in this Jupyter kernel (default: this Python)"
    )
    run.add_argument("--note", metavar="TEXT", help="why this trial was run, kept in its record")
    run.add_argument(
        "--config", type=Path, metavar="PYPROJECT", help="the investigation's pyproject.toml"
    )
    run.add_argument(
        "--json", action="store_true", help="print the trials' records as JSON on stdout"
    )
    _add_where_options(run)


def _add_where_options(run: argparse.ArgumentParser) -> None:
    """Where a run's trials go: this machine's workers, a Dask cluster, or Slurm."""
    run.add_argument(
        "--workers", type=int, default=1, metavar="N", help="run N trials at once on this machine"
    )
    run.add_argument(
        "--scheduler",
        type=_address,
        metavar="ADDR",
        help="run the trials on a Dask cluster (tcp://HOST:8786), or submit them to Slurm "
        "as one job array and return (slurm)",
    )
    run.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Slurm option over [tool.mitosis.slurm], repeatable (e.g. --slurm partition=gpu "
        "--slurm time=60)",
    )
    run.add_argument(
        "--wait",
        action="store_true",
        help="with --scheduler slurm: wait for the trials to end, then summarize",
    )
    run.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip trials whose variant already succeeded, or is queued or running, at this commit",
    )


def _add_browse_parsers(commands: Any) -> None:
    """``list``, ``show``, ``compare``, ``index`` and ``serve``: looking at trials."""

    def browse(name: str, helptext: str, json_output: bool = True) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=helptext)
        sub.add_argument("-F", "--trials-folder", type=Path, metavar="DIR", help=_FOLDER_HELP)
        sub.add_argument("--config", type=Path, metavar="PYPROJECT", help=_CONFIG_HELP)
        if json_output:
            sub.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
        return sub

    listing = browse("list", "list the trials, oldest first")
    listing.add_argument("--experiment", metavar="NAME", help="only this experiment's trials")
    listing.add_argument("--status", metavar="S", choices=STATUSES, help=", ".join(STATUSES))
    listing.add_argument("--where", metavar="EXPR", help=_WHERE_HELP)
    listing.add_argument(
        "--csv", action="store_true", help="one CSV row per trial, every column, on stdout"
    )
    _add_summary_parser(browse("summary", "aggregate an experiment's metrics over seeds", False))
    browse("show", "show one trial").add_argument("id", metavar="ID", help=_ID_HELP)
    compare = browse("compare", "show only what differs between two trials")
    compare.add_argument("a", metavar="ID", help=_ID_HELP)
    compare.add_argument("b", metavar="ID", help="the trial to compare it with")
    reproduce = browse("reproduce", "re-run a trial at its recorded commit; check its results")
    reproduce.add_argument("id", metavar="ID", help=_ID_HELP)
    reproduce.add_argument(
        "--rtol", type=float, default=1e-9, metavar="R", help="relative tolerance (1e-9)"
    )
    reproduce.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="FIELD",
        help="leave a result out of the check, repeatable; e.g. --ignore metrics.runtime "
        "--ignore gen.main ('metrics' covers every metric)",
    )
    cancel = browse("cancel", "cancel queued or running trials of a Slurm job", json_output=False)
    cancel.add_argument("ids", nargs="+", metavar="ID", help=_ID_HELP)
    browse("index", "rebuild index.sqlite and index.html from the records", json_output=False)
    serve = browse("serve", "serve the trials folder over HTTP", json_output=False)
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    serve.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS", help="default 127.0.0.1")
    serve.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="close a connection that sends nothing for S seconds (default 30)",
    )


def _add_summary_parser(summary: argparse.ArgumentParser) -> None:
    summary.add_argument("experiment", metavar="EXPERIMENT", help="e.g. sine, or gen+fit")
    summary.add_argument(
        "--over",
        action="append",
        default=[],
        metavar="ARG",
        help="a parameter to average over, repeatable (e.g. --over seed --over fit.split)",
    )
    summary.add_argument("--where", metavar="EXPR", help=_WHERE_HELP)
    output = summary.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    output.add_argument("--csv", action="store_true", help="CSV on stdout")
