"""The library: execute_trial, load_trial, load_trial_data and Trial, from scripts and notebooks."""

from __future__ import annotations

import json
import math
import os
import pydoc
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import (
    add_step,
    git,
    make_investigation,
    start_in,
    trial_dirs,
    wait_for_kernels,
    working_in,
)
from nbclient import NotebookClient

import mitosis
from mitosis import MitosisError, execute_trial, load_trial, load_trial_data

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "investigation"


def test_execute_trial_from_a_script_returns_the_trial(investigation: Path) -> None:
    trial = execute_trial(
        "toy", params={"frequency": "fast", "solver": "tight"}, literals={"amplitude": 3}
    )
    assert trial.status == "succeeded"
    assert trial.main == 30.0 and trial.metrics["tol"] == 1e-8
    assert trial.html_path.is_file() and trial.html_path.parent.parent == investigation / "trials"
    assert trial.record["variant"] == "toy.amplitude=3,toy.frequency=fast,toy.solver=tight"
    assert trial.record["command"] == (
        "execute_trial('toy', params={'frequency': 'fast', 'solver': 'tight'}, "
        "literals={'amplitude': 3})"
    )
    (result,) = trial.results
    assert result["main"] == 30.0
    again = load_trial(trial.id.rsplit("-", 1)[1])
    assert again.id == trial.id and again.main == 30.0
    assert load_trial_data(trial.id)[0]["metrics"]["double"] == 60.0
    card = trial._repr_html_()
    assert trial.id in card and "succeeded" in card and "30.0" in card


def test_execute_trial_failures_are_results_and_refusals_are_errors(investigation: Path) -> None:
    failed = execute_trial("toy", params={"mode": "boom"})
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "ValueError"
    card = failed._repr_html_()
    assert "ValueError: the experiment exploded on purpose" in card and "<table>" not in card
    with pytest.raises(MitosisError, match="unknown variant 'medium'"):
        execute_trial("toy", params={"frequency": "medium"})
    with pytest.raises(MitosisError, match="not a Python literal"):
        execute_trial("toy", literals={"amplitude": object()})
    with pytest.raises(MitosisError, match="more than 0 seconds, not -1"):
        execute_trial("toy", timeout=-1)
    assert len(trial_dirs(investigation / "trials")) == 1


def test_trial_after_trial_in_one_process_leaves_no_sockets_or_threads_behind(
    investigation: Path,
) -> None:
    # A notebook that loops over execute_trial (or a long sweep) must not run out of file
    # descriptors: each trial's kernel client once left a dozen sockets and a thread.
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    execute_trial("toy")
    files, threads = open_files(), threading.active_count()
    for _ in range(3):
        assert execute_trial("toy").status == "succeeded"
    assert open_files() <= files + 1 and threading.active_count() <= threads


LOOP_OF_TRIALS = """
from mitosis import execute_trial
done = []
try:
    for _ in range(3):
        done.append(execute_trial("toy", params={"mode": "sleep"}).status)
except KeyboardInterrupt as stop:
    print("stopped:", stop)
print("finished:", done)
"""


def test_ctrl_c_in_a_loop_of_trials_records_the_trial_and_stops_the_loop(
    investigation: Path,
) -> None:
    loop = start_in(investigation, sys.executable, "-c", LOOP_OF_TRIALS)
    wait_for_kernels(investigation, with_record=True)
    time.sleep(2)  # into the step's sleep
    loop.send_signal(signal.SIGINT)
    stdout, stderr = loop.communicate(timeout=60)
    assert loop.returncode == 0, stderr
    assert "Kernel died" not in stderr  # it was stopped, and the record says so
    (folder,) = trial_dirs(investigation / "trials")
    assert f"stopped: trial {folder.name} was interrupted" in stdout
    assert "finished: []" in stdout
    assert yaml.safe_load((folder / "trial.yaml").read_text())["status"] == "interrupted"


def test_a_trial_card_escapes_what_the_user_typed(investigation: Path) -> None:
    trial = execute_trial("toy", note="<script>alert(1)</script>", debug=False)
    record = replace(trial.trial_record, variant="<b>bold</b>")
    card = type(trial)(record, trial.folder)._repr_html_()
    assert "<b>bold</b>" not in card and "&lt;b&gt;bold&lt;/b&gt;" in card


def test_execute_trial_from_inside_a_running_notebook(investigation: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from mitosis import execute_trial\n"
                "trial = execute_trial(\n"
                "    'toy', params={'frequency': 'slow'}, literals={'amplitude': 7}\n"
                ")\n"
                "print('STATUS', trial.status, trial.main)"
            ),
            nbformat.v4.new_code_cell("trial"),
        ]
    )
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(investigation)}},
    )
    client.execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    assert "STATUS succeeded 7.0" in printed
    shown = notebook.cells[1].outputs[0]["data"]
    assert "text/html" in shown and "succeeded" in shown["text/html"]
    (folder,) = trial_dirs(investigation / "trials")
    assert (folder / "trial.html").is_file()


def test_the_example_investigation_publishes_a_page_with_its_plot(tmp_path: Path) -> None:
    root = tmp_path / "investigation"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("trials", "__pycache__"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "example")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mitosis.cli",
            "run",
            "sine",
            "-p",
            "frequency=fast",
            "-e",
            "amplitude=2",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (folder,) = trial_dirs(root / "trials")
    page = (folder / "trial.html").read_text()
    # The plot: a file beside the page, not a second base64 copy of the notebook's.
    assert "data:image/png;base64" not in page
    (figure,) = [p.name for p in folder.iterdir() if p.name.startswith("figure-")]
    assert f'src="{figure}"' in page
    assert '"image/png"' in (folder / "trial.ipynb").read_text()  # the notebook keeps its own
    assert "sine.frequency" in page and "fast" in page and "rmse" in page
    assert mitosis.__version__ in (folder / "trial.yaml").read_text()


OWN_CLASS = """
class Fit:
    def __init__(self, slope):
        self.slope = slope


def run(slope=1.0):
    return {"main": slope, "data": Fit(slope)}
"""


def test_results_of_the_steps_own_classes_load_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_investigation(
        tmp_path / "own", OWN_CLASS, '[tool.mitosis.steps]\nfit = ["toy_experiments:run"]\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "run", "fit", "-e", "slope=2.5"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (folder,) = trial_dirs(root / "trials")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # A notebook in another folder, which never imported the investigation's code.
    with working_in(elsewhere, monkeypatch, "toy_experiments"):
        assert "toy_experiments" not in sys.modules
        (result,) = load_trial_data(folder.name, root / "trials")

        assert type(result["data"]).__name__ == "Fit" and result["data"].slope == 2.5
        assert sys.path[-1] == str(root)  # last: it shadows nothing imported already


def test_the_package_exports_its_warning_class() -> None:
    import mitosis
    from mitosis import MitosisWarning

    assert "MitosisWarning" in mitosis.__all__ and issubclass(MitosisWarning, Warning)
    # help(mitosis) and tab completion in a notebook show the (lazily imported) API.
    assert set(mitosis.__all__) <= set(dir(mitosis))
    assert "execute_trial(*steps" in pydoc.render_doc(mitosis)


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: execute_trial(["toy"]), "steps are named by strings"),
        (lambda: execute_trial("toy", params="frequency=fast"), "params is a dict"),
        (lambda: execute_trial("toy", params={"frequency": 10}), "literals={'frequency': 10}"),
        (
            lambda: execute_trial("toy", params={"frequency": "fast", "toy.frequency": "slow"}),
            "toy.frequency is given more than one value",
        ),
        (
            lambda: execute_trial("toy", literals={"+amplitude": 2, "amplitude": 3}),
            "toy.amplitude is given more than one value",
        ),
        (lambda: load_trial(None), "a trial is named by its id as a string"),  # type: ignore[arg-type]
    ],
)
def test_api_arguments_of_the_wrong_kind_are_refused_in_one_sentence(
    investigation: Path, call: Callable[[], object], says: str
) -> None:
    with pytest.raises(MitosisError, match=re.escape(says)):
        call()
    assert not (investigation / "trials").exists() or not trial_dirs(investigation / "trials")


def test_load_trial_finds_the_investigation_by_its_config_from_anywhere(
    investigation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = execute_trial("toy", literals={"amplitude": 2})
    elsewhere = tmp_path / "notebooks-outside-the-repository"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = investigation / "pyproject.toml"
    assert load_trial(trial.id, config=config).main == trial.main
    assert load_trial_data(trial.id, config=config)[0]["main"] == trial.main
    with pytest.raises(MitosisError, match=r"config= in Python"):
        load_trial(trial.id)


def test_nan_and_infinity_are_numbers_in_the_record_and_strict_json_outside(
    investigation: Path,
) -> None:
    add_step(
        investigation,
        "diverging",
        "diverging",
        "lookup = {}\n\n\ndef run():\n"
        "    return {'main': float('nan'), 'metrics': {'loss': float('inf'), 'low': -1e999}}\n",
    )
    trial = execute_trial("diverging")
    assert trial.status == "succeeded"
    assert math.isnan(trial.main) and trial.metrics == {"loss": math.inf, "low": -math.inf}
    assert trial.metrics["loss"] > 1e300  # a number, not the string 'inf'
    again = load_trial(trial.id)
    assert math.isnan(again.main) and again.metrics["low"] == -math.inf

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    for command in (["list", "--json"], ["show", trial.id, "--json"]):
        shown = subprocess.run(
            [sys.executable, "-m", "mitosis.cli", *command],
            cwd=investigation, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert '"inf"' in shown.stdout
        json.loads(shown.stdout, parse_constant=refuse)
