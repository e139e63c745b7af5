"""The fargate-scheduler: turns each unbound pod with `schedulerName: fargate-scheduler`
into a pod bound to its own micro-node.

Controller shape (as every controller of ours): an informer on the unbound pods feeds a
work queue keyed by namespace/name; workers run `schedule` for one key at a time, which
reads the pod afresh from the cache and walks the pipeline:

    size -> profile subnets -> host (placement policy) -> a pod IP in the host's zones,
         claimed by creating its micro-node (Node) -> reserve host capacity -> bind
         (+ annotation) -> Event

Every step is idempotent, so a retry or a second scheduler after a crash finishes a
half-done pod instead of taking a second IP: the micro-node is named after its address
and labelled with the pod's uid, the host and the subnet, and its capacity is the size
(same pod, same IP, same node, same host); a host pool reserves a node's capacity once.
What a crashed run reserved and its rerun reserves again is counted twice on the host
until the garbage collector's next recount (an over-count: never an oversubscription).
The micro-node is the record a rerun reads (no extra write to the pod): when the host it
names has no room any more, the rerun releases the reservation and the node (the
address) and places the pod afresh. A failure after a partial step releases what this
run took before it retries.

Failures are `SchedulingFailure`s whose message is the FailedScheduling Event; their
`retry` decides the requeue: never until the pod changes, with backoff, or with backoff
and at once when the HostPool reports a change (a host joined, capacity freed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from nodeless.aiotasks import cancel_all, until_one_ends
from nodeless.fargate import ipam, sizing
from nodeless.fargate.names import HOST_LABEL, SCHEDULER_NAME
from nodeless.fargate.resources import FargateProfile, Subnet
from nodeless.fargate.scheduler import hosts as hosts_mod
from nodeless.fargate.scheduler import steps
from nodeless.fargate.scheduler.cache import ObjectCache, plain
from nodeless.fargate.scheduler.framework import Retry, SchedulingFailure
from nodeless.workqueue import WorkQueue

log = logging.getLogger(__name__)

FAILED_EVENT_EVERY = 30.0
"""Seconds before the same FailedScheduling message is recorded again for a pod (kube's
event recorder aggregates repeats the same way, so retries do not flood Events)."""


@dataclass
class Placement:
    """What one run took for a pod, so a failure can give it back: its micro-node (the
    address) and the host capacity reserved for it."""

    node: str | None = None
    host: str | None = None
    reserved: bool = False


@dataclass
class SchedulerStats:
    scheduled: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)


class SchedulerController:
    """Schedules pods while `run` runs (the component runs it only while leading)."""

    def __init__(self, client: AsyncClient, *, region: str, host_pool: hosts_mod.HostPool,
                 allocator: ipam.IPAllocator, workers: int = 96,
                 on_pod_deleted: Callable[[], None] | None = None) -> None:
        self.client = client
        self.region = region
        self.hosts = host_pool
        self.ipam = allocator
        self.workers = workers
        self.on_pod_deleted = on_pod_deleted
        self.queue = WorkQueue(base_delay=0.2, max_delay=30.0)
        self.pods = ObjectCache(client, Pod, namespace="*", fields={
            "spec.schedulerName": SCHEDULER_NAME, "spec.nodeName": ""},
            handler=self._on_pod, name="unbound fargate pods")
        self.profiles = ObjectCache(client, FargateProfile, name="fargateprofiles")
        self.subnets = ObjectCache(client, Subnet, name="subnets")
        self.stats = SchedulerStats()
        self._unsupported: dict[str, str] = {}
        """pod key -> resourceVersion whose spec cannot run on Fargate (skipped until the
        pod changes)."""
        self._waiting_for_capacity: set[str] = set()
        self._last_failure: dict[str, tuple[str, float]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._bound: dict[str, str] = {}
        """pod key -> uid this scheduler bound, until the watch drops the pod: an event
        that was on its way before the binding must not schedule it a second time."""

    # ---- running ----------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled; `ready` once the caches are listed."""
        self.hosts.on_change(self._capacity_changed)
        informers = [asyncio.create_task(c.run(), name=f"informer {c.name}")
                     for c in (self.profiles, self.subnets, self.pods)]
        workers: list[asyncio.Task[None]] = []
        try:
            synced = [asyncio.ensure_future(c.synced.wait())
                      for c in (self.profiles, self.subnets, self.pods)]
            await asyncio.gather(*synced)
            workers = [asyncio.create_task(self._worker(), name=f"scheduler-worker-{i}")
                       for i in range(self.workers)]
            if ready:
                ready()
            await until_one_ends([*informers, *workers], "the fargate-scheduler's tasks")
        finally:
            await cancel_all([*informers, *workers, *self._background])
            self.queue.close()

    def _on_pod(self, kind: str, key: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            self._forget(key)
            return
        self.queue.add(key)

    def _capacity_changed(self, *_: Any) -> None:
        """A host joined or capacity freed: the pods waiting for room go again now, not
        when their backoff ends."""
        for key in list(self._waiting_for_capacity):
            self.queue.add(key)

    def _forget(self, key: str) -> None:
        self._unsupported.pop(key, None)
        self._waiting_for_capacity.discard(key)
        self._last_failure.pop(key, None)
        self._bound.pop(key, None)
        self.queue.forget(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self._process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one pod's run must not stop the worker
                log.exception("scheduling %s failed unexpectedly", key)
                self.queue.retry(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName") \
                or pod["metadata"].get("deletionTimestamp"):
            self._forget(key)
            return
        version = pod["metadata"].get("resourceVersion", "")
        if self._unsupported.get(key) == version or \
                self._bound.get(key) == pod["metadata"].get("uid"):
            return
        try:
            node = await self.schedule(pod)
        except SchedulingFailure as failure:
            self.stats.failed += 1
            self._failed(key, pod, failure)
            if failure.retry is Retry.WHEN_POD_CHANGES:
                self._unsupported[key] = version
                self.queue.forget(key)
                return
            if failure.retry is Retry.WHEN_CAPACITY_FREES:
                self._waiting_for_capacity.add(key)
            self.queue.retry(key)
            return
        except (ApiError, httpx.HTTPError, OSError) as exc:
            delay = self.queue.retry(key)
            log.info("scheduling %s: %s; retrying in %.1fs", key, _describe(exc), delay)
            return
        self._forget(key)
        if node is not None:
            self._bound[key] = pod["metadata"]["uid"]
            self.stats.scheduled += 1
            created = _parse_time(pod["metadata"].get("creationTimestamp"))
            if created is not None:
                self.stats.latencies.append(time.time() - created)

    # ---- the pipeline -----------------------------------------------------------------

    async def schedule(self, pod: dict[str, Any]) -> str | None:
        """Place and bind one pod; returns its node, or None when someone else bound it."""
        size = steps.size(pod)
        profile_name = steps.profile_name(pod)
        subnets = steps.profile_subnets(profile_name, await self._profile(profile_name),
                                        self.subnets.objects)
        zones = steps.zones(subnets)
        candidates = self.hosts.candidates(size.cpu_millis(), size.memory_bytes(), set(zones))
        if not candidates:
            reason = self.hosts.no_room(size.cpu_millis(), size.memory_bytes(), set(zones))
            raise SchedulingFailure(reason.reason, Retry.WHEN_CAPACITY_FREES)
        taken = Placement()
        try:
            return await self._place(pod, size, subnets, candidates, taken)
        except BaseException:
            await asyncio.shield(self._release(taken))
            raise

    async def _place(self, pod: dict[str, Any], size: sizing.FargateSize,
                     subnets: list[ipam.SubnetInfo], candidates: list[hosts_mod.Host],
                     taken: Placement) -> str | None:
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        ref = {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}
        subnet_zones = {s.zone for s in subnets}
        # The micro-node is the record of a run: it claims the address, carries the pod's
        # uid and names the host chosen, and is created before anything else. A rerun
        # (after a failure or a crash, in this process or another) finds it and either
        # resumes on that host or, when the host no longer fits, gives back what the
        # earlier run took there.
        chosen = candidates[0]  # the host pool's placement policy orders them
        earlier = self.ipam.node_for_pod(meta["uid"])
        if earlier is not None:
            earlier_host = (earlier["metadata"].get("labels") or {}).get(HOST_LABEL, "")
            same = next((h for h in candidates if h.name == earlier_host), None)
            if same is not None:
                chosen = same
            else:
                await self._undo_earlier(earlier_host, earlier["metadata"]["name"])
        zones = sorted(set(chosen.zones) & subnet_zones)
        host = chosen.name

        def micro_node(ip: str, subnet: ipam.SubnetInfo) -> dict[str, Any]:
            return steps.micro_node(steps.node_name(ip, self.region), ip=ip, subnet=subnet,
                                    region=self.region, host=host, size=size, pod=pod)

        try:
            allocation = await self.ipam.allocate(subnets, pod=ref, node=micro_node,
                                                  zones=zones)
        except ipam.AddressesExhausted as exc:
            raise SchedulingFailure(exc.reason) from None
        node = allocation.name
        taken.node, taken.host = node, host
        try:
            await self.hosts.reserve(host, node, cpu_millis=size.cpu_millis(),
                                     memory_bytes=size.memory_bytes())
        except hosts_mod.NoHostWithRoom as exc:
            raise SchedulingFailure(exc.reason, Retry.WHEN_CAPACITY_FREES) from None
        taken.reserved = True
        try:
            await self.client.create(Pod.Binding.from_dict(steps.binding(pod, node, size)),
                                     meta["name"], namespace=meta["namespace"])
        except ValueError:
            # pods/binding answers with a Status, not the Binding lightkube expects to
            # decode (kube's API does the same): a decode error here means it succeeded;
            # a refused binding is an ApiError, raised before any decoding.
            pass
        except ApiError as exc:
            if exc.status.code == 409 and f'"{node}"' in (exc.status.message or ""):
                pass  # bound to this node already (a rerun after the bind landed)
            elif exc.status.code in (404, 409):
                log.info("pod %s was deleted or bound elsewhere meanwhile (%s)", key,
                         exc.status.message)
                raise _Gone() from None
            else:
                raise
        taken.node = taken.host = None  # the pod holds them now
        taken.reserved = False
        self._record(pod, "Normal", "Scheduled",
                     f"Successfully assigned {key} to {node}")
        return node

    async def _profile(self, name: str) -> dict[str, Any] | None:
        """From the cache; a live read when it is missing or not ACTIVE there (the cache
        may not have seen the profile controller's last write yet)."""
        cached = self.profiles.get(name)
        if cached is not None and (cached.get("status") or {}).get("status") == "ACTIVE":
            return cached
        try:
            return plain(await self.client.get(FargateProfile, name))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def _undo_earlier(self, host: str, node: str) -> None:
        """An earlier run placed the pod on `host`, which has no room for it now (or is
        gone): give back its reservation and its node (the address), then start afresh."""
        if host:
            await self.hosts.release(host, node)
        await self.ipam.release(node)

    async def _release(self, taken: Placement) -> None:
        """Give back what a failed run took, newest first; failures here are logged and
        left to the garbage collector."""
        try:
            if taken.reserved and taken.host and taken.node:
                await self.hosts.release(taken.host, taken.node)
            if taken.node:
                await self.ipam.release(taken.node)
        except Exception as exc:
            log.warning("releasing after a failed scheduling run: %s (the garbage "
                        "collector will)", _describe(exc))

    # ---- events -----------------------------------------------------------------------

    def _failed(self, key: str, pod: dict[str, Any], failure: SchedulingFailure) -> None:
        if isinstance(failure, _Gone):
            return
        last = self._last_failure.get(key)
        now = time.monotonic()
        if last is not None and last[0] == failure.message and now - last[1] < FAILED_EVENT_EVERY:
            return
        self._last_failure[key] = (failure.message, now)
        log.info("pod %s: FailedScheduling: %s", key, failure.message)
        self._record(pod, "Warning", "FailedScheduling", failure.message)

    def _record(self, pod: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Events are written in the background: a slow Event must not hold a worker."""
        task = asyncio.create_task(record_event(self.client, pod, type_, reason, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class _Gone(SchedulingFailure):
    """The pod was deleted or bound by someone else mid-run: nothing to report."""

    def __init__(self) -> None:
        super().__init__("the pod was deleted or bound meanwhile", Retry.BACKOFF)


async def record_event(client: AsyncClient, obj: Mapping[str, Any], type_: str, reason: str,
                       message: str, component: str = SCHEDULER_NAME) -> None:
    """One core/v1 Event about a pod, as kube-scheduler records them; losing one is
    logged, never fatal."""
    meta = obj["metadata"]
    now = datetime.now(UTC)
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}",
                     "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "reason": reason, "message": message[:1024], "type": type_,
        "source": {"component": component},
        "reportingComponent": component, "reportingInstance": component,
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "Scheduling", "count": 1,
    }
    try:
        await client.create(codecs.from_dict(event))
    except (ApiError, httpx.HTTPError, OSError) as exc:
        log.warning("event %s on pod %s/%s not recorded: %s", reason, meta["namespace"],
                    meta["name"], _describe(exc))


# ---- helpers -------------------------------------------------------------------------


def _parse_time(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status.code} {exc.status.reason}: {exc.status.message}"
    return f"{type(exc).__name__}: {exc}"
