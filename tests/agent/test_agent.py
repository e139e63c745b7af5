"""The host agent runs the micro-nodes' pods on containerd, as a kubelet would (issue 6,
acceptance 2, 3 and 4): a real API server, the fargate-scheduler and the agent as
processes, kubectl as the client."""

from __future__ import annotations

import ipaddress
import resource
import time
from collections.abc import Iterator

import pytest

from tests.agent.cluster import NAMESPACE, AgentCluster, agent_cluster, busybox_pod
from tests.fixtures.runtime import RunningRuntime


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, container_runtime: RunningRuntime
            ) -> Iterator[AgentCluster]:
    with agent_cluster(tmp_path_factory.mktemp("agent"), container_runtime) as running:
        yield running


def test_pod_runs_on_its_micro_node_with_logs_and_goes(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    cluster.apply(busybox_pod("hello", image, "echo hello from $(hostname); sleep 3600"))
    pod = cluster.wait_phase("hello", "Running")
    node = cluster.node(pod["spec"]["nodeName"])
    assert node is not None
    internal = next(a["address"] for a in node["status"]["addresses"]
                    if a["type"] == "InternalIP")
    assert pod["status"]["podIP"] == internal
    assert any(ipaddress.ip_address(internal) in ipaddress.ip_network(s.cidr)
               for s in cluster.vpc.private_subnets())
    assert pod["metadata"]["annotations"]["CapacityProvisioned"] == "0.25vCPU 0.5GB"
    status = cluster.container_status("hello", "main")
    assert status["ready"] and status["started"] and "running" in status["state"]
    assert status["containerID"].startswith("containerd://")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True"
    assert next(c for c in cluster.node(node["metadata"]["name"])["status"]["conditions"]
                if c["type"] == "Ready")["status"] == "True"

    logs = cluster.wait(lambda: cluster.kubectl("logs", "hello", "-n", NAMESPACE).stdout,
                        20, "logs")
    assert logs == "hello from hello\n"
    reasons = {e["reason"] for e in cluster.events("hello")}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons

    started = time.monotonic()
    cluster.kubectl("delete", "pod", "hello", "-n", NAMESPACE, "--wait=false")
    cluster.wait(lambda: cluster.pod("hello") is None, 30, "the pod gone")
    cluster.wait(lambda: cluster.node(node["metadata"]["name"]) is None, 30, "its node gone")
    # sh ignores SIGTERM as PID 1: the grace period (5 s) ends it, not more.
    assert time.monotonic() - started < 5 + 10


def test_inside_a_pod_limits_metadata_and_neighbours(cluster: AgentCluster) -> None:
    images = cluster.runtime.images
    cluster.apply(busybox_pod("inside", images.busybox,
                              "echo nofile $(ulimit -Sn) $(ulimit -Hn); sleep 3600"))
    cluster.apply(busybox_pod("web", images.http, "", container={"command": None}))
    web = cluster.wait_phase("web", "Running")
    cluster.wait_phase("inside", "Running")

    # Read by the container's own process: runc 1.1.5 may give exec'd processes the hard
    # limit as the soft one (opencontainers/runc#4195).
    line = cluster.wait(lambda: cluster.kubectl("logs", "inside", "-n", NAMESPACE).stdout, 20,
                        "the limits printed")
    _, soft, hard = line.split()
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert soft == "1024"
    assert int(hard) == min(65535, host_hard)

    # busybox's own `wget -T` crashes in Debian's 1.35: `timeout` bounds it instead.
    imds = cluster.exec_in("inside", "timeout", "3", "wget", "-q", "-O", "-",
                           "http://169.254.169.254/latest/meta-data/")
    assert imds.split("\n", 1)[0] != "0", imds
    page = cluster.exec_in("inside", "timeout", "5", "wget", "-q", "-O", "-",
                           f"http://{web['status']['podIP']}:{images.http_port}/")
    assert page.startswith("0\n") and "hello from web" in page, page


def test_memory_hog_is_oom_killed(cluster: AgentCluster) -> None:
    # 0.25 vCPU, 0.5 GB: `tail /dev/zero` buffers an endless line until the cgroup's limit.
    cluster.apply(busybox_pod("hog", cluster.runtime.images.busybox, "tail /dev/zero",
                              restartPolicy="Never"))
    cluster.wait_phase("hog", "Failed")
    terminated = cluster.container_status("hog", "main")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
