"""Profiles and subnets in memory, kept current by a watch, so that a review makes no
API call: the webhook answers every pod create in the cluster, and an API round trip
per pod would double the cost of creating one.

Level-triggered, like a client-go informer: list, then watch from the list's
resourceVersion; on 410 Gone (the version was compacted away), any other failure, or
every RESYNC seconds, list again and replace the whole picture, so a missed event can
never stick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lightkube import ApiError, AsyncClient

from nodeless.fargate.resources import FargateProfile, Subnet

log = logging.getLogger(__name__)

RETRY_MIN = 0.2
RETRY_MAX = 10.0
RESYNC = 300
"""Seconds a watch lasts before a fresh list. Profiles change rarely and a list of them
is small; relisting bounds how stale a silently dead connection can leave the cache."""


class Reflector:
    """One resource type's objects by name (plain dicts), from list + watch."""

    def __init__(self, client: AsyncClient, resource: Any,
                 on_change: Callable[[dict[str, dict[str, Any]]], None]) -> None:
        self._client = client
        self._resource = resource
        self._on_change = on_change
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.relists = 0
        """How often the picture was rebuilt from a list (tests watch this for 410s)."""

    async def run(self) -> None:
        """List and watch until cancelled; never returns on its own."""
        delay = RETRY_MIN
        kind = self._resource.__name__
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                version = await self._list()
                async with asyncio.timeout(RESYNC):
                    async for event, obj in self._client.watch(
                            self._resource, resource_version=version, server_timeout=RESYNC):
                        self._apply(event, _plain(obj))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                continue  # resync: a fresh list, as informers do periodically
            except ApiError as e:
                if e.status.code == 410:
                    log.info("%s watch expired (410 Gone); listing again", kind)
                    continue
                log.warning("%s watch failed: %s; listing again in %.1fs", kind, e, delay)
            except Exception as e:  # network, decoding: the next list repairs everything
                log.warning("%s watch failed: %s: %s; listing again in %.1fs", kind,
                            type(e).__name__, e, delay)
            if loop.time() - started > RETRY_MAX:
                delay = RETRY_MIN  # it worked for a while: a new failure, not the same one
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _list(self) -> str:
        listing = self._client.list(self._resource)
        objects = {}
        async for obj in listing:
            plain = _plain(obj)
            objects[plain["metadata"]["name"]] = plain
        self.objects = objects
        self.relists += 1
        self._on_change(objects)
        self.synced.set()
        return listing.resourceVersion

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if event not in ("ADDED", "MODIFIED", "DELETED") or not name:
            return  # BOOKMARK: a version, no object
        if event == "DELETED":
            if self.objects.pop(name, None) is None:
                return
        else:
            self.objects[name] = obj
        self._on_change(self.objects)


def _plain(obj: Any) -> dict[str, Any]:
    """lightkube's generic objects are dicts already; models convert."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class FargateCache:
    """What the reviews read: profiles sorted by name, subnets by id. Replaced, never
    mutated in place, so a review in progress sees one consistent picture."""

    def __init__(self) -> None:
        self.profiles: tuple[Mapping[str, Any], ...] = ()
        self.subnets: Mapping[str, Mapping[str, Any]] = {}
        self._changed = asyncio.Event()
        self._reflectors: list[Reflector] = []

    def set_profiles(self, profiles: Iterable[Mapping[str, Any]]) -> None:
        self.profiles = tuple(sorted(profiles, key=lambda p: p["metadata"]["name"]))
        self._notify()

    def set_subnets(self, subnets: Iterable[Mapping[str, Any]]) -> None:
        self.subnets = {s["metadata"]["name"]: s for s in subnets}
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[FargateCache], bool],
                       timeout: float = 10.0) -> None:
        """Until `predicate(self)` holds (e.g. "the webhook has seen profile X ACTIVE")."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def run(self, client: AsyncClient) -> None:
        """Watch profiles and subnets until cancelled."""
        profiles = Reflector(client, FargateProfile,
                             lambda objs: self.set_profiles(objs.values()))
        subnets = Reflector(client, Subnet, lambda objs: self.set_subnets(objs.values()))
        self._reflectors = [profiles, subnets]
        async with asyncio.TaskGroup() as group:
            for reflector in self._reflectors:
                group.create_task(reflector.run())

    @property
    def relists(self) -> int:
        """Lists made so far, over both types: 2 while every watch holds."""
        return sum(r.relists for r in self._reflectors)

    async def wait_synced(self) -> None:
        """Until the first list of each type is in (`run` must be running)."""
        while not self._reflectors:
            await asyncio.sleep(0.01)
        for reflector in self._reflectors:
            await reflector.synced.wait()
