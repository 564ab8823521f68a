"""Every record written so far reads into the typed record, and writes back as it was."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from synthetic import dead_pid

from mitosis import catalog, dead_runs, load_trial
from mitosis.adapters import store
from mitosis.core.code_facts import StepQuestion, questions_from_json, questions_to_json
from mitosis.core.kernel_protocol import (
    KernelParam,
    KernelStep,
    StepSummary,
    steps_from_notebook,
    steps_to_notebook,
    summary_from_display,
    summary_to_display,
)
from mitosis.errors import RecordError

# A record as this version writes it, with every field written only when it applies: a debug
# trial's untracked files, a `mitosis -m` step, warnings, defaults, a storage failure beside
# the experiment's own error.
CURRENT = """\
record: 1
id: 20261124-190512-3f9c2a
experiment: sine+fit
variant: sine.frequency=fast
iteration: 0
status: failed
note: why
pid: 4242
pid_start: boot/17
debug: true
main: .nan
metrics:
  err: .inf
error:
  kind: exception
  step: fit
  type: ValueError
  message: exploded
  traceback: 'Traceback: ...'
  storage: 'could not write trial.html: No space left on device (ENOSPC)'
steps:
- name: sine
  run: sine_experiment:run
  lookup: sine_experiment:lookup_dict
  params:
    frequency:
      kind: lookup
      variant: fast
      value: '10'
      fingerprint: sha256:abc
      tracked: true
    amplitude:
      kind: literal
      source: (1, 2)
      value: (1, 2)
      fingerprint: null
      tracked: false
  main: 0.0
  metrics:
    n: 3
  source:
    run:
      file: sine_experiment.py
      repo: /repo
      commit: 4f2e9d1
      dirty: false
      remote: null
    lookup: null
  module_step: true
  warnings:
  - metric 'x' is not a number
  defaults:
    amplitude: 1
- name: fit
  run: fit:run
  lookup: null
  params: {}
  main: null
  metrics: {}
  source: null
started: '2026-11-24T19:05:12.123456+00:00'
finished: '2026-11-24T19:05:15.456789+00:00'
duration_s: 3.33
timings:
  prepare_s: 0.1
git:
  commit: 4f2e9d1
  branch: main
  dirty: true
  remote: null
  untracked:
    included:
    - notes.txt
    excluded:
    - .env
environment:
  python: 3.11.7
  hostname: here
  kernel: mitosis-same-python
command: mitosis -m sine_experiment
template: null
mitosis_version: 0.1.0
reproduces: null
warnings:
- metric 'x' is not a number
"""

# A record of the first version: no pid_start, template, error.step or literal sources,
# a step's source as it was then; and two fields of a later version.
FIRST_AND_LATER = """\
record: 1
id: 20261124-190512-3f9c2b
experiment: sine
variant: sine.amplitude=4
iteration: 2
status: running
note: null
pid: 1
debug: false
main: null
metrics: {}
error: null
steps:
- name: sine
  run: sine_experiment:run
  lookup: sine_experiment:lookup_dict
  params:
    amplitude:
      kind: literal
      value: '4'
      fingerprint: sha256:def
      tracked: true
  main: null
  metrics: {}
  source:
    module_file: sine_experiment.py
    commit: 4f2e9d1
  cache_key: sha256:later
started: '2026-11-24T19:05:12+00:00'
finished: null
duration_s: null
timings: {}
git:
  commit: 4f2e9d1
environment:
  hostname: HOST
command: mitosis-nb run sine -e sine.amplitude=4
mitosis_version: 0.0.1
reproduces: null
resources:
  cpu_s: 1.5
"""


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / store.RECORD_NAME).write_text(text, "utf-8")
    return folder


@pytest.mark.parametrize("text", [CURRENT, FIRST_AND_LATER], ids=["current", "first-and-later"])
def test_a_record_read_and_written_back_is_the_same_text(tmp_path: Path, text: str) -> None:
    folder = _write(tmp_path / "20261124-190512-3f9c2a", text)

    store.write_record(folder, store.read_record(folder))

    assert (folder / store.RECORD_NAME).read_text("utf-8") == text


def test_the_typed_record_holds_every_field(tmp_path: Path) -> None:
    folder = _write(tmp_path / "trials" / "20261124-190512-3f9c2a", CURRENT)

    trial = load_trial("3f9c2a", trials_folder=tmp_path / "trials")

    record = trial.trial_record
    assert (trial.status, trial.experiment, trial.variant) == ("failed", "sine+fit", record.variant)
    assert record.error is not None and record.error.storage is not None
    assert trial.error == yaml.safe_load(CURRENT)["error"]
    first, second = trial.steps
    assert first.params["frequency"].variant == "fast"
    assert first.params["amplitude"].source == "(1, 2)"
    assert first.module_step and first.warnings == ("metric 'x' is not a number",)
    assert second.defaults is None and second.warnings is None
    assert record.git["untracked"] == {"included": ["notes.txt"], "excluded": [".env"]}
    assert trial.record == yaml.safe_load((folder / store.RECORD_NAME).read_text("utf-8"))


def test_a_dead_run_of_the_first_version_is_settled_without_new_fields(tmp_path: Path) -> None:
    text = FIRST_AND_LATER.replace("pid: 1\n", f"pid: {dead_pid()}\n").replace(
        "hostname: HOST", f"hostname: {os.uname().nodename}"
    )
    folder = _write(tmp_path / "20261124-190512-3f9c2b", text)

    settled = dead_runs.settle_record(folder, store.read_record(folder))

    written = yaml.safe_load((folder / store.RECORD_NAME).read_text("utf-8"))
    before = yaml.safe_load(text)
    assert settled.status == written["status"] == "interrupted"
    assert written["error"]["type"] == "RunnerDied"
    assert {key: value for key, value in written.items() if key not in ("status", "error")} == {
        key: value for key, value in before.items() if key not in ("status", "error")
    }
    assert list(written) == list(before)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": "none"}, "steps"),
        ({"steps": [{"run": "a:b"}]}, "steps"),
        ({"error": "exploded"}, "error"),
        ({"metrics": [1, 2]}, "metrics"),
    ],
)
def test_a_record_whose_parts_are_damaged_is_listed_unreadable_naming_field_and_line(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    text = store.dump_yaml({**yaml.safe_load(CURRENT), **change})
    _write(tmp_path / "trials" / "20261124-190512-3f9c2a", text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith(f"{field}:"))

    rows = catalog.list_trials(tmp_path / "trials").trials
    with pytest.raises(RecordError) as raised:
        load_trial("3f9c2a", trials_folder=tmp_path / "trials")

    assert [row["status"] for row in rows] == ["unreadable"]
    said = f"(line {line}) has no valid {field!r} field."
    assert rows[0]["problem"].endswith(said) and raised.value.message.endswith(said)


def test_what_crosses_the_kernel_boundary_reads_back_as_it_was_sent() -> None:
    questions = (StepQuestion("sine", "m:run", None, False, {"frequency": ("fast", "slow")}),)
    param = KernelParam("a", "literal", "4", None, "4")
    steps = (KernelStep("sine", "m:run", "m:lookup", (param,)),)
    summary = StepSummary("sine", 0, float("nan"), {"err": float("inf")}, {"b": 1}, ("w",))

    assert questions_from_json(questions_to_json(questions)) == questions
    assert steps_from_notebook(steps_to_notebook(steps)) == steps
    read = summary_from_display(summary_to_display(summary))
    assert read is not None and replace(read, main=None, metrics={}) == replace(
        summary, main=None, metrics={}
    )
    assert str(read.main) == "nan" and read.metrics == {"err": float("inf")}
