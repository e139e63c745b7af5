"""A minimal informer: list, then watch from the list's resourceVersion, into a dict.

The scheduler reads profiles, subnets and its pending pods from these caches instead of
asking the API for each pod: at hundreds of pods per second the saved GETs are most of the
API server's work. A cache may lag; every step that acts on it is checked by the write it
makes (the binding's uid and "already assigned" conflict, the micro-node's create), so a
stale read costs a retry, never a wrong placement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx2 as httpx  # the HTTP library lightkube uses: its errors are what it raises
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

log = logging.getLogger(__name__)

Handler = Callable[[str, str, dict[str, Any]], None]
"""(event type ADDED/MODIFIED/DELETED/SYNC, key, object); SYNC: seen again on a relist."""


def key_of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def plain(obj: Any) -> dict[str, Any]:
    """A lightkube object (generic or typed) as the plain dict the API sent."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class ObjectCache:
    """Objects of one resource (optionally narrowed by field selectors), kept current."""

    def __init__(self, client: AsyncClient, resource: Any, *, namespace: str | None = None,
                 fields: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                 handler: Handler | None = None, name: str = "") -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.fields = fields
        self.labels = labels
        self.handler = handler
        self.name = name or getattr(resource, "__name__", "objects")
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)

    async def run(self) -> None:
        """Serve until cancelled; a failed watch (410 Gone, dropped connection) lists anew,
        and objects that vanished meanwhile are reported DELETED."""
        failures = 0
        while True:
            try:
                kwargs: dict[str, Any] = {"fields": self.fields, "labels": self.labels}
                if self.namespace is not None:
                    kwargs["namespace"] = self.namespace
                listing = self.client.list(self.resource, **kwargs)
                fresh = {}
                async for obj in listing:
                    item = plain(obj)
                    fresh[key_of(item)] = item
                version = _list_version(listing)
                gone = {k: v for k, v in self.objects.items() if k not in fresh}
                # In place: others hold `objects` as a live view.
                self.objects.clear()
                self.objects.update(fresh)
                for key, item in gone.items():
                    self._emit("DELETED", key, item)
                for key, item in fresh.items():
                    self._emit("SYNC", key, item)
                self.synced.set()
                failures = 0
                async for kind, obj in self.client.watch(
                        self.resource, resource_version=version, **kwargs):
                    item = plain(obj)
                    key = key_of(item)
                    if kind == "DELETED":
                        self.objects.pop(key, None)
                    else:
                        self.objects[key] = item
                    self._emit(kind, key, item)
            except asyncio.CancelledError:
                raise
            except (ApiError, httpx.HTTPError, OSError) as exc:
                failures += 1
                delay = min(10.0, 0.1 * 2 ** min(failures, 7))
                log.warning("watching %s failed (%s); listing again in %.1fs", self.name,
                            exc, delay)
                await asyncio.sleep(delay)

    def _emit(self, kind: str, key: str, item: dict[str, Any]) -> None:
        if self.handler is not None:
            try:
                self.handler(kind, key, item)
            except Exception:  # a handler bug must not stop the informer
                log.exception("%s handler failed for %s", self.name, key)


def _list_version(listing: Any) -> str | None:
    try:
        return str(listing.resourceVersion) or None
    except Exception:  # lightkube raises NotReadyError for an empty first page
        return None
