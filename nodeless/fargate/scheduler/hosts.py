"""Hosts and their free capacity: where a micro-node can be placed.

A host agent registers a cluster-scoped `FargateHost` (what it offers, which zones it
serves) and renews a Lease named after it in `kube-node-lease`. `HostPool` keeps both in
memory from list + watch, so choosing a host makes no API call.

What a host offers: `spec.capacity` times `spec.overcommit` for cpu and memory (1.0 is
Fargate's guarantee and the production default; a laptop may offer more), and
`capacity.pods` micro-nodes, never overcommitted. What it has given: the totals in
`status.allocated` (cpu, memory, pods). The per-micro-node record is its Node, which
names the host (label) and the size (capacity) and exists before the capacity is taken
and until after it is given back; the host object stays small however many
micro-nodes it runs, so a reservation write costs the same for the first pod and the
thousandth.

Placement policy, fewest hosts used: among the live hosts serving the pod's zone that
still have room, prefer the most used one (the largest of its cpu and memory fractions
already reserved), ties broken by name. That is bin-packing: hosts fill one after
another, so idle hosts stay idle (and can be scaled in), and a large pod still finds a
host with room. Zone spread is not the host's business: the IP allocator picks the zone
(the subnet with the fewest micro-nodes) first, and the host is chosen among those
serving that zone.

Never oversubscribe: a reservation adds its size to the totals with an update pinned to
the resourceVersion the fit was computed on (compare-and-swap). Another scheduler's
write in between makes it fail with 409; the pool re-reads, re-checks the fit and
retries, or answers NoHostWithRoom. Reservations one pool makes on one host at the same
time are coalesced into one write (group commit), so a burst of pods on one host costs a
few writes, not a storm of conflicting ones.

The totals are an upper bound of what the host's micro-nodes hold, never less:
- a pool gives back (subtracts) only what it added itself (it remembers its own
  reservations, so reserving or releasing twice changes nothing), and only while no
  recount happened since it added it;
- what a killed scheduler added and nobody subtracts (or what a rerun added a second
  time) is over-counted until the next recount: `recount` (the garbage collector runs it
  every pass) reads the host, then lists the micro-nodes naming it, and lowers the
  totals to their sum with a compare-and-swap that also bumps `status.recounts`. Every
  capacity added before that read has its micro-node in that list, so the sum never
  misses a live one; a subtraction after the recount is skipped (its node was either
  counted or already gone), so nothing is subtracted twice.

A host is alive while its lease's renewTime is within HOST_LEASE_SECONDS of now (hosts
and control plane keep their clocks in sync, as EKS nodes do with NTP); a host whose
lease lapsed gets no new micro-nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.resources.coordination_v1 import Lease

from nodeless.apiserver.resources.defaults import QuantityError, parse_quantity
from nodeless.fargate.ipam import Informer
from nodeless.fargate.names import HOST_LEASE_NAMESPACE, HOST_LEASE_SECONDS
from nodeless.fargate.resources import FargateHost

log = logging.getLogger(__name__)

GIB = 2**30
MAX_CONFLICTS = 50
"""Conflicting writes on one host before a reservation gives up (with an error the
scheduler retries): only a pathological storm of writers gets there."""


class NoHostWithRoom(Exception):
    """No live host can take the micro-node; `reason` is what FailedScheduling says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _quantity(raw: Any, default: Fraction = Fraction(0)) -> Fraction:
    if raw is None:
        return default
    if isinstance(raw, str):
        return _parsed(raw, default)
    try:
        return parse_quantity(raw)[0]
    except QuantityError:
        log.warning("ignoring unparsable quantity %r on a FargateHost", raw)
        return default


@functools.lru_cache(maxsize=1024)
def _parsed(raw: str, default: Fraction) -> Fraction:
    """Reservations repeat a handful of sizes thousands of times: parse each once."""
    try:
        return parse_quantity(raw)[0]
    except QuantityError:
        log.warning("ignoring unparsable quantity %r on a FargateHost", raw)
        return default


def entry_size(entry: dict[str, Any]) -> tuple[int, int]:
    """(cpu millis, memory bytes) of a dict with `cpu` and `memory` quantities: a host's
    totals, a micro-node's capacity."""
    return (math.ceil(_quantity(entry.get("cpu")) * 1000),
            math.ceil(_quantity(entry.get("memory"))))


def _number(x: float) -> str:
    """2 -> "2", 3.5 -> "3.5", 0.25 -> "0.25": as Fargate writes sizes."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def format_size(cpu_millis: int, memory_bytes: int, *, spaced: bool = False) -> str:
    """`2vCPU 9GB` (the CapacityProvisioned form), or `2 vCPU 9 GB` with spaced."""
    sep = " " if spaced else ""
    return (f"{_number(cpu_millis / 1000)}{sep}vCPU "
            f"{_number(memory_bytes / GIB)}{sep}GB")


@dataclass
class Host:
    """A host as the scheduler sees it: offered capacity, what is reserved, liveness."""

    name: str
    zones: list[str]
    offered_cpu_millis: int
    offered_memory_bytes: int
    offered_pods: int
    used_cpu_millis: int
    used_memory_bytes: int
    used_pods: int
    alive: bool
    resource_version: str
    endpoint: str
    recounts: int = 0
    """How often the totals were recounted (a subtraction checks none happened since)."""

    @classmethod
    def from_object(cls, obj: dict[str, Any], *, alive: bool = True) -> Host:
        spec = obj.get("spec") or {}
        capacity = spec.get("capacity") or {}
        overcommit = spec.get("overcommit") or {}
        status = obj.get("status") or {}
        allocated = status.get("allocated")
        if isinstance(allocated, dict):
            cpu, memory = entry_size(allocated)
            pods = int(_quantity(allocated.get("pods")))
        else:  # written before the totals: one entry per micro-node
            legacy = status.get("reservations") or {}
            cpu, memory = reserved(legacy)
            pods = len(legacy)
        return cls(
            name=obj["metadata"]["name"],
            zones=list(spec.get("zones") or []),
            offered_cpu_millis=math.floor(_quantity(capacity.get("cpu")) * 1000
                                          * Fraction(str(overcommit.get("cpu", 1.0)))),
            offered_memory_bytes=math.floor(_quantity(capacity.get("memory"))
                                            * Fraction(str(overcommit.get("memory", 1.0)))),
            offered_pods=int(_quantity(capacity.get("pods"), Fraction(110))),
            used_cpu_millis=cpu, used_memory_bytes=memory, used_pods=pods,
            alive=alive,
            resource_version=str(obj["metadata"].get("resourceVersion") or ""),
            endpoint=str(spec.get("agentEndpoint") or ""),
            recounts=int(status.get("recounts") or 0),
        )

    @property
    def free_cpu_millis(self) -> int:
        return self.offered_cpu_millis - self.used_cpu_millis

    @property
    def free_memory_bytes(self) -> int:
        return self.offered_memory_bytes - self.used_memory_bytes

    @property
    def free_pods(self) -> int:
        return self.offered_pods - self.used_pods

    def fits(self, cpu_millis: int, memory_bytes: int) -> bool:
        """Room for one more micro-node of this size, within what the host offers."""
        return (self.free_pods >= 1 and cpu_millis <= self.free_cpu_millis
                and memory_bytes <= self.free_memory_bytes)

    def utilisation(self) -> float:
        """The larger of the cpu and memory fractions reserved (the packing order)."""
        cpu = self.used_cpu_millis / self.offered_cpu_millis if self.offered_cpu_millis else 1
        mem = (self.used_memory_bytes / self.offered_memory_bytes
               if self.offered_memory_bytes else 1)
        return max(cpu, mem)


def reserved(reservations: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """(cpu millis, memory bytes) held by these entries (each with cpu and memory)."""
    cpu = mem = 0
    for entry in reservations.values():
        entry_cpu, entry_mem = entry_size(entry)
        cpu += entry_cpu
        mem += entry_mem
    return cpu, mem


def _renew_time(lease: dict[str, Any]) -> datetime.datetime | None:
    spec = lease.get("spec") or {}
    raw = spec.get("renewTime") or spec.get("acquireTime")
    if raw is None:
        return None
    if isinstance(raw, datetime.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion `candidate` is newer than `current`. Versions are opaque
    to kube clients, but this server's (and etcd's) are increasing integers; the check
    only keeps a late watch event from overwriting a fresher write's result (a stale
    version would cost a 409 and a re-read, never correctness), and the watch event of
    our own write from being parsed a second time."""
    try:
        return int(candidate) > int(current)
    except ValueError:
        return True


def _settle(ops: list[_Op], outcome: Exception | None) -> None:
    """Resolve the ops' futures not yet done (a caller may have been cancelled)."""
    for op in ops:
        if op.future.done():
            continue
        if outcome is None:
            op.future.set_result(None)
        else:
            op.future.set_exception(outcome)


@dataclass
class _Op:
    node: str
    size: tuple[int, int] | None
    """(cpu millis, memory bytes) to reserve; None releases the node's reservation."""
    future: asyncio.Future[None]


@dataclass(frozen=True)
class _Held:
    """A reservation this pool added to a host's totals, and the host's `recounts` then:
    it may subtract it again only while no recount happened since."""

    cpu_millis: int
    memory_bytes: int
    recounts: int


RECOUNT_TRIES = 5
"""Compare-and-swap attempts of one recount before it waits for the next pass."""


def _allocated(cpu_millis: int, memory_bytes: int, pods: int) -> dict[str, Any]:
    return {"cpu": f"{cpu_millis}m", "memory": str(memory_bytes), "pods": pods}


class HostPool:
    """Registered hosts, their liveness and free capacity, and reservations on them."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._hosts = Informer(client, FargateHost, on_event=self._host_event,
                               on_relist=self._host_relist)
        self._leases = Informer(client, Lease, namespace=HOST_LEASE_NAMESPACE,
                                on_event=self._lease_event, on_relist=self._lease_relist)
        self._objects: dict[str, dict[str, Any]] = {}
        """Host name -> the freshest FargateHost object seen (watch or own write)."""
        self._parsed: dict[str, tuple[dict[str, Any], Host]] = {}
        """Host name -> (the object parsed, the Host): placement reads every host
        for every pod, so each object is parsed once, not once per pod."""
        self._renewed: dict[str, datetime.datetime] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._queues: dict[str, list[_Op]] = {}
        self._held: dict[str, dict[str, _Held]] = {}
        """Host -> node -> what this pool added to that host's totals for the node."""
        self._recounts_seen: dict[str, int] = {}
        """Host -> the highest `status.recounts` seen, so `_held` is filtered only when a
        recount happened (not on every write: it holds one entry per micro-node)."""
        self._writers: dict[str, asyncio.Task[None]] = {}
        self.conflicts = 0
        """Writes refused with 409 because another writer got there first (metrics)."""
        self.writes = 0
        """Successful reservation writes (each may carry many ops)."""

    # ---- watching ---------------------------------------------------------------------

    async def start(self) -> None:
        """Watch hosts and their leases; returns once both are listed."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._hosts.run(), name="hosts-informer"),
                           asyncio.create_task(self._leases.run(), name="leases-informer")]
        for informer in (self._hosts, self._leases):
            await informer.synced.wait()

    async def stop(self) -> None:
        for task in [*self._tasks, *self._writers.values()]:
            task.cancel()
        for task in [*self._tasks, *self._writers.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` when a host joins, changes, frees capacity, or comes back to
        life (the scheduler requeues the pods waiting for room)."""
        self._callbacks.append(callback)

    def _notify(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # one consumer's bug must not stop the watch
                log.exception("host change callback failed")

    def _store(self, obj: dict[str, Any]) -> bool:
        """Keep `obj` unless what we have is newer; True if kept."""
        name = obj["metadata"]["name"]
        current = self._objects.get(name)
        if current is not None and not _newer(
                str(obj["metadata"].get("resourceVersion") or ""),
                str(current["metadata"].get("resourceVersion") or "")):
            return False
        self._objects[name] = obj
        held = self._held.get(name)
        recounts = int((obj.get("status") or {}).get("recounts") or 0)
        if held and recounts > self._recounts_seen.get(name, 0):
            # What a recount took out can no longer be given back by this pool.
            self._held[name] = {n: h for n, h in held.items() if h.recounts >= recounts}
        self._recounts_seen[name] = recounts
        return True

    def _host_event(self, event: str, obj: dict[str, Any], _old: dict[str, Any] | None
                    ) -> None:
        name = obj["metadata"]["name"]
        if event == "DELETED":
            self._objects.pop(name, None)
            return
        before = self._objects.get(name)
        if self._store(obj) and self._gained(before, obj):
            self._notify()

    @staticmethod
    def _gained(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
        """Whether a change can let a waiting pod in: a new host, a spec change, or
        less reserved (a reservation that only grows frees nothing)."""
        if before is None or before.get("spec") != after.get("spec"):
            return True
        old, new = Host.from_object(before), Host.from_object(after)
        return (new.used_cpu_millis < old.used_cpu_millis
                or new.used_memory_bytes < old.used_memory_bytes
                or new.used_pods < old.used_pods)

    def _host_relist(self, objects: dict[str, dict[str, Any]]) -> None:
        self._objects = {}
        for obj in objects.values():
            self._store(obj)
        self._notify()

    def _lease_event(self, event: str, obj: dict[str, Any], _old: dict[str, Any] | None
                     ) -> None:
        name = obj["metadata"]["name"]
        was_alive = self._alive(name)
        if event == "DELETED":
            self._renewed.pop(name, None)
            return
        renewed = _renew_time(obj)
        if renewed is None:
            self._renewed.pop(name, None)
        else:
            self._renewed[name] = renewed
        if name in self._objects and not was_alive and self._alive(name):
            self._notify()

    def _lease_relist(self, objects: dict[str, dict[str, Any]]) -> None:
        self._renewed = {}
        for name, obj in objects.items():
            renewed = _renew_time(obj)
            if renewed is not None:
                self._renewed[name] = renewed
        self._notify()

    def _alive(self, name: str, now: datetime.datetime | None = None) -> bool:
        renewed = self._renewed.get(name)
        if renewed is None:
            return False
        now = now or datetime.datetime.now(datetime.UTC)
        return now - renewed < datetime.timedelta(seconds=HOST_LEASE_SECONDS)

    # ---- reading ----------------------------------------------------------------------

    def hosts(self) -> list[Host]:
        """Every registered host, by name (for status and reasons)."""
        now = datetime.datetime.now(datetime.UTC)
        return [self._host(name, obj, self._alive(name, now))
                for name, obj in sorted(self._objects.items())]

    def get(self, name: str) -> Host | None:
        obj = self._objects.get(name)
        return self._host(name, obj, self._alive(name)) if obj else None

    def _host(self, name: str, obj: dict[str, Any], alive: bool) -> Host:
        cached = self._parsed.get(name)
        if cached is None or cached[0] is not obj:
            cached = (obj, Host.from_object(obj))
            self._parsed[name] = cached
        host = cached[1]
        return host if host.alive == alive else replace(host, alive=alive)

    def candidates(self, cpu_millis: int, memory_bytes: int, zones: set[str]) -> list[Host]:
        """Live hosts serving one of `zones` with room for the size, most used first
        (bin-packing, see the module docstring), ties by name."""
        fitting = [h for h in self.hosts() if h.alive and zones.intersection(h.zones)
                   and h.fits(cpu_millis, memory_bytes)]
        return sorted(fitting, key=lambda h: (-h.utilisation(), h.name))

    def no_room(self, cpu_millis: int, memory_bytes: int, zones: set[str]) -> NoHostWithRoom:
        """Why `candidates` is empty, as the FailedScheduling reason says it."""
        hosts = self.hosts()
        wanted = "/".join(sorted(zones))
        if not hosts:
            return NoHostWithRoom("no hosts are registered")
        serving = [h for h in hosts if zones.intersection(h.zones)]
        live = [h for h in serving if h.alive]
        if not live:
            lapsed = f" ({len(serving)} with a lapsed lease)" if serving else ""
            return NoHostWithRoom(
                f"no live host serves zones {', '.join(sorted(zones))}{lapsed}")
        best = max(live, key=lambda h: (h.free_pods > 0, h.free_cpu_millis,
                                        h.free_memory_bytes))
        largest = format_size(max(best.free_cpu_millis, 0), max(best.free_memory_bytes, 0),
                              spaced=True)
        if best.free_pods <= 0:
            largest += ", no micro-node slot left"
        count = f"{len(live)} host{'s' if len(live) != 1 else ''}"
        return NoHostWithRoom(
            f"no host with room for {format_size(cpu_millis, memory_bytes)} in {wanted}: "
            f"{count}, largest free {largest}")

    # ---- writing ----------------------------------------------------------------------

    async def reserve(self, host: str, node: str, *, cpu_millis: int, memory_bytes: int
                      ) -> None:
        """Add a micro-node's size to `host`'s totals (once per node in this pool).

        Raises NoHostWithRoom if the host (no longer) has room or is gone; never
        oversubscribes, whoever else writes to the host at the same time. The caller
        keeps the record (the micro-node, naming host and size) from before
        this call until after `release`: a recount counts what the records say."""
        await self._submit(host, _Op(node, (cpu_millis, memory_bytes),
                                     asyncio.get_running_loop().create_future()))

    async def release(self, host: str, node: str) -> None:
        """Give back what this pool reserved for `node` (nothing if it reserved nothing,
        or if a recount already took it out); a missing host is fine."""
        await self._submit(host, _Op(node, None, asyncio.get_running_loop().create_future()))

    async def _submit(self, host: str, op: _Op) -> None:
        self._queues.setdefault(host, []).append(op)
        if host not in self._writers:
            self._writers[host] = asyncio.create_task(self._write_loop(host),
                                                      name=f"host-writer-{host}")
        await op.future

    async def _write_loop(self, host: str) -> None:
        """Drain `host`'s queue: each round applies every queued op in one CAS write."""
        batch: list[_Op] = []
        try:
            while self._queues.get(host):
                batch = self._queues.pop(host)
                try:
                    await self._write_batch(host, batch)
                except Exception as exc:
                    _settle(batch, exc)
        finally:
            del self._writers[host]
            # Cancelled (pool stopped) with ops in hand or queued: fail them, never hang.
            _settle([*batch, *self._queues.pop(host, [])], RuntimeError("host pool stopped"))

    async def _write_batch(self, host: str, batch: list[_Op]) -> None:
        obj = self._objects.get(host)
        for _attempt in range(MAX_CONFLICTS):
            if obj is None:
                obj = await self._read(host)
            if obj is None:
                self._held.pop(host, None)
                gone = NoHostWithRoom(f"host {host} is not registered")
                for op in batch:
                    _settle([op], None if op.size is None else gone)
                return
            current = self._host(host, obj, True)
            # What this batch changes in `_held`, applied once it is written (a conflict
            # retries the batch against the unchanged `_held`): nodes it added (held
            # with the recounts of what it writes) and nodes it gave back.
            held = self._held.get(host, {})
            added: dict[str, tuple[int, int]] = {}
            removed: set[str] = set()
            used_cpu, used_mem = current.used_cpu_millis, current.used_memory_bytes
            used_pods = current.used_pods
            outcomes: list[Exception | None] = []
            changed = False
            for op in batch:
                if op.size is None:
                    if op.node in added or (op.node in held and op.node not in removed):
                        mine = held.get(op.node) if op.node not in added else None
                        size = added.pop(op.node) if mine is None else \
                            (mine.cpu_millis, mine.memory_bytes)
                        if op.node in held:
                            removed.add(op.node)
                        if mine is None or mine.recounts == current.recounts:
                            used_cpu, used_mem = used_cpu - size[0], used_mem - size[1]
                            used_pods -= 1
                            changed = True
                        # else: a recount since took it out (or counts its node)
                    outcomes.append(None)
                elif op.node in added or (op.node in held and op.node not in removed):
                    outcomes.append(None)
                else:
                    cpu, mem = op.size
                    if (used_pods + 1 <= current.offered_pods
                            and used_cpu + cpu <= current.offered_cpu_millis
                            and used_mem + mem <= current.offered_memory_bytes):
                        added[op.node] = op.size
                        used_cpu, used_mem, used_pods = used_cpu + cpu, used_mem + mem, \
                            used_pods + 1
                        changed = True
                        outcomes.append(None)
                    else:
                        free = format_size(max(current.offered_cpu_millis - used_cpu, 0),
                                           max(current.offered_memory_bytes - used_mem, 0),
                                           spaced=True)
                        slots = max(current.offered_pods - used_pods, 0)
                        outcomes.append(NoHostWithRoom(
                            f"host {host} has no room for {format_size(cpu, mem)}: free "
                            f"{free}, {slots} micro-node slots"))
            if changed:
                try:
                    written = await self._write(obj, used_cpu, used_mem, used_pods,
                                                current.recounts)
                except ApiError as e:
                    if e.status.code == 409:
                        self.conflicts += 1
                        obj = None  # someone wrote in between: re-read, re-check, retry
                        continue
                    if e.status.code == 404:
                        self._objects.pop(host, None)
                        obj = None
                        continue
                    raise
                self.writes += 1
                if self._store(written):
                    # What was written is known: no need to parse it back.
                    self._parsed[host] = (written, replace(
                        current, used_cpu_millis=used_cpu, used_memory_bytes=used_mem,
                        used_pods=used_pods,
                        resource_version=str(written["metadata"].get("resourceVersion"))))
                if any(op.size is None for op in batch):
                    self._notify()  # a release in this pool frees capacity now
            kept = self._held.setdefault(host, {})
            for node in removed:
                kept.pop(node, None)
            for node, size in added.items():
                kept[node] = _Held(*size, current.recounts)
            for op, outcome in zip(batch, outcomes, strict=True):
                _settle([op], outcome)
            return
        raise RuntimeError(f"host {host}: {MAX_CONFLICTS} conflicting writes in a row")

    async def _write(self, obj: dict[str, Any], cpu: int, memory: int, pods: int,
                     recounts: int) -> dict[str, Any]:
        """Replace the host's status with these totals, pinned to `obj`'s version."""
        status = {k: v for k, v in (obj.get("status") or {}).items() if k != "reservations"}
        body = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                "metadata": {"name": obj["metadata"]["name"],
                             "resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": obj.get("spec") or {},
                "status": {**status, "allocated": _allocated(cpu, memory, pods),
                           "recounts": recounts}}
        written = await self._client.replace(FargateHost.Status(body), obj["metadata"]["name"])
        return dict(written)

    async def recount(self, host: str,
                      records: Callable[[], Awaitable[Iterable[tuple[int, int]] | None]]
                      ) -> bool:
        """Lower `host`'s totals to the sum of its records where they over-count (what a
        killed scheduler took, what a rerun took twice). `records` lists, afresh, the
        (cpu millis, memory bytes) of every micro-node naming the host, or None when one
        has no size (then nothing is lowered). Returns whether the totals went down.

        The host is read before the records are listed: everything added to the totals
        by then has its record in the list, so the sum never misses a live micro-node."""
        for _attempt in range(RECOUNT_TRIES):
            obj = await self._read(host)
            if obj is None:
                return False
            sizes = await records()
            if sizes is None:
                return False
            cpu = mem = pods = 0
            for record_cpu, record_mem in sizes:
                cpu, mem, pods = cpu + record_cpu, mem + record_mem, pods + 1
            current = Host.from_object(obj)
            lowered = (min(current.used_cpu_millis, cpu), min(current.used_memory_bytes, mem),
                       min(current.used_pods, pods))
            if lowered == (current.used_cpu_millis, current.used_memory_bytes,
                           current.used_pods):
                return False
            try:
                written = await self._write(obj, *lowered, current.recounts + 1)
            except ApiError as e:
                if e.status.code in (404, 409):
                    self.conflicts += e.status.code == 409
                    continue
                raise
            log.info("host %s: recounted its micro-nodes: %s reserved, %d micro-nodes "
                     "(was %s, %d)", host, format_size(lowered[0], lowered[1]), lowered[2],
                     format_size(current.used_cpu_millis, current.used_memory_bytes),
                     current.used_pods)
            self._store(written)
            self._notify()
            return True
        return False

    async def _read(self, host: str) -> dict[str, Any] | None:
        try:
            fresh = dict(await self._client.get(FargateHost, host))
        except ApiError as e:
            if e.status.code == 404:
                self._objects.pop(host, None)
                return None
            raise
        self._store(fresh)
        return fresh
