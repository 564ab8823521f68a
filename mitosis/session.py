"""A session: one request's run, from the kernels started first of all to their cleanup.

The kernels a request needs boot before anything else, while this process imports its
libraries and checks git; whatever happens next (a refusal, a failed trial, Ctrl-C), the
session stops the ones no trial took. The command line, ``execute_trial`` and ``reproduce``
all run through it. The heavy modules are imported only once the kernels boot.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mitosis.adapters.config import InvestigationConfig, load_config
from mitosis.adapters.kernels.ahead import KernelAhead
from mitosis.core.params import bind_steps, expand_grid
from mitosis.core.request import TrialRequest
from mitosis.core.steps import early_import_code
from mitosis.errors import MitosisError, ParameterError
from mitosis.event_loops import import_in_turn, importing

if TYPE_CHECKING:
    from mitosis.planning import TrialPlan
    from mitosis.sweeps import SweepObserver, SweepResult
    from mitosis.trials import Trial


@dataclass(frozen=True)
class RunOptions:
    """Where and how the trials of a request run."""

    workers: int = 1
    scheduler: str | None = None  # a Dask scheduler's address, or "slurm"
    skip_existing: bool = False
    wait: bool = False  # on Slurm: wait for the trials to end (else return once submitted)
    slurm: tuple[str, ...] = ()  # --slurm KEY=VALUE overrides of [tool.mitosis.slurm]


@dataclass(frozen=True)
class RunResult:
    """What became of a request: its trials, and for a sweep every trial's outcome."""

    trials: list[Trial]
    sweep: SweepResult | None = None

    @property
    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM stopped the run."""
        if self.sweep is not None:
            return self.sweep.stopped
        return any(trial.status == "interrupted" for trial in self.trials)

    @property
    def refused_by_disk(self) -> bool:
        """A trial ended on a write the disk refused (full, over quota, failing)."""
        outcomes = self.sweep.outcomes if self.sweep is not None else []
        return any(outcome.storage for outcome in outcomes) or any(
            (trial.error or {}).get("kind") == "storage" for trial in self.trials
        )

    @property
    def succeeded(self) -> bool:
        """Every trial succeeded (or, in a sweep, was skipped as done already, or was queued
        on Slurm: submitting it is all that was asked)."""
        if self.sweep is not None:
            done = ("succeeded", "skipped", "queued")
            return all(o.status in done for o in self.sweep.outcomes)
        return all(trial.status == "succeeded" for trial in self.trials)


class Session:
    """The kernels started ahead for one request, closed on every path: a context manager."""

    def __init__(self, request: TrialRequest, options: RunOptions | None = None) -> None:
        """Check the options, then start the kernels the first trials will run in.

        Raises ``ParameterError`` for options that cannot work together and
        ``ConfigError`` if the investigation's configuration cannot be read.
        """
        self.request = request
        self.options = options or RunOptions()
        _check_options(self.options)
        self._trials = trials = _trials(request)
        self._kernels = _start_kernels(request, self.options, trials)
        self._planned = threading.Event()  # set once prepare has ended, however it ended
        self._lock = threading.Lock()  # self._kernels, against the thread booting more
        self._booting: threading.Thread | None = None
        self._most = min(trials, 2 * self.options.workers)
        if _waits_for_a_kernel(self.options, trials, len(self._kernels)):
            # The first kernel boots, then imports the steps' code to check the request, and
            # no trial can start until it has: meanwhile more kernels boot on the idle core,
            # for the trials that would otherwise wait for one.
            self._booting = threading.Thread(
                target=self._keep_booting, name="mitosis-boot-while-planning", daemon=True
            )
            self._booting.start()

    def _keep_booting(self) -> None:
        # One at a time, after those started with the first: each kernel takes the core the
        # planning kernel leaves idle, rather than slowing it, as every trial waits for it.
        if len(self._kernels) > 1 and not self._kernels[-1].answers(self._planned):
            return
        while self._start_another():
            if not self._kernels[-1].answers(self._planned):
                return

    def _start_another(self) -> bool:
        """Start one more kernel, unless planning has ended or enough are started."""
        with self._lock:
            if self._planned.is_set() or len(self._kernels) >= self._most:
                return False
            first = self._kernels[0]
            self._kernels.append(KernelAhead(first.kernel, first.root, first.import_roots))
            return True

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every kernel no trial took."""
        self._planned.set()
        if self._booting is not None:
            self._booting.join()
        with self._lock:
            kernels = list(self._kernels)
        for kernel in kernels:
            kernel.close()

    def prepare(self) -> list[TrialPlan]:
        """The request, checked against the steps' code in the first kernel: one plan per
        trial. Nothing is written."""
        import_in_turn("mitosis.planning")
        from mitosis.planning import prepare

        _import_in_background()
        # A sweep's pages are written in idle time, as its last trials run, and the first of
        # them builds their exporter: built now, it would only slow the kernels booting.
        one_trial = not _is_sweep(self._trials, self.options)
        try:
            plans = prepare(self.request, self._kernels[0], warm_up_page=one_trial)
        finally:
            with self._lock:  # no kernel is started after this: the trials take these
                self._planned.set()
        if self.options.scheduler:
            self._kernels[0].close()  # the cluster's workers run the trials in their kernels
        return plans

    def is_sweep(self, plans: Sequence[TrialPlan]) -> bool:
        """Whether ``plans`` run as a sweep (a progress bar and a summary) or as one trial."""
        return _is_sweep(len(plans), self.options)

    def run(self, plans: Sequence[TrialPlan], observer: SweepObserver | None = None) -> RunResult:
        """Run ``plans``: one trial here, or a sweep here or on the cluster."""
        if self.is_sweep(plans):
            from mitosis.sweeps import SweepOptions, run_sweep

            options = SweepOptions(**vars(self.options))
            result = run_sweep(plans, options, observer, self._kernels)
            return RunResult([o.trial for o in result.outcomes if o.trial is not None], result)
        from mitosis.pipeline import run_plans

        return RunResult(run_plans(plans, self._kernels[0]))


def run_request(
    request: TrialRequest, options: RunOptions | None = None, observer: SweepObserver | None = None
) -> RunResult:
    """Everything ``mitosis-nb run`` does after parsing: start, check, run, clean up."""
    with Session(request, options) as session:
        return session.run(session.prepare(), observer)


def _import_in_background() -> None:
    """Import what running the trials needs (papermill, the executors, a trial's pipeline:
    about 0.2 s) while this process waits for the first kernel to answer, rather than after,
    when every trial waits for it."""
    threading.Thread(target=_import_quietly, name="mitosis-import-ahead", daemon=True).start()


def _import_quietly() -> None:
    with contextlib.suppress(Exception), importing:  # a head start: the trials import it again
        import mitosis.executors.threads
        import mitosis.sweeps  # noqa: F401
        from mitosis.adapters import execute

        execute.import_papermill()


def _is_sweep(trials: int, options: RunOptions) -> bool:
    return trials > 1 or options.workers > 1 or bool(options.scheduler) or options.skip_existing


def _check_options(options: RunOptions) -> None:
    if options.workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {options.workers}.")
    if options.scheduler and options.workers != 1:
        raise ParameterError(
            "give --workers or --scheduler, not both: a cluster's workers set its parallelism."
        )
    if (options.wait or options.slurm) and options.scheduler != "slurm":
        given = "--wait" if options.wait else "--slurm"
        raise ParameterError(f"{given} goes with --scheduler slurm only.")


def _start_kernels(request: TrialRequest, options: RunOptions, trials: int) -> list[KernelAhead]:
    """One kernel per trial that will start at once, so a sweep's workers each find one
    booted; the first imports the steps' code to check the request. On a cluster the trials
    run in the workers' kernels, and the one started here only checks."""
    config = load_config(request.config, request.cwd, not request.extra_steps)
    roots = request.import_roots
    count = 1 if options.scheduler else max(1, min(options.workers, trials))
    first = KernelAhead(request.kernel, config.root, roots, _early_imports(request, config))
    return [first, *(KernelAhead(request.kernel, config.root, roots) for _ in range(count - 1))]


def _early_imports(request: TrialRequest, config: InvestigationConfig) -> str:
    """What the first kernel runs as soon as it is up: it imports the modules of the steps'
    lookups and callables, in the order the check will, to answer it sooner (nothing if the
    request names an unknown step: the check says so)."""
    try:
        config = config.with_steps(request.extra_steps)
        steps = [config.step(name) for name in request.steps]
    except MitosisError:
        return ""
    paths = [path for step in steps for path in (step.lookup, step.run) if path]
    return early_import_code(list(dict.fromkeys(path.partition(":")[0] for path in paths)))


def _trials(request: TrialRequest) -> int:
    """How many trials the request asks for (1 if it cannot be read: preparing it says why)."""
    try:
        return len(expand_grid(bind_steps(request.options, request.steps)))
    except MitosisError:
        return 1


def _waits_for_a_kernel(options: RunOptions, trials: int, started: int) -> bool:
    """Whether a trial will wait for a kernel not started yet. On a cluster none does (its
    workers run the trials), and with --skip-existing how many trials run is known only
    once the request is checked."""
    if options.scheduler or options.skip_existing:
        return False
    return trials > started
