"""The variant registry: one claim file per variant, created once and never rewritten.

``variants/<step>/<arg>/<variant>.yaml`` records the fingerprint of the value a variant
name first meant. Claims are created with ``os.link`` so that of several processes
claiming one variant at the same moment exactly one wins, on a local disk and on NFS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mitosis.atomic import create_exclusive
from mitosis.errors import TrialsFolderError, VariantConflictError

REGISTRY_DIR = "variants"
ITERATIONS_DIR = ".iterations"
# Lower case only: on a case-insensitive disk (macOS, Windows) "Fast" and "fast" must not
# share a file, so upper-case letters are percent-encoded like any other byte.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_NAME = 120


def encode_name(name: str) -> str:
    """A file name for any Unicode string: no separators, no dots, bounded length.

    Bytes outside ``[a-z0-9_-]`` are percent-encoded, so ``../x`` or a NUL can never
    become a path; very long names keep a readable prefix plus a hash of the whole.
    """
    # surrogatepass: a name decoded from undecodable argv bytes must still get a file name.
    raw = name.encode("utf-8", "surrogatepass")
    encoded = "".join(chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in raw)
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(raw).hexdigest()[:16]
        encoded = f"{encoded[: _MAX_NAME - 20]}~{digest}"
    return encoded or "%"


@dataclass(frozen=True)
class Claim:
    """What a variant name is locked to."""

    step: str
    arg: str
    variant: str
    fingerprint: str
    rendering: str
    trial: str

    def as_yaml(self) -> str:
        """The claim file's content."""
        return yaml.safe_dump(self.__dict__, sort_keys=False, allow_unicode=True)


def claim_path(trials_folder: Path, step: str, arg: str, variant: str) -> Path:
    """Where the claim of ``step.arg=variant`` lives."""
    folder = trials_folder / REGISTRY_DIR / encode_name(step) / encode_name(arg)
    return folder / f"{encode_name(variant)}.yaml"


def read_claim(path: Path) -> Claim | None:
    """The claim stored at ``path``, or None when the variant is unclaimed.

    A claim file that exists but cannot be read is refused rather than ignored: ignoring it
    would silently unlock the variant.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, str(error)) from None
    try:
        data: Any = yaml.safe_load(text)
        return Claim(**{field: str(data[field]) for field in Claim.__dataclass_fields__})
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise _unreadable(path, f"{type(error).__name__}: {error}") from None


def _unreadable(path: Path, why: str) -> VariantConflictError:
    why = " ".join(why.split())  # a YAML parser's report runs over several lines
    return VariantConflictError(
        f"the variant claim {path} cannot be read ({why}); restore it from a backup or a "
        "colleague's copy (deleting it lets the next trial lock the variant anew)."
    )


def _conflict(existing: Claim, wanted: Claim) -> VariantConflictError:
    stored, new = existing.rendering, wanted.rendering
    if stored == new:
        # Renderings are short (an array shows only dtype and shape): show what differs.
        stored, new = f"{stored} [{existing.fingerprint}]", f"{new} [{wanted.fingerprint}]"
    return VariantConflictError(
        f"variant {wanted.variant!r} of step {wanted.step!r}, argument {wanted.arg!r} is "
        f"locked to {stored} (claimed by trial {existing.trial}), but it now means {new}; "
        "give the new value a new variant name, or restore the old value."
    )


def check_claim(trials_folder: Path, wanted: Claim) -> bool:
    """Raise on a conflicting claim; return whether the variant is claimed already."""
    path = claim_path(trials_folder, wanted.step, wanted.arg, wanted.variant)
    existing = read_claim(path)
    if existing is None:
        return False
    if (existing.step, existing.arg, existing.variant) != (wanted.step, wanted.arg, wanted.variant):
        # Only a truncated-hash collision or a hand-copied file can get here.
        raise VariantConflictError(
            f"the claim file {path} belongs to {existing.step}.{existing.arg}="
            f"{existing.variant!r}, not {wanted.step}.{wanted.arg}={wanted.variant!r}; "
            "choose another variant name."
        )
    if existing.fingerprint != wanted.fingerprint:
        raise _conflict(existing, wanted)
    return True


def claim(trials_folder: Path, wanted: Claim) -> bool:
    """Lock ``wanted.variant`` to its value, or raise if it already means something else.

    Returns whether this call created the claim (False: it was already locked to this value).
    """
    if check_claim(trials_folder, wanted):
        return False
    path = claim_path(trials_folder, wanted.step, wanted.arg, wanted.variant)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if create_exclusive(path, wanted.as_yaml()):
            return True
    # Another process won the race: its value stands, ours must equal it.
    check_claim(trials_folder, wanted)
    return False


def list_claims(trials_folder: Path) -> list[Claim]:
    """Every claim in the registry."""
    root = trials_folder / REGISTRY_DIR
    claims = []
    for directory, _, files in os.walk(root):
        if ITERATIONS_DIR in Path(directory).relative_to(root).parts:
            continue
        for name in sorted(files):
            if name.endswith(".yaml") and not name.startswith("."):
                with contextlib.suppress(VariantConflictError):
                    found = read_claim(Path(directory) / name)
                    if found is not None:
                        claims.append(found)
    return claims


def take_iteration(
    trials_folder: Path, experiment: str, variant: str, trial_id: str, new_trial: bool = False
) -> int:
    """How many earlier non-debug trials ran this variant; concurrency-safe.

    Each trial creates the first free numbered file in the variant's counter folder,
    exclusively, so two concurrent trials can never get the same number. A trial that
    asks again (a Dask task rerun after its worker died) gets the number it already has;
    a ``new_trial``, whose id was allocated just now, cannot have one, and skips reading
    every earlier number's file (thousands, for a variant run thousands of times).
    """
    identity = f"{experiment}\0{variant}".encode("utf-8", "surrogatepass")
    key = hashlib.sha256(identity).hexdigest()[:24]
    folder = trials_folder / REGISTRY_DIR / ITERATIONS_DIR / key
    with _writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [name for name in os.listdir(folder) if name.isdigit()]
        for name in [] if new_trial else numbers:
            with contextlib.suppress(OSError):
                if (folder / name).read_text(encoding="utf-8") == trial_id:
                    return int(name)
        number = len(numbers)
        while not create_exclusive(folder / str(number), trial_id):
            number += 1
    return number


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a full disk or a read-only share into a refusal that names the place."""
    try:
        yield
    except OSError as error:
        raise TrialsFolderError(
            f"cannot write the variant registry at {path}: {error.strerror or error}; "
            "check the trials folder's permissions and free space."
        ) from None
