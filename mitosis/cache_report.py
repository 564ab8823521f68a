"""What the step cache holds: the logic of ``mitosis-nb cache list``, which only prints
what this returns. Nothing here writes to the trials folder, and nothing is ever deleted
(``cache_why`` explains a step that ran)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitosis import cache_store
from mitosis.cache_store import CacheEntry

__all__ = ["CacheListing", "list_cache", "readable_size", "short_key"]

# How many hex digits of a key people see: enough to tell a folder's keys apart.
SHORT_KEY = 12


def short_key(key: str) -> str:
    """``sha256:0123456789ab`` of a whole key."""
    kind, _, digest = key.partition(":")
    return f"{kind}:{digest[:SHORT_KEY]}" if digest else key[:SHORT_KEY]


def readable_size(size: int) -> str:
    """Bytes as people read them: ``812 B``, ``3.4 kB``, ``1.2 GB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class CacheListing:
    """Every result the cache can serve, by trial then step, and the bytes they take."""

    entries: tuple[CacheEntry, ...]

    @property
    def total_size(self) -> int:
        """The bytes of every cached result (each already in its trial's folder)."""
        return sum(entry.size for entry in self.entries)

    def as_dict(self) -> dict[str, Any]:
        """For ``cache list --json``."""
        return {
            "entries": [
                {
                    "trial": entry.trial,
                    "step": entry.step,
                    "key": entry.key,
                    "results": entry.results,
                    "size": entry.size,
                }
                for entry in self.entries
            ],
            "total_size": self.total_size,
        }

    def as_text(self) -> str:
        """One line per entry, then the total; or one sentence when the cache is empty."""
        if not self.entries:
            return "the step cache is empty: no trial has fed it a step's result yet."
        rows = [("TRIAL", "STEP", "KEY", "SIZE")]
        rows += [(e.trial, e.step, short_key(e.key), readable_size(e.size)) for e in self.entries]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        lines = [
            "  ".join(row[column].ljust(widths[column]) for column in range(3)) + "  " + row[3]
            for row in rows
        ]
        count = len(self.entries)
        lines.append(
            f"{count} cached result{'' if count == 1 else 's'}, "
            f"{readable_size(self.total_size)} in all (kept in their trials' folders)"
        )
        return "\n".join(lines)


def list_cache(trials_folder: Path) -> CacheListing:
    """What the trials folder's ``step-cache/`` holds whose results are still there."""
    return CacheListing(tuple(cache_store.list_entries(trials_folder)))
