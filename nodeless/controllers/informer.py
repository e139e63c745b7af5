"""Shared informers: one list+watch per resource type, a cache of plain dicts, and the
handlers of every controller interested in that type.

A controller reads only from these caches and writes only through the API; the caches
may lag behind its own writes, which is what expectations (`expectations.py`) and the
resourceVersion pinned in every update (a 409 requeues the key) are for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import httpx2 as httpx  # what lightkube raises for transport errors
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[Obj | None, Obj | None], None]
"""(old, new): added (None, new), updated (old, new), deleted (old, None)."""


def key_of(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's key)."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


def plain(obj: Any) -> Obj:
    """A lightkube object (typed or generic) as the plain dict the API sent."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class Informer:
    """Objects of one resource type, kept current, with a per-namespace index."""

    def __init__(self, client: AsyncClient, resource: Any, name: str = "") -> None:
        self.client = client
        self.resource = resource
        self.name = name or getattr(resource, "__name__", "objects")
        self._objects: dict[str, Obj] = {}
        self._by_namespace: dict[str, dict[str, Obj]] = {}
        self._handlers: list[Handler] = []
        self.synced = asyncio.Event()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self._objects.values())
        return list(self._by_namespace.get(namespace, {}).values())

    def __len__(self) -> int:
        return len(self._objects)

    async def run(self) -> None:
        """Serve until cancelled; a failed watch (410 Gone, a dropped connection) lists
        anew, and objects that vanished meanwhile are reported deleted."""
        failures = 0
        while True:
            try:
                listing = self.client.list(self.resource, namespace="*") if self._namespaced() \
                    else self.client.list(self.resource)
                fresh = {}
                async for item in listing:
                    obj = plain(item)
                    fresh[key_of(obj)] = obj
                version = _list_version(listing)
                self._replace(fresh)
                self.synced.set()
                failures = 0
                kwargs: dict[str, Any] = {"namespace": "*"} if self._namespaced() else {}
                async for kind, item in self.client.watch(
                        self.resource, resource_version=version, **kwargs):
                    obj = plain(item)
                    if kind == "DELETED":
                        self._delete(key_of(obj), obj)
                    elif kind in ("ADDED", "MODIFIED"):
                        self._store(key_of(obj), obj)
            except asyncio.CancelledError:
                raise
            except (ApiError, httpx.HTTPError, OSError) as exc:
                failures += 1
                delay = min(10.0, 0.05 * 2 ** min(failures, 8))
                log.warning("watching %s failed (%s); listing again in %.1fs", self.name,
                            exc, delay)
                await asyncio.sleep(delay)

    def _namespaced(self) -> bool:
        from lightkube.core.resource import NamespacedResource

        return isinstance(self.resource, type) and issubclass(self.resource,
                                                               NamespacedResource)

    def _replace(self, fresh: dict[str, Obj]) -> None:
        for key in [k for k in self._objects if k not in fresh]:
            self._delete(key, self._objects[key])
        for key, obj in fresh.items():
            self._store(key, obj)

    def _store(self, key: str, obj: Obj) -> None:
        old = self._objects.get(key)
        self._objects[key] = obj
        namespace = obj["metadata"].get("namespace") or ""
        self._by_namespace.setdefault(namespace, {})[key] = obj
        self._emit(old, obj)

    def _delete(self, key: str, last: Obj) -> None:
        old = self._objects.pop(key, None)
        namespace = last["metadata"].get("namespace") or ""
        bucket = self._by_namespace.get(namespace)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._by_namespace[namespace]
        self._emit(old or last, None)

    def _emit(self, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(old, new)
            except Exception:  # a handler bug must not stop the informer
                log.exception("%s handler failed", self.name)


class SharedInformers:
    """The one informer of each resource type, for every controller of the process."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._informers: dict[Any, Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, resource: Any) -> Informer:
        informer = self._informers.get(resource)
        if informer is None:
            informer = self._informers[resource] = Informer(self.client, resource)
            if self._tasks:  # started already: a late type (a CRD) starts at once
                self._tasks.append(asyncio.create_task(informer.run(), name=informer.name))
        return informer

    def all(self) -> Iterable[Informer]:
        return list(self._informers.values())

    def start(self) -> list[asyncio.Task[None]]:
        self._tasks = [asyncio.create_task(i.run(), name=f"informer {i.name}")
                       for i in self._informers.values()]
        return self._tasks

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))


def _list_version(listing: Any) -> str | None:
    try:
        return str(listing.resourceVersion) or None
    except Exception:  # lightkube raises NotReadyError for an empty first page
        return None
