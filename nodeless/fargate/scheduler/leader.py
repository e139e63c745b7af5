"""Leader election through a coordination.k8s.io Lease, as client-go's leaderelection.

Two scheduler replicas may run; only the one holding `kube-system/fargate-scheduler`
schedules, so no pod is bound twice and no half-done pod is finished by two at once.

- Acquire: create the Lease, or take it over when it is free (no holder) or expired.
  Expiry is judged on the local clock from when *this* process last saw the Lease record
  change, never by comparing our clock with the holder's renewTime (client-go does the
  same: clock skew between replicas cannot make two leaders).
- Every write is an update pinned to the resourceVersion read (optimistic concurrency):
  of two candidates racing for a lapsed Lease one gets 409 and stays a follower.
- The leader renews every `renew_every` seconds; when it cannot renew for
  `renew_deadline` (shorter than the lease), it stops leading *before* anyone else may
  take over, and cancels the work it was doing.
- On a clean stop the leader releases the Lease (empty holder), so a replica takes over
  at once instead of after the lease duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.coordination_v1 import Lease

from nodeless.fargate.names import SCHEDULER_LEASE

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0
RENEW_EVERY = 2.0


def default_identity() -> str:
    """Unique per process (two replicas on one host must differ), readable in the Lease."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _micro_time(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Runs `work` while holding the Lease; see the module docstring."""

    def __init__(self, client: AsyncClient, *, identity: str | None = None,
                 lease: tuple[str, str] = SCHEDULER_LEASE,
                 lease_seconds: float = LEASE_SECONDS, renew_every: float = RENEW_EVERY,
                 renew_deadline: float | None = None) -> None:
        self.client = client
        self.identity = identity or default_identity()
        self.namespace, self.name = lease
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every
        self.renew_deadline = renew_deadline or max(renew_every * 1.5, lease_seconds * 2 / 3)
        self.leading = asyncio.Event()
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Forever: wait to lead, run `work` while leading; cancelled: release and stop."""
        try:
            while True:
                await self._acquire()
                log.info("%s leads %s/%s", self.identity, self.namespace, self.name)
                self.leading.set()
                task = asyncio.ensure_future(work())
                try:
                    await self._renew_while(task)
                finally:
                    self.leading.clear()
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                log.warning("%s lost the lease %s/%s; following", self.identity,
                            self.namespace, self.name)
        finally:
            await asyncio.shield(self._release())

    async def _acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except (ApiError, httpx.HTTPError, OSError) as exc:
                log.info("leader election: %s", exc)
            await asyncio.sleep(self.renew_every / 2)

    async def _renew_while(self, task: asyncio.Future[None]) -> None:
        last_renewed = time.monotonic()
        while not task.done():
            done, _ = await asyncio.wait([task], timeout=self.renew_every)
            if done:
                task.result()  # work ended: surface its error (or None: stop leading)
                return
            try:
                if await self.try_acquire_or_renew():
                    last_renewed = time.monotonic()
                    continue
                return  # someone else holds it now
            except (ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("renewing the lease failed: %s", exc)
            if time.monotonic() - last_renewed > self.renew_deadline:
                return

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the Lease after it."""
        now = datetime.now(UTC)
        try:
            current = (await self.client.get(Lease, self.name, namespace=self.namespace)
                       ).to_dict()
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            try:
                await self.client.create(codecs.from_dict(self._lease_body(None, now, 0)))
            except ApiError as create_exc:
                if create_exc.status.code == 409:
                    return False
                raise
            return True
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = time.monotonic() - self._observed_at > duration
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        body = self._lease_body(current, now, transitions)
        try:
            updated = await self.client.replace(codecs.from_dict(body))
        except ApiError as exc:
            if exc.status.code in (409, 404):
                return False  # another candidate won the race
            raise
        spec = updated.to_dict().get("spec") or {}
        self._observed = (spec.get("holderIdentity"), spec.get("renewTime"),
                          spec.get("leaseDurationSeconds"))
        self._observed_at = time.monotonic()
        return True

    def _lease_body(self, current: dict[str, Any] | None, now: datetime,
                    transitions: int) -> dict[str, Any]:
        spec = dict((current or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = _micro_time(now)
        spec.update(holderIdentity=self.identity,
                    leaseDurationSeconds=max(1, round(self.lease_seconds)),
                    renewTime=_micro_time(now), leaseTransitions=transitions)
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": metadata, "spec": spec}

    async def _release(self) -> None:
        """Give the Lease up if we hold it, so a follower needs not wait for it to lapse."""
        try:
            current = (await self.client.get(Lease, self.name, namespace=self.namespace)
                       ).to_dict()
            spec = current.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "resourceVersion": current["metadata"]["resourceVersion"]},
                    "spec": {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": _micro_time()}}
            await self.client.replace(codecs.from_dict(body))
            log.info("%s released the lease %s/%s", self.identity, self.namespace, self.name)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            log.info("releasing the lease failed (%s); it lapses by itself", exc)
