"""The ``mitosis-nb`` command line: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mitosis import __version__
from mitosis.errors import MitosisError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"mitosis-nb: {message}; see mitosis-nb {self.prog.split()[-1]} --help.\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mitosis-nb", description="Every experiment a reproducible, browsable trial.")
    parser.add_argument("--version", action="version", version=f"mitosis-nb {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run one trial, or a sweep of trials")
    run.add_argument("steps", nargs="+", metavar="STEP")
    run.add_argument("-p", dest="lookups", action="append", default=[], metavar="[+][STEP.]ARG=VARIANT")
    run.add_argument("-e", dest="literals", action="append", default=[], metavar="[+][STEP.]ARG=LITERAL")
    run.add_argument("--debug", action="store_true", help="run with uncommitted changes; lock nothing")
    run.add_argument("-F", "--trials-folder", type=Path)
    run.add_argument("--template", type=Path)
    run.add_argument("--timeout", type=float, metavar="S")
    run.add_argument("--kernel", metavar="NAME")
    run.add_argument("--note")
    run.add_argument("--config", type=Path, metavar="PYPROJECT")
    run.add_argument("--json", action="store_true")

    for name, helptext in (("list", "list the trials"), ("show", "show one trial")):
        sub = commands.add_parser(name, help=helptext)
        if name == "show":
            sub.add_argument("id")
        else:
            sub.add_argument("--experiment")
            sub.add_argument("--status")
        sub.add_argument("-F", "--trials-folder", type=Path)
        sub.add_argument("--config", type=Path, metavar="PYPROJECT")
        sub.add_argument("--json", action="store_true")

    experiments = commands.add_parser(
        "experiments", help="the steps, their arguments and variant names (the vocabulary)"
    )
    experiments.add_argument("-F", "--trials-folder", type=Path)
    experiments.add_argument("--config", type=Path, metavar="PYPROJECT")
    experiments.add_argument("--json", action="store_true")
    return parser


def _trials_folder(args: argparse.Namespace) -> Path:
    if args.trials_folder:
        return Path(args.trials_folder)
    from mitosis.adapters.config import load_config

    return load_config(args.config).trials_folder


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from mitosis.core.params import parse_option
    from mitosis.pipeline import TrialRequest, prepare, run_plans

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
        command=shlex.join(["mitosis-nb", *argv]),
        config=args.config,
        trials_folder=args.trials_folder,
    )
    trials = run_plans(prepare(request))
    if args.json:
        _print_json([trial.record for trial in trials])
    for trial in trials:
        if not args.json:
            print(f"{trial.status}: {trial.id}  main={trial.main!r}  {trial.html_path}")
        if trial.error and not args.json:
            error = trial.error
            where = f" in step {error['step']!r}" if error.get("step") else ""
            print(f"  {error['kind']}{where}: {error['type']}: {error['message']}", file=sys.stderr)
    statuses = {trial.status for trial in trials}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if statuses - {"succeeded"} else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from mitosis.trials import load_trial

    trial = load_trial(args.id, _trials_folder(args))
    if args.json:
        _print_json(trial.record)
        return EXIT_OK
    from mitosis.adapters.store import dump_yaml

    print(dump_yaml(trial.record), end="")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from mitosis.trials import list_trials

    listing = list_trials(_trials_folder(args))
    for warning in listing.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows = [
        row
        for row in listing.trials
        if (args.experiment is None or row.get("experiment") == args.experiment)
        and (args.status is None or row.get("status") == args.status)
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    print(f"{'ID':<23} {'STATUS':<11} {'EXPERIMENT':<16} {'VARIANT':<40} MAIN")
    for row in rows:
        print(
            f"{row['id']:<23} {row['status']:<11} {str(row.get('experiment')):<16} "
            f"{str(row.get('variant') or ''):<40} {row.get('main')!r}"
        )
    return EXIT_OK


def _experiments(args: argparse.Namespace) -> int:
    from mitosis.adapters.config import load_config
    from mitosis.vocabulary import describe_as_text, describe_investigation

    config = load_config(args.config)
    entries = describe_investigation(config, args.trials_folder)
    if args.json:
        _print_json([entry.as_dict() for entry in entries])
    else:
        print(describe_as_text(entries))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mitosis-nb``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    handlers = {"run": lambda: _run(args, argv), "show": lambda: _show(args), "list": lambda: _list(args)}
    handlers["experiments"] = lambda: _experiments(args)
    try:
        return handlers[args.command]()
    except MitosisError as error:
        if args.verbose:
            raise
        print(f"mitosis-nb: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("mitosis-nb: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
