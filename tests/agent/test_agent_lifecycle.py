"""Container lifecycle as on a kubelet (issue 6, acceptance 3 and 4): init containers,
a native sidecar, probes, restart back-off, graceful termination, and an agent killed
and started again."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent.cluster import NAMESPACE, AgentCluster, agent_cluster, busybox_pod
from tests.fixtures.runtime import RunningRuntime


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, container_runtime: RunningRuntime
            ) -> Iterator[AgentCluster]:
    with agent_cluster(tmp_path_factory.mktemp("agent-lifecycle"), container_runtime) as running:
        yield running


def shared(pod: dict[str, Any]) -> dict[str, Any]:
    """Every container of the pod mounts one emptyDir at /shared."""
    pod["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}}]
    for c in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
        c["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    return pod


def logs(cluster: AgentCluster, pod: str, *args: str) -> str:
    done = cluster.kubectl("logs", pod, "-n", NAMESPACE, *args, check=False)
    return done.stdout or done.stderr


def test_init_containers_run_in_order_before_the_containers(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    pod = busybox_pod("inits", image, "cat /shared/order; sleep 3600")
    pod["spec"]["initContainers"] = [
        {"name": "first", "image": image, "command": ["sh", "-c", "echo first >> /shared/order"]},
        {"name": "second", "image": image,
         "command": ["sh", "-c", "sleep 1; echo second >> /shared/order"]}]
    cluster.apply(shared(pod))
    running = cluster.wait_phase("inits", "Running")
    for status in running["status"]["initContainerStatuses"]:
        assert status["state"]["terminated"]["reason"] == "Completed", status
    assert cluster.wait(lambda: logs(cluster, "inits"), 20, "logs") == "first\nsecond\n"
    initialized = {c["type"]: c["status"] for c in running["status"]["conditions"]}
    assert initialized["Initialized"] == "True"


def test_a_failing_init_container_holds_the_pod(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    pod = busybox_pod("badinit", image, "sleep 3600", restartPolicy="Never")
    pod["spec"]["initContainers"] = [{"name": "check", "image": image,
                                      "command": ["sh", "-c", "exit 3"]}]
    cluster.apply(pod)
    failed = cluster.wait_phase("badinit", "Failed")
    init = failed["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert (init["exitCode"], init["reason"]) == (3, "Error")
    assert "running" not in json.dumps(failed["status"]["containerStatuses"][0]["state"])


def test_native_sidecar_runs_beside_the_job_and_stops_after_it(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    pod = busybox_pod("sidecar", image, "sleep 2; echo main saw $(wc -l < /shared/ticks) ticks",
                      restartPolicy="Never")
    pod["spec"]["initContainers"] = [{
        "name": "ticker", "image": image, "restartPolicy": "Always",
        "command": ["sh", "-c", "while true; do echo tick >> /shared/ticks; sleep 0.2; done"]}]
    cluster.apply(shared(pod))
    cluster.wait(lambda: cluster.container_status("sidecar", "ticker").get("started"), 30,
                 "the sidecar started")
    done = cluster.wait_phase("sidecar", "Succeeded", timeout=60)
    main = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert main["exitCode"] == 0
    line = logs(cluster, "sidecar", "-c", "main")
    assert int(line.split()[2]) >= 5, line  # the sidecar ran while main did
    ticker = done["status"]["initContainerStatuses"][0]
    assert "terminated" in ticker["state"], ticker


def test_readiness_and_liveness_probes(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    pod = busybox_pod("probed", image, "sleep 3600", container={
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                           "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["test", "!", "-f", "/tmp/sick"]},
                          "periodSeconds": 1, "failureThreshold": 2}})
    cluster.apply(pod)
    cluster.wait_phase("probed", "Running")
    time.sleep(2)
    assert cluster.container_status("probed", "main")["ready"] is False
    cluster.exec_in("probed", "touch", "/tmp/ready")
    cluster.wait(lambda: cluster.container_status("probed", "main").get("ready"), 15, "ready")
    conditions = {c["type"]: c["status"] for c in cluster.pod("probed")["status"]["conditions"]}
    assert conditions["Ready"] == "True"

    cluster.exec_in("probed", "touch", "/tmp/sick")
    cluster.wait(lambda: cluster.container_status("probed", "main").get("restartCount") == 1,
                 30, "a restart after the liveness probe failed")
    killing = [e["message"] for e in cluster.events("probed") if e["reason"] == "Killing"]
    assert any("failed liveness probe, will be restarted" in m for m in killing), killing
    unhealthy = [e["message"] for e in cluster.events("probed") if e["reason"] == "Unhealthy"]
    assert any(m.startswith("Liveness probe failed") for m in unhealthy), unhealthy
    # The new container starts without the file: ready again only after it exists again.
    assert cluster.container_status("probed", "main")["ready"] is False


def test_crashing_container_backs_off(cluster: AgentCluster) -> None:
    cluster.apply(busybox_pod("crash", cluster.runtime.images.busybox, "echo boom; exit 1"))
    cluster.wait(lambda: (cluster.container_status("crash", "main").get("state") or {})
                 .get("waiting", {}).get("reason") == "CrashLoopBackOff", 40, "CrashLoopBackOff")
    status = cluster.container_status("crash", "main")
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off 10s restarting failed container=main" in status["state"]["waiting"][
        "message"]
    first = status["restartCount"]
    time.sleep(6)  # inside the 10 s back-off: no restart meanwhile
    assert cluster.container_status("crash", "main")["restartCount"] == first
    cluster.wait(lambda: cluster.container_status("crash", "main")["restartCount"] > first,
                 20, "the restart after the back-off")
    assert logs(cluster, "crash") == "boom\n"
    assert logs(cluster, "crash", "--previous") == "boom\n"
    assert any(e["reason"] == "BackOff" for e in cluster.events("crash"))


def deletion_seconds(cluster: AgentCluster, name: str) -> float:
    started = time.monotonic()
    cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--wait=false")
    cluster.wait(lambda: cluster.pod(name) is None, 60, f"{name} deleted")
    return time.monotonic() - started


def test_graceful_termination(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    # Leaves at SIGTERM: gone long before its 30 s grace period.
    cluster.apply(busybox_pod("polite", image, "trap 'exit 0' TERM; while true; do sleep 0.2; done",
                              terminationGracePeriodSeconds=30))
    # Ignores SIGTERM: killed when its 3 s grace period ends.
    cluster.apply(busybox_pod("stubborn", image, "trap '' TERM; while true; do sleep 0.2; done",
                              terminationGracePeriodSeconds=3))
    # preStop runs first (2 s), then SIGTERM ends it.
    hooked = busybox_pod("hooked", image, "trap 'exit 0' TERM; while true; do sleep 0.2; done",
                         terminationGracePeriodSeconds=30,
                         container={"lifecycle": {"preStop": {"exec": {
                             "command": ["sh", "-c", "sleep 2"]}}}})
    cluster.apply(hooked)
    for name in ("polite", "stubborn", "hooked"):
        cluster.wait_phase(name, "Running")
    # Bounds leave room for a loaded machine; what tells them apart is which limit ends them.
    assert deletion_seconds(cluster, "polite") < 10
    assert 3 <= deletion_seconds(cluster, "stubborn") < 10
    assert 2 <= deletion_seconds(cluster, "hooked") < 10


def test_killed_agent_adopts_its_pods(cluster: AgentCluster) -> None:
    image = cluster.runtime.images.busybox
    for name in ("stays", "leaves"):
        cluster.apply(busybox_pod(name, image, "trap 'exit 0' TERM; echo up; "
                                  "while true; do sleep 0.2; done"))
    before = {n: cluster.wait_phase(n, "Running") for n in ("stays", "leaves")}
    ids = {n: p["status"]["containerStatuses"][0]["containerID"] for n, p in before.items()}

    cluster.kill_agent(signal.SIGKILL)
    cluster.kubectl("delete", "pod", "leaves", "-n", NAMESPACE, "--wait=false")
    cluster.apply(busybox_pod("arrives", image, "sleep 3600"))
    time.sleep(2)
    assert cluster.pod("leaves") is not None  # nobody confirms its deletion meanwhile

    cluster.start_agent()
    cluster.wait(lambda: cluster.pod("leaves") is None, 30, "the pod deleted meanwhile gone")
    cluster.wait_phase("arrives", "Running")
    stays = cluster.pod("stays")
    assert stays is not None and stays["status"]["phase"] == "Running"
    status = stays["status"]["containerStatuses"][0]
    assert status["containerID"] == ids["stays"] and status["restartCount"] == 0
    assert logs(cluster, "stays") == "up\n"
    # Nothing orphaned, nothing killed: a running sandbox for exactly the running pods.
    running = {p["metadata"]["name"] for p in cluster.pods()
               if p["status"].get("phase") == "Running"}
    assert {"arrives", "stays"} <= running and "leaves" not in running
    assert sorted(cluster.sandbox_pods()) == sorted(running)
