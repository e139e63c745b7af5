"""Pods end to end through `nodeless up`, as a user runs them (issue 6, acceptance 1;
issue 7, acceptance 7): a profile created with boto3, `kubectl apply` of a pod in its
namespace, the pod Running on its own micro-node with the node's IP, `kubectl logs`,
`kubectl delete` releasing pod, node and IP; a Deployment rolled out on micro-nodes
behind a Service."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.request
from typing import Any

import pytest

from tests.cli.test_up_down import nodeless
from tests.e2e.upcluster import UpCluster, wait_for

NS = "e2e"
PROFILE = "e2e"
ROLE = "arn:aws:iam::000000000000:role/pods"
GRACE = 10


@pytest.fixture(scope="module")
def profile(up_cluster: UpCluster) -> str:
    """A profile for NS made with boto3 against the EKS API, ACTIVE."""
    eks = up_cluster.eks()
    subnets = sorted(s["id"] for s in up_cluster.vpc["subnets"] if s["private"])
    eks.create_fargate_profile(clusterName="nodeless", fargateProfileName=PROFILE,
                               podExecutionRoleArn=ROLE, subnets=subnets,
                               selectors=[{"namespace": NS}])
    wait_for("the profile to be ACTIVE", lambda: eks.describe_fargate_profile(
        clusterName="nodeless", fargateProfileName=PROFILE)["fargateProfile"]["status"]
        == "ACTIVE", timeout=15)
    up_cluster.kubectl("create", "namespace", NS)
    return PROFILE


def busybox_pod(up: UpCluster, name: str, script: str, **spec: Any) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
        "spec": {"terminationGracePeriodSeconds": GRACE, **spec, "containers": [{
            "name": "main", "image": up.image("library/busybox:latest"),
            "command": ["sh", "-c", script]}]}})


def running(up: UpCluster, name: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        pod = up.get("pod", name, NS)
        assert pod is not None, f"pod {name} is gone"
        assert pod["status"].get("phase") != "Failed", pod["status"]
        return pod if pod["status"].get("phase") == "Running" else None
    return wait_for(f"pod {name} to run", probe, timeout=timeout)


def logs(up: UpCluster, name: str, *args: str) -> str:
    return up.kubectl("logs", "-n", NS, name, *args).stdout


def assert_on_its_micro_node(up: UpCluster, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod runs on its own fargate-ip node whose InternalIP is the pod's IP, inside a
    private subnet; returns the node."""
    node_name = pod["spec"]["nodeName"]
    ip = pod["status"]["podIP"]
    assert node_name == f"fargate-ip-{ip.replace('.', '-')}.us-east-1.compute.internal"
    assert any(ipaddress.IPv4Address(ip) in net for net in up.private_subnets()), ip
    assert pod["status"]["podIPs"] == [{"ip": ip}]
    node = up.get("node", node_name)
    assert node is not None
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == ip
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    return node


def test_pod_runs_on_its_micro_node_logs_and_goes(up_cluster: UpCluster, profile: str) -> None:
    up = up_cluster
    script = ("trap 'echo bye; exit 0' TERM; echo hello from $(hostname); i=0; "
              "while true; do i=$((i+1)); echo tick $i; sleep 0.5; done")
    up.kubectl("apply", "-f", "-", input=busybox_pod(up, "hello", script))
    pod = running(up, "hello")

    assert pod["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == profile
    assert pod["metadata"]["annotations"]["CapacityProvisioned"] == "0.25vCPU 0.5GB"
    assert pod["spec"]["schedulerName"] == "fargate-scheduler"
    node = assert_on_its_micro_node(up, pod)
    assert pod["status"]["hostIP"] == pod["status"]["podIP"]
    assert node["status"]["capacity"]["memory"] in ("512Mi", "0.5Gi", "536870912")
    # The micro-node is the claim on the pod's IP: named after it, in the subnet it names.
    assert node["metadata"]["labels"]["fargate.nodeless.io/subnet"].startswith("subnet-")

    out = wait_for("the pod's output", lambda: (lambda text: text if "tick 3" in text
                                                else None)(logs(up, "hello")))
    assert out.startswith("hello from hello\n"), out
    tail = logs(up, "hello", "--tail=1").splitlines()
    assert len(tail) == 1 and tail[0].startswith("tick "), tail

    started = time.monotonic()
    up.kubectl("delete", "pod", "-n", NS, "hello", "--wait=true", "--timeout=60s")
    wait_for("the node, and with it the IP, to be released",
             lambda: up.get("node", node["metadata"]["name"]) is None, timeout=GRACE)
    elapsed = time.monotonic() - started
    assert elapsed < GRACE, f"deletion took {elapsed:.1f}s, more than the grace period"


def test_logs_follow_until_the_container_ends(up_cluster: UpCluster, profile: str) -> None:
    up = up_cluster
    up.kubectl("apply", "-f", "-", input=busybox_pod(
        up, "counter", "for i in 1 2 3 4 5; do echo count $i; sleep 0.4; done",
        restartPolicy="Never"))
    running(up, "counter")
    started = time.monotonic()
    followed = logs(up, "counter", "-f")
    assert followed.splitlines() == [f"count {i}" for i in range(1, 6)], followed
    assert time.monotonic() - started < 20
    done = wait_for("the pod to succeed", lambda: (lambda p: p if p and p["status"].get(
        "phase") == "Succeeded" else None)(up.get("pod", "counter", NS)))
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["reason"], state["exitCode"]) == ("Completed", 0)
    up.kubectl("delete", "pod", "-n", NS, "counter")


def test_logs_previous_after_a_restart(up_cluster: UpCluster, profile: str) -> None:
    """The first run fails, the restarted one stays up: --previous shows the first."""
    up = up_cluster
    script = ("n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs; "
              "echo run $n; if [ $n -lt 2 ]; then exit 1; fi; exec sleep 3600")
    manifest = json.loads(busybox_pod(up, "flaky", script, terminationGracePeriodSeconds=0))
    manifest["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    up.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def restarted() -> dict[str, Any] | None:
        pod = up.get("pod", "flaky", NS)
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        return pod if statuses and statuses[0]["restartCount"] >= 1 and \
            "running" in statuses[0]["state"] else None
    pod = wait_for("the container to restart and run", restarted, timeout=60)
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("Error", 1)
    wait_for("the second run's output", lambda: logs(up, "flaky") == "run 2\n" or None)
    assert logs(up, "flaky", "--previous") == "run 1\n"
    up.kubectl("delete", "pod", "-n", NS, "flaky")


def test_deployment_rolls_out_on_micro_nodes_behind_a_service(up_cluster: UpCluster,
                                                               profile: str) -> None:
    up = up_cluster
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{
                         "name": "http", "image": up.image("nodeless/http-echo:latest"),
                         "ports": [{"name": "http", "containerPort": 8080}],
                         "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                         "readinessProbe": {"httpGet": {"path": "/cgi-bin/index.cgi",
                                                        "port": "http"},
                                            "periodSeconds": 1}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": NS},
               "spec": {"selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": "http"}]}}
    up.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": [deployment, service]}))
    out = up.kubectl("rollout", "status", "-n", NS, "deployment/web", "--timeout=90s").stdout
    assert 'deployment "web" successfully rolled out' in out

    pods = up.items("pods", "-n", NS, "-l", "app=web")
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
    ips = set()
    for pod in pods:
        # Sized up from the requests (plus Fargate's 256 MB), placed, run.
        assert pod["metadata"]["annotations"]["CapacityProvisioned"] == "0.5vCPU 2GB"
        node = assert_on_its_micro_node(up, pod)
        assert node["status"]["capacity"]["cpu"] in ("500m", "0.5")
        ips.add(pod["status"]["podIP"])
        # The host reaches the pod on its IP: the HTTP example answers with its name.
        url = f"http://{pod['status']['podIP']}:8080/cgi-bin/index.cgi"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert f"hello from {pod['metadata']['name']}" in reply.read().decode()
    assert len({p["spec"]["nodeName"] for p in pods}) == 3

    def endpoint_ips() -> set[str] | None:
        ep = up.get("endpoints", "web", NS) or {}
        found = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
        return found if found == ips else None
    wait_for("the Service's Endpoints to list the 3 pods", endpoint_ips, timeout=15)
    ports = up.get("endpoints", "web", NS)["subsets"][0]["ports"]  # type: ignore[index]
    assert [p["port"] for p in ports] == [8080]

    up.kubectl("delete", "deployment", "-n", NS, "web")
    up.kubectl("delete", "service", "-n", NS, "web")
    wait_for("the Deployment's pods and nodes to go", lambda: not up.items(
        "pods", "-n", NS, "-l", "app=web") and not any(
        n["metadata"]["name"] in {p["spec"]["nodeName"] for p in pods}
        for n in up.items("nodes")), timeout=30)


def test_status_shows_the_registry_and_the_overcommit(up_cluster: UpCluster) -> None:
    shown = nodeless("status", "--data-dir", str(up_cluster.data_dir))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in ("registry", "host-agent"):
        assert f"{name}: ready" in shown.stdout
    assert up_cluster.registry in shown.stdout
    assert "overcommitted" in shown.stdout
    endpoints = up_cluster.endpoints
    assert endpoints["registry"].startswith("127.0.0.1:")
    assert endpoints["containerd"] == str(up_cluster.data_dir / "agent" / "containerd"
                                          / "containerd.sock")
