"""Import the user's callables and lookup dictionaries by ``module:qualname``."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mitosis.core.steps import LookupTables, load_object, lookup_tables
from mitosis.errors import UserCodeError


def ensure_importable(root: Path) -> None:
    """Make the investigation's own packages importable, as they are in its kernel."""
    text = str(root)
    if text not in sys.path:
        sys.path.insert(0, text)


# The modules ``import_early`` could not import, and how each failed.
_FAILED_EARLY: dict[str, BaseException] = {}


def import_early(modules: Iterable[str]) -> None:
    """Import ``modules`` now, before the steps that name them are looked at. A module that
    fails is not imported again: looking at its step raises the same error (its import ran
    once, as without this)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as error:  # the user's module may raise anything while importing
            _FAILED_EARLY[name] = error


def _import_module(name: str) -> None:
    failed = _FAILED_EARLY.get(name)
    if failed is not None:
        raise failed
    importlib.import_module(name)


def _import_object(path: str) -> Any:
    """Import ``module:qualname``, or refuse naming the module and the error."""
    module_name, _, qualname = path.partition(":")
    try:
        _import_module(module_name)
    except Exception as error:  # the user's module may raise anything while importing
        raise UserCodeError(
            f"cannot import module {module_name!r} (for {path}): "
            f"{type(error).__name__}: {error}; check the name and that it imports."
        ) from None
    try:
        return load_object(path)
    except AttributeError:
        raise UserCodeError(
            f"module {module_name!r} has no {qualname!r} (for {path}); check [tool.mitosis.steps]."
        ) from None


def import_callable(path: str) -> Any:
    """Import a step's callable and check that it can be called."""
    target = _import_object(path)
    if not callable(target):
        raise UserCodeError(f"{path} is a {type(target).__name__}, not a callable.")
    return target


def import_lookup(path: str | None) -> LookupTables:
    """Import a step's lookup dictionary (argument -> variant -> value), or a module namespace
    holding such tables beside other names; none gives no tables."""
    if path is None:
        return LookupTables({}, {})
    lookup = _import_object(path)
    if not isinstance(lookup, Mapping):
        raise UserCodeError(
            f"{path} must be a dict mapping argument -> variant name -> value (or a module's "
            f"vars()), got {type(lookup).__name__}."
        )
    return lookup_tables(lookup)


def module_file(path: str) -> Path | None:
    """The file that defines ``module:qualname``'s module, if it is a file."""
    module = sys.modules.get(path.partition(":")[0])
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def _parameters(function: Any, skip_first: bool) -> list[inspect.Parameter] | None:
    # ``skip_first`` leaves out a later step's input from the step before; None: unreadable.
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    return parameters[1:] if skip_first else parameters


def accepted_arguments(function: Any, skip_first: bool) -> tuple[set[str], bool]:
    """The keyword arguments ``function`` takes, and whether it takes any (``**kwargs``).

    ``skip_first`` leaves out the first parameter: a later step's input from the step before.
    A callable whose signature cannot be read is taken to accept anything.
    """
    parameters = _parameters(function, skip_first)
    if parameters is None:
        return set(), True
    names = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def takes_positional(function: Any) -> bool:
    """Whether ``function`` can be called with one positional argument (a later step's
    input); a callable whose signature cannot be read is taken to."""
    parameters = _parameters(function, skip_first=False)
    if parameters is None:
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in (*positional, inspect.Parameter.VAR_POSITIONAL) for p in parameters)


def default_arguments(function: Any, skip_first: bool, given: Iterable[str]) -> dict[str, Any]:
    """The default values ``function`` uses for the keyword arguments not ``given``
    (``skip_first`` as in ``accepted_arguments``); none when the signature cannot be read."""
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    given = set(given)
    return {
        p.name: p.default
        for p in _parameters(function, skip_first) or []
        if p.kind in keyword and p.default is not inspect.Parameter.empty and p.name not in given
    }


def required_arguments(function: Any, skip_first: bool) -> tuple[str, ...]:
    """The parameters of ``function`` without a default, in order (``skip_first`` as in
    ``accepted_arguments``); none when the signature cannot be read."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return tuple(
        p.name
        for p in _parameters(function, skip_first) or []
        if p.default is inspect.Parameter.empty and p.kind not in variadic
    )
