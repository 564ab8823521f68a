"""Tests for mitosis.core.fingerprint: canonical, collision-free, process-independent digests."""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import functools
import importlib
import json
import math
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mitosis.core.fingerprint import RENDERING_LIMIT, Fingerprint, fingerprint
from mitosis.errors import FingerprintError, MitosisError

REPO_ROOT = Path(__file__).resolve().parents[1]
UNTRACK = "mark the parameter untracked with a leading '+'"
MOVE = "move it to an importable module"


def digest(value: object) -> str:
    return fingerprint(value).digest


def refusal(value: object) -> str:
    """The message of the FingerprintError that ``value`` must raise."""
    with pytest.raises(FingerprintError) as caught:
        fingerprint(value)
    assert isinstance(caught.value, MitosisError)
    message = str(caught.value)
    assert UNTRACK in message, message
    return message


# --- a type-aware model of equality, to test the digests against ---------------------------


def canonical(value: object) -> object:
    """What the fingerprint must respect: 1, 1.0 and True differ; order inside sets does not."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else value.hex())  # type: ignore[attr-defined]
    if kind is complex:
        return ("complex", canonical(value.real), canonical(value.imag))  # type: ignore[attr-defined]
    if kind in (list, tuple):
        return (kind.__name__, tuple(canonical(item) for item in value))  # type: ignore[attr-defined]
    if kind is dict:
        items = value.items()  # type: ignore[attr-defined]
        return ("dict", tuple(sorted(repr((canonical(k), canonical(v))) for k, v in items)))
    if kind in (set, frozenset):
        return (kind.__name__, tuple(sorted(repr(canonical(item)) for item in value)))  # type: ignore[attr-defined]
    return (kind.__name__, value)


def reordered(value: object) -> object:
    """An equal value whose dicts and sets were filled in the opposite order."""
    if type(value) is dict:
        return {k: reordered(v) for k, v in reversed(list(value.items()))}
    if type(value) in (set, frozenset):
        return type(value)(reversed(list(value)))  # type: ignore[call-arg]
    if type(value) in (list, tuple):
        return type(value)(reordered(item) for item in value)  # type: ignore[call-arg]
    return value


# Few, colliding leaves: pairs of values then often agree, or differ only in a type.
SMALL_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, math.inf, math.nan]),
    st.sampled_from([0j, 1 + 0j, 1j]),
    st.text("ab1", max_size=2),
    st.binary(max_size=2),
)
WIDE_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.complex_numbers(),
    st.text(),
    st.binary(),
)


def values(leaves: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.recursive(
        leaves,
        lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
        max_leaves=6,
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(keys, inner, max_size=3)
            | st.sets(keys, max_size=3)
            | st.frozensets(keys, max_size=3)
        ),
        max_leaves=10,
    )


SMALL_VALUES = values(SMALL_LEAVES)
WIDE_VALUES = values(WIDE_LEAVES)
# Flat lists of short lists: where a missing length prefix would make [[], 1] equal [[1]].
SHALLOW_LISTS = st.lists(SMALL_LEAVES | st.lists(SMALL_LEAVES, max_size=2), max_size=3)
PAIRS = st.one_of(
    st.tuples(SMALL_LEAVES, SMALL_LEAVES),
    st.tuples(SHALLOW_LISTS, SHALLOW_LISTS),
    st.tuples(SMALL_VALUES, SMALL_VALUES),
    SMALL_VALUES.map(lambda v: (v, copy.deepcopy(v))),
    SMALL_VALUES.map(lambda v: (v, reordered(v))),
)


@given(WIDE_VALUES)
def test_a_deep_copy_has_the_same_fingerprint(value: object) -> None:
    assert fingerprint(value) == fingerprint(copy.deepcopy(value))


@given(WIDE_VALUES)
def test_dict_and_set_order_does_not_matter(value: object) -> None:
    assert fingerprint(value) == fingerprint(reordered(value))


@settings(max_examples=300)
@given(PAIRS)
def test_digests_are_equal_exactly_when_values_are(pair: tuple[object, object]) -> None:
    first, second = pair
    assert (digest(first) == digest(second)) == (canonical(first) == canonical(second))


@given(WIDE_VALUES)
def test_a_fingerprint_is_a_sha256_digest_and_a_short_rendering(value: object) -> None:
    result = fingerprint(value)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", result.digest)
    assert len(result.rendering) <= RENDERING_LIMIT


# --- across processes and hash seeds -------------------------------------------------------

FIXED_VALUES = """
values = [
    {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"},
    frozenset({"x", "y", "z", ("t", "u"), b"bytes"}),
    {"zeta": 1, "eta": [1, 2.5], "theta": {"a", "b", "c"}, "iota": None},
    {("k", 1): "v", "w": frozenset({"p", "q"}), 3: {"nested": {"deep", "er"}}},
    [1, 1.0, True, None, "s", b"b", bytearray(b"ba"), 3 + 4j, float("nan"), -0.0],
    (..., NotImplemented, slice(None)),
    (2**100, -(2**70), "\\u00e9\\U0001f600"),
    numpy.arange(6, dtype="int32").reshape(2, 3),
    numpy.array(["a", {"b"}], dtype=object),
    numpy.float32(1.5),
    len,
    numpy.sin,
]
"""


def _digests_in_this_process() -> list[list[str]]:
    namespace: dict[str, object] = {"numpy": np}
    exec(FIXED_VALUES, namespace)
    fingerprints = [fingerprint(v) for v in namespace["values"]]  # type: ignore[attr-defined]
    return [[f.digest, f.rendering] for f in fingerprints]


def test_digests_and_renderings_agree_across_processes_and_hash_seeds() -> None:
    script = (
        "import json, numpy\n"
        "from mitosis.core.fingerprint import fingerprint\n"
        + FIXED_VALUES
        + "print(json.dumps([[fingerprint(v).digest, fingerprint(v).rendering] for v in values]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**env, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("0", "1", "12345")
    ]
    expected = _digests_in_this_process()
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert json.loads(out) == expected


# --- collisions ----------------------------------------------------------------------------

OTHER_NAN = struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x01")[0]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([1, 23], [12, 3]),
        (("ab", "c"), ("a", "bc")),
        ((1,), "1"),
        ([1], (1,)),
        ("a", b"a"),
        (b"a", bytearray(b"a")),
        (1, 1.0),
        (1, True),
        (1.0, True),
        (0, False),
        (1.0, 1 + 0j),
        (None, "None"),
        ("", b""),
        ([], ()),
        ({}, set()),
        (set(), frozenset()),
        ([[1], 2], [1, [2]]),
        ([[], 1], [[1]]),
        ([None], []),
        ({"a": 1, "b": 2}, {"a": 2, "b": 1}),
        ({1: 2}, {(1, 2)}),
        (255, -1),
        (2**64, 0),
        (math.nan, "nan"),
    ],
)
def test_different_values_never_collide(first: object, second: object) -> None:
    assert digest(first) != digest(second)


CONFUSABLE = [
    0, 1, -1, 0.0, 1.0, -0.0, True, False, 0j, 1 + 0j, None, "", "0", "1", "None", "True",
    b"", b"1", bytearray(), bytearray(b"1"), (), [], {}, set(), frozenset(), (1,), [1],
    {1}, frozenset({1}), {1: None}, {None: 1}, ("1",), [True], [1.0], [[]], [[], []], [()],
]  # fmt: skip


def test_values_that_python_confuses_all_differ() -> None:
    digests = [digest(value) for value in CONFUSABLE]
    assert len(set(digests)) == len(CONFUSABLE)
    wrapped = [digest([value]) for value in CONFUSABLE] + [digest((v,)) for v in CONFUSABLE]
    assert len(set(wrapped)) == 2 * len(CONFUSABLE)


def test_every_nan_is_the_same_value() -> None:
    assert math.isnan(OTHER_NAN)
    assert digest(math.nan) == digest(OTHER_NAN) == digest(-math.nan)
    assert digest([complex(math.nan, 1)]) == digest([complex(OTHER_NAN, 1)])


def test_renderings_are_short_and_repr_like() -> None:
    assert fingerprint(10).rendering == "10"
    assert fingerprint("fast").rendering == "'fast'"
    assert fingerprint([1, 2, 3]).rendering == "[1, 2, 3]"
    assert fingerprint((1,)).rendering == "(1,)"
    assert fingerprint({"b": 1, "a": 2}).rendering == "{'a': 2, 'b': 1}"
    assert fingerprint(frozenset()).rendering == "frozenset()"
    assert fingerprint(len).rendering == "builtins:len"
    long = fingerprint(list(range(100_000))).rendering
    assert len(long) == RENDERING_LIMIT
    assert long.endswith("…")
    assert fingerprint(10**5000).rendering.endswith("…")


def test_fingerprint_is_a_frozen_value() -> None:
    result = fingerprint(1)
    assert result == Fingerprint(result.digest, "1")
    with pytest.raises(AttributeError):
        result.digest = "x"  # type: ignore[misc]


# --- numpy ---------------------------------------------------------------------------------


def test_equal_arrays_have_equal_fingerprints() -> None:
    grid = np.arange(12.0).reshape(3, 4)
    assert digest(np.arange(3.0)) == digest(np.array([0.0, 1.0, 2.0]))
    # A strided view is fingerprinted by its values, like its contiguous copy.
    assert digest(grid[:, ::2]) == digest(np.ascontiguousarray(grid[:, ::2]))
    assert digest(grid.T) == digest(grid.T.copy())
    assert fingerprint(np.zeros(3)).rendering == "array(float64, shape=(3,))"


def test_arrays_differ_by_dtype_shape_and_values() -> None:
    base = np.arange(6, dtype=np.int64)
    variants = [
        base,
        base.astype(np.int32),
        base.astype(np.float64),
        base.reshape(2, 3),
        base.reshape(3, 2),
        base + 1,
        base.tolist(),
        np.int64(0),
        np.float64(0.0),
        0,
    ]
    assert len({digest(v) for v in variants}) == len(variants)
    assert fingerprint(np.float64(1.5)).rendering == "float64(1.5)"


def test_object_arrays_are_fingerprinted_by_their_elements() -> None:
    first = np.array([1, "a", None], dtype=object)
    assert digest(first) == digest(np.array([1, "a", None], dtype=object))
    assert digest(first) != digest(np.array([1, "b", None], dtype=object))
    assert digest(first) != digest(first.reshape(3, 1))
    assert digest(first) != digest([1, "a", None])
    assert "lambda" in refusal(np.array([lambda: 1, 2], dtype=object))


# --- importable code and objects ------------------------------------------------------------

HELPER_SOURCE = """
import enum
from dataclasses import dataclass


def scale(x):
    return 2 * x


def shadowed():
    return 1


first_shadowed = shadowed


def shadowed():  # rebinding the name: first_shadowed can no longer be imported
    return 2


def make_local():
    def inner():
        return 0

    return inner


class Solver:
    def __init__(self, tol, method="lsq"):
        self.tol = tol
        self.method = method

    @classmethod
    def default(cls):
        return cls(1e-8)


class Ridge:
    def __init__(self, alpha=1.0, inner=None):
        self.alpha = alpha
        self.inner = inner
        self.coef_ = None  # fitted state: not part of the parameters

    def get_params(self, deep=True):
        params = {"alpha": self.alpha, "inner": self.inner}
        if deep and self.inner is not None:
            params["inner__alpha"] = self.inner.alpha
        return params


class Legacy:
    def __init__(self, k):
        self.k = k

    def get_params(self):
        return {"k": self.k}


class Broken:
    def get_params(self, deep=True):
        return ["not", "a", "dict"]


@dataclass(frozen=True)
class Config:
    rate: float
    layers: tuple


class Slotted:
    __slots__ = ("a", "__b")

    def __init__(self, a, b):
        self.a = a
        self.__b = b


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Link:
    def __init__(self):
        self.next = None


class Empty:
    pass
"""


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[ModuleType]:
    """An importable module written for the test; sys.path and sys.modules are restored."""
    (tmp_path / "fp_helper.py").write_text(HELPER_SOURCE)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module("fp_helper")
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            del sys.modules[name]


def test_functions_and_classes_are_fingerprinted_by_import_path(helper: ModuleType) -> None:
    assert fingerprint(helper.scale).rendering == "fp_helper:scale"
    assert fingerprint(helper.Solver).rendering == "fp_helper:Solver"
    assert digest(helper.scale) != digest(helper.Solver)
    assert digest(helper.scale) != digest("fp_helper:scale")
    assert fingerprint(helper.Solver.default).rendering == "fp_helper:Solver.default"
    assert fingerprint(np.sin).rendering == "numpy:sin"


def test_objects_are_fingerprinted_by_class_and_attributes(helper: ModuleType) -> None:
    solver = helper.Solver(1e-8)
    assert digest(solver) == digest(helper.Solver(1e-8, method="lsq"))
    assert digest(solver) != digest(helper.Solver(1e-6))
    assert digest(solver) != digest({"tol": 1e-8, "method": "lsq"})
    assert fingerprint(solver).rendering == "fp_helper:Solver(method='lsq', tol=1e-08)"
    later = helper.Solver.__new__(helper.Solver)
    later.method, later.tol = "lsq", 1e-8  # attributes set in the other order
    assert digest(later) == digest(solver)
    assert digest(helper.Config(0.1, (8, 8))) == digest(helper.Config(0.1, (8, 8)))
    assert digest(helper.Config(0.1, (8, 8))) != digest(helper.Config(0.1, [8, 8]))
    assert digest(helper.Slotted(1, 2)) != digest(helper.Slotted(1, 3))
    assert fingerprint(helper.Empty()).rendering == "fp_helper:Empty()"


def test_get_params_objects_are_fingerprinted_by_their_parameters(helper: ModuleType) -> None:
    ridge = helper.Ridge(alpha=1.0)
    fitted = helper.Ridge(alpha=1.0)
    fitted.coef_ = [0.5, 0.25]
    assert digest(ridge) == digest(fitted)
    assert digest(ridge) != digest(helper.Ridge(alpha=2.0))
    assert fingerprint(ridge).rendering == "fp_helper:Ridge(alpha=1.0, inner=None)"
    nested = helper.Ridge(inner=helper.Ridge(alpha=3.0))
    assert "inner__alpha" not in fingerprint(nested).rendering  # deep=False
    assert digest(nested) != digest(helper.Ridge(inner=helper.Ridge(alpha=4.0)))
    assert fingerprint(helper.Legacy(3)).rendering == "fp_helper:Legacy(k=3)"
    assert "get_params() did not return a dict" in refusal(helper.Broken())


def test_enums_are_fingerprinted_by_class_and_member(helper: ModuleType) -> None:
    assert fingerprint(helper.Color.RED).rendering == "fp_helper:Color.RED"
    assert digest(helper.Color.RED) != digest(helper.Color.BLUE)
    assert digest(helper.Color.RED) != digest(1)


def test_standard_library_values_are_fingerprinted_by_their_pickle_recipe(
    helper: ModuleType,
) -> None:
    assert digest(decimal.Decimal("1.5")) == digest(decimal.Decimal("1.5"))
    assert digest(decimal.Decimal("1.5")) != digest(decimal.Decimal("2.5"))
    assert digest(datetime.date(2026, 1, 2)) != digest(datetime.date(2026, 1, 3))
    assert digest(Path("a/b")) == digest(Path("a") / "b")
    assert digest(functools.partial(helper.scale, 2)) != digest(functools.partial(helper.scale, 3))
    assert digest(collections.OrderedDict(a=1)) != digest({"a": 1})
    assert "lambda" in refusal(functools.partial(lambda x: x, 1))


# --- refusals ------------------------------------------------------------------------------


def test_a_lambda_is_refused() -> None:
    message = refusal(lambda x: x)
    assert "lambda" in message
    assert "define it with def at the top level of a module" in message


def test_a_local_function_and_a_local_class_are_refused(helper: ModuleType) -> None:
    def local() -> None:
        pass

    class Local:
        pass

    for value in (local, helper.make_local(), Local, Local()):
        message = refusal(value)
        assert "inside a function" in message
        assert "define it at the top level of a module" in message


def test_a_name_that_no_longer_imports_to_the_same_object_is_refused(helper: ModuleType) -> None:
    message = refusal(helper.first_shadowed)
    assert "different object" in message
    assert MOVE in message


def test_values_from_main_are_refused() -> None:
    script = textwrap.dedent(
        """
        from mitosis.core.fingerprint import fingerprint
        from mitosis.errors import FingerprintError

        class Settings:
            def __init__(self):
                self.rate = 1

        def step():
            pass

        for value in (Settings(), Settings, step, [1, {"nested": Settings()}]):
            try:
                fingerprint(value)
            except FingerprintError as error:
                print(error)
            else:
                print("accepted")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        assert "__main__" in line
        assert MOVE in line
        assert UNTRACK in line
    assert "value[1]['nested']" in lines[3]


def test_an_object_with_only_a_memory_address_is_refused() -> None:
    assert "memory address" in refusal(object())


def test_live_objects_are_refused() -> None:
    assert "generator" in refusal(x for x in range(3))
    with socket.socket() as sock:
        assert "socket" in refusal(sock)


def test_cycles_are_refused_without_recursion_error(helper: ModuleType) -> None:
    looped: list[object] = [1]
    looped.append(looped)
    assert "reference cycle" in refusal(looped)
    mapping: dict[str, object] = {}
    mapping["self"] = mapping
    assert "reference cycle" in refusal(mapping)
    link = helper.Link()
    link.next = helper.Link()
    link.next.next = link
    assert "reference cycle" in refusal(link)
    shared = [1, 2]
    assert digest([shared, shared]) == digest([[1, 2], [1, 2]])  # sharing is not a cycle


def test_values_nested_too_deeply_are_refused() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert "nested too deeply" in refusal(deep)


# --- builtin singletons ----------------------------------------------------------------------


def test_ellipsis_and_not_implemented_fingerprint_each_as_its_own_value() -> None:
    digests = {
        repr(value): fingerprint(value).digest
        for value in (..., NotImplemented, None, "...", "Ellipsis", "NotImplemented", (...,))
    }
    assert len(set(digests.values())) == len(digests), digests
    assert fingerprint(...).rendering == "Ellipsis"
    # Inside a value, as an array index is often written: `x[..., 0]`.
    held = fingerprint({"index": (..., 0)})
    assert held == fingerprint({"index": (Ellipsis, 0)}) and "Ellipsis" in held.rendering
    assert held != fingerprint({"index": (None, 0)})
