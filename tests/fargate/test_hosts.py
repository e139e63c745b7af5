"""Hosts against a real API server: offered capacity (capacity x overcommit), liveness
by lease, bin-packing placement order, reservations that never oversubscribe a host
even with two pools writing at once, release, recounts from the allocations, change
notifications, reasons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from lightkube import AsyncClient

from nodeless.fargate.resources import FargateHost
from nodeless.fargate.scheduler.hosts import GIB, Host, HostPool, NoHostWithRoom
from nodeless.kube import async_client
from tests.fargate.hosts_helper import (
    delete_test_host,
    expire_test_host,
    register_test_host,
    renew_test_host,
)
from tests.fixtures.apiserver import RunningAPIServer
from tests.fixtures.fargate import fargate_apiserver

pytestmark = pytest.mark.asyncio(loop_scope="session")

MakePool = Callable[[], Awaitable[HostPool]]
QUARTER = (250, GIB // 2)
"""The smallest Fargate size: 0.25 vCPU, 0.5 GB."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    with fargate_apiserver(tmp_path_factory.mktemp("hosts")) as running:
        yield running


@pytest.fixture
async def client(server: RunningAPIServer) -> AsyncIterator[AsyncClient]:
    c = async_client(server.kubeconfig)
    yield c
    async for h in c.list(FargateHost):  # each test starts with no hosts
        await delete_test_host(c, h["metadata"]["name"])
    await c.close()


@pytest.fixture
async def pools(server: RunningAPIServer, client: AsyncClient
                ) -> AsyncIterator[MakePool]:
    """Makes started pools, each on its own client (as separate schedulers)."""
    made: list[tuple[HostPool, AsyncClient]] = []

    async def make() -> HostPool:
        c = async_client(server.kubeconfig)
        pool = HostPool(c)
        await pool.start()
        made.append((pool, c))
        return pool

    yield make
    for pool, c in made:
        await pool.stop()
        await c.close()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_offered_is_capacity_times_overcommit(client: AsyncClient,
                                                    pools: MakePool) -> None:
    await register_test_host(client, "big", cpu="4", memory="16Gi", pods=20,
                             overcommit=(2.5, 1.5))
    pool = await pools()
    await until(lambda: pool.get("big") is not None)
    host = pool.get("big")
    assert isinstance(host, Host)
    assert (host.offered_cpu_millis, host.offered_memory_bytes, host.offered_pods) == (
        10_000, 24 * GIB, 20)
    assert (host.used_cpu_millis, host.used_memory_bytes, host.used_pods) == (0, 0, 0)
    assert host.alive and host.zones == ["us-east-1a", "us-east-1b"]
    assert host.endpoint.endswith("/big") and host.resource_version


async def test_reserve_release_and_idempotency(client: AsyncClient, pools: MakePool) -> None:
    await register_test_host(client, "h1", cpu="1", memory="2Gi")
    pool = await pools()
    await until(lambda: pool.get("h1") is not None)
    await pool.reserve("h1", "node-a", cpu_millis=500, memory_bytes=GIB)
    await pool.reserve("h1", "node-a", cpu_millis=500, memory_bytes=GIB)  # again
    host = pool.get("h1")
    assert host is not None
    assert (host.used_cpu_millis, host.used_memory_bytes, host.used_pods) == (500, GIB, 1)
    stored = await client.get(FargateHost, "h1")
    assert stored["status"]["allocated"] == {"cpu": "500m", "memory": str(GIB), "pods": 1}
    # What no longer fits is refused with a reason, and nothing is written.
    with pytest.raises(NoHostWithRoom, match="host h1 has no room for 1vCPU 1GB"):
        await pool.reserve("h1", "node-b", cpu_millis=1000, memory_bytes=GIB)
    assert pool.candidates(1000, GIB, {"us-east-1a"}) == []
    assert [h.name for h in pool.candidates(500, GIB, {"us-east-1a"})] == ["h1"]
    await pool.release("h1", "node-a")
    await pool.release("h1", "node-a")  # missing is fine
    await pool.release("nowhere", "node-a")  # so is a missing host
    host = pool.get("h1")
    assert host is not None and host.used_pods == 0 and host.used_cpu_millis == 0
    await pool.reserve("h1", "node-b", cpu_millis=1000, memory_bytes=GIB)
    with pytest.raises(NoHostWithRoom, match="not registered"):
        await pool.reserve("ghost", "node-c", cpu_millis=250, memory_bytes=GIB)


async def test_two_pools_never_oversubscribe(client: AsyncClient, pools: MakePool) -> None:
    # Room for exactly 16 quarter-vCPU micro-nodes by cpu (memory and pods are ample).
    await register_test_host(client, "tight", cpu="4", memory="64Gi", pods=100)
    first, second = await pools(), await pools()
    await until(lambda: first.get("tight") is not None and second.get("tight") is not None)

    async def attempt(i: int) -> bool:
        pool = (first, second)[i % 2]
        try:
            await pool.reserve("tight", f"node-{i}", cpu_millis=QUARTER[0],
                               memory_bytes=QUARTER[1])
        except NoHostWithRoom:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(40)))
    # Both pools computed their fit on the same version: one write won, the other got
    # 409, re-read and found the host full.
    assert first.conflicts + second.conflicts >= 1
    assert sum(outcomes) == 16
    stored = await client.get(FargateHost, "tight")
    assert stored["status"]["allocated"] == {"cpu": "4000m", "memory": str(8 * GIB),
                                             "pods": 16}
    # Pods limit too: a host offering 3 micro-nodes takes 3.
    await register_test_host(client, "few", cpu="16", memory="64Gi", pods=3)
    await until(lambda: first.get("few") is not None and second.get("few") is not None)
    results = await asyncio.gather(*(
        (first, second)[i % 2].reserve("few", f"f-{i}", cpu_millis=250,
                                       memory_bytes=GIB // 2)
        for i in range(8)), return_exceptions=True)
    assert sum(r is None for r in results) == 3
    assert all(isinstance(r, NoHostWithRoom) for r in results if r is not None)
    # One at a time in each pool, interleaved: every write races the other pool's.
    await register_test_host(client, "race", cpu="5", memory="64Gi", pods=100)
    await until(lambda: first.get("race") is not None and second.get("race") is not None)

    async def one_by_one(pool: HostPool, tag: str) -> int:
        won = 0
        for i in range(15):
            try:
                await pool.reserve("race", f"{tag}-{i}", cpu_millis=QUARTER[0],
                                   memory_bytes=QUARTER[1])
                won += 1
            except NoHostWithRoom:
                pass
        return won

    wins = await asyncio.gather(one_by_one(first, "x"), one_by_one(second, "y"))
    assert sum(wins) == 20
    stored = await client.get(FargateHost, "race")
    assert stored["status"]["allocated"]["pods"] == 20


async def test_dead_lease_is_not_a_candidate_and_renewal_notifies(
        client: AsyncClient, pools: MakePool) -> None:
    await register_test_host(client, "h-a", zones=["us-east-1a"])
    await register_test_host(client, "h-b", zones=["us-east-1b"])
    pool = await pools()
    changes: list[int] = []
    pool.on_change(lambda: changes.append(1))
    await until(lambda: len(pool.hosts()) == 2)
    assert [h.name for h in pool.candidates(*QUARTER, {"us-east-1a", "us-east-1b"})] == [
        "h-a", "h-b"]
    await expire_test_host(client, "h-a")
    await until(lambda: not pool.hosts()[0].alive)
    assert [h.name for h in pool.candidates(*QUARTER, {"us-east-1a", "us-east-1b"})] == [
        "h-b"]
    assert pool.candidates(*QUARTER, {"us-east-1a"}) == []
    assert pool.no_room(*QUARTER, {"us-east-1a"}).reason == (
        "no live host serves zones us-east-1a (1 with a lapsed lease)")
    before = len(changes)
    await renew_test_host(client, "h-a")
    await until(lambda: len(changes) > before)
    assert [h.name for h in pool.candidates(*QUARTER, {"us-east-1a"})] == ["h-a"]


async def test_placement_packs_the_most_used_host_first(client: AsyncClient,
                                                        pools: MakePool) -> None:
    for name in ("p-c", "p-a", "p-b"):
        await register_test_host(client, name, cpu="2", memory="8Gi")
    pool = await pools()
    await until(lambda: len(pool.hosts()) == 3)
    zones = {"us-east-1a"}
    # Empty hosts: by name. Then the one in use first, until it is full.
    assert [h.name for h in pool.candidates(*QUARTER, zones)] == ["p-a", "p-b", "p-c"]
    await pool.reserve("p-b", "n1", cpu_millis=500, memory_bytes=GIB)
    assert [h.name for h in pool.candidates(*QUARTER, zones)] == ["p-b", "p-a", "p-c"]
    await pool.reserve("p-c", "n2", cpu_millis=1000, memory_bytes=GIB)
    assert [h.name for h in pool.candidates(*QUARTER, zones)] == ["p-c", "p-b", "p-a"]
    # A size the fullest host cannot take skips it.
    assert [h.name for h in pool.candidates(1500, GIB, zones)] == ["p-b", "p-a"]
    # Simulate the scheduler: every pod goes to the first candidate; 2 hosts suffice
    # for 16 quarter-vCPU pods (8 per 2-vCPU host), the third stays empty.
    await pool.release("p-b", "n1")
    await pool.release("p-c", "n2")
    for i in range(16):
        best = pool.candidates(*QUARTER, zones)[0]
        await pool.reserve(best.name, f"m{i}", cpu_millis=QUARTER[0],
                           memory_bytes=QUARTER[1])
    used = {h.name: h.used_pods for h in pool.hosts()}
    assert used == {"p-a": 8, "p-b": 8, "p-c": 0}


async def test_reasons_when_no_host_has_room(client: AsyncClient, pools: MakePool) -> None:
    pool = await pools()
    assert pool.no_room(2000, 9 * GIB, {"us-east-1a"}).reason == "no hosts are registered"
    await register_test_host(client, "r1", cpu="1", memory="4Gi")
    await register_test_host(client, "r2", cpu="1", memory="4Gi")
    await until(lambda: len(pool.hosts()) == 2)
    await pool.reserve("r1", "x", cpu_millis=500, memory_bytes=GIB // 2)
    assert pool.candidates(2000, 9 * GIB, {"us-east-1a", "us-east-1b"}) == []
    assert pool.no_room(2000, 9 * GIB, {"us-east-1a", "us-east-1b"}).reason == (
        "no host with room for 2vCPU 9GB in us-east-1a/us-east-1b: 2 hosts, "
        "largest free 1 vCPU 4 GB")
    assert pool.no_room(250, GIB, {"eu-west-1a"}).reason == (
        "no live host serves zones eu-west-1a")


async def test_freed_capacity_from_another_scheduler_notifies(client: AsyncClient,
                                                              pools: MakePool) -> None:
    await register_test_host(client, "n1", cpu="1", memory="2Gi")
    first, second = await pools(), await pools()
    await until(lambda: first.get("n1") is not None and second.get("n1") is not None)
    await first.reserve("n1", "big", cpu_millis=1000, memory_bytes=GIB)
    await until(lambda: (second.get("n1") or Host.from_object(
        {"metadata": {"name": "?"}})).used_pods == 1)
    changes: list[int] = []
    second.on_change(lambda: changes.append(1))
    await first.release("n1", "big")
    await until(lambda: bool(changes))
    assert [h.name for h in second.candidates(1000, GIB, {"us-east-1b"})] == ["n1"]


async def test_recount_lowers_what_a_killed_scheduler_left(client: AsyncClient,
                                                           pools: MakePool) -> None:
    """A pool that dies holding reservations (a SIGKILL'd scheduler) leaves them in the
    totals; a recount from the records (the allocations naming the host) brings them down
    to what the records hold and never below, and no pool gives back twice what a recount
    already took out."""
    await register_test_host(client, "rc", cpu="4", memory="16Gi")
    killed, survivor = await pools(), await pools()
    await until(lambda: killed.get("rc") is not None and survivor.get("rc") is not None)
    for i in range(3):
        await killed.reserve("rc", f"k-{i}", cpu_millis=500, memory_bytes=GIB)
    await survivor.reserve("rc", "s-0", cpu_millis=1000, memory_bytes=GIB)
    records = [(500, GIB), (1000, GIB)]  # k-0 got as far as its allocation; and s-0

    async def listed() -> list[tuple[int, int]]:
        return list(records)

    async def status() -> dict[str, object]:
        return dict((await client.get(FargateHost, "rc"))["status"])

    assert await survivor.recount("rc", listed)
    assert (await status())["allocated"] == {"cpu": "1500m", "memory": str(2 * GIB),
                                             "pods": 2}
    assert (await status())["recounts"] == 1
    assert not await survivor.recount("rc", listed)  # nothing more to lower
    records.append((250, GIB))  # an allocation whose reservation is under way
    assert not await survivor.recount("rc", listed), "a recount never raises the totals"
    records.pop()
    # s-0 was counted by the recount: giving it back now would subtract it twice.
    await survivor.release("rc", "s-0")
    assert (await status())["allocated"]["pods"] == 2
    records.remove((1000, GIB))  # its allocation goes; the next recount takes it out
    assert await survivor.recount("rc", listed)
    assert (await status())["allocated"] == {"cpu": "500m", "memory": str(GIB), "pods": 1}
    # What is reserved after a recount is given back exactly.
    await survivor.reserve("rc", "s-1", cpu_millis=250, memory_bytes=GIB)
    assert (await status())["allocated"] == {"cpu": "750m", "memory": str(2 * GIB),
                                             "pods": 2}
    await survivor.release("rc", "s-1")
    assert (await status())["allocated"] == {"cpu": "500m", "memory": str(GIB), "pods": 1}

    async def unknown() -> None:
        return None  # an allocation without a size: nothing is lowered

    records.clear()
    assert not await survivor.recount("rc", unknown)
    assert (await status())["allocated"]["pods"] == 1
