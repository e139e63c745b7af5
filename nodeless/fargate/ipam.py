"""Pod IP allocation from a profile's private subnets (FARGATE.md, "The micro-node").

An address is taken by creating the micro-node that carries it: the Node is named after
the address (`fargate-ip-10-0-1-23.<region>.compute.internal`), so the API server refuses
a second one with the same name (409 AlreadyExists) and two schedulers, or one scheduler
before and after a restart, can never hand out one address twice; no address is lost
when a scheduler dies, because the claim lives in the API, not in its memory. The Node is
the one record of a micro-node: it names the address (InternalIP), the subnet and zone
(labels), the pod (its uid label), the host (label) and the size (capacity), and a
host's capacity totals are recounted from the Nodes naming it (scheduler/hosts.py).
Deleting the Node gives the address back.

Choosing a candidate makes no API call: `IPAllocator` keeps every micro-node in memory
from a list + watch (an informer), so the only request per pod is the create that
claims the address. A candidate is found as kube's own allocators find one: start at a
random offset in the subnet and scan forward, which is O(1) on average while the subnet
is not nearly full, and makes two schedulers unlikely to race for the same address;
when they do, the loser gets 409, marks the address taken and tries the next one.

Zone spread: the zone with the fewest micro-nodes (among the zones the caller allows,
else all the subnets' zones) is tried first, ties broken by name, so pods of a profile
spread across its zones as EKS spreads them; within a zone, the subnet with the fewest
micro-nodes first. AWS reserves five addresses in every subnet (the network address,
the VPC router, DNS, one for future use, and the last one); they are never handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx  # the HTTP library lightkube uses: its errors are what it raises
from lightkube import ApiError, AsyncClient
from lightkube.operators import exists
from lightkube.resources.core_v1 import Node

from nodeless.fargate.names import (
    COMPUTE_TYPE_LABEL,
    HOST_LABEL,
    POD_UID_LABEL,
    SUBNET_LABEL,
    ZONE_LABEL,
)

log = logging.getLogger(__name__)

RETRY_MIN = 0.2
RETRY_MAX = 10.0
RESYNC = 300
"""Seconds a watch lasts before a fresh list: a silently dead connection cannot leave
the picture stale for longer than this."""
MICRO_NODE_LABELS = {COMPUTE_TYPE_LABEL: "fargate", HOST_LABEL: exists()}
"""Selects the micro-nodes this scheduler makes (EKS's own label, and the host's)."""
CONFLICT_MEMORY = 30.0
"""Seconds an address another scheduler won (409) counts as taken before our own watch
shows its object: long enough for any watch to catch up, short enough that an address
whose object was deleted meanwhile is not lost until the next relist."""


@dataclass(frozen=True)
class SubnetInfo:
    """What allocation needs of a `Subnet` object."""

    id: str
    cidr: str
    zone: str

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> SubnetInfo:
        """From a `Subnet` object (plain dict or lightkube generic resource)."""
        spec = obj["spec"]
        return cls(obj["metadata"]["name"], spec["cidrBlock"], spec["availabilityZone"])


@dataclass(frozen=True)
class Allocation:
    """One claimed address; `name` is the micro-node (Node) that holds it."""

    ip: str
    subnet: str
    zone: str
    name: str

    @classmethod
    def from_node(cls, node: dict[str, Any]) -> Allocation | None:
        """From a micro-node; None when it carries no address (not one of ours)."""
        ip = internal_ip(node)
        if ip is None:
            return None
        labels = node["metadata"].get("labels") or {}
        return cls(ip, labels.get(SUBNET_LABEL, ""), labels.get(ZONE_LABEL, ""),
                   node["metadata"]["name"])


def internal_ip(node: dict[str, Any]) -> str | None:
    """A Node's InternalIP (a micro-node's is its pod's IP)."""
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            return str(address["address"])
    return None


class AddressesExhausted(Exception):
    """No free address in the subnets allowed; `reason` is what FailedScheduling says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reserved_addresses(cidr: str) -> set[str]:
    """The addresses AWS keeps for itself in every subnet: the first four (network,
    VPC router, DNS, future use) and the last (broadcast in IPv4 terms)."""
    net = ipaddress.ip_network(cidr, strict=False)
    base = int(net.network_address)
    size = net.num_addresses
    offsets = {o for o in (0, 1, 2, 3, size - 1) if 0 <= o < size}
    return {str(ipaddress.ip_address(base + o)) for o in offsets}


def usable_count(cidr: str) -> int:
    """How many addresses of `cidr` can be handed to pods (a /28 has 11)."""
    return max(0, ipaddress.ip_network(cidr, strict=False).num_addresses - 5)


def _plain(obj: Any) -> dict[str, Any]:
    """lightkube generic objects are dicts already; typed models convert."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class Informer:
    """One resource type's objects by name, kept current by list + watch.

    Unlike a plain cache it reports each change as (event, new, old), so consumers can
    keep derived indexes (counts per zone, used capacity) without recomputing them from
    every object on every event. Level-triggered like client-go's reflector: on 410
    Gone, any failure, or every RESYNC seconds it lists again and `on_relist` rebuilds
    everything, so a missed event cannot stick."""

    def __init__(self, client: AsyncClient, resource: Any, *, namespace: str | None = None,
                 labels: dict[str, Any] | None = None,
                 on_event: Callable[[str, dict[str, Any], dict[str, Any] | None], None]
                 | None = None,
                 on_relist: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._labels = labels
        self._on_event = on_event
        self._on_relist = on_relist
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = RETRY_MIN
        loop = asyncio.get_running_loop()
        kind = self._resource.__name__
        scope: dict[str, Any] = {"namespace": self._namespace} if self._namespace else {}
        if self._labels:
            scope["labels"] = self._labels
        while True:
            started = loop.time()
            try:
                listing = self._client.list(self._resource, **scope)
                objects = {}
                async for obj in listing:
                    plain = _plain(obj)
                    objects[plain["metadata"]["name"]] = plain
                self.objects = objects
                if self._on_relist:
                    self._on_relist(objects)
                self.synced.set()
                async with asyncio.timeout(RESYNC):
                    async for event, obj in self._client.watch(
                            self._resource, resource_version=listing.resourceVersion,
                            server_timeout=RESYNC, **scope):
                        self._apply(event, _plain(obj))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                continue
            except ApiError as e:
                if e.status.code == 410:
                    continue
                log.warning("%s watch failed: %s; listing again in %.1fs", kind, e, delay)
            except (httpx.HTTPError, OSError, ValueError) as e:
                log.warning("%s watch failed: %s: %s; listing again in %.1fs", kind,
                            type(e).__name__, e, delay)
            if loop.time() - started > RETRY_MAX:
                delay = RETRY_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if event not in ("ADDED", "MODIFIED", "DELETED") or not name:
            return  # BOOKMARK, ERROR
        old = self.objects.get(name)
        if event == "DELETED":
            if old is None:
                return
            del self.objects[name]
        else:
            self.objects[name] = obj
        if self._on_event:
            self._on_event(event, obj, old)


@dataclass(frozen=True)
class _Net:
    """A subnet as integers, for scanning without building address objects."""

    info: SubnetInfo
    base: int
    usable: int
    version: int

    @classmethod
    @functools.lru_cache(maxsize=1024)
    def of(cls, info: SubnetInfo) -> _Net:
        """Parsed once per subnet, not once per pod."""
        net = ipaddress.ip_network(info.cidr, strict=False)
        return cls(info, int(net.network_address), max(0, net.num_addresses - 5), net.version)

    def address(self, index: int) -> str:
        """The `index`-th usable address (0 = the fifth of the subnet)."""
        value = self.base + 4 + index
        if self.version == 4:  # formatted directly: this runs for every candidate
            return socket.inet_ntoa(value.to_bytes(4, "big"))
        return str(ipaddress.IPv6Address(value))


NodeFactory = Callable[[str, SubnetInfo], dict[str, Any]]
"""Builds the micro-node that claims an address: (ip, subnet) -> Node object."""


class IPAllocator:
    """Allocates pod IPs; safe with any number of instances on any number of clients."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._informer = Informer(client, Node, labels=MICRO_NODE_LABELS,
                                  on_event=self._on_event, on_relist=self._on_relist)
        self._task: asyncio.Task[None] | None = None
        self._objects: dict[str, dict[str, Any]] = {}
        """Node name -> micro-node: the watch's picture plus what this allocator made."""
        self._by_ip: dict[str, str] = {}
        """Address -> the node holding it."""
        self._by_pod: dict[str, str] = {}
        """Pod uid -> the node holding its address."""
        self._zone_counts: Counter[str] = Counter()
        self._subnet_counts: Counter[str] = Counter()
        self._pending: dict[str, SubnetInfo] = {}
        """Addresses being claimed right now by this allocator (create in flight)."""
        self._lost: dict[str, float] = {}
        """Addresses another scheduler won (409), until our watch shows them."""
        self._inflight: dict[str, asyncio.Future[Allocation]] = {}
        """Pod uid -> the allocation being made for it, so concurrent calls share one."""

    # ---- the picture ------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching and wait for the first list, so `allocate` sees every
        micro-node that exists (a restarted scheduler reuses, never duplicates)."""
        if self._task is None:
            self._task = asyncio.create_task(self._informer.run(), name="ipam-informer")
        synced = asyncio.ensure_future(self._informer.synced.wait())
        done, _ = await asyncio.wait({synced, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if synced not in done:
            synced.cancel()
            self._task.result()  # raises what ended the watch

    async def stop(self) -> None:
        """Stop watching (the micro-nodes stay in the API)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Node name -> micro-node holding an address, as this allocator knows them."""
        return dict(self._objects)

    def allocation_for_pod(self, uid: str) -> Allocation | None:
        """The address held by the pod with this uid, if any (no API call)."""
        name = self._by_pod.get(uid)
        return Allocation.from_node(self._objects[name]) if name else None

    def node_for_pod(self, uid: str) -> dict[str, Any] | None:
        """The micro-node an earlier run made for the pod with this uid, if any."""
        name = self._by_pod.get(uid)
        return self._objects[name] if name else None

    def _put(self, obj: dict[str, Any]) -> None:
        allocation = Allocation.from_node(obj)
        if allocation is None:
            return
        name = obj["metadata"]["name"]
        old = self._objects.get(name)
        if old is not None:
            self._forget(name, old)
        self._objects[name] = obj
        self._by_ip[allocation.ip] = name
        self._zone_counts[allocation.zone] += 1
        self._subnet_counts[allocation.subnet] += 1
        uid = (obj["metadata"].get("labels") or {}).get(POD_UID_LABEL)
        if uid:
            self._by_pod[uid] = name
        self._lost.pop(allocation.ip, None)

    def _forget(self, name: str, old: dict[str, Any]) -> None:
        allocation = Allocation.from_node(old)
        if allocation is None:
            return
        if self._by_ip.get(allocation.ip) == name:
            del self._by_ip[allocation.ip]
        self._lost.pop(allocation.ip, None)  # gone: free now, whoever won it
        self._zone_counts[allocation.zone] -= 1
        self._subnet_counts[allocation.subnet] -= 1
        uid = (old["metadata"].get("labels") or {}).get(POD_UID_LABEL)
        if uid and self._by_pod.get(uid) == name:
            del self._by_pod[uid]

    def _drop(self, name: str, uid: str | None = None) -> None:
        """Forget `name`; with `uid`, only if it is still that very object (a late
        DELETED for an object since re-created must not free the new one)."""
        old = self._objects.get(name)
        if old is None or (uid and old["metadata"].get("uid") not in (None, uid)):
            return
        del self._objects[name]
        self._forget(name, old)

    def _on_event(self, event: str, obj: dict[str, Any], _old: dict[str, Any] | None) -> None:
        if event == "DELETED":
            self._drop(obj["metadata"]["name"], obj["metadata"].get("uid"))
        else:
            self._put(obj)

    def _on_relist(self, objects: dict[str, dict[str, Any]]) -> None:
        self._objects = {}
        self._by_ip = {}
        self._by_pod = {}
        self._zone_counts = Counter()
        self._subnet_counts = Counter()
        self._lost = {}
        for obj in objects.values():
            self._put(obj)

    def _taken(self, ip: str, now: float) -> bool:
        if ip in self._by_ip or ip in self._pending:
            return True
        expiry = self._lost.get(ip)
        if expiry is None:
            return False
        if expiry < now:
            del self._lost[ip]
            return False
        return True

    # ---- allocation -------------------------------------------------------------------

    async def allocate(self, subnets: list[SubnetInfo], *, pod: dict[str, Any],
                       node: NodeFactory, zones: list[str] | None = None) -> Allocation:
        """Claim a free address for `pod` (namespace, name, uid) in one of `subnets` by
        creating the micro-node `node(ip, subnet)` builds for it (labelled with the
        pod's uid, the subnet and the zone; its capacity is the size its host holds).

        Idempotent per pod uid: a pod that already holds an address gets it back, so a
        scheduler retrying after a crash or a failed bind never leaks one. Raises
        AddressesExhausted when every usable address of the allowed subnets is taken."""
        if self._task is None:
            raise RuntimeError("IPAllocator.start() must be awaited before allocate()")
        uid = pod["uid"]
        existing = self.allocation_for_pod(uid)
        if existing is not None:
            return existing
        running = self._inflight.get(uid)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Allocation] = asyncio.get_running_loop().create_future()
        self._inflight[uid] = future
        try:
            allocation = await self._allocate(subnets, node, zones)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(allocation)
            return allocation
        finally:
            del self._inflight[uid]

    def _order(self, subnets: list[SubnetInfo], zones: list[str] | None) -> list[SubnetInfo]:
        """Subnets in the order to try: zone with fewest micro-nodes first (pending
        claims count, so a burst spreads too), then within a zone the emptiest subnet."""
        allowed = set(zones) if zones else {s.zone for s in subnets}
        pending_zone = Counter(s.zone for s in self._pending.values())
        pending_subnet = Counter(s.id for s in self._pending.values())

        def key(s: SubnetInfo) -> tuple[int, str, int, str]:
            return (self._zone_counts[s.zone] + pending_zone[s.zone], s.zone,
                    self._subnet_counts[s.id] + pending_subnet[s.id], s.id)

        return sorted((s for s in subnets if s.zone in allowed), key=key)

    def _candidates(self, net: _Net) -> Iterator[str]:
        """Free addresses of `net`, from a random start; each is re-checked as it is
        produced, since claims complete while the caller awaits."""
        if net.usable <= 0:
            return
        start = random.randrange(net.usable)
        for k in range(net.usable):
            ip = net.address((start + k) % net.usable)
            if not self._taken(ip, time.monotonic()):
                yield ip

    async def _allocate(self, subnets: list[SubnetInfo], node: NodeFactory,
                        zones: list[str] | None) -> Allocation:
        ordered = self._order(subnets, zones)
        if not ordered:
            raise AddressesExhausted(self._no_subnet_reason(subnets, zones))
        for info in ordered:
            for ip in self._candidates(_Net.of(info)):
                self._pending[ip] = info
                try:
                    created = await self._client.create(Node.from_dict(node(ip, info)))
                except ApiError as e:
                    if e.status.code != 409:
                        raise
                    log.debug("address %s taken by another scheduler; trying the next", ip)
                    if ip not in self._by_ip:  # else the watch has shown the winner already
                        self._lost[ip] = time.monotonic() + CONFLICT_MEMORY
                    continue
                finally:
                    del self._pending[ip]
                obj = _plain(created)
                self._put(obj)
                return Allocation(ip, info.id, info.zone, obj["metadata"]["name"])
        total = sum(usable_count(s.cidr) for s in ordered)
        listed = ", ".join(f"{s.id} ({s.cidr})" for s in ordered)
        raise AddressesExhausted(
            f"no free IP address in subnets {listed}: all {total} addresses are allocated")

    @staticmethod
    def _no_subnet_reason(subnets: list[SubnetInfo], zones: list[str] | None) -> str:
        if not subnets:
            return "no subnets to allocate a pod IP from"
        have = ", ".join(f"{s.id} ({s.zone})" for s in subnets)
        return f"no subnet in zones {', '.join(sorted(zones or []))}: the subnets are {have}"

    async def release(self, node: str) -> None:
        """Give an address back by deleting its micro-node (its pod is gone or the run
        that made it failed); already gone is fine."""
        try:
            await self._client.delete(Node, node)
        except ApiError as e:
            if e.status.code != 404:
                raise
        self._drop(node)

    async def release_pod(self, uid: str) -> Allocation | None:
        """Release whatever address the pod with this uid holds (for garbage
        collection by pod); returns it, or None when it held none."""
        allocation = self.allocation_for_pod(uid)
        if allocation is not None:
            await self.release(allocation.name)
        return allocation
