"""containerd as the agent runs it: our config, images from the local registry through CRI,
Fargate's rlimits, memory limits, and surviving a containerd crash."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import statistics
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2

from nodeless.agent.runtime.cgroups import hierarchies, remove_cgroup
from nodeless.agent.runtime.containerd import Containerd, ContainerdConfig
from nodeless.agent.runtime.cri import CRIClient, CRIUnavailable
from nodeless.agent.runtime.spec import container_rlimits
from tests.fixtures.runtime import RunningRuntime, Sandboxes

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def cri(container_runtime: RunningRuntime) -> AsyncIterator[CRIClient]:
    async with container_runtime.cri() as client:
        yield client


@pytest.fixture
async def sandboxes(container_runtime: RunningRuntime, cri: CRIClient
                    ) -> AsyncIterator[Sandboxes]:
    pods = Sandboxes(container_runtime, cri)
    try:
        yield pods
    finally:
        await pods.remove_all()


async def test_cri_answers_with_our_config(container_runtime: RunningRuntime,
                                           cri: CRIClient) -> None:
    version = await cri.version()
    assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
    status = await cri.runtime.Status(api_pb2.StatusRequest())
    ready = {c.type: c.status for c in status.status.conditions}
    assert ready == {"RuntimeReady": True, "NetworkReady": True}

    config = tomllib.loads((container_runtime.state_dir / "containerd/config.toml").read_text())
    plugin = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert plugin["restrict_oom_score_adj"] is True
    assert plugin["sandbox_image"] == container_runtime.images.pause
    assert plugin["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert config["grpc"]["tcp_address"] == ""
    assert config["grpc"]["address"] == container_runtime.socket


async def test_image_pulled_through_cri_from_local_registry(
        container_runtime: RunningRuntime, cri: CRIClient) -> None:
    ref = container_runtime.images.busybox
    assert ref == f"{container_runtime.registry}/library/busybox:latest"
    spec = api_pb2.ImageSpec(image=ref)
    await cri.images.RemoveImage(api_pb2.RemoveImageRequest(image=spec))
    pulled = await cri.images.PullImage(api_pb2.PullImageRequest(image=spec))
    status = await cri.images.ImageStatus(api_pb2.ImageStatusRequest(image=spec))
    assert status.image.id == pulled.image_ref
    assert ref in status.image.repo_tags


async def test_container_gets_fargate_rlimits_capped_at_host(sandboxes: Sandboxes,
                                                             container_runtime: RunningRuntime
                                                             ) -> None:
    """Read from the container's own process (its log), not from an ExecSync'd shell:
    runc 1.1.5 (Go 1.19) sometimes gives exec'd processes nofile soft = hard (runc #4195)."""
    pod = await sandboxes.run_pod("limits")
    await sandboxes.start(pod, container_runtime.images.busybox, [
        "sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu); sleep 600"])
    log_file = Path(pod.config.log_directory) / "main.log"
    for _ in range(100):
        if log_file.exists() and log_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    # CRI log line: "<time> stdout F <text>"
    printed = log_file.read_text().splitlines()[0].split(" ", 3)[3].split()
    limits = {limit.type: limit for limit in container_rlimits()}
    nofile, nproc = limits["RLIMIT_NOFILE"], limits["RLIMIT_NPROC"]
    assert printed == [str(nofile.soft), str(nofile.hard), str(nproc.soft), str(nproc.hard)]
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert (nofile.soft, nofile.hard) == (1024, min(65535, host_hard))


async def test_memory_limit_ends_a_hog_oomkilled(sandboxes: Sandboxes, cri: CRIClient,
                                                 container_runtime: RunningRuntime) -> None:
    pod = await sandboxes.run_pod("hog")
    limit = 32 * 1024 * 1024
    container = await sandboxes.start(
        pod, container_runtime.images.busybox,
        ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"],
        resources=api_pb2.LinuxContainerResources(memory_limit_in_bytes=limit))
    deadline = time.monotonic() + 60
    while True:
        status = (await cri.runtime.ContainerStatus(
            api_pb2.ContainerStatusRequest(container_id=container))).status
        if status.state == api_pb2.CONTAINER_EXITED or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert status.state == api_pb2.CONTAINER_EXITED
    assert (status.reason, status.exit_code) == ("OOMKilled", 137)


async def test_sandbox_of_unassigned_pod_fails_clearly(cri: CRIClient,
                                                       container_runtime: RunningRuntime
                                                       ) -> None:
    config = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name="nobody-assigned", namespace="default",
                                            uid="uid-unassigned"),
        log_directory=str(container_runtime.state_dir / "logs" / "unassigned"))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config))
    assert "pod default/nobody-assigned has no IP assigned on this host" in failed.value.details()
    listed = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())
    assert all(s.metadata.name != "nobody-assigned" for s in listed.items)


async def test_containerd_killed_is_restarted_and_pods_survive(
        sandboxes: Sandboxes, cri: CRIClient, container_runtime: RunningRuntime) -> None:
    pod = await sandboxes.run_pod("survivor")
    container = await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    containerd = container_runtime.containerd
    old_pid, restarts = containerd.pid, containerd.restarts
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    # The same client, no reconnect by hand: calls wait for containerd to be back.
    listed = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=60)
    for _ in range(100):  # the supervisor counts it once its own readiness check passed
        if containerd.restarts > restarts:
            break
        await asyncio.sleep(0.1)
    assert containerd.restarts == restarts + 1 and containerd.pid not in (None, old_pid)
    states = {s.id: s.state for s in listed.items}
    assert states[pod.sandbox_id] == api_pb2.SANDBOX_READY
    code, out, _ = await sandboxes.exec(container, "echo", "still here")
    assert (code, out) == (0, "still here\n")


async def test_raw_cri_floor(sandboxes: Sandboxes, container_runtime: RunningRuntime,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Not asserted: the time RunPodSandbox + CreateContainer + StartContainer take for a
    warm image, the floor any agent on this host sits on."""
    image = container_runtime.images.busybox
    warm = await sandboxes.run_pod("floor-warm")
    await sandboxes.start(warm, image, ["sleep", "600"])
    times = []
    for i in range(5):
        started = time.perf_counter()
        pod = await sandboxes.run_pod(f"floor-{i}")
        await sandboxes.start(pod, image, ["sleep", "600"])
        times.append(time.perf_counter() - started)
    with capsys.disabled():
        print(f"\nraw CRI floor (RunPodSandbox+CreateContainer+StartContainer, warm image): "
              f"median {statistics.median(times) * 1000:.0f} ms, "
              f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {len(times)}")


async def test_attach_to_a_running_containerd(container_runtime: RunningRuntime) -> None:
    attached = await Containerd.attach(container_runtime.socket, timeout=10)
    assert not attached.owned and attached.socket == Path(container_runtime.socket)
    with pytest.raises(CRIUnavailable, match="did not answer within 1s"):
        await Containerd.attach(container_runtime.state_dir / "nothing.sock", timeout=1)


async def test_containerd_that_cannot_start_says_why(tmp_path: Path) -> None:
    config = ContainerdConfig(state_dir=tmp_path, sandbox_image="unused",
                              cni_bin_dir=tmp_path / "bin", cni_conf_dir=tmp_path / "net.d")
    broken = Containerd(socket=config.socket, config=config, binary="/bin/false")
    with pytest.raises(CRIUnavailable, match="containerd exited with code 1 at start"):
        await broken.start(timeout=10)



async def test_pod_cgroup_removed_with_its_sandbox(sandboxes: Sandboxes,
                                                   container_runtime: RunningRuntime) -> None:
    pod = await sandboxes.run_pod("cgrouped")
    await sandboxes.start(pod, container_runtime.images.busybox, ["sleep", "600"])
    parent = pod.config.linux.cgroup_parent.strip("/")
    dirs = [h / parent for h in hierarchies()]
    assert any(d.is_dir() for d in dirs)
    await sandboxes.remove_all()
    assert not any(d.exists() for d in dirs)
    assert remove_cgroup(pod.config.linux.cgroup_parent) == []  # twice is fine


CHILD_AGENT = """
import asyncio, sys, time
from pathlib import Path
from nodeless.agent.runtime.containerd import Containerd, ContainerdConfig

async def main():
    d = Path(sys.argv[1])
    containerd = Containerd.managed(ContainerdConfig(
        state_dir=d, sandbox_image="unused", cni_bin_dir=d / "bin", cni_conf_dir=d / "net.d"))
    await containerd.start()
    print(containerd.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_containerd_dies_with_the_agent(tmp_path: Path) -> None:
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD_AGENT, str(tmp_path), stdout=asyncio.subprocess.PIPE)
    assert agent.stdout is not None
    line = await asyncio.wait_for(agent.stdout.readline(), 60)
    containerd_pid = int(line)
    os.kill(containerd_pid, 0)  # running
    agent.kill()
    await agent.wait()
    for _ in range(100):
        try:
            os.kill(containerd_pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        os.kill(containerd_pid, signal.SIGKILL)
        pytest.fail("containerd outlived the agent that started it")
