"""Objects a fingerprint names rather than walks: importable functions, classes and modules,
and the pickle recipe that rebuilds a plain object.

Internal to ``mitosis.core.fingerprint``.
"""

from __future__ import annotations

import copyreg
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

from mitosis.core.fingerprint_nodes import UNTRACK, Node, Refusal, node

# Pickle's reconstructors for plain objects; typeshed does not declare them.
NEWOBJ = vars(copyreg)["__newobj__"]
NEWOBJ_EX = vars(copyreg)["__newobj_ex__"]


def dotted(target: object) -> str:
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", "?")
    return f"{module}.{name}"


def describe(value: object) -> str:
    if isinstance(value, type):
        return f"the class {dotted(value)}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"the function {dotted(value)}"
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else dotted(kind)
    return f"a value of type {name}"


def importable_path(target: object, what: str) -> str:
    """``module:qualname`` of a function or class, checked to import back to ``target``."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise Refusal(what, "it has no module and qualified name to import it by")
    return _verified_path(module, qualname, target, what)


def _verified_path(module: str, qualname: str, target: object, what: str) -> str:
    if "<lambda>" in qualname:
        raise Refusal(
            what,
            "a lambda has no name another process can import",
            f"define it with def at the top level of a module instead, or {UNTRACK}",
        )
    if "<locals>" in qualname:
        raise Refusal(
            what,
            "it is defined inside a function, so it cannot be imported",
            f"define it at the top level of a module instead, or {UNTRACK}",
        )
    if module == "__main__":
        raise Refusal(what, "it is defined in __main__, which another process cannot import")
    try:
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as error:
        raise Refusal(what, f"{module}:{qualname} does not import ({error})") from None
    if found is not target:
        raise Refusal(what, f"{module}:{qualname} imports a different object")
    return f"{module}:{qualname}"


def encode_global(value: object) -> Node:
    path = importable_path(value, describe(value))
    return node(b"g", path.encode(), path)


def encode_module(value: types.ModuleType) -> Node:
    name = value.__name__
    try:
        found = importlib.import_module(name)
    except Exception as error:
        raise Refusal(f"the module {name}", f"it does not import ({error})") from None
    if found is not value:
        raise Refusal(f"the module {name}", "importing its name gives a different module")
    return node(b"m", name.encode(), f"<module {name!r}>")


def is_global(value: object) -> bool:
    if isinstance(value, (type, types.FunctionType)):
        return True
    if isinstance(value, types.BuiltinFunctionType):
        # len has builtins as __self__; "abc".upper is bound to a value and is a method.
        owner = getattr(value, "__self__", None)
        return owner is None or isinstance(owner, types.ModuleType)
    # numpy ufuncs (numpy.sin) are module-level names too.
    return type(value).__module__ == "numpy" and type(value).__name__ == "ufunc"


def _accepts_keyword(method: Callable[..., object], name: str) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def has_fields(value: object) -> bool:
    if hasattr(value, "__dict__"):
        return True
    return any("__slots__" in vars(cls) for cls in type(value).__mro__ if cls is not object)


def state_attributes(state: object) -> dict[str, object] | None:
    """The attribute dict of a plain object's pickled state, or None if it has another shape."""
    if state is None:
        return {}
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        merged = dict(state[0] or {})
        merged.update(state[1])  # the __slots__ half
        state = merged
    if isinstance(state, dict) and all(isinstance(key, str) for key in state):
        return state
    return None


def call_get_params(get_params: Callable[..., object], what: str) -> dict[str, object]:
    # deep=False: nested estimators are fingerprinted as objects of their own, once.
    try:
        deep = _accepts_keyword(get_params, "deep")
        params = get_params(deep=False) if deep else get_params()
    except Exception as error:
        raise Refusal(what, f"its get_params() raised {error!r}", f"fix it, or {UNTRACK}") from None
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise Refusal(
            what, "its get_params() did not return a dict of names", f"fix it, or {UNTRACK}"
        )
    return params


def reduce_recipe(
    value: object, what: str
) -> str | tuple[object, tuple[object, ...], object, object, object]:
    """The object's pickle recipe (callable, args, state, list items, dict items), or its path."""
    reducer = copyreg.dispatch_table.get(type(value))
    try:
        recipe: Any = reducer(value) if reducer is not None else value.__reduce_ex__(4)
    except Exception as error:
        # Sockets, files, locks, generators: live state that no value can stand for.
        raise Refusal(
            what,
            f"its state cannot be read ({error})",
            f"pass a value that describes it instead, or {UNTRACK}",
        ) from None
    if isinstance(recipe, str):
        # A module-level singleton pickles by name: its identity is that name.
        module = getattr(value, "__module__", None)
        if not isinstance(module, str):
            raise Refusal(what, "it has no module to import it by")
        return _verified_path(module, recipe, value, what)
    if not (isinstance(recipe, tuple) and len(recipe) >= 2 and isinstance(recipe[1], tuple)):
        raise Refusal(what, f"its __reduce__() gave {type(recipe).__name__}, not a recipe")
    func, args, state, list_items, dict_items = (*recipe, None, None, None)[:5]
    if func is NEWOBJ_EX:
        cls, args, kwargs = args
        func, args, state = NEWOBJ, (cls, *args), (state, kwargs)
    # Materialise the item iterators: they are part of the value (OrderedDict, defaultdict).
    list_items = None if list_items is None else list(list_items)
    dict_items = None if dict_items is None else dict(dict_items)
    return func, tuple(args), state, list_items, dict_items
