"""The variant registry: one claim file per variant, created once and never rewritten.

``variants/<step>/<arg>/<variant>.yaml`` records the fingerprint of the value a variant
name first meant. Claims are created with ``os.link`` so that of several processes
claiming one variant at the same moment exactly one wins, on a local disk and on NFS.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mitosis.atomic import create_exclusive
from mitosis.errors import VariantConflictError

REGISTRY_DIR = "variants"
ITERATIONS_DIR = ".iterations"
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_NAME = 120


def encode_name(name: str) -> str:
    """A file name for any Unicode string: no separators, no dots, bounded length.

    Bytes outside ``[A-Za-z0-9_-]`` are percent-encoded, so ``../x`` or a NUL can never
    become a path; very long names keep a readable prefix plus a hash of the whole.
    """
    encoded = "".join(chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in name.encode("utf-8"))
    if len(encoded) > _MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        encoded = f"{encoded[:_MAX_NAME - 20]}~{digest}"
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
    return (
        trials_folder / REGISTRY_DIR / encode_name(step) / encode_name(arg)
        / f"{encode_name(variant)}.yaml"
    )


def read_claim(path: Path) -> Claim | None:
    """The claim stored at ``path``, or None when there is none (or it is unreadable)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Claim(**{field: str(data[field]) for field in Claim.__dataclass_fields__})
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _conflict(existing: Claim, wanted: Claim) -> VariantConflictError:
    return VariantConflictError(
        f"variant {wanted.variant!r} of {wanted.step}.{wanted.arg} is locked to "
        f"{existing.rendering} (by trial {existing.trial}), but now means {wanted.rendering}; "
        "give the new value a new variant name."
    )


def check_claim(trials_folder: Path, wanted: Claim) -> bool:
    """Raise on a conflicting claim; return whether the variant is claimed already."""
    existing = read_claim(claim_path(trials_folder, wanted.step, wanted.arg, wanted.variant))
    if existing is None:
        return False
    if existing.fingerprint != wanted.fingerprint:
        raise _conflict(existing, wanted)
    return True


def claim(trials_folder: Path, wanted: Claim) -> None:
    """Lock ``wanted.variant`` to its value, or raise if it already means something else."""
    path = claim_path(trials_folder, wanted.step, wanted.arg, wanted.variant)
    if check_claim(trials_folder, wanted):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if create_exclusive(path, wanted.as_yaml()):
        return
    # Another process won the race: its value stands, ours must equal it.
    check_claim(trials_folder, wanted)


def list_claims(trials_folder: Path) -> list[Claim]:
    """Every claim in the registry."""
    root = trials_folder / REGISTRY_DIR
    claims = []
    for directory, _, files in os.walk(root):
        if ITERATIONS_DIR in Path(directory).relative_to(root).parts:
            continue
        for name in sorted(files):
            if name.endswith(".yaml") and not name.startswith("."):
                found = read_claim(Path(directory) / name)
                if found is not None:
                    claims.append(found)
    return claims


def take_iteration(trials_folder: Path, experiment: str, variant: str, trial_id: str) -> int:
    """How many earlier non-debug trials ran this variant; concurrency-safe.

    Each trial creates the first free numbered file in the variant's counter folder,
    exclusively, so two concurrent trials can never get the same number.
    """
    key = hashlib.sha256(f"{experiment}\0{variant}".encode()).hexdigest()[:24]
    folder = trials_folder / REGISTRY_DIR / ITERATIONS_DIR / key
    folder.mkdir(parents=True, exist_ok=True)
    number = sum(1 for name in os.listdir(folder) if name.isdigit())
    while not create_exclusive(folder / str(number), trial_id):
        number += 1
    return number
