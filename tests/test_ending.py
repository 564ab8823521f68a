"""The programs end promptly, but only once exit handlers, output and threads are done."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _end(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True
    )


def test_a_prompt_exit_runs_the_exit_handlers_flushes_the_output_and_keeps_the_code() -> None:
    done = _end(
        """
        import atexit, sys
        from mitosis.cli.ending import exit_promptly
        atexit.register(print, "the handler ran")
        sys.stdout.write("written, not flushed; ")
        exit_promptly(3)
        """
    )

    assert done.returncode == 3
    assert done.stdout == "written, not flushed; the handler ran\n"


def test_a_prompt_exit_waits_for_a_thread_that_is_not_a_daemon() -> None:
    done = _end(
        """
        import threading, time
        from mitosis.cli.ending import exit_promptly
        def last_words():
            time.sleep(0.5)
            print("the thread finished")
        threading.Thread(target=last_words).start()
        exit_promptly(4)
        """
    )

    assert done.returncode == 4
    assert done.stdout == "the thread finished\n"
