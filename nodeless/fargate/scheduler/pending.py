"""Pods created before their profile: what EKS leaves Pending forever, nodeless recreates.

Profile matching happens at admission, so a pod created while no ACTIVE profile matched
it keeps `schedulerName: default-scheduler` and, on a Fargate-only cluster, nobody ever
schedules it (EKS users must delete it by hand). When such a pod now matches an ACTIVE
profile and a controller owns it (ownerReferences with `controller: true`), deleting it
is safe: its controller creates a replacement, which admission sends to Fargate. An Event
`Recreating` on the pod names the profile. Bare pods are left alone (nobody would
recreate them), as are DaemonSet pods (not supported on Fargate) and bound pods.

Opt-in (`--recreate-pending-pods`): on a cluster that also has ordinary nodes, a Pending
pod may just be waiting for one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import httpx2 as httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from nodeless.fargate.names import SCHEDULER_NAME
from nodeless.fargate.profiles.matching import choose_profile
from nodeless.fargate.scheduler.cache import plain
from nodeless.fargate.scheduler.controller import record_event

log = logging.getLogger(__name__)

INTERVAL = 30.0
COMPONENT = "fargate-pending-pods"
NOT_RECREATED_KINDS = frozenset({"DaemonSet"})


def recreatable_profile(pod: Mapping[str, Any],
                        profiles: Iterable[Mapping[str, Any]]) -> str | None:
    """The profile a stranded pod now matches, or None when it must be left alone."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if meta.get("deletionTimestamp") or spec.get("nodeName"):
        return None
    if spec.get("schedulerName", "default-scheduler") == SCHEDULER_NAME:
        return None
    if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
        return None
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None or owner.get("kind") in NOT_RECREATED_KINDS:
        return None
    profile = choose_profile(profiles, meta.get("namespace", ""), meta.get("labels") or {})
    return None if profile is None else str(profile["metadata"]["name"])


class PendingPodRecreator:
    """Sweeps stranded pods when a profile changes and every `interval` seconds."""

    def __init__(self, client: AsyncClient, profiles: Mapping[str, Mapping[str, Any]], *,
                 synced: asyncio.Event | None = None, interval: float = INTERVAL) -> None:
        self.client = client
        self.profiles = profiles
        """Live view of the FargateProfiles by name (the scheduler's cache)."""
        self.synced = synced
        """Set once `profiles` is listed: a sweep before would find no profile at all."""
        self.interval = interval
        self._wanted = asyncio.Event()

    def trigger(self) -> None:
        """A profile changed (e.g. became ACTIVE): sweep soon."""
        self._wanted.set()

    async def run(self) -> None:
        if self.synced is not None:
            await self.synced.wait()
        while True:
            try:
                await self.sweep()
            except (ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("sweeping pending pods failed (%s); trying again later", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self.interval)
            self._wanted.clear()

    async def sweep(self) -> list[str]:
        """Delete the stranded pods that now match an ACTIVE profile; returns their keys."""
        profiles = list(self.profiles.values())
        if not profiles:
            return []
        deleted = []
        async for obj in self.client.list(Pod, namespace="*", fields={
                "spec.nodeName": "", "status.phase": "Pending"}):
            pod = plain(obj)
            profile = recreatable_profile(pod, profiles)
            if profile is None:
                continue
            meta = pod["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            try:
                await self.client.delete(Pod, meta["name"], namespace=meta["namespace"])
            except ApiError as exc:
                if exc.status.code == 404:
                    continue
                raise
            owner = next(o for o in meta["ownerReferences"] if o.get("controller"))
            await record_event(
                self.client, pod, "Normal", "Recreating",
                f"Pod was created before Fargate profile {profile} was ACTIVE and stayed "
                f"Pending; deleted so that its {owner.get('kind')} {owner.get('name')} "
                f"recreates it on Fargate", component=COMPONENT)
            log.info("deleted stranded pod %s: it now matches Fargate profile %s", key,
                     profile)
            deleted.append(key)
        return deleted
