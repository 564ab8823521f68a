"""The step cache's key: code digested as code, the project's modules followed, and a
changed key explained part by part (issue 17)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mitosis.core.cache_key import KeyParts, explain_change
from mitosis.core.code_digest import (
    MODULE_LEVEL,
    LocatedModule,
    digest_definition,
    digest_module,
    project_closure,
)

FIT = '''\
"""Fitting."""
import numpy as np
from .helpers import smooth

SCALE = 2


def fit(x, degree=1):
    """Fit a polynomial."""
    return smooth(x) * SCALE  # the model


def unused():
    return 0
'''


def test_comments_docstrings_and_layout_do_not_change_a_digest() -> None:
    edited = (
        FIT.replace("# the model", "# a better comment")
        .replace('"""Fit a polynomial."""', '"""Fit a polynomial, carefully."""')
        .replace("return smooth(x) * SCALE", "return (smooth(x)\n            * SCALE)")
    )
    assert digest_module("fits", edited) == digest_module("fits", FIT)


def test_a_changed_function_is_named_and_the_others_keep_their_digests() -> None:
    before = digest_module("fits", FIT)
    after = digest_module("fits", FIT.replace("* SCALE", "* SCALE + 1"))
    assert before.digest != after.digest
    assert before.parts["fit"] != after.parts["fit"]
    assert before.parts["unused"] == after.parts["unused"]
    assert before.parts[MODULE_LEVEL] == after.parts[MODULE_LEVEL]
    constants = digest_module("fits", FIT.replace("SCALE = 2", "SCALE = 3"))
    assert constants.parts[MODULE_LEVEL] != before.parts[MODULE_LEVEL]


def test_a_method_is_digested_from_its_indented_source() -> None:
    method = '''
        def step(self, x):
            """Docs."""
            return x + 1  # note
    '''
    same = "\n    def step(self, x):\n        return x + 1\n"
    assert digest_definition(method) == digest_definition(same)
    assert digest_definition(method) != digest_definition(same.replace("+ 1", "+ 2"))


def _locator(root: Path):  # type: ignore[no-untyped-def]
    def locate(name: str) -> LocatedModule | None:
        base = root.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            path = base / "__init__.py"
            return LocatedModule(path, path.read_text(), is_package=True)
        if base.with_suffix(".py").is_file():
            path = base.with_suffix(".py")
            return LocatedModule(path, path.read_text())
        return None  # numpy, os: not the project's

    return locate


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_closure_follows_relative_late_and_from_imports_but_not_installed_ones(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        {
            "lab/__init__.py": "",
            "lab/fits.py": FIT,
            "lab/helpers.py": "def smooth(x):\n    from lab import kernels\n    return x\n",
            "lab/kernels/__init__.py": "from . import gauss\n",
            "lab/kernels/gauss.py": "import os\n",
            "lab/unrelated.py": "X = 1\n",
        },
    )
    found = project_closure(["lab.fits"], _locator(tmp_path))
    assert set(found) == {"lab", "lab.fits", "lab.helpers", "lab.kernels", "lab.kernels.gauss"}
    assert found["lab.kernels"].is_package


def _parts(**changes: object) -> KeyParts:
    fields: dict[str, object] = {
        "function": "lab.fits:fit",
        "function_digest": "sha256:f1",
        "python": "3.11.7",
        "modules": {"lab.helpers": {"smooth": "sha256:s1", MODULE_LEVEL: "sha256:m1"}},
        "files": {"lab.helpers": "lab/helpers.py"},
        "packages": {"numpy": "1.26.4"},
        "arguments": {"degree": "sha256:d1", "x": "sha256:x1"},
        "lineage": ("sha256:gen1",),
    }
    fields.update(changes)
    return KeyParts(**fields)  # type: ignore[arg-type]


def test_equal_parts_give_equal_keys_and_every_part_counts() -> None:
    assert _parts().key == _parts().key
    assert explain_change(_parts(), _parts()) == []
    variations = [
        {"function_digest": "sha256:f2"},
        {"python": "3.12.0"},
        {"modules": {"lab.helpers": {"smooth": "sha256:s2", MODULE_LEVEL: "sha256:m1"}}},
        {"packages": {"numpy": "2.0.0"}},
        {"arguments": {"degree": "sha256:d2", "x": "sha256:x1"}},
        {"lineage": ("sha256:gen2",)},
    ]
    keys = {_parts(**change).key for change in variations}  # type: ignore[arg-type]
    assert len(keys) == len(variations) and _parts().key not in keys


def test_a_changed_key_is_explained_by_what_changed() -> None:
    now = _parts(
        modules={"lab.helpers": {"smooth": "sha256:s2", MODULE_LEVEL: "sha256:m1"}},
        packages={"numpy": "2.0.0", "scipy": "1.13.0"},
        arguments={"degree": "sha256:d2", "x": "sha256:x1"},
    )
    reasons = explain_change(_parts(), now)
    assert reasons == [
        "in the module lab.helpers (lab/helpers.py), smooth changed",
        "the package numpy changed from 1.26.4 to 2.0.0",
        "the package scipy is new",
        "the argument degree has another value",
    ]


def test_key_parts_survive_the_record() -> None:
    parts = _parts()
    assert KeyParts.from_record(parts.as_record()) == parts
    assert KeyParts.from_record(parts.as_record()).key == parts.key


def test_a_steps_parts_name_its_code_its_modules_and_its_packages(tmp_path: Path) -> None:
    import importlib
    import sys

    import yaml

    from mitosis.kernel_cache import step_key_parts

    _write(
        tmp_path,
        {
            "keylab/__init__.py": "",
            "keylab/steps.py": "import os\nimport yaml\nfrom .util import twice\n\n\n"
            "def gen(n=3):\n    return {'main': twice(n)}\n",
            "keylab/util.py": "def twice(n):\n    return 2 * n\n",
        },
    )
    sys.path.insert(0, str(tmp_path))
    try:
        steps = importlib.import_module("keylab.steps")
        parts = step_key_parts(steps.gen, {"n": "sha256:n3"}, (), [tmp_path])
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("keylab")]:
            del sys.modules[name]
    assert parts.function == "keylab.steps:gen"
    assert set(parts.modules) == {"keylab", "keylab.steps", "keylab.util"}
    assert parts.files["keylab.util"] == str(Path("keylab/util.py"))
    assert parts.packages == {"PyYAML": yaml.__version__}  # os is the standard library's
    assert parts.arguments == {"n": "sha256:n3"}
