"""Expectations, as kube-controller-manager keeps them: after creating or deleting pods a
controller waits until its informer has seen those writes before it counts pods again.
Without them a second sync on a cache that lags behind would create (or delete) the same
pods twice. Deletions are tracked by uid, so a pod seen first with a deletionTimestamp
and then gone is counted once. Expectations expire (5 minutes) so a lost watch event
cannot stall a controller for ever.

They live in memory only: after a restart the informers list everything before any
worker runs, so the caches start complete and nothing is created twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nodeless.controllers.objects import is_deleting

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    at: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._items: dict[str, _Expected] = {}
        self._timeout = timeout

    def satisfied(self, key: str) -> bool:
        """True when no write of ours is still unseen (or they expired)."""
        item = self._items.get(key)
        if item is None:
            return True
        if item.adds <= 0 and not item.deletes:
            return True
        return time.monotonic() - item.at > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expected(adds=count)

    def expect_deletions(self, key: str, uids: set[str]) -> None:
        self._items[key] = _Expected(deletes=set(uids))

    def creation_observed(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.adds -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.deletes.discard(uid)

    def observe_pod(self, key: str, old: dict[str, Any] | None,
                    new: dict[str, Any] | None) -> None:
        """A pod event of the owner `key`, from its informer: a pod seen for the first time
        is a creation observed; one gone, or newly deleting, a deletion observed."""
        if old is None:
            self.creation_observed(key)
        elif new is None or (is_deleting(new) and not is_deleting(old)):
            pod = new or old
            self.deletion_observed(key, pod["metadata"]["uid"])

    def forget(self, key: str) -> None:
        self._items.pop(key, None)
