"""Kernels started ahead of need, and asked about the user's code before a trial runs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from mitosis.adapters.kernels.spawn import SAME_INTERPRETER, SpawnedKernel, spawn_kernel
from mitosis.core.record import STORAGE_ERRNOS
from mitosis.errors import KernelError
from mitosis.event_loops import import_in_turn, in_own_loop

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

    from mitosis.adapters.kernels.launch import TrialKernel


class KernelAhead:
    """A kernel started in the background before it is needed, while the trial is prepared:
    its second of booting overlaps the runner's imports and git checks. Before it runs the
    trial, the runner asks it about the user's code (``evaluate``).

    A kernel of this interpreter starts at once, before jupyter_client is imported (this
    module does not import it): a background thread then imports it and takes the kernel
    over; a named kernelspec is started by that thread.
    """

    def __init__(
        self,
        kernel: str | None,
        root: Path,
        import_roots: Sequence[Path] = (),
        preload: str = "",
    ) -> None:
        """Start the kernel; one of this interpreter runs the code ``preload`` as soon as it
        is up (imports the steps' code, in the kernel that checks a request)."""
        self.kernel, self.root, self.import_roots = kernel, root, tuple(import_roots)
        self._manager: AsyncKernelManager | None = None
        self._failure: str | None = None
        self._disk_refused = False
        self._spawned: SpawnedKernel | None = None
        if kernel in (None, SAME_INTERPRETER):
            try:
                self._spawned = spawn_kernel(root, import_roots, preload)
            except Exception as error:
                self._fail(error)
        self._thread = threading.Thread(
            target=in_own_loop(self._start), name=f"mitosis-kernel-ahead-{id(self)}", daemon=True
        )
        self._thread.start()

    def _start(self) -> None:
        if self._failure is not None:
            return
        try:
            import_in_turn("mitosis.adapters.kernels.launch")
            from mitosis.adapters.kernels import launch

            if self._spawned is not None:
                self._manager = launch.adopt(self._spawned).manager
            else:
                started = launch.start_kernel(self.kernel, self.root, self.import_roots)
                self._manager = started.manager
        except Exception as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        # Said by evaluate, or the trial starts its own kernel.
        self._failure = f"{type(error).__name__}: {error}"
        # tempfile says this when no folder takes its files: a kernel's connection file
        # could not be written, which is the disk's doing, not the kernel's.
        self._disk_refused = "No usable temporary directory" in str(error) or (
            isinstance(error, OSError) and error.errno in STORAGE_ERRNOS
        )

    def evaluate(self, expression: str, timeout: float | None = None) -> str:
        """Evaluate ``expression`` in the kernel, silently, and return the ``str`` it gives.

        Raises ``KernelError`` if the kernel did not start, died, or took longer than
        ``timeout`` seconds; an exception raised by the expression becomes a ``KernelError``
        with its message.
        """
        self._thread.join()
        if self._manager is None:
            fix = (
                "check that the disk is not full and that a temporary folder is writable"
                if self._disk_refused
                else "check --kernel (kernel=)"
            )
            raise KernelError(f"the kernel did not start ({self._failure}); {fix}.")
        import_in_turn("mitosis.adapters.kernels.asking")
        from mitosis.adapters.kernels import asking

        return asking.evaluate(self._manager, expression, timeout)

    def ask(self, expression: str, timeout: float | None = None) -> Future[str]:
        """``evaluate`` in a thread of its own: the runner goes on with its own checks while
        the kernel boots and answers. The future raises what ``evaluate`` would."""
        answer: Future[str] = Future()

        def evaluate() -> None:
            try:
                answer.set_result(self.evaluate(expression, timeout))
            except BaseException as error:  # the asker gets it from the future
                answer.set_exception(error)

        name = f"mitosis-kernel-question-{id(answer)}"  # jupyter_core: a loop per name
        threading.Thread(target=in_own_loop(evaluate), name=name, daemon=True).start()
        return answer

    def answers(self, stop: threading.Event) -> bool:
        """Wait until the kernel has booted (it answers a ``kernel_info`` request); False if
        it did not start or died, or once ``stop`` is set."""
        self._thread.join()
        manager = self._manager
        if manager is None:
            return False
        import_in_turn("mitosis.adapters.kernels.asking")
        from mitosis.adapters.kernels import asking

        return asking.answers(manager, stop)

    def claim(
        self, kernel: str | None, root: Path, import_roots: Sequence[Path] = ()
    ) -> TrialKernel | None:
        """The started kernel if it is the one wanted (same kernel, folder and import roots),
        once; else None."""
        self._thread.join()
        manager, self._manager = self._manager, None
        wanted = (kernel, root, tuple(import_roots))
        if manager is None:
            return None
        from mitosis.adapters.kernels import launch

        if wanted != (self.kernel, self.root, self.import_roots):
            launch.stop_kernel(manager)
            return None
        return launch.TrialKernel(manager)

    def close(self) -> None:
        """Stop the kernel if nothing claimed it (the request was refused, or interrupted)."""
        self._thread.join()
        manager, self._manager = self._manager, None
        if manager is not None:
            from mitosis.adapters.kernels import launch

            launch.stop_kernel(manager)
