"""This user's cache of work a later mitosis-nb process can skip: derived data only, which
any process may delete at any moment and every process of the user shares.

It lives in ``$XDG_CACHE_HOME/mitosis-nb`` (``~/.cache/mitosis-nb`` without it), readable by
the user only. Each user of it writes atomically, so processes running at once never read
half a file; where the folder cannot be made (a read-only home), nothing is cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mitosis.atomic import write_atomic

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


class KeptTexts:
    """Texts kept under a digest of everything they were made from, in the cache's folder
    ``name``: what a process made, a later one reads back instead of making it again.

    Past ``most`` texts, the least recently used half goes, so a cache that gains a text
    with every new input stays bounded. Without a usable folder nothing is kept.
    """

    SUFFIX = ".txt"

    def __init__(self, name: str, most: int, folder: Path | None = None) -> None:
        self.name, self.most = name, most
        self._folder = folder

    @functools.cached_property
    def folder(self) -> Path | None:
        """Where the texts are kept; found (and made) when first needed."""
        return self._folder if self._folder is not None else user_cache_dir(self.name)

    def _path(self, made_from: object) -> Path | None:
        if self.folder is None:
            return None
        text = json.dumps(made_from, sort_keys=True, default=str)
        return self.folder / (hashlib.sha256(text.encode("utf-8")).hexdigest() + self.SUFFIX)

    def get(self, made_from: object) -> str | None:
        """The text kept for ``made_from`` (any JSON-able description), or None."""
        path = self._path(made_from)
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: kept the longest
        return text

    def put(self, made_from: object, text: str) -> None:
        """Keep ``text`` for ``made_from``; a cache that cannot be written only costs time."""
        path = self._path(made_from)
        if path is None:
            return
        with contextlib.suppress(OSError):
            write_atomic(path, text)
            self._drop_least_used()

    def _drop_least_used(self) -> None:
        assert self.folder is not None
        with os.scandir(self.folder) as found:
            kept = [entry for entry in found if entry.name.endswith(self.SUFFIX)]
        if len(kept) <= self.most:
            return
        kept.sort(key=lambda entry: entry.stat().st_mtime)
        for entry in kept[: len(kept) - self.most // 2]:
            with contextlib.suppress(OSError):  # another process dropped it first
                os.unlink(entry.path)
