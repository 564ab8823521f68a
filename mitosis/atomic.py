"""The only code that writes into a trials folder.

Readers (``list``, the index, a colleague's browser) may look at any moment, and a
runner may be killed at any moment, so a file in a trials folder is either absent or
complete: content goes to a temporary file in the same directory, is flushed to disk,
then takes its final name with ``os.replace`` (or ``os.link`` when it must not overwrite).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{name[:40]}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(directory / name)  # a full disk: say which file it refused
        raise
    return temp


def _encode(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    temp = _write_temp(path.parent, path.name, _encode(data))
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def create_exclusive(path: Path, data: bytes | str) -> bool:
    """Create ``path`` with ``data`` only if it does not exist; return whether we created it.

    ``os.link`` fails when the target exists, atomically, on local disks and on NFS, so of
    several processes racing to create one file exactly one succeeds, and the winner's file
    is complete before anyone can read it.
    """
    temp = _write_temp(path.parent, path.name, _encode(data))
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return True


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` to build a file in (a database, say).

    When the block ends without an exception the file is flushed to disk and takes the
    name ``path`` atomically; otherwise it is removed and ``path`` is left as it was.
    """
    temp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name[:40]}"
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def create_marker(path: Path) -> None:
    """Create an empty ``path``: an empty file needs no free block, so it can still be made
    on a disk too full for anything else, and it is whole the moment it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def reserve_space(directory: Path, size: int) -> Path | None:
    """A temporary file of ``size`` bytes holding room on the disk; None if there is none.

    Deleting it later gives that room back to a write that must not fail for want of it
    (a trial's final record), however full the disk got meanwhile.
    """
    try:
        return _write_temp(directory, "reserve", bytes(size))
    except OSError:
        return None
