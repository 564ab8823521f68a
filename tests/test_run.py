"""`mitosis-nb run` end to end: real kernels, real git repositories, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    RunCli,
    git,
    kernels_in,
    start_in,
    trial_dirs,
    wait_for_kernels,
    write_own_template,
)
from synthetic import site_text

import mitosis

RECORD_FIELDS = {
    "record",
    "id",
    "experiment",
    "variant",
    "iteration",
    "status",
    "note",
    "pid",
    "debug",
    "main",
    "metrics",
    "error",
    "steps",
    "started",
    "finished",
    "duration_s",
    "git",
    "environment",
    "command",
    "mitosis_version",
    "reproduces",
}


def only_trial(root: Path) -> Path:
    (folder,) = trial_dirs(root / "trials")
    return folder


def record_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "trial.yaml").read_text())


def test_a_trial_publishes_notebook_page_record_results_and_log(
    investigation: Path, cli: RunCli
) -> None:
    done = cli("run", "toy", "-p", "frequency=fast", "-e", "amplitude=2", "--note", "first try")
    assert done.returncode == 0, done.stderr
    folder = only_trial(investigation)
    assert folder.name in done.stdout
    record = record_of(folder)
    assert set(record) >= RECORD_FIELDS
    assert record["status"] == "succeeded"
    assert record["main"] == 20.0 and record["metrics"]["double"] == 40.0
    assert record["variant"] == "toy.amplitude=2,toy.frequency=fast"
    assert record["note"] == "first try" and record["debug"] is False
    assert record["git"]["commit"] == git(investigation, "rev-parse", "HEAD").strip()
    assert record["git"]["dirty"] is False
    assert record["environment"]["interpreter"] == sys.executable
    assert "papermill" in record["environment"]["packages"]
    frequency = record["steps"][0]["params"]["frequency"]
    assert frequency["kind"] == "lookup" and frequency["variant"] == "fast"
    assert frequency["value"] == "10" and frequency["fingerprint"].startswith("sha256:")
    assert record["duration_s"] > 0 and record["finished"] > record["started"]
    assert "running with frequency=10" in (folder / "experiment.log").read_text()
    assert (folder / "results_0.pkl").is_file()
    page = (folder / "trial.html").read_text()
    for visible in (
        "succeeded",
        "20.0",
        "toy.frequency",
        "fast",
        record["git"]["commit"],
        "first try",
    ):
        assert visible in page
    assert "toy run: frequency=10 amplitude=2" in page  # the printed output
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def _add_plain_step(investigation: Path, name: str, source: str) -> None:
    """Register ``name``.py's ``run`` as step ``name`` (no lookup dictionary) and commit it."""
    (investigation / f"{name}.py").write_text(source)
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'{name} = ["{name}:run"]\n')
    git(investigation, "add", "-A")
    git(investigation, "commit", "-qm", name)


def test_the_kernel_runs_the_runners_interpreter(investigation: Path, cli: RunCli) -> None:
    _add_plain_step(
        investigation, "which", "import sys\n\ndef run():\n    return {'main': sys.executable}\n"
    )
    done = cli("run", "which")
    assert done.returncode == 0, done.stderr
    assert record_of(only_trial(investigation))["main"] == sys.executable


DEBUGGER = """
import sys


def run():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("debugpy", "_pydevd_bundle"))
    import debugpy

    return {"main": ", ".join(loaded) or "none", "metrics": {"debugpy": len(debugpy.__name__)}}
"""


def test_the_kernel_starts_without_a_debugger_yet_a_step_can_import_debugpy(
    investigation: Path, cli: RunCli
) -> None:
    _add_plain_step(investigation, "debugging", DEBUGGER)
    done = cli("run", "debugging")
    assert done.returncode == 0, done.stderr
    record = record_of(only_trial(investigation))
    assert record["main"] == "none"  # ipykernel's debugger (debugpy, pydevd) never loaded
    assert record["metrics"] == {"debugpy": len("debugpy")}


def test_a_named_kernel_is_recorded_with_its_own_interpreter_and_packages(
    investigation: Path, cli: RunCli, tmp_path: Path
) -> None:
    # Another interpreter: this Python under another path, outside the venv, finding the
    # venv's packages and one distribution of its own through the kernelspec's PYTHONPATH.
    other = tmp_path / "other" / "python3"
    other.parent.mkdir()
    other.symlink_to(sys.executable)
    own = tmp_path / "own-packages" / "kernel_only_pkg-9.8.7.dist-info"
    own.mkdir(parents=True)
    (own / "METADATA").write_text("Metadata-Version: 2.1\nName: kernel-only-pkg\nVersion: 9.8.7\n")
    mitosis_source = Path(mitosis.__file__).resolve().parent.parent
    path = [str(own.parent), sysconfig.get_paths()["purelib"], str(mitosis_source)]
    spec = tmp_path / "jupyter" / "kernels" / "other-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(other), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "other",
                "language": "python",
                "env": {"PYTHONPATH": os.pathsep.join(path)},
            }
        )
    )

    done = cli(
        "run", "toy", "-p", "frequency=fast", "--kernel", "other-python",
        env={"JUPYTER_PATH": str(tmp_path / "jupyter")},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    record = record_of(only_trial(investigation))
    environment = record["environment"]
    assert environment["kernel"] == "other-python"
    assert environment["interpreter"] == str(other)
    assert environment["packages"]["kernel-only-pkg"] == "9.8.7"
    assert "ipykernel" in environment["packages"]
    notebook = json.loads((only_trial(investigation) / "trial.ipynb").read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "other-python"


def test_secrets_never_reach_the_trials_folder(investigation: Path, cli: RunCli) -> None:
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-123",
        "AWS_ACCESS_KEY_ID": "AKIA-key-id-value-321",
        "SIGNINGKEY": "signing-key-value-654",
        "GITHUB_TOKEN": "ghp_tokenvalue456",
        "MY_PASSWORD": "hunter2-password",
        "DATABASE_URL": "postgres://alice:dbpass789@db.example.org/lab",
    }
    done = cli("run", "toy", "-p", "frequency=slow", env=secrets)
    assert done.returncode == 0, done.stderr
    variables = record_of(only_trial(investigation))["environment"]["variables"]
    assert variables["AWS_SECRET_ACCESS_KEY"] == "<redacted>"
    assert variables["DATABASE_URL"] == "postgres://<redacted>@db.example.org/lab"
    for path in (investigation / "trials").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for value in secrets.values():
                assert value.split("//")[-1].encode() not in content, (path, value)


@pytest.mark.parametrize(
    ("mode", "kind", "error_type"),
    [
        ("boom", "exception", "ValueError"),
        ("exit", "exception", "SystemExit"),
        ("die", "kernel_died", "DeadKernelError"),
        ("noresult", "exception", "StepResultError"),
    ],
)
def test_a_failing_experiment_gets_a_failed_record_and_its_page(
    investigation: Path, cli: RunCli, mode: str, kind: str, error_type: str
) -> None:
    done = cli("run", "toy", "-p", f"mode={mode}")
    assert done.returncode == 1
    folder = only_trial(investigation)
    record = record_of(folder)
    assert record["status"] == "failed"
    assert record["error"]["kind"] == kind and record["error"]["type"] == error_type
    assert record["error"]["step"] == "toy"
    assert record["main"] is None
    # stdout names the trial and its page; no "main=None" posing as a result.
    assert done.stdout == f"failed: {folder.name}  {folder / 'trial.html'}\n"
    assert error_type in done.stderr
    page = (folder / "trial.html").read_text()
    assert "failed" in page and error_type in page
    # The cells that ran, kept whether the step raised or its kernel died.
    assert (folder / "trial.ipynb").is_file() and "toy_experiments" in page
    if mode == "boom":
        assert "exploded on purpose" in record["error"]["message"]
        assert "ValueError" in record["error"]["traceback"]
        assert "exploded on purpose" in page


def test_a_failure_of_the_runner_is_not_blamed_on_the_kernel(
    investigation: Path, cli: RunCli, tmp_path: Path
) -> None:
    broken = tmp_path / "broken" / "papermill"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no papermill here')\n")
    done = cli("run", "toy", env={"PYTHONPATH": str(broken.parent)})
    assert done.returncode == 1, done.stderr
    error = record_of(only_trial(investigation))["error"]
    assert error["kind"] == "exception" and error["step"] is None
    assert error["type"] == "ImportError" and "no papermill here" in error["message"]
    assert "import papermill" in error["traceback"]


def test_timeout_stops_the_kernel(investigation: Path, cli: RunCli) -> None:
    started = time.monotonic()
    done = cli("run", "toy", "-p", "mode=sleep", "--timeout", "2")
    assert done.returncode == 1
    assert time.monotonic() - started < 60
    folder = only_trial(investigation)
    record = record_of(folder)
    assert record["status"] == "failed" and record["error"]["kind"] == "timeout"
    assert record["error"]["type"] == "TimeoutError"
    assert not kernels_in(investigation)
    # What the step printed before it was stopped is on its page and in its notebook.
    assert "toy run: frequency=1" in (folder / "trial.html").read_text()
    assert "toy run: frequency=1" in (folder / "trial.ipynb").read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_interrupt_and_leave_no_kernel(investigation: Path, signum: int) -> None:
    runner = start_in(investigation, sys.executable, "-m", "mitosis.cli", "run", "toy",
                      "-p", "mode=sleep")  # fmt: skip
    wait_for_kernels(investigation, with_record=True)
    time.sleep(2)  # let the step start sleeping
    running = record_of(only_trial(investigation))
    assert running["status"] == "running" and running["pid"] == runner.pid
    # Whoever refreshes the browser while the trial runs sees it there, running.
    page = site_text(investigation / "trials")
    assert f'["{running["id"]}",' in page and '"running"' in page
    runner.send_signal(signum)
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 130, stderr
    folder = only_trial(investigation)
    record = record_of(folder)
    assert record["status"] == "interrupted" and record["error"]["kind"] == "interrupted"
    assert "toy run: frequency=1" in (folder / "trial.html").read_text()
    assert "toy run: frequency=1" in (folder / "trial.ipynb").read_text()
    time.sleep(1)
    assert not kernels_in(investigation)


def test_dirty_tree_is_refused_listing_files_and_debug_runs_anyway(
    investigation: Path, cli: RunCli
) -> None:
    source = investigation / "toy_experiments.py"
    source.write_text(source.read_text() + "\n# an uncommitted idea\n")
    (investigation / "scratch.py").write_text("x = 1\n")
    (investigation / "trials").mkdir()
    (investigation / "trials" / "stray.txt").write_text("inside the trials folder\n")
    refused = cli("run", "toy")
    assert refused.returncode == 2
    assert "toy_experiments.py" in refused.stderr and "scratch.py" in refused.stderr
    assert "stray.txt" not in refused.stderr
    assert not trial_dirs(investigation / "trials")
    done = cli("run", "toy", "-p", "frequency=fast", "--debug")
    assert done.returncode == 0, done.stderr
    folder = only_trial(investigation)
    record = record_of(folder)
    assert record["debug"] is True and record["git"]["dirty"] is True
    patch = (folder / "uncommitted.patch").read_text()
    assert "an uncommitted idea" in patch and "scratch.py" in patch
    assert '<a href="uncommitted.patch">' in (folder / "trial.html").read_text()
    assert not (investigation / "trials" / "variants" / "toy").exists()


def test_a_set_literal_names_one_variant_in_every_process(investigation: Path, cli: RunCli) -> None:
    # A set's repr follows the string hash, which each process seeds differently.
    tag = "tag={'zz', 'aa', 'mm', 'qq'}"
    for seed in ("1", "2"):
        done = cli("run", "toy", "-e", tag, env={"PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
    records = [record_of(folder) for folder in trial_dirs(investigation / "trials")]
    assert [r["variant"] for r in records] == ["toy.tag={'aa', 'mm', 'qq', 'zz'}"] * 2
    assert [r["iteration"] for r in records] == [0, 1]
    skipped = cli("run", "toy", "-e", tag, "--skip-existing", env={"PYTHONHASHSEED": "3"})
    assert skipped.returncode == 0 and re.search(r"skipped +1 ", skipped.stdout)
    infinite = cli("run", "toy", "-e", "amplitude=1e400")
    assert infinite.returncode == 2 and "'1e400' is infinite" in infinite.stderr


def test_a_trials_folder_over_code_hides_no_change_to_it(investigation: Path, cli: RunCli) -> None:
    (investigation / "lib").mkdir()
    (investigation / "lib" / "helper.py").write_text("FACTOR = 1\n")
    git(investigation, "add", "-A")
    git(investigation, "commit", "-q", "-m", "a helper")
    (investigation / "lib" / "helper.py").write_text("FACTOR = 2\n")
    into_code = cli("run", "toy", "-F", "lib")
    assert into_code.returncode == 2 and "lib/helper.py" in into_code.stderr
    whole = cli("run", "toy", "-F", ".")
    assert whole.returncode == 2 and "holds the whole repository" in whole.stderr
    assert sorted(p.name for p in (investigation / "lib").iterdir()) == ["helper.py"]


def test_a_step_in_a_file_git_ignores_is_refused(investigation: Path, cli: RunCli) -> None:
    (investigation / ".gitignore").write_text("local_*.py\ntrials/\n")
    (investigation / "local_toy.py").write_text((investigation / "toy_experiments.py").read_text())
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.mitosis.steps]",
            '[tool.mitosis.steps]\nlocal = ["local_toy:run", "local_toy:lookup"]',
        )
    )
    git(investigation, "add", "-A")
    git(investigation, "commit", "-q", "-m", "a step git ignores")
    refused = cli("run", "local")
    assert refused.returncode == 2, refused.stderr
    assert "local_toy.py, which git ignores" in refused.stderr
    assert not trial_dirs(investigation / "trials")
    debug = cli("run", "local", "--debug")
    assert debug.returncode == 0, debug.stderr
    source = record_of(only_trial(investigation))["steps"][0]["source"]["run"]
    assert source["file"] == "local_toy.py" and source["ignored"] is True and source["dirty"]


def test_the_record_says_which_defaults_each_step_ran_with(
    investigation: Path, cli: RunCli
) -> None:
    # Defaults are code, not parameters: a later commit may change them under one variant.
    done = cli("run", "gen", "fit", "-e", "fit.scale=2.0")
    assert done.returncode == 0, done.stderr
    folder = only_trial(investigation)
    gen, fit = record_of(folder)["steps"]
    assert gen["defaults"] == {"length": 3, "shape": "flat"}
    assert fit["defaults"] == {"fail": False}  # not `data`, which gen gave, nor `scale`
    page = (folder / "trial.html").read_text()
    assert "gen.shape</td>" in page and "<code>flat</code>" in page
    # Each step's results are in the header, not only the last step's.
    steps_table = page.split('<table class="mitosis-steps"')[1].split("</table>")[0]
    assert f">{gen['main']}</td>" in steps_table and f">{fit['main']}</td>" in steps_table


def test_untracked_and_literal_parameters(investigation: Path, cli: RunCli) -> None:
    done = cli(
        "run",
        "toy",
        "-p",
        "+frequency=fast",
        "-e",
        "tag={'a': 1, 'b': 'x=y'}",
        "-e",
        "amplitude=0.5",
    )
    assert done.returncode == 0, done.stderr
    record = record_of(only_trial(investigation))
    params = record["steps"][0]["params"]
    assert params["frequency"]["tracked"] is False
    assert params["tag"]["kind"] == "literal" and params["tag"]["source"] == "{'a': 1, 'b': 'x=y'}"
    assert record["variant"] == "toy.amplitude=0.5,toy.tag={'a': 1, 'b': 'x=y'}"
    assert record["main"] == 5.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope"], "unknown step 'nope'"),
        (["run", "toy", "-p", "frequency=medium"], "unknown variant 'medium'"),
        (["run", "toy", "-p", "colour=red"], "no argument 'colour'"),
        (
            ["run", "toy", "-e", "amplitude=__import__('os').system('touch pwned')"],
            "not a Python literal",
        ),
        (["run", "toy", "-e", "amplitude=two"], "not a Python literal"),
        (["run", "gen", "fit", "-p", "length=short"], "needs its step"),
        (["run", "toy", "--kernel", "no-such-kernel"], "no Jupyter kernel named"),
        (["run", "toy", "-p", "frequency"], "[STEP.]ARG=VALUE"),
        (["run", "toy", "--timeout", "-5"], "must be more than 0 seconds, not -5"),
        (["run", "toy", "--timeout", "0"], "must be more than 0 seconds, not 0"),
        (["run", "gen", "gen"], "step 'gen' is named twice"),
        (["run", "fit"], "step 'fit' needs 'data', which has no default"),
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(
    investigation: Path, cli: RunCli, args: list[str], message: str
) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not (investigation / "trials").exists()
    assert not (investigation / "pwned").exists()


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.mitosis\nsteps = 1\n", "line 1"),
        ("[project]\nname = 'x'\n", "no [tool.mitosis] table"),
        ("[tool.mitosis]\ntrials-folder = 'trials'\n", "no [tool.mitosis.steps] table"),
        (
            '[tool.mitosis.steps]\ntoy = ["missing_module:run"]\n',
            "cannot import module 'missing_module'",
        ),
        ('[tool.mitosis.steps]\ntoy = ["toy_experiments:nothing"]\n', "has no 'nothing'"),
        (
            '[tool.mitosis]\ntrials_folder = "elsewhere"\n[tool.mitosis.steps]\n'
            'toy = ["toy_experiments:run"]\n',
            "unknown key 'trials_folder' in [tool.mitosis]",
        ),
        (  # a lookup that is no mapping at all (a module's namespace would be one)
            '[tool.mitosis.steps]\ntoy = ["toy_experiments:run", "os:sep"]\n',
            "got str",
        ),
    ],
)
def test_bad_configuration_exits_2(
    investigation: Path, cli: RunCli, pyproject: str, message: str
) -> None:
    (investigation / "pyproject.toml").write_text(pyproject)
    git(investigation, "commit", "-qam", "broken config")
    done = cli("run", "toy", "--debug")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (investigation / "trials").exists()


def test_outside_a_git_repository_is_refused(tmp_path: Path, cli: RunCli) -> None:
    bare = tmp_path / "not-a-repo"
    bare.mkdir()
    done = cli("run", "toy", cwd=bare)
    assert done.returncode == 2 and "not inside a git repository" in done.stderr
    done = cli("run", "toy", "--config", str(bare / "pyproject.toml"), cwd=bare)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_own_template_from_config_and_a_template_without_parameters(
    investigation: Path, cli: RunCli
) -> None:
    import nbformat

    write_own_template(investigation, "lab.ipynb", "## Our lab's closing remarks")
    no_parameters = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(no_parameters, str(investigation / "templates" / "bad.ipynb"))
    # Neither kernelspec nor language in the metadata, as a notebook written by hand.
    parameters = nbformat.v4.new_code_cell("mitosis_trial_dir = '.'\nmitosis_steps = []")
    parameters.metadata["tags"] = ["parameters"]
    start = nbformat.v4.new_code_cell(
        "import mitosis.kernel_side\n"
        "mitosis_trial = mitosis.kernel_side.start(mitosis_trial_dir, mitosis_steps)"
    )
    minimal = nbformat.v4.new_notebook(cells=[parameters, start])
    nbformat.write(minimal, str(investigation / "templates" / "minimal.ipynb"))
    never_starts = nbformat.v4.new_notebook(cells=[parameters])
    nbformat.write(never_starts, str(investigation / "templates" / "bare.ipynb"))
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'trials-folder = "trials"', 'trials-folder = "trials"\ntemplate = "templates/lab.ipynb"'
        )
    )
    git(investigation, "add", "-A")
    git(investigation, "commit", "-qm", "our template")
    done = cli("run", "toy")
    assert done.returncode == 0, done.stderr
    assert "closing remarks" in (only_trial(investigation) / "trial.ipynb").read_text()
    refused = cli("run", "toy", "--template", "templates/bad.ipynb")
    assert refused.returncode == 2 and "no cell tagged 'parameters'" in refused.stderr
    bare = cli("run", "toy", "--template", "templates/bare.ipynb")
    assert bare.returncode == 2 and "never starts the trial" in bare.stderr
    assert len(trial_dirs(investigation / "trials")) == 1
    assert cli("run", "toy", "--template", "templates/minimal.ipynb").returncode == 0

    pyproject.write_text(pyproject.read_text().replace("lab.ipynb", "gone.ipynb"))
    git(investigation, "commit", "-qam", "a template that is not there")
    gone = cli("run", "toy")
    assert gone.returncode == 2 and "fix `template` in [tool.mitosis]" in gone.stderr


def test_show_and_list_find_the_trial(investigation: Path, cli: RunCli) -> None:
    assert cli("run", "toy", "-p", "frequency=fast").returncode == 0
    trial_id = only_trial(investigation).name
    import json

    shown = cli("show", trial_id.rsplit("-", 1)[1][:4], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == trial_id
    listed = cli("list", "--json")
    assert [row["id"] for row in json.loads(listed.stdout)] == [trial_id]
    missing = cli("show", "ffffff")
    assert missing.returncode == 2 and "no trial" in missing.stderr


def test_a_trials_folder_that_is_a_file_is_refused_in_one_sentence(
    investigation: Path, cli: RunCli, tmp_path: Path
) -> None:
    a_file = tmp_path / "a file"
    a_file.write_text("not a folder\n")
    for folder, says in ((a_file, "is not a directory"), (a_file / "sub", "under the file")):
        done = cli("run", "toy", "-p", "frequency=fast", "-F", str(folder))
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    listed = cli("list", "-F", str(a_file))
    assert listed.returncode == 2 and "is not a directory" in listed.stderr
    assert a_file.read_text() == "not a folder\n"


def test_an_error_in_a_template_cell_is_not_blamed_on_a_step(
    investigation: Path, cli: RunCli
) -> None:
    import nbformat

    template = write_own_template(investigation, "boom.ipynb", "## after the steps")
    notebook = nbformat.read(str(template), as_version=4)
    slot = next(
        i for i, c in enumerate(notebook.cells) if "mitosis-steps" in c.metadata.get("tags", [])
    )
    notebook.cells.insert(slot, nbformat.v4.new_code_cell("raise RuntimeError('template boom')"))
    nbformat.write(notebook, str(template))
    git(investigation, "add", "-A")
    git(investigation, "commit", "-qm", "a template that raises")

    done = cli("run", "toy", "--template", "templates/boom.ipynb")

    assert done.returncode == 1
    error = record_of(only_trial(investigation))["error"]
    assert error["type"] == "RuntimeError" and error["step"] is None
    assert "in step" not in done.stderr


def test_trials_written_elsewhere_leave_the_configured_trials_folder_out_of_the_dirty_check(
    investigation: Path, cli: RunCli, tmp_path: Path
) -> None:
    assert cli("run", "toy", "-p", "frequency=fast").returncode == 0  # into ./trials, untracked
    done = cli("run", "toy", "-p", "frequency=slow", "-F", str(tmp_path / "elsewhere"))
    assert done.returncode == 0, done.stderr
    assert len(trial_dirs(tmp_path / "elsewhere")) == 1


def test_a_committed_trials_folder_does_not_make_the_next_run_dirty(
    investigation: Path, cli: RunCli
) -> None:
    assert cli("run", "toy", "-p", "frequency=fast").returncode == 0
    git(investigation, "add", "-A")  # shared with the code, as some researchers do
    git(investigation, "commit", "-q", "-m", "the trials so far")

    # Every run rewrites the index, its data parts and the experiment's page.
    for frequency in ("slow", "fast"):
        done = cli("run", "toy", "-p", f"frequency={frequency}")
        assert done.returncode == 0, done.stderr

    assert len(trial_dirs(investigation / "trials")) == 3


def test_every_name_mitosis_writes_atop_a_trials_folder_is_known_as_its_own() -> None:
    from mitosis.adapters import index_cache, publish, registry, site
    from mitosis.cache_store import CACHE_DIR
    from mitosis.core.trial_id import is_own_entry
    from mitosis.executors.slurm import SUBMITIT_FOLDER

    written = [site.INDEX_HTML, site.PARTS_DIR, site.experiment_page_name("sine fit/2")]
    written += [index_cache.INDEX_NAME, registry.REGISTRY_DIR, publish.ASSETS_DIR]
    written += [CACHE_DIR, SUBMITIT_FOLDER, "20261207-020000-3f9c2a"]
    assert all(is_own_entry(name) for name in written)
    assert not any(is_own_entry(name) for name in ("experiments", "sine.py", "data"))


def test_a_registry_that_cannot_be_written_leaves_no_trial_folder(
    investigation: Path, cli: RunCli
) -> None:
    trials = investigation / "trials"
    (trials / "variants").mkdir(parents=True)
    (trials / "variants" / ".iterations").write_text("in the way\n")  # iterations go in here

    done = cli("run", "toy", "-p", "frequency=fast")

    assert done.returncode == 2, done.stderr
    assert trial_dirs(trials) == []
