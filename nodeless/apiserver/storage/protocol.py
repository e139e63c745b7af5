"""The storage seam: the one narrow interface the API server writes through.

Shaped after kine's `Backend` and etcd v3's semantics, so that etcd itself is just
another implementation: every write bumps a single, cluster-wide revision; an object's
`mod_revision` is its Kubernetes resourceVersion; list can read the past at a revision;
watch replays the log from a revision; compaction forgets the past, after which a
read or watch from before the compacted revision fails with `CompactedError`.

Keys are plain strings such as `/registry/pods/default/web-0`; values are the object's
JSON bytes without `metadata.resourceVersion` (the store's revision is the truth).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One stored object version."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class ListResult:
    """A consistent page of a prefix at one revision."""

    items: list[KeyValue]
    revision: int
    """The revision the page was read at; pass it back to read the next page."""
    more: bool
    """True when keys after the last item exist under the prefix at that revision."""
    remaining: int = 0
    """How many keys exist after this page (0 if unknown or none)."""


WatchEventType = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A change to one key.

    For "delete", `kv` carries the last value of the object with `mod_revision` set to
    the revision of the deletion, so the API server can send the DELETED object at the
    resourceVersion the deletion happened. `prev_kv` is the value before the change
    (None on create), needed to filter watches by label or field selector.
    """

    type: WatchEventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """A watch heartbeat: every change up to `revision` on the prefix has been sent."""

    revision: int


class StorageError(Exception):
    """Base of all storage errors; each maps to one Kubernetes Status at the HTTP edge."""


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A compare-and-swap lost: the key's mod_revision differs from the expected one."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """The requested revision is older than the compacted revision."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest is {compacted})")
        self.requested = requested
        self.compacted = compacted


class WatchOverflowError(CompactedError):
    """A watcher fell so far behind that its bounded queue overflowed; the watch is over.

    Writers never wait for watchers, so a consumer that cannot keep up loses its watch
    instead of slowing the store down. It subclasses CompactedError on purpose: the API
    server answers both the same way (a 410 Gone watch ERROR), and the client re-lists.
    `requested` is the last revision the watcher delivered, `compacted` the store's
    revision when it overflowed.
    """

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(requested, current)
        self.args = (
            f"watcher fell behind after revision {requested} (store at {current}); "
            "re-list and watch again",
        )


class FutureRevisionError(StorageError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


class StoreUnavailableError(StorageError):
    """The backend cannot be reached (etcd down, database locked for too long)."""


@runtime_checkable
class Store(Protocol):
    """What the API server needs from a key-value store. See the module docstring."""

    async def get(self, key: str) -> KeyValue | None:
        """The current value of `key`, or None."""
        ...

    async def list(
        self,
        prefix: str,
        *,
        revision: int = 0,
        start_key: str = "",
        limit: int = 0,
    ) -> ListResult:
        """Keys under `prefix` in key order, as they were at `revision` (0: now).

        `start_key` (inclusive) resumes a paginated list; `limit` 0 means no limit.
        Raises CompactedError / FutureRevisionError for revisions out of range.
        """
        ...

    async def count(self, prefix: str) -> int:
        """How many keys exist under `prefix` now."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Create `key`; returns the new revision. Raises KeyExistsError."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace `key` if its mod_revision is `expected_revision`; returns the new revision.

        Raises KeyNotFoundError if absent, ConflictError if the revision differs.
        """
        ...

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        """Delete `key` (if its mod_revision matches, when `expected_revision` is not 0).

        Returns the deleted value with mod_revision set to the deletion's revision.
        Raises KeyNotFoundError or ConflictError.
        """
        ...

    def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent | Progress]:
        """Changes under `prefix` with mod_revision > `revision`, in revision order.

        The iterator runs until closed (`aclose()`); it may yield Progress heartbeats.
        Raises CompactedError (on first iteration) if `revision` was compacted away, i.e.
        if `revision + 1` is older than the compacted revision (etcd's rule), and
        WatchOverflowError (a CompactedError) later if the consumer falls too far behind.
        A `revision` in the future is allowed: events start after it.
        """
        ...

    async def current_revision(self) -> int:
        """The store's latest revision."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history before `revision` (the current values always stay).

        Afterwards list at a revision below `revision` raises CompactedError. Compacting
        to or below the already compacted revision is a no-op; a future revision raises
        FutureRevisionError. On etcd compaction is global to the cluster, prefix or not.
        """
        ...

    async def close(self) -> None:
        """Release the backend; open watches end with StoreUnavailableError, and so does
        every later call."""
        ...
