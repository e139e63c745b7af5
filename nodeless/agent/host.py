"""The host's record in the API: what it offers the fargate-scheduler, and that it lives.

The agent creates (or updates) the cluster-scoped `FargateHost` named after the host —
capacity (this machine's cores, memory, a pod count), the overcommit factors, the zones
it serves, its address and the URL of its endpoint — and renews a Lease of the same name
in `kube-node-lease` every RENEW_SECONDS, as a kubelet renews its node lease. The
scheduler places micro-nodes only on hosts whose lease is fresh. On stop the record
stays (a restarted agent takes it back); only the lease lapses.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from nodeless.fargate.names import API_VERSION, HOST_LEASE_NAMESPACE, HOST_LEASE_SECONDS
from nodeless.fargate.resources import FargateHost, Subnet

log = logging.getLogger(__name__)

RENEW_SECONDS = 10.0


def machine_memory_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemTotal")


@dataclass
class HostOffer:
    """What the host registers; defaults are this machine, overcommit 1.0 (Fargate's
    guarantee)."""

    name: str
    address: str
    endpoint: str
    cpu: str = field(default_factory=lambda: str(os.cpu_count() or 1))
    memory: str = field(default_factory=lambda: f"{machine_memory_bytes() // 2**20}Mi")
    pods: int = 110
    overcommit_cpu: float = 1.0
    overcommit_memory: float = 1.0
    zones: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        return {"capacity": {"cpu": self.cpu, "memory": self.memory, "pods": self.pods},
                "overcommit": {"cpu": self.overcommit_cpu, "memory": self.overcommit_memory},
                "zones": list(self.zones), "address": self.address,
                "agentEndpoint": self.endpoint}


async def served_zones(client: AsyncClient) -> list[str]:
    """Every zone with a private subnet: one host on one machine serves them all."""
    zones = {(s.to_dict().get("spec") or {}).get("availabilityZone")
             async for s in client.list(Subnet) if (s.to_dict().get("spec") or {}).get("private")}
    found = sorted(z for z in zones if z)
    if not found:
        raise RuntimeError("no Subnet objects are published: cannot tell which zones this "
                           "host serves (pass --zones)")
    return found


async def register(client: AsyncClient, offer: HostOffer) -> None:
    """Create the FargateHost or bring its spec up to date, keeping its status."""
    body = {"apiVersion": API_VERSION, "kind": "FargateHost",
            "metadata": {"name": offer.name}, "spec": offer.spec()}
    try:
        await client.create(FargateHost(body))
        log.info("registered host %s: %s", offer.name, offer.spec())
        return
    except ApiError as exc:
        if exc.status.code != 409:
            raise
    await client.patch(FargateHost, offer.name, {"spec": offer.spec()},
                       patch_type=PatchType.MERGE)
    log.info("host %s registered again: %s", offer.name, offer.spec())


async def renew_lease(client: AsyncClient, name: str) -> None:
    """Create or renew the host's Lease (kube-node-lease may not exist on a bare server)."""
    now = datetime.datetime.now(datetime.UTC)
    lease = Lease(metadata=ObjectMeta(name=name, namespace=HOST_LEASE_NAMESPACE),
                  spec=LeaseSpec(holderIdentity=name, leaseDurationSeconds=HOST_LEASE_SECONDS,
                                 renewTime=now))
    try:
        await client.patch(Lease, name, {"spec": {"renewTime": _micro(now),
                                                  "holderIdentity": name,
                                                  "leaseDurationSeconds": HOST_LEASE_SECONDS}},
                           namespace=HOST_LEASE_NAMESPACE, patch_type=PatchType.MERGE)
        return
    except ApiError as exc:
        if exc.status.code != 404:
            raise
    try:
        await client.create(lease)
    except ApiError as exc:
        if exc.status.code == 404:  # the namespace itself
            await _ensure_namespace(client, HOST_LEASE_NAMESPACE)
            await client.create(lease)
        elif exc.status.code != 409:
            raise


def _micro(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _ensure_namespace(client: AsyncClient, name: str) -> None:
    try:
        await client.create(Namespace(metadata=ObjectMeta(name=name)))
    except ApiError as exc:
        if exc.status.code != 409:
            raise


async def heartbeat(client: AsyncClient, name: str, every: float = RENEW_SECONDS) -> None:
    """Renew the host's lease until cancelled; a failed renewal is retried sooner."""
    while True:
        try:
            await renew_lease(client, name)
            delay = every
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the API is down: keep trying, the lease says the rest
            log.warning("renewing the lease of host %s failed: %s", name, exc)
            delay = min(every, 2.0)
        await asyncio.sleep(delay)
