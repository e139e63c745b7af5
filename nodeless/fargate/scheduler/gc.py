"""Garbage collection of what the scheduler created for pods that are gone.

A micro-node, its pod IP and its host reservation live exactly as long as the pod object:
the host agent stops the pod and then deletes it with grace 0, and that deletion is the
signal. The scheduler's pod watch triggers a collection on every DELETED event; a periodic
pass catches what a missed event, a crash between steps or a failed release left behind.

The garbage is micro-nodes: Nodes labelled `eks.amazonaws.com/compute-type=fargate`
with the host label, tied to their pod by the label `fargate.nodeless.io/pod-uid`.
Deleting one gives its address back (the Node is the claim on it, ipam.py). Then every
host's totals are recounted from the micro-nodes left (`HostPool.recount`): the capacity
of a micro-node goes back with it, whoever reserved it (a killed scheduler, a rerun that
reserved it twice).

Race-free with scheduling: garbage is listed first and the pods after (one fresh list
of the fargate-scheduler's pods, not a cache), so a pod created after the node listing
(whose node is not in it) never looks orphaned, and a pod the cache has not seen yet is
still found. A pod that is bound to another node makes this node garbage too (a crashed
run's leftover).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node, Pod

from nodeless.fargate.ipam import MICRO_NODE_LABELS, IPAllocator
from nodeless.fargate.names import HOST_LABEL, POD_UID_LABEL, SCHEDULER_NAME
from nodeless.fargate.scheduler.cache import plain
from nodeless.fargate.scheduler.hosts import HostPool, entry_size
from nodeless.fargate.scheduler.steps import POD_ANNOTATION

log = logging.getLogger(__name__)

INTERVAL = 30.0
DEBOUNCE = 0.2
"""Seconds to gather DELETED events into one pass (a deleted Deployment is many pods)."""


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str


@dataclass
class Collected:
    nodes: list[str] = field(default_factory=list)
    """Micro-nodes deleted (their addresses and reservations given back)."""
    recounted: list[str] = field(default_factory=list)
    """Hosts whose totals went down to what their micro-nodes hold."""

    def __bool__(self) -> bool:
        return bool(self.nodes or self.recounted)


class GarbageCollector:
    """Deletes micro-nodes and releases IPs and reservations whose pod is gone."""

    def __init__(self, client: AsyncClient, *, host_pool: HostPool, allocator: IPAllocator,
                 interval: float = INTERVAL) -> None:
        self.client = client
        self.hosts = host_pool
        self.ipam = allocator
        self.interval = interval
        self._wanted = asyncio.Event()
        self.passes = 0

    def trigger(self) -> None:
        """Ask for a pass soon (a pod was deleted)."""
        self._wanted.set()

    async def run(self, on_pass: Callable[[Collected], None] | None = None) -> None:
        """Collect at once (what was deleted while no scheduler led), then on every
        trigger (debounced) and every `interval` seconds."""
        first = True
        while True:
            if not first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wanted.wait(), self.interval)
                await asyncio.sleep(DEBOUNCE)
            first = False
            self._wanted.clear()
            try:
                collected = await self.collect()
            except (ApiError, httpx.HTTPError, OSError) as exc:
                log.warning("garbage collection failed (%s); trying again later", exc)
                continue
            if on_pass is not None:
                on_pass(collected)

    async def collect(self) -> Collected:
        """One pass; returns what it deleted or released."""
        self.passes += 1
        nodes = [plain(n) async for n in self.client.list(Node, labels=MICRO_NODE_LABELS)]
        pods = await self._fargate_pods()  # listed after the nodes: see the module doc
        done = Collected()
        for node in nodes:
            meta = node["metadata"]
            ref = _node_pod(node)
            if ref is None:
                continue
            bound = pods.get(ref.uid)
            if bound is None or (bound and bound != meta["name"]):
                host = (meta.get("labels") or {}).get(HOST_LABEL)
                if host:  # what this scheduler reserved goes back at once
                    await self.hosts.release(host, meta["name"])
                await self.ipam.release(meta["name"])  # the node, and with it the address
                done.nodes.append(meta["name"])
        for host in sorted({h.name for h in self.hosts.hosts()}):
            if await self.hosts.recount(host, functools.partial(self._sizes_on, host)):
                done.recounted.append(host)
        if done:
            log.info("garbage collected %d micro-nodes; recounted hosts %s",
                     len(done.nodes), done.recounted)
        return done

    async def _sizes_on(self, host: str) -> list[tuple[int, int]] | None:
        """(cpu millis, memory bytes) of every micro-node naming `host`, listed afresh;
        None if one has no capacity (then its host's totals cannot be recounted)."""
        sizes = []
        async for obj in self.client.list(Node, labels={**MICRO_NODE_LABELS, HOST_LABEL: host}):
            node = plain(obj)
            capacity = (node.get("status") or {}).get("capacity") or {}
            if capacity.get("cpu") is None or capacity.get("memory") is None:
                log.warning("micro-node %s has no capacity: host %s is not recounted",
                            node["metadata"]["name"], host)
                return None
            sizes.append(entry_size(capacity))
        return sizes

    async def _fargate_pods(self) -> dict[str, str]:
        """uid -> nodeName ('' unbound) of every pod the fargate-scheduler schedules, in
        one list (not a GET per micro-node: a pass over 2,000 micro-nodes would cost the
        API server 2,000 requests every 30 s)."""
        pods: dict[str, str] = {}
        async for obj in self.client.list(Pod, namespace="*",
                                          fields={"spec.schedulerName": SCHEDULER_NAME}):
            pod = plain(obj)
            pods[pod["metadata"]["uid"]] = str((pod.get("spec") or {}).get("nodeName") or "")
        return pods


def _node_pod(node: dict[str, Any]) -> PodRef | None:
    meta = node["metadata"]
    uid = (meta.get("labels") or {}).get(POD_UID_LABEL)
    namespace, _, name = str((meta.get("annotations") or {}).get(POD_ANNOTATION, "")
                             ).partition("/")
    if not uid or not name:
        return None  # not made by this scheduler: leave it alone
    return PodRef(namespace, name, uid)
