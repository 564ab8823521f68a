"""Whatever a step returns is saved before its shape is checked, and metrics come in any shape."""

from __future__ import annotations

import html
import pickle
from pathlib import Path

import numpy as np
import yaml
from conftest import RunCli, add_step, trial_dirs

SHAPES = """
import numpy as np

lookup = {"shape": {name: name for name in
    ("names", "nested", "numpy", "beside", "clash", "nomain", "notdict", "text")}}


def run(shape="names"):
    weights = np.arange(6.0).reshape(2, 3)
    if shape == "names":  # the original's users' habit: the metric names, computed elsewhere
        return {"main": 0.5, "metrics": ["coeff_mse", "coeff_f1"], "weights": weights}
    if shape == "nested":
        return {"main": 1.0, "metrics": {"fit": {"mse": 0.25, "r2": np.float32(0.5)},
                                         "curve": weights, "label": "best", "ok": True}}
    if shape == "numpy":
        return {"main": np.float64(2.0), "metrics": {"mse": np.float64(0.125), "n": np.int64(7)}}
    if shape == "beside":
        return {"main": 3.0, "coeff_mse": 0.5, "runtime": np.float64(1.5), "model": "lsq",
                "data": [1, 2], "metrics": None}
    if shape == "clash":
        return {"main": 3.0, "mse": 9.0, "metrics": {"mse": 1.0}}
    if shape == "nomain":
        return {"metrics": {"mse": 1.0}, "weights": weights}
    if shape == "notdict":
        return [weights, 3.0]
    return {"main": "text main", "metrics": {}}
"""


def _run(cli: RunCli, investigation: Path, shape: str) -> tuple[int, Path, dict, str]:
    done = cli("run", "shapes", "-p", f"shape={shape}")
    folder = trial_dirs(investigation / "trials")[-1]
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    return done.returncode, folder, record, done.stderr


def _saved(folder: Path) -> object:
    return pickle.loads((folder / "results_0.pkl").read_bytes())  # the suite's own trial


def test_metrics_of_any_shape_never_fail_a_trial_and_the_results_are_whole(
    cli: RunCli, investigation: Path
) -> None:
    add_step(investigation, "shapes", "shapes", SHAPES)

    code, folder, record, stderr = _run(cli, investigation, "names")
    assert code == 0 and record["status"] == "succeeded", stderr
    assert record["metrics"] == {}
    assert "'metrics' as a list" in record["warnings"][0] and "results_0.pkl" in stderr
    assert "'metrics' as a list" in html.unescape((folder / "trial.html").read_text())
    assert "'metrics' as a list" in cli("show", folder.name).stdout
    saved = _saved(folder)
    assert saved["metrics"] == ["coeff_mse", "coeff_f1"]
    np.testing.assert_array_equal(saved["weights"], np.arange(6.0).reshape(2, 3))

    code, folder, record, _ = _run(cli, investigation, "nested")
    assert code == 0
    assert record["metrics"] == {"fit.mse": 0.25, "fit.r2": 0.5, "ok": True}
    (warning,) = record["warnings"]
    assert "curve (ndarray)" in warning and "label (str)" in warning
    assert _saved(folder)["metrics"]["label"] == "best"

    code, folder, record, _ = _run(cli, investigation, "numpy")
    assert code == 0 and record["main"] == 2.0
    assert record["metrics"] == {"mse": 0.125, "n": 7} and "warnings" not in record

    # Numbers returned beside main are metrics too; text beside it and data are not.
    code, folder, record, _ = _run(cli, investigation, "beside")
    assert code == 0 and record["metrics"] == {"coeff_mse": 0.5, "runtime": 1.5}

    code, folder, record, _ = _run(cli, investigation, "clash")
    assert code == 0 and record["metrics"] == {"mse": 1.0}
    assert "both beside 'main' and under 'metrics'" in record["warnings"][0]


def test_a_result_without_main_fails_but_is_saved_and_the_page_says_where(
    cli: RunCli, investigation: Path
) -> None:
    add_step(investigation, "shapes", "shapes", SHAPES)
    for shape, saved_type in (("nomain", dict), ("notdict", list)):
        code, folder, record, stderr = _run(cli, investigation, shape)
        assert code == 1 and record["status"] == "failed", stderr
        assert record["error"]["type"] == "StepResultError"
        assert "saved in results_0.pkl" in record["error"]["message"]
        assert "saved in results_0.pkl" in (folder / "trial.html").read_text()
        assert isinstance(_saved(folder), saved_type)
