"""Pod networking as a pod sees it: the scheduler's IP, neighbours in other subnets,
no instance metadata, no host services; and the CNI plugin's contract with containerd."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator

import pytest
from cri_api.v1 import api_pb2

from tests.fixtures.runtime import RunningRuntime, Sandboxes

pytestmark = pytest.mark.asyncio(loop_scope="session")

WGET = ("timeout", "5", "wget", "-q", "-O-")
"""Debian's static busybox 1.35 wget crashes (SIGSEGV) with -T: time out with `timeout`."""


@pytest.fixture
async def sandboxes(container_runtime: RunningRuntime) -> AsyncIterator[Sandboxes]:
    async with container_runtime.cri() as cri:
        pods = Sandboxes(container_runtime, cri)
        try:
            yield pods
        finally:
            await pods.remove_all()


async def test_pod_gets_the_assigned_ip_on_its_subnet_bridge(
        sandboxes: Sandboxes, container_runtime: RunningRuntime) -> None:
    subnet = container_runtime.subnets[1]
    pod = await sandboxes.run_pod("addressed", subnet=subnet)
    status = await sandboxes.cri.runtime.PodSandboxStatus(
        api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod.sandbox_id))
    assert status.status.network.ip == pod.ip
    container = await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    code, out, _ = await sandboxes.exec(container, "ip", "-4", "-o", "addr", "show", "eth0")
    assert code == 0 and f"inet {pod.ip}/19 " in out
    gateway = container_runtime.network.lookup(pod.namespace, pod.name).gateway
    _, route, _ = await sandboxes.exec(container, "ip", "route")
    assert f"default via {gateway}" in route
    bridge = container_runtime.network.bridge_name(subnet)
    host_side = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge],
                               capture_output=True, text=True, check=True).stdout
    assert f"inet {gateway}/19" in host_side


async def test_pods_in_different_subnets_reach_each_other_by_ip(
        sandboxes: Sandboxes, container_runtime: RunningRuntime) -> None:
    client = await sandboxes.run_pod("client", subnet=container_runtime.subnets[0])
    server = await sandboxes.run_pod("server", subnet=container_runtime.subnets[1])
    client_box = await sandboxes.start(client, container_runtime.images.busybox,
                                       ["sleep", "600"])
    await sandboxes.start(server, container_runtime.images.http)
    url = f"http://{server.ip}:{container_runtime.images.http_port}/"
    for _ in range(50):  # httpd needs a moment to listen
        code, out, err = await sandboxes.exec(client_box, *WGET, url)
        if code == 0:
            break
        await asyncio.sleep(0.1)
    assert code == 0, err
    assert "hello from server" in out
    assert f"from [::ffff:{client.ip}]" in out  # no NAT between pods: the pod's own IP


async def test_instance_metadata_is_unreachable(sandboxes: Sandboxes,
                                                container_runtime: RunningRuntime) -> None:
    pod = await sandboxes.run_pod("imds")
    container = await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    # It would route: the pod's default route leads to the host, which has one onwards.
    _, route, _ = await sandboxes.exec(container, "ip", "route", "get", "169.254.169.254")
    assert "via" in route
    assert subprocess.run(["ip", "route", "get", "169.254.169.254"],
                          capture_output=True).returncode == 0
    firewall = container_runtime.network.firewall
    before = firewall.counters()["instance metadata"]
    code, _, err = await sandboxes.exec(
        container, *WGET, "http://169.254.169.254/latest/meta-data/")
    assert code != 0
    assert "unreachable" in err.lower() or "no route" in err.lower(), err
    assert firewall.counters()["instance metadata"] > before


async def test_host_services_are_unreachable(sandboxes: Sandboxes,
                                             container_runtime: RunningRuntime) -> None:
    pod = await sandboxes.run_pod("nosy")
    container = await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    gateway = container_runtime.network.lookup(pod.namespace, pod.name).gateway
    hits: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append("connected")
        writer.write(b"host secret\n")
        await writer.drain()
        writer.close()

    # A loopback service, and one on the host's address on the pod's own bridge.
    loopback = await asyncio.start_server(answer, "127.0.0.1", 0)
    on_bridge = await asyncio.start_server(answer, gateway, 0)
    loopback_port = loopback.sockets[0].getsockname()[1]
    bridge_port = on_bridge.sockets[0].getsockname()[1]
    try:
        firewall = container_runtime.network.firewall
        before = firewall.counters()["host services"]
        for host, port in (("127.0.0.1", loopback_port), (gateway, bridge_port),
                           (gateway, loopback_port)):
            code, out, err = await sandboxes.exec(
                container, "sh", "-c", f"echo | nc -w 3 {host} {port}")
            assert "host secret" not in out and code != 0, (host, port, out, err)
        assert firewall.counters()["host services"] >= before + 2
        assert hits == []
        # The host itself still reaches both.
        for host, port in (("127.0.0.1", loopback_port), (gateway, bridge_port)):
            reader, writer = await asyncio.open_connection(host, port)
            assert await reader.readline() == b"host secret\n"
            writer.close()
    finally:
        loopback.close()
        on_bridge.close()


async def test_pod_traffic_to_the_outside_is_masqueraded(
        sandboxes: Sandboxes, container_runtime: RunningRuntime) -> None:
    default = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                             text=True, check=True).stdout
    outside = json.loads(default)[0]["gateway"]  # the host's own next hop
    pod = await sandboxes.run_pod("outbound")
    container = await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    firewall = container_runtime.network.firewall
    before = firewall.counters()["pods to outside"]
    await sandboxes.exec(container, "sh", "-c", f"echo | nc -w 1 {outside} 9")
    assert firewall.counters()["pods to outside"] > before
