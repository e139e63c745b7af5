"""The fargate-scheduler against a real API server: micro-nodes, binding, Events, release
on deletion, failure reasons, capacity retries, and (in subprocesses) two replicas and a
killed leader. The admission webhook is not running here: pods are created as it would
leave them (schedulerName and profile annotation set)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event, Node, Pod
from lightkube.types import PatchType

from nodeless.fargate.ipam import MICRO_NODE_LABELS, reserved_addresses
from nodeless.fargate.names import (
    CAPACITY_ANNOTATION,
    COMPUTE_TYPE_LABEL,
    HOST_LABEL,
    POD_UID_LABEL,
    PROFILE_ANNOTATION,
    SCHEDULER_NAME,
    SUBNET_LABEL,
)
from nodeless.fargate.resources import FargateHost, FargateProfile
from nodeless.fargate.scheduler.component import Scheduler, SchedulerOptions
from nodeless.fargate.scheduler.hosts import Host, entry_size
from nodeless.fargate.scheduler.steps import node_name
from nodeless.fargate.vpc import default_vpc
from nodeless.kube import async_client
from tests.fargate.hosts_helper import delete_test_host, register_test_host
from tests.fixtures.apiserver import RunningAPIServer
from tests.fixtures.fargate import fargate_apiserver

pytestmark = pytest.mark.asyncio(loop_scope="session")

REGION = "us-east-1"
VPC_DEF = default_vpc("test", REGION)
PRIVATE = {s.id: s for s in VPC_DEF.private_subnets()}
PROFILE = "fp-sched"
NS = "sched"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    async def setup(client: AsyncClient) -> None:
        await client.create(FargateProfile({
            "metadata": {"name": PROFILE},
            "spec": {"podExecutionRoleArn": "arn:aws:iam::123456789012:role/pods",
                     "subnets": sorted(PRIVATE), "selectors": [{"namespace": NS}]}}))
        await client.patch(FargateProfile.Status, PROFILE, {"status": {"status": "ACTIVE"}},
                           patch_type=PatchType.MERGE)
        for ns in (NS, "kube-system"):
            with contextlib.suppress(ApiError):
                await client.create(codecs.from_dict({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))

    with fargate_apiserver(tmp_path_factory.mktemp("scheduler"), vpc=VPC_DEF,
                           setup=setup) as running:
        yield running


@pytest.fixture
async def client(server: RunningAPIServer) -> AsyncIterator[AsyncClient]:
    c = async_client(server.kubeconfig)
    yield c
    # Leave no pods or hosts behind for the next test.
    async for pod in c.list(Pod, namespace=NS):
        with contextlib.suppress(ApiError):
            await c.delete(Pod, pod.metadata.name, namespace=NS, grace_period=0)
    async for host in c.list(FargateHost):
        await delete_test_host(c, host["metadata"]["name"])
    await c.close()


@contextlib.asynccontextmanager
async def scheduler(server: RunningAPIServer, **options: Any) -> AsyncIterator[Scheduler]:
    c = async_client(server.kubeconfig)
    options = {"lease_seconds": 2.0, "renew_every": 0.5, "gc_interval": 2.0, **options}
    instance = Scheduler(c, SchedulerOptions(region=REGION, **options))
    task = asyncio.create_task(instance.run())
    try:
        yield instance
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await c.close()


def pod(name: str, cpu: str = "250m", memory: str = "256Mi") -> Pod:
    """As the admission webhook leaves a pod of profile fp-sched."""
    return Pod.from_dict({  # type: ignore[no-any-return]
        "metadata": {"name": name, "namespace": NS,
                     "annotations": {PROFILE_ANNOTATION: PROFILE}},
        "spec": {"schedulerName": SCHEDULER_NAME, "containers": [{
            "name": "app", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})


async def create_pods(client: AsyncClient, names: list[str], parallel: int = 16) -> None:
    queue = list(names)

    async def creator() -> None:
        while queue:
            await client.create(pod(queue.pop()))

    await asyncio.gather(*(creator() for _ in range(parallel)))


async def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check.__name__}")
        await asyncio.sleep(every)


async def pods_of(client: AsyncClient) -> list[dict[str, Any]]:
    return [p.to_dict() async for p in client.list(Pod, namespace=NS)]


async def all_bound(client: AsyncClient, count: int, timeout: float = 20.0
                    ) -> list[dict[str, Any]]:
    seen: list[str] = []

    async def bound() -> list[dict[str, Any]] | None:
        pods = await pods_of(client)
        done = [p for p in pods if p["spec"].get("nodeName")]
        seen[:] = [f"{len(done)} of {len(pods)} bound, {count} expected; unbound: "
                   f"{[p['metadata']['name'] for p in pods if p not in done][:5]}"]
        return pods if len(done) == count == len(pods) else None

    try:
        return await wait_for(bound, timeout, every=0.25)  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {seen[0]}") from None


async def events(client: AsyncClient, name: str) -> list[dict[str, Any]]:
    return [e.to_dict() async for e in client.list(Event, namespace=NS,
                                                   fields={"involvedObject.name": name})]


async def fargate_state(client: AsyncClient) -> tuple[list[dict[str, Any]],
                                                      dict[str, tuple[int, int, int]]]:
    """Micro-nodes (each the claim on its pod's IP and the record of its size on its
    host), and each host's totals (cpu millis, memory bytes, pods) where not zero."""
    nodes = [n.to_dict() async for n in client.list(Node, labels=MICRO_NODE_LABELS)]
    totals = {}
    async for obj in client.list(FargateHost):
        host = Host.from_object(dict(obj))
        if host.used_cpu_millis or host.used_memory_bytes or host.used_pods:
            totals[host.name] = (host.used_cpu_millis, host.used_memory_bytes, host.used_pods)
    return nodes, totals


def internal_ip(node: dict[str, Any]) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def held(nodes: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """What the micro-nodes say each host holds: the totals it should show."""
    sums: dict[str, tuple[int, int, int]] = {}
    for n in nodes:
        cpu, memory = entry_size(n["status"]["capacity"])
        host = n["metadata"]["labels"][HOST_LABEL]
        was = sums.get(host, (0, 0, 0))
        sums[host] = (was[0] + cpu, was[1] + memory, was[2] + 1)
    return sums


def check_consistent(pods: list[dict[str, Any]], nodes: list[dict[str, Any]],
                     totals: dict[str, tuple[int, int, int]]) -> None:
    """One micro-node (one IP, named after it) with the pod's size per bound pod, each
    host's totals the sum of its micro-nodes; nothing else."""
    bound = {p["spec"]["nodeName"]: p for p in pods}
    assert len(bound) == len(pods), "two pods on one node"
    assert sorted(bound) == sorted(n["metadata"]["name"] for n in nodes)
    ips = [internal_ip(n) for n in nodes]
    assert len(ips) == len(set(ips)) == len(pods)
    assert all(n["metadata"]["name"] == node_name(internal_ip(n), REGION) for n in nodes)
    assert len({n["metadata"]["labels"][POD_UID_LABEL] for n in nodes}) == len(pods)
    records = {n["metadata"]["name"]: n for n in nodes}
    for node, p in bound.items():
        assert records[node]["metadata"]["labels"][POD_UID_LABEL] == p["metadata"]["uid"]
        assert entry_size(records[node]["status"]["capacity"]) == (250, 512 * 2**20)
    assert totals == held(nodes)


async def test_pods_get_their_micro_nodes_and_release_them(server: RunningAPIServer,
                                                           client: AsyncClient) -> None:
    await register_test_host(client, "host-a", cpu="8", memory="32Gi")
    names = [f"web-{i}" for i in range(6)]
    async with scheduler(server):
        await create_pods(client, names)
        pods = await all_bound(client, len(names))
        nodes, totals = await fargate_state(client)
        check_consistent(pods, nodes, totals)
        assert totals == {"host-a": (6 * 250, 6 * 512 * 2**20, 6)}
        by_name = {n["metadata"]["name"]: n for n in nodes}
        zones_used = set()
        for p in pods:
            node_name = p["spec"]["nodeName"]
            node = by_name[node_name]
            ip = internal_ip(node)
            assert node_name == f"fargate-ip-{ip.replace('.', '-')}.{REGION}.compute.internal"
            subnet = next(s for s in PRIVATE.values()
                          if ipaddress.ip_address(ip) in ipaddress.ip_network(s.cidr))
            assert ip not in reserved_addresses(subnet.cidr)
            labels = node["metadata"]["labels"]
            assert labels[COMPUTE_TYPE_LABEL] == "fargate"
            assert labels["topology.kubernetes.io/zone"] == subnet.zone
            assert labels["topology.kubernetes.io/region"] == REGION
            assert labels["kubernetes.io/hostname"] == node_name
            assert labels[HOST_LABEL] == "host-a"
            zones_used.add(subnet.zone)
            assert node["spec"]["taints"] == [
                {"key": COMPUTE_TYPE_LABEL, "value": "fargate", "effect": "NoSchedule"}]
            assert node["spec"]["providerID"].startswith("nodeless://host-a/")
            assert node["status"]["capacity"] == node["status"]["allocatable"] == {
                "cpu": "250m", "memory": "512Mi", "pods": "1", "ephemeral-storage": "20Gi"}
            assert {"type": "Hostname", "address": node_name} in node["status"]["addresses"]
            assert p["metadata"]["annotations"][CAPACITY_ANNOTATION] == "0.25vCPU 0.5GB"
            assert labels[SUBNET_LABEL] == subnet.id
        assert zones_used == {"us-east-1a", "us-east-1b"}, "pods spread over the zones"

        async def scheduled_events() -> bool:
            for name in names:
                evs = await events(client, name)
                if not any(e["reason"] == "Scheduled" for e in evs):
                    return False
            return True

        await wait_for(scheduled_events, 5)
        evs = await events(client, names[0])
        scheduled = next(e for e in evs if e["reason"] == "Scheduled")
        node0 = next(p for p in pods if p["metadata"]["name"] == names[0])["spec"]["nodeName"]
        assert scheduled["message"] == f"Successfully assigned {NS}/{names[0]} to {node0}"
        assert scheduled["source"]["component"] == SCHEDULER_NAME

        # The host agent stands in: pods deleted with grace 0 release everything.
        for name in names:
            await client.delete(Pod, name, namespace=NS, grace_period=0)

        async def released() -> bool:
            nodes, totals = await fargate_state(client)
            return not nodes and not totals

        await wait_for(released, 10)


async def test_oversized_pod_is_not_supported(server: RunningAPIServer,
                                              client: AsyncClient) -> None:
    await register_test_host(client, "host-b", cpu="64", memory="512Gi")
    async with scheduler(server):
        await client.create(pod("huge", cpu="32", memory="1Gi"))

        async def failed() -> list[dict[str, Any]]:
            return [e for e in await events(client, "huge") if e["reason"] == "FailedScheduling"]

        evs = await wait_for(failed, 10)
        assert evs[0]["type"] == "Warning"
        assert evs[0]["message"].startswith("Pod not supported on Fargate: ")
        assert "32 vCPU" in evs[0]["message"], evs[0]["message"]
        await asyncio.sleep(1.0)
        assert len(await failed()) == 1, "not retried while the pod is unchanged"
        assert not (await client.get(Pod, "huge", namespace=NS)).spec.nodeName


async def test_no_host_then_a_host_joins(server: RunningAPIServer, client: AsyncClient) -> None:
    async with scheduler(server) as instance:
        await client.create(pod("waiter"))

        async def failed() -> list[dict[str, Any]]:
            return [e for e in await events(client, "waiter")
                    if e["reason"] == "FailedScheduling"]

        evs = await wait_for(failed, 10)
        assert "no hosts are registered" in evs[0]["message"], evs[0]["message"]
        # Let the backoff grow so that only the host pool's notice can be quick.
        await asyncio.sleep(3.0)
        assert instance.controller is not None
        joined = time.monotonic()
        await register_test_host(client, "host-c")
        await all_bound(client, 1, timeout=5)
        assert time.monotonic() - joined < 5


# ---- replicas in their own processes -------------------------------------------------


def start_replica(server: RunningAPIServer, identity: str) -> subprocess.Popen[bytes]:
    log = open(server.config.data_dir / f"{identity}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "nodeless.fargate.scheduler", "--kubeconfig",
         str(server.kubeconfig), "--region", REGION, "--lease-seconds", "2",
         "--renew-every", "0.5", "--gc-interval", "1", "--identity", identity],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


@contextlib.contextmanager
def replicas(server: RunningAPIServer, *identities: str
             ) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs = {i: start_replica(server, i) for i in identities}
    try:
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_two_replicas_500_pods(server: RunningAPIServer, client: AsyncClient) -> None:
    """Acceptance 3: two scheduler processes at once; every pod bound once, no IP or host
    capacity given twice, the host never oversubscribed."""
    await register_test_host(client, "host-big", cpu="200", memory="1000Gi", pods=600)
    with replicas(server, "replica-1", "replica-2"):
        await create_pods(client, [f"burst-{i}" for i in range(500)])
        pods = await all_bound(client, 500, timeout=40)
    nodes, totals = await fargate_state(client)
    check_consistent(pods, nodes, totals)
    host = await client.get(FargateHost, "host-big")
    assert host["status"]["allocated"]["pods"] == 500
    await _clean(client)


async def test_killed_leader_loses_nothing(server: RunningAPIServer, client: AsyncClient) -> None:
    """Acceptance 4: SIGKILL the leader mid-burst, start another: every pod ends bound,
    every IP allocated once."""
    await register_test_host(client, "host-big", cpu="200", memory="1000Gi", pods=600)
    with replicas(server, "first") as procs:
        await create_pods(client, [f"restart-{i}" for i in range(300)])

        async def some_bound() -> bool:
            return sum(1 for p in await pods_of(client) if p["spec"].get("nodeName")) >= 50

        await wait_for(some_bound, 20)
        procs["first"].kill()
        procs["first"].wait()
    bound_at_kill = sum(1 for p in await pods_of(client) if p["spec"].get("nodeName"))
    assert bound_at_kill < 300, "the burst was over before the kill"
    with replicas(server, "second"):
        pods = await all_bound(client, 300, timeout=30)
        nodes, totals = await fargate_state(client)
        # What the killed leader reserved for pods the second one finished is counted
        # twice until the second one's garbage collector recounts: never less than what
        # the pods' micro-nodes hold.
        uids = {p["metadata"]["uid"] for p in pods}
        for host, (cpu, memory, count) in held(
                [n for n in nodes if n["metadata"]["labels"][POD_UID_LABEL] in uids]).items():
            assert totals[host][0] >= cpu and totals[host][1] >= memory
            assert totals[host][2] >= count

        async def recounted() -> bool:
            nodes, totals = await fargate_state(client)
            return totals == held(nodes)

        await wait_for(recounted, 10)
    nodes, totals = await fargate_state(client)
    check_consistent(pods, nodes, totals)
    await _clean(client)


async def _clean(client: AsyncClient) -> None:
    """Delete the burst's objects directly (no scheduler is left to collect them)."""
    nodes, _ = await fargate_state(client)
    for p in await pods_of(client):
        await client.delete(Pod, p["metadata"]["name"], namespace=NS, grace_period=0)
    for n in nodes:
        await client.delete(Node, n["metadata"]["name"])



async def test_garbage_of_pods_gone_unseen_is_collected(server: RunningAPIServer,
                                                        client: AsyncClient) -> None:
    """Pods deleted while no scheduler ran: the next one's garbage collector releases
    their nodes, IPs and reservations."""
    await register_test_host(client, "host-gc", cpu="8", memory="32Gi")
    names = [f"gone-{i}" for i in range(3)]
    async with scheduler(server):
        await create_pods(client, names)
        await all_bound(client, len(names))
    for name in names:
        await client.delete(Pod, name, namespace=NS, grace_period=0)
    nodes, totals = await fargate_state(client)
    assert len(nodes) == totals["host-gc"][2] == len(names)

    async def released() -> bool:
        nodes, totals = await fargate_state(client)
        return not nodes and not totals

    async with scheduler(server, gc_interval=1.0):
        await wait_for(released, 10)


def stranded_pod(name: str, owner_kind: str | None) -> Pod:
    """A pod as admission left it while no profile was ACTIVE: the default scheduler."""
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if owner_kind:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner_kind,
                                    "name": f"{name}-owner", "controller": True,
                                    "uid": f"00000000-0000-0000-0000-{len(name):012d}"}]
    return Pod.from_dict({"metadata": meta,  # type: ignore[no-any-return]
                          "spec": {"containers": [{"name": "app", "image": "busybox"}]}})


async def test_pods_created_before_their_profile_are_recreated(server: RunningAPIServer,
                                                               client: AsyncClient) -> None:
    for name, owner in (("owned", "ReplicaSet"), ("bare", None), ("daemon", "DaemonSet")):
        await client.create(stranded_pod(name, owner))

    async def owned_gone() -> bool:
        return "owned" not in {p["metadata"]["name"] for p in await pods_of(client)}

    async with scheduler(server, recreate_pending_pods=True):
        await wait_for(owned_gone, 10)
        recreating = [e for e in await events(client, "owned") if e["reason"] == "Recreating"]
        assert len(recreating) == 1, recreating
        assert f"Fargate profile {PROFILE}" in recreating[0]["message"]
        assert "ReplicaSet owned-owner recreates it" in recreating[0]["message"]
    # Nobody would recreate a bare pod; DaemonSet pods cannot run on Fargate.
    assert {p["metadata"]["name"] for p in await pods_of(client)} == {"bare", "daemon"}
