"""The ``mitosis-nb`` command line: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mitosis import __version__
from mitosis.core.terminal import inert
from mitosis.errors import MitosisError, TrialNotFoundError

if TYPE_CHECKING:
    from mitosis.session import RunResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STORAGE = 74  # sysexits.h's EX_IOERR: the disk refused a write (full, over quota, failing)
EXIT_CLOSED_PIPE = 141  # as a shell reports a process that SIGPIPE ended
STATUSES = ("running", "succeeded", "failed", "interrupted", "unreadable", "legacy")


_FOLDER_HELP = "the trials folder (default: trials-folder of [tool.mitosis])"
_CONFIG_HELP = "the investigation's pyproject.toml (default: the git root's)"
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
            "is empty: give the Dask scheduler's, e.g. tcp://HOST:8786"
        )
    return text.strip()


def _build_parser() -> argparse.ArgumentParser:
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
    run.add_argument(
        "--workers", type=int, default=1, metavar="N", help="run N trials at once on this machine"
    )
    run.add_argument(
        "--scheduler",
        type=_address,
        metavar="ADDR",
        help="run the trials on a Dask cluster (tcp://HOST:8786)",
    )
    run.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip trials whose variant already succeeded at this commit",
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


def _trials_folder(args: argparse.Namespace) -> Path:
    if args.trials_folder:
        folder = Path(args.trials_folder)
        if not folder.exists():  # a typo would otherwise read as "no trials"
            from mitosis.errors import TrialsFolderError

            raise TrialsFolderError(f"no trials folder at {folder}; check -F.")
        return folder
    from mitosis.adapters.config import load_config

    return load_config(args.config).trials_folder


def _say(text: object, file: TextIO | None = None, flush: bool = False) -> None:
    """Print for a person: what records and experiments wrote is shown, never obeyed."""
    print(inert(str(text)), file=file or sys.stdout, flush=flush)


def _print_json(data: Any) -> None:
    from mitosis.core.record import plain_json

    print(json.dumps(plain_json(data), indent=2, default=str, allow_nan=False))


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``run``: parse the request, run it (one trial or a sweep), print how it went."""
    from mitosis.core.params import parse_option
    from mitosis.core.request import TrialRequest
    from mitosis.session import RunOptions, Session

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
    )
    # First of all, before the heavy imports: the kernels boot while they run.
    with Session(request, RunOptions(args.workers, args.scheduler, args.skip_existing)) as session:
        plans = session.prepare()
        if not session.is_sweep(plans):
            return _print_trials(args, session.run(plans))
        if args.scheduler:
            _quiet_dask()
        from mitosis.progress import SweepPrinter

        printer = SweepPrinter(bar=sys.stderr.isatty(), quiet=args.json)
        try:
            result = session.run(plans, printer)
        finally:
            printer.close()
        return _print_sweep(args, result)


def _print_trials(args: argparse.Namespace, result: RunResult) -> int:
    from mitosis.progress import trial_lines

    if args.json:
        _print_json([trial.record for trial in result.trials])
    else:
        for trial in result.trials:
            for text, stream in trial_lines(trial):
                _say(text, file=stream)
    return _exit_code(result)


def _print_sweep(args: argparse.Namespace, result: RunResult) -> int:
    from mitosis.progress import summary_table

    assert result.sweep is not None
    if args.json:
        _print_json([trial.record for trial in result.trials])
        if len(result.trials) < len(result.sweep.outcomes):
            # Skipped and never-started trials have no record in the JSON: say so aside.
            _say(summary_table(result.sweep), file=sys.stderr)
    else:
        _say(summary_table(result.sweep))
    return _exit_code(result)


def _exit_code(result: RunResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.refused_by_disk:
        return EXIT_STORAGE
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _show(args: argparse.Namespace) -> int:
    from mitosis.catalog import runner_flag
    from mitosis.core.summary import summarize_record
    from mitosis.trials import load_trial
    from mitosis.views import page_text, trial_text

    folder = _trials_folder(args)
    try:
        trial = load_trial(args.id, folder)
    except TrialNotFoundError:
        return _show_legacy(args, folder)
    if args.json:
        _print_json(trial.record)
        return EXIT_OK
    running = trial.status == "running"
    flag = runner_flag(summarize_record(trial.id, trial.record)) if running else None
    _say(trial_text(trial.record, page_text(trial.html_path), flag))
    return EXIT_OK


def _show_legacy(args: argparse.Namespace, folder: Path) -> int:
    """``show`` of a trial the original mitosis wrote; not one either: the refusal stands."""
    import dataclasses

    from mitosis.trials import load_legacy_trial
    from mitosis.views import legacy_trial_text

    legacy = dataclasses.asdict(load_legacy_trial(args.id, folder))
    legacy = {"id": legacy["key"], "status": "legacy", **legacy}
    if args.json:
        _print_json(legacy)
    else:
        _say(legacy_trial_text(legacy, str(folder)))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    import shutil

    from mitosis.trials import list_trials
    from mitosis.views import trial_table

    listing = list_trials(_trials_folder(args))
    for warning in listing.warnings:
        _say(f"mitosis-nb: warning: {warning}", file=sys.stderr)
    rows = [
        row
        for row in listing.trials
        if (args.experiment is None or row.get("experiment") == args.experiment)
        and (args.status is None or row.get("status") == args.status)
    ]
    if args.json:
        from mitosis.core.record import plain_json

        # One trial per line: grep-able, and json's fast C encoder (indent= is pure Python).
        lines = ",\n".join(json.dumps(plain_json(row), default=str) for row in rows)
        print(f"[\n{lines}\n]" if rows else "[]")
        return EXIT_OK
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    _say(trial_table(rows, width) if rows else "no trials.")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from mitosis.core.compare import compare_records
    from mitosis.trials import load_trial
    from mitosis.views import comparison_text

    folder = _trials_folder(args)
    a, b = load_trial(args.a, folder), load_trial(args.b, folder)
    comparison = compare_records(a.record, b.record, a.patch, b.patch)
    if args.json:
        _print_json(comparison.as_dict())
    else:
        _say(comparison_text(comparison))
    return EXIT_OK


def _reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from mitosis.reproduce import reproduce_trial
    from mitosis.views import reproduction_text

    reproduction = reproduce_trial(
        args.id,
        rtol=args.rtol,
        trials_folder=args.trials_folder,
        config=args.config,
        command=shlex.join(["mitosis-nb", *argv]),
        progress=not args.json and sys.stderr.isatty(),
        ignore=args.ignore,
    )
    report = reproduction.as_dict()
    if args.json:
        _print_json(report)
    else:
        _say(reproduction_text(report))
    if reproduction.trial.status == "interrupted":
        return EXIT_INTERRUPTED
    if (reproduction.trial.error or {}).get("kind") == "storage":
        message = (reproduction.trial.error or {}).get("message")
        _say(f"mitosis-nb: the re-run {message}", file=sys.stderr)
        return EXIT_STORAGE
    return EXIT_OK if reproduction.reproduced else EXIT_FAILED


def _index(args: argparse.Namespace) -> int:
    from mitosis.catalog import rebuild

    folder = _trials_folder(args)
    rebuilt = rebuild(folder)
    for warning in rebuilt.warnings():
        _say(f"mitosis-nb: warning: {warning}", file=sys.stderr)
    count = len(rebuilt.summaries)
    _say(f"indexed {count} trial{'' if count == 1 else 's'}: {folder / 'index.html'}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from mitosis.adapters.server import ALL_INTERFACES, serve
    from mitosis.catalog import refresh
    from mitosis.errors import TrialsFolderError

    folder = _trials_folder(args)
    if not folder.is_dir():
        raise TrialsFolderError(f"no trials folder at {folder}; run a trial first or pass -F DIR.")
    refresh(folder)
    if args.bind in ALL_INTERFACES:
        _say(
            f"mitosis-nb: warning: serving on all interfaces ({args.bind or '*'}): anyone who can "
            "reach this machine can read these trials; prefer an SSH tunnel to 127.0.0.1.",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        _say(f"serving {folder} at {url}  (Ctrl-C stops)", flush=True)

    try:
        serve(
            folder,
            args.port,
            args.bind,
            announce,
            before_index=lambda: refresh(folder),
            idle_timeout=args.idle_timeout,
        )
    except OSError as error:
        raise TrialsFolderError(
            f"cannot listen on {args.bind}:{args.port}: {error.strerror}; try another --port."
        ) from None
    return EXIT_OK


def _experiments(args: argparse.Namespace) -> int:
    from mitosis.adapters.config import load_config
    from mitosis.vocabulary import describe_as_text, describe_investigation

    config = load_config(args.config)
    entries = describe_investigation(config, args.trials_folder)
    if args.json:
        _print_json([entry.as_dict() for entry in entries])
    else:
        _say(describe_as_text(entries))
    return EXIT_OK


def _show_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    _say(f"mitosis-nb: warning: {message}", file=sys.stderr)


def _quiet_libraries() -> None:
    """One line per warning, and no library log lines that repeat what the record says."""
    warnings.showwarning = _show_warning
    # nbclient logs "Kernel died while waiting for execute reply" through papermill's
    # logger; the trial's error line already says so.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)


def _quiet_dask() -> None:
    """Dask's client logs tracebacks when it loses the scheduler; the summary says what
    became of each trial. Its loggers get their levels when it is imported: hence now."""
    with contextlib.suppress(ImportError):  # said, in one sentence, when the sweep connects
        import distributed  # noqa: F401
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mitosis-nb``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    handlers = {
        "run": lambda: run_command(args, argv),
        "show": lambda: _show(args),
        "list": lambda: _list(args),
        "compare": lambda: _compare(args),
        "experiments": lambda: _experiments(args),
        "index": lambda: _index(args),
        "serve": lambda: _serve(args),
        "reproduce": lambda: _reproduce(args, argv),
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
        _say(f"mitosis-nb: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        _say("mitosis-nb: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mitosis-nb list | head`: the reader has all it wanted
        # Python would flush stdout again at exit, and complain that the pipe is closed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except OSError as error:  # a full disk or a lost share mid-trial: say so, no traceback
        if args.verbose:
            raise
        where = f" {error.filename}" if error.filename else ""
        _say(
            f"mitosis-nb: cannot access{where}: {error.strerror or error}; check the free "
            "space and permissions of the trials folder (files already written are kept).",
            file=sys.stderr,
        )
        from mitosis.core.record import STORAGE_ERRNOS

        return EXIT_STORAGE if error.errno in STORAGE_ERRNOS else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
