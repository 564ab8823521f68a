"""Render a trial's notebook from a template, one readable code cell per step, and name the
kernel Jupyter opens it with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from mitosis.core.steps import StepConfig
from mitosis.errors import ConfigError, ParameterError

STEPS_TAG = "mitosis-steps"
PARAMETERS_TAG = "parameters"
START_CALL = "mitosis.kernel_side.start"


def packaged_template() -> Path:
    """The template shipped with mitosis (inside the wheel, or at the source tree's top)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "trial.ipynb").is_file():
            return candidate / "trial.ipynb"
    raise ConfigError(f"mitosis-nb's own template is missing next to {package}; reinstall it.")


def kernelspec_metadata(kernel: str) -> dict[str, str]:
    """The notebook's ``kernelspec`` metadata for the named kernel, with which Jupyter opens
    the trial's notebook; ``ParameterError`` if no such kernel is installed."""
    specs = KernelSpecManager()
    try:
        spec = specs.get_kernel_spec(kernel)
    except NoSuchKernel:
        known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise ParameterError(f"no Jupyter kernel named {kernel!r}; installed: {known}.") from None
    return {"name": kernel, "display_name": spec.display_name, "language": spec.language}


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _step_source(step: StepConfig, index: int, count: int, previous: str | None) -> str:
    """The code of the cell that runs one step, as a researcher would write it by hand.

    ``previous`` is the name of the step before, whose ``"data"`` this step receives first.
    """
    alias = f"{step.name}_run"
    top, _, rest = step.qualname.partition(".")
    if rest:
        module = f"{step.name}_module"
        imports = f"import {step.module} as {module}\n\n{alias} = {module}.{step.qualname}"
    else:
        imports = f"from {step.module} import {top} as {alias}"
    inputs = "" if previous is None else f"{previous}_result['data'], "
    return (
        f"# Step {index + 1} of {count}: {step.name} = {step.run}\n"
        f"{imports}\n\n"
        f"{step.name}_args = mitosis_trial.arguments({step.name!r})\n"
        f"{step.name}_result = mitosis_trial.run(\n"
        f"    {step.name!r}, {alias}, {inputs}**{step.name}_args\n)"
    )


def render_notebook(
    template: Path, steps: Sequence[StepConfig], origin: str = "--template"
) -> nbformat.NotebookNode:
    """Load ``template`` and put the steps' cells where its ``mitosis-steps`` cell is.

    ``origin`` says where the template was named, for the user to fix it there.
    """
    try:
        notebook: nbformat.NotebookNode = nbformat.read(str(template), as_version=4)
    except FileNotFoundError:
        raise ConfigError(f"template {template} does not exist; fix {origin}.") from None
    except Exception as error:  # nbformat raises many kinds for a file that is not a notebook
        raise ConfigError(f"template {template} is not a readable notebook: {error}.") from None
    cells = notebook.cells
    if not any(PARAMETERS_TAG in _tags(cell) for cell in cells):
        raise ConfigError(
            f"template {template} has no cell tagged 'parameters'; papermill needs one."
        )
    if not any(cell.cell_type == "code" and START_CALL in cell.source for cell in cells):
        raise ConfigError(
            f"template {template} never starts the trial: after its parameters cell it needs "
            f"`mitosis_trial = {START_CALL}(mitosis_trial_dir, mitosis_steps)`, as in "
            f"{packaged_template()}."
        )
    # papermill writes the parameters in the notebook's language; a template without
    # one is Python, which is all a trial's kernel runs.
    if not notebook.metadata.get("kernelspec", {}).get("language"):
        notebook.metadata.setdefault("language_info", {}).setdefault("name", "python")
    step_cells = []
    for index, step in enumerate(steps):
        previous = steps[index - 1].name if index else None
        cell = nbformat.v4.new_code_cell(_step_source(step, index, len(steps), previous))
        cell.metadata["mitosis"] = {"step": step.name}
        cell.metadata["tags"] = ["mitosis-step"]
        step_cells.append(cell)
    slot = next((i for i, cell in enumerate(cells) if STEPS_TAG in _tags(cell)), None)
    if slot is None:
        notebook.cells = [*cells, *step_cells]
    else:
        notebook.cells = [*cells[:slot], *step_cells, *cells[slot + 1 :]]
    return notebook
