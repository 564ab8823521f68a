"""The step cache as a trial's kernel uses it: before each step, its key; then either the
result an earlier trial computed for that key, or the step run and its result offered.

A failure of the cache itself (a module that cannot be parsed, an argument without a stable
identity) never fails the trial: the step runs, and its record holds no key.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import pickle
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mitosis import cache_store
from mitosis.core.cache_key import KeyParts
from mitosis.core.kernel_protocol import CachePolicy, KernelStep
from mitosis.kernel_cache import CacheUnavailable, argument_digests, repository_of, step_key_parts

_log = logging.getLogger("mitosis.cache")


class StepCache:
    """One trial's view of the step cache, kept across its steps (a step's key includes the
    keys of the steps before it)."""

    def __init__(self, trial_folder: Path, steps: Sequence[KernelStep]) -> None:
        self.trials_folder = trial_folder.parent
        self.trial = trial_folder.name
        self._policies = {step.name: step.cache for step in steps}
        self._keys: dict[str, str | None] = {}

    def prepare(
        self, name: str, function: Callable[..., Any], arguments: Mapping[str, Any]
    ) -> StepLookup:
        """Step ``name``'s key and, if the cache may serve it, the earlier result; waits while
        another trial computes the same key. ``arguments`` include the step's defaults."""
        policy = self._policies.get(name)
        parts = self._parts(name, function, arguments) if policy is not None else None
        self._keys[name] = parts.key if parts is not None else None
        if parts is None or policy is None:
            return StepLookup(self, name, None, CachePolicy(take=False, feed=False))
        return StepLookup(self, name, parts, policy)

    def _parts(
        self, name: str, function: Callable[..., Any], arguments: Mapping[str, Any]
    ) -> KeyParts | None:
        lineage = [self._keys.get(earlier) for earlier in self._before(name)]
        if None in lineage:
            return None  # its input comes from a step without a key: nothing to match it by
        try:
            roots = [repository_of(Path(inspect.getfile(function)).resolve())]
            digests = argument_digests(arguments)
            return step_key_parts(function, digests, [k for k in lineage if k], roots)
        except CacheUnavailable as reason:
            _log.info("step %s always runs: %s", name, reason)
        except Exception as error:  # the cache's own failure: the step runs as if it had none
            _log.warning("step %s runs without the cache: %s", name, error)
        return None

    def _before(self, name: str) -> list[str]:
        order = list(self._policies)
        return order[: order.index(name)]


class StepLookup:
    """What the cache says about one step: its key parts, and the earlier result if any."""

    def __init__(
        self, cache: StepCache, name: str, parts: KeyParts | None, policy: CachePolicy
    ) -> None:
        self._cache = cache
        self._name = name
        self._parts = parts
        self._policy = policy
        self._hold = contextlib.ExitStack()
        self.cached_from: dict[str, str] | None = None
        self.result: Any = None
        self.found = self._look_up() if parts is not None else None

    def _look_up(self) -> cache_store.CacheEntry | None:
        assert self._parts is not None
        key, folder = self._parts.key, self._cache.trials_folder
        if not self._policy.take:
            return None
        if not self._policy.feed:  # it will not offer its result: nobody waits for it
            return cache_store.find(folder, key)
        # Hold the key's lock until the step is computed (or find what another computed).
        return self._hold.enter_context(cache_store.computing(folder, key, self._cache.trial))

    def summary(self) -> dict[str, Any] | None:
        """What the step's record says of the cache: ``key``, ``parts``, ``cached_from``."""
        if self._parts is None:
            return None
        return {
            "key": self._parts.key,
            "parts": self._parts.as_record(),
            "cached_from": self.cached_from,
        }

    def take(self, destination: Path) -> bool:
        """Whether the cache served the step: the earlier result given to this trial's folder
        as its own and loaded (``result``). One gone or damaged since it was found is not
        taken: the step is computed after all."""
        if self.found is None:
            return False
        source = self._cache.trials_folder / self.found.results
        try:
            _link_or_copy(source, destination)
            with destination.open("rb") as file:
                self.result = pickle.load(file)  # noqa: S301 - a result this trials folder computed
        except Exception as error:
            _log.warning("step %s runs: its cached result cannot be read (%s)", self._name, error)
            return False
        self.cached_from = {"trial": self.found.trial, "step": self.found.step}
        self._hold.close()
        return True

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """While the step runs; then the key's lock, if held, is let go."""
        with self._hold:
            yield

    def computed(self, results: Path) -> None:
        """Offer the step's saved result to later trials (never from a ``--debug`` trial)."""
        if self._parts is None or not self._policy.feed:
            return
        entry = cache_store.CacheEntry(
            key=self._parts.key,
            trial=self._cache.trial,
            step=self._name,
            results=f"{self._cache.trial}/{results.name}",
            size=results.stat().st_size,
        )
        try:
            cache_store.publish(self._cache.trials_folder, entry)
        except OSError as error:  # a result not offered is only a later step computed again
            _log.warning(
                "step %s: its result could not be offered to the cache: %s", self._name, error
            )


def _link_or_copy(source: Path, destination: Path) -> None:
    """``destination`` holds ``source``'s bytes, whole or not at all: a hard link where the
    file system allows one (results are never rewritten), else a copy."""
    temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.replace(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
