"""Pod IP allocation against a real API server: an address is claimed by creating the
micro-node (Node) named after it. Unique under concurrency (two allocators on two
clients, as two schedulers), reserved addresses never handed out, zone spread,
exhaustion with its reason, release and reuse, idempotency per pod."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from lightkube import codecs
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Node

from nodeless.fargate.components import install_crds
from nodeless.fargate.ipam import (
    AddressesExhausted,
    Allocation,
    IPAllocator,
    NodeFactory,
    SubnetInfo,
    reserved_addresses,
    usable_count,
)
from nodeless.fargate.names import HOST_LABEL, POD_UID_LABEL, SUBNET_LABEL
from nodeless.fargate.scheduler import steps
from nodeless.fargate.sizing import size_pod
from nodeless.kube import async_client
from tests.fixtures.apiserver import RunningAPIServer
from tests.fixtures.fargate import fargate_apiserver

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    with fargate_apiserver(tmp_path_factory.mktemp("ipam")) as running:
        yield running


@pytest.fixture
async def allocators(server: RunningAPIServer) -> AsyncIterator[list[IPAllocator]]:
    """Two allocators, each on its own client: two schedulers sharing one API."""
    clients = [async_client(server.kubeconfig) for _ in range(2)]
    allocs = [IPAllocator(c) for c in clients]
    for a in allocs:
        await a.start()
    yield allocs
    for a in allocs:
        await a.stop()
    for c in clients:
        await c.close()


REGION = "us-east-1"
SIZE = size_pod({"containers": [{"name": "app", "image": "busybox"}]})


def pod(n: int | str = 0) -> dict[str, str]:
    return {"namespace": "default", "name": f"pod-{n}", "uid": str(uuid.uuid4())}


def node(ref: dict[str, str], host: str = "h") -> NodeFactory:
    """The micro-node the scheduler makes for the pod `ref` on `host`."""
    def build(ip: str, subnet: SubnetInfo) -> dict[str, Any]:
        return steps.micro_node(steps.node_name(ip, REGION), ip=ip, subnet=subnet,
                                region=REGION, host=host, size=SIZE, pod={"metadata": ref})
    return build


async def claim(allocator: IPAllocator, subnets: list[SubnetInfo], ref: dict[str, str],
                host: str = "h", zones: list[str] | None = None) -> Allocation:
    return await allocator.allocate(subnets, pod=ref, node=node(ref, host), zones=zones)


async def test_reserved_addresses_are_the_first_four_and_the_last() -> None:
    assert reserved_addresses("10.0.0.0/28") == {
        "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.15"}
    assert "10.0.31.255" in reserved_addresses("10.0.0.0/19")
    assert usable_count("10.0.0.0/28") == 11
    assert usable_count("10.0.0.0/19") == 8192 - 5


async def test_concurrent_allocations_from_two_schedulers_are_unique(
        allocators: list[IPAllocator]) -> None:
    subnets = [SubnetInfo("subnet-c1", "10.1.0.0/24", "cc-1a"),
               SubnetInfo("subnet-c2", "10.1.1.0/24", "cc-1b")]
    pods = [pod(i) for i in range(200)]
    results = await asyncio.gather(*(
        claim(allocators[i % 2], subnets, p, host="h1") for i, p in enumerate(pods)))
    ips = [r.ip for r in results]
    assert len(set(ips)) == 200, Counter(ips).most_common(3)
    by_id = {s.id: s for s in subnets}
    for r in results:
        net = ipaddress.ip_network(by_id[r.subnet].cidr)
        assert ipaddress.ip_address(r.ip) in net
        assert r.ip not in reserved_addresses(by_id[r.subnet].cidr)
        assert r.zone == by_id[r.subnet].zone
        assert r.name == steps.node_name(r.ip, REGION)
    zones = Counter(r.zone for r in results)
    assert abs(zones["cc-1a"] - zones["cc-1b"]) <= 30, zones
    # The API holds exactly these micro-nodes, each labelled with its host, its pod and
    # its subnet, and addressed with the pod's IP.
    stored = {}
    async for obj in allocators[0]._client.list(
            Node, labels={SUBNET_LABEL: ("subnet-c1", "subnet-c2")}):
        stored[obj.status.addresses[0].address] = obj
    assert set(stored) == set(ips)
    for p, r in zip(pods, results, strict=True):
        labels = stored[r.ip].metadata.labels
        assert labels[HOST_LABEL] == "h1" and labels[POD_UID_LABEL] == p["uid"]
        assert labels[SUBNET_LABEL] == r.subnet and stored[r.ip].metadata.name == r.name


async def test_sequential_allocations_alternate_zones(allocators: list[IPAllocator]) -> None:
    subnets = [SubnetInfo("subnet-z1", "10.2.0.0/24", "zz-1a"),
               SubnetInfo("subnet-z2", "10.2.1.0/24", "zz-1b"),
               SubnetInfo("subnet-z3", "10.2.2.0/24", "zz-1c")]
    zones = [(await claim(allocators[0], subnets, pod(i))).zone for i in range(9)]
    assert Counter(zones) == {"zz-1a": 3, "zz-1b": 3, "zz-1c": 3}
    assert zones[:3] == ["zz-1a", "zz-1b", "zz-1c"]  # ties by name
    # Restricted to zones: only those subnets are used.
    only = await claim(allocators[0], subnets, pod(), zones=["zz-1c"])
    assert only.subnet == "subnet-z3"
    with pytest.raises(AddressesExhausted, match="no subnet in zones zz-9"):
        await claim(allocators[0], subnets, pod(), zones=["zz-9"])


async def test_exhaustion_release_and_reuse(allocators: list[IPAllocator]) -> None:
    tiny = [SubnetInfo("subnet-tiny", "10.3.0.0/28", "tt-1a")]
    first, second = allocators
    results = await asyncio.gather(*(
        claim(allocators[i % 2], tiny, pod(i)) for i in range(11)))
    ips = {r.ip for r in results}
    assert ips == {f"10.3.0.{i}" for i in range(4, 15)}
    for a in allocators:
        with pytest.raises(AddressesExhausted) as info:
            await claim(a, tiny, pod())
        assert info.value.reason == ("no free IP address in subnets subnet-tiny "
                                     "(10.3.0.0/28): all 11 addresses are allocated")
    # Released by one scheduler, reused by the other once its watch shows the release.
    released = steps.node_name("10.3.0.9", REGION)
    await first.release(released)
    await first.release(released)  # already gone: fine
    for _ in range(500):
        if released not in second.nodes():
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the other allocator's watch never showed the release")
    again = await claim(second, tiny, pod("new"))
    assert again.ip == "10.3.0.9"
    with pytest.raises(AddressesExhausted):
        await claim(first, tiny, pod())


async def test_allocation_is_idempotent_per_pod(server: RunningAPIServer,
                                                allocators: list[IPAllocator]) -> None:
    subnets = [SubnetInfo("subnet-i1", "10.4.0.0/24", "ii-1a"),
               SubnetInfo("subnet-i2", "10.4.1.0/24", "ii-1b")]
    p = pod("same")
    concurrent = await asyncio.gather(*(claim(allocators[0], subnets, p) for _ in range(10)))
    assert len(set(concurrent)) == 1
    assert await claim(allocators[0], subnets, p) == concurrent[0]
    # A scheduler started afterwards (a restart) finds the pod's address, not a new one.
    client = async_client(server.kubeconfig)
    restarted = IPAllocator(client)
    try:
        await restarted.start()
        assert await claim(restarted, subnets, p) == concurrent[0]
        assert restarted.allocation_for_pod(p["uid"]) == concurrent[0]
        mine = [o for o in restarted.nodes().values()
                if o["metadata"]["labels"][POD_UID_LABEL] == p["uid"]]
        assert len(mine) == 1
        assert restarted.node_for_pod(p["uid"]) == mine[0]
        assert await restarted.release_pod(p["uid"]) == concurrent[0]
        assert restarted.allocation_for_pod(p["uid"]) is None
    finally:
        await restarted.stop()
        await client.close()


async def test_allocate_before_start_is_an_error(server: RunningAPIServer) -> None:
    client = async_client(server.kubeconfig)
    try:
        with pytest.raises(RuntimeError, match="start"):
            await claim(IPAllocator(client), [], pod())
    finally:
        await client.close()


async def test_setup_deletes_the_retired_allocation_crd(server: RunningAPIServer) -> None:
    """A data dir of an earlier nodeless still has the PodIPAllocation CRD (and objects):
    setup deletes it, since the micro-node is now the claim on an address."""
    client = async_client(server.kubeconfig)
    try:
        retired = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "podipallocations.fargate.nodeless.io"},
            "spec": {"group": "fargate.nodeless.io", "scope": "Cluster", "names": {
                "plural": "podipallocations", "singular": "podipallocation",
                "kind": "PodIPAllocation", "listKind": "PodIPAllocationList"},
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                    "openAPIV3Schema": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}}}]}}
        await client.create(codecs.from_dict(retired))
        await install_crds(client)
        names = {c.metadata.name async for c in client.list(CustomResourceDefinition)}
        assert "podipallocations.fargate.nodeless.io" not in names
        assert "fargatehosts.fargate.nodeless.io" in names
        await install_crds(client)  # nothing to delete the second time: fine
    finally:
        await client.close()
