"""This user's cache of work a later mitosis-nb process can skip: derived data only, which
any process may delete at any moment and every process of the user shares.

It lives in ``$XDG_CACHE_HOME/mitosis-nb`` (``~/.cache/mitosis-nb`` without it), readable by
the user only. Each user of it writes atomically, so processes running at once never read
half a file; where the folder cannot be made (a read-only home), nothing is cached.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

APP_DIR = "mitosis-nb"


def user_cache_dir(name: str) -> Path | None:
    """The folder ``name`` of this user's cache, created if need be; None if it cannot be."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / APP_DIR / name
    if not folder.is_absolute():  # no home folder: never a cache in the working folder
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def jinja_bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja2's own cache of compiled templates, in this user's cache; None if there is none.

    Compiling nbconvert's page templates costs every new process about 0.05 CPU-s. Jinja2
    checks each cached entry against the template's source and its own version, and
    replaces a file only whole (a temporary file, then a rename).
    """
    folder = user_cache_dir("jinja2")
    if folder is None:
        return None
    import jinja2  # only a process that renders templates pays for the import

    return jinja2.FileSystemBytecodeCache(str(folder))
