"""ReplicaSet, Job, DaemonSet, Endpoints, garbage collection and namespaces against a
test API server, the controllers as their own process, a stand-in kubelet
(issue 7, acceptance 2 to 6)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.controllers.conftest import ControllersProcess
from tests.controllers.kubelet_helper import FakeKubelet
from tests.fixtures.apiserver import RunningAPIServer


def wait(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def get(api: RunningAPIServer, *args: str) -> Any:
    result = api.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def pods(api: RunningAPIServer, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
    return get(api, *args)["items"]


def deployment(name: str, replicas: int, image: str = "busybox:1", **extra: Any) -> str:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image,
                                                           "ports": [{"name": "http",
                                                                      "containerPort": 8080}]}]}},
                     **extra}}
    return json.dumps(body)


@pytest.fixture
def cluster(apiserver: RunningAPIServer, controllers: ControllersProcess,
            kubelet: FakeKubelet) -> RunningAPIServer:
    return apiserver


def test_replicaset_keeps_replicas_and_scales_down_not_ready_first(
        cluster: RunningAPIServer, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", 3))
    cluster.kubectl("rollout", "status", "-n", namespace, "deploy/web", "--timeout=60s")
    live = pods(cluster, namespace, "app=web")
    assert len(live) == 3
    for p in live:
        refs = p["metadata"]["ownerReferences"]
        assert refs[0]["kind"] == "ReplicaSet" and refs[0]["controller"] is True
    # A pod deleted by hand is replaced.
    cluster.kubectl("delete", "pod", "-n", namespace, live[0]["metadata"]["name"], "--wait=false")
    wait(lambda: len([p for p in pods(cluster, namespace, "app=web")
                      if not p["metadata"].get("deletionTimestamp")]) == 3
         and live[0]["metadata"]["name"] not in {p["metadata"]["name"]
                                                 for p in pods(cluster, namespace, "app=web")},
         what="replacement pod")
    rs = get(cluster, "rs", "-n", namespace)["items"][0]
    assert rs["status"]["replicas"] == 3
    # An orphan with the selector's labels is adopted, making one too many: one goes.
    cluster.kubectl("run", "stray", "-n", namespace, "--image=busybox:1", "--labels=app=web,"
                    f"pod-template-hash={rs['metadata']['labels']['pod-template-hash']}")
    wait(lambda: len([p for p in pods(cluster, namespace, "app=web")
                      if not p["metadata"].get("deletionTimestamp")]) == 3,
         what="scale back to 3 after adoption")


def job(name: str, *, completions: int, parallelism: int, backoff_limit: int = 6,
        ttl: int | None = None) -> str:
    spec: dict[str, Any] = {
        "completions": completions, "parallelism": parallelism, "backoffLimit": backoff_limit,
        "template": {"metadata": {"labels": {"job": name}},
                     "spec": {"restartPolicy": "Never",
                              "containers": [{"name": "c", "image": "busybox:1"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                       "spec": spec})


def test_job_completes_with_parallelism_and_a_failing_one_stops_at_backoff_limit(
        cluster: RunningAPIServer, kubelet: FakeKubelet, namespace: str) -> None:
    running: list[int] = []

    def outcome(pod: dict[str, Any]) -> str:
        if pod["metadata"]["namespace"] != namespace:
            return "run"
        if pod["metadata"]["labels"].get("job") == "bad":
            return "fail"
        # Count the pods of "good" not finished at this moment: never above parallelism.
        running.append(sum(1 for p in pods(cluster, namespace, "job=good")
                           if p["status"].get("phase") not in ("Succeeded", "Failed")))
        return "succeed"

    previous = kubelet.outcome
    kubelet.outcome = outcome
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=job("good", completions=5, parallelism=2))
        cluster.kubectl("wait", "-n", namespace, "job/good", "--for=condition=Complete",
                        "--timeout=60s")
        done = get(cluster, "job", "good", "-n", namespace)
        assert done["status"]["succeeded"] == 5
        assert done["status"].get("failed", 0) == 0
        assert "completionTime" in done["status"]
        assert len(pods(cluster, namespace, "job=good")) == 5
        assert max(running) <= 2

        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=job("bad", completions=1, parallelism=1, backoff_limit=2))
        cluster.kubectl("wait", "-n", namespace, "job/bad", "--for=condition=Failed",
                        "--timeout=60s")
        failed = get(cluster, "job", "bad", "-n", namespace)
        reasons = {c["type"]: c["reason"] for c in failed["status"]["conditions"]}
        assert reasons["Failed"] == "BackoffLimitExceeded"
        assert failed["status"]["failed"] == 3  # backoffLimit 2: the third failure ends it
        time.sleep(1)
        assert len(pods(cluster, namespace, "job=bad")) == 3  # no pod after the failure
    finally:
        kubelet.outcome = previous


def test_job_ttl_after_finished_deletes_it(cluster: RunningAPIServer, kubelet: FakeKubelet,
                                           namespace: str) -> None:
    previous = kubelet.outcome
    kubelet.outcome = lambda pod: "succeed"
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=job("short", completions=1, parallelism=1, ttl=1))
        wait(lambda: get(cluster, "job", "short", "-n", namespace) is None, 30,
             "the finished job to be deleted")
        wait(lambda: not pods(cluster, namespace, "job=short"), 30, "its pods to go")
    finally:
        kubelet.outcome = previous


def daemonset(name: str, tolerations: list[dict[str, str]] | None = None) -> str:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox:1"}]}
    if tolerations:
        spec["tolerations"] = tolerations
    return json.dumps({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                       "spec": {"selector": {"matchLabels": {"ds": name}},
                                "template": {"metadata": {"labels": {"ds": name}},
                                             "spec": spec}}})


def test_daemonset_skips_fargate_nodes_and_runs_one_pod_per_ordinary_node(
        apiserver: RunningAPIServer, controllers: ControllersProcess, namespace: str) -> None:
    """Its own API server view: only the nodes this test registers matter, so the
    module's worker node is not used here (the DaemonSet selects `pool: ds-test`)."""
    fargate = FakeKubelet(apiserver.client(), "fargate-ip-10-0-1-9.us-east-1.compute.internal",
                          namespaces=set(), bind=False,
                          node_labels={"eks.amazonaws.com/compute-type": "fargate",
                                       "pool": "ds-test"},
                          taints=[{"key": "eks.amazonaws.com/compute-type", "value": "fargate",
                                   "effect": "NoSchedule"}])
    fargate.register()
    body = json.loads(daemonset("agent"))
    body["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "ds-test"}
    apiserver.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    status = wait(lambda: (get(apiserver, "ds", "agent", "-n", namespace) or {}).get(
        "status", {}).get("observedGeneration") and get(apiserver, "ds", "agent", "-n",
                                                        namespace)["status"],
                  what="the DaemonSet's status")
    assert status["desiredNumberScheduled"] == 0
    assert status["currentNumberScheduled"] == 0
    time.sleep(1)
    assert pods(apiserver, namespace, "ds=agent") == []

    ordinary = FakeKubelet(apiserver.client(), "ds-worker", namespaces=set(), bind=False,
                           node_labels={"pool": "ds-test"}).start()
    try:
        wait(lambda: (get(apiserver, "ds", "agent", "-n", namespace)["status"]
                      .get("numberReady") == 1), what="one ready daemon pod")
        live = pods(apiserver, namespace, "ds=agent")
        assert len(live) == 1
        assert live[0]["spec"]["nodeName"] == "ds-worker"
        status = get(apiserver, "ds", "agent", "-n", namespace)["status"]
        assert status["desiredNumberScheduled"] == 1
        apiserver.kubectl("rollout", "status", "-n", namespace, "ds/agent", "--timeout=30s")
        time.sleep(1)
        assert len(pods(apiserver, namespace, "ds=agent")) == 1
    finally:
        ordinary.stop()
        apiserver.kubectl("delete", "node", "ds-worker", fargate.node, "--wait=false")


def test_service_endpoints_follow_ready_pods(cluster: RunningAPIServer, kubelet: FakeKubelet,
                                             namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("api", 3))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"},
                 "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}))
    cluster.kubectl("rollout", "status", "-n", namespace, "deploy/api", "--timeout=60s")

    def ready_ips() -> set[str]:
        return {p["status"]["podIP"] for p in pods(cluster, namespace, "app=api")
                if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions", []))}

    def endpoint_ips() -> set[str]:
        ep = get(cluster, "endpoints", "api", "-n", namespace) or {}
        return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}

    def slice_ips() -> set[str]:
        slices = get(cluster, "endpointslices", "-n", namespace,
                     "-l", "kubernetes.io/service-name=api")["items"]
        return {a for s in slices for e in s.get("endpoints") or []
                if e["conditions"].get("ready") for a in e["addresses"]}

    wait(lambda: len(endpoint_ips()) == 3 and endpoint_ips() == slice_ips() == ready_ips(),
         what="endpoints of the 3 ready pods")
    ep = get(cluster, "endpoints", "api", "-n", namespace)
    assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    slices = get(cluster, "endpointslices", "-n", namespace,
                 "-l", "kubernetes.io/service-name=api")["items"]
    assert len(slices) == 1 and slices[0]["addressType"] == "IPv4"
    assert slices[0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert slices[0]["metadata"]["ownerReferences"][0]["kind"] == "Service"

    cluster.kubectl("scale", "-n", namespace, "deploy/api", "--replicas=1")
    wait(lambda: len(ready_ips()) == 1 and endpoint_ips() == slice_ips() == ready_ips(),
         what="endpoints to follow the scale-down")

    # A pod that is not ready is listed as such, not as an address.
    previous = kubelet.outcome
    kubelet.outcome = lambda pod: "wait"
    try:
        cluster.kubectl("scale", "-n", namespace, "deploy/api", "--replicas=2")

        def not_ready() -> list[str]:
            ep = get(cluster, "endpoints", "api", "-n", namespace) or {}
            return [a["ip"] for s in ep.get("subsets") or []
                    for a in s.get("notReadyAddresses") or []]

        wait(lambda: len(not_ready()) == 1 and len(endpoint_ips()) == 1,
             what="a notReadyAddress")
    finally:
        kubelet.outcome = previous


def test_garbage_collector_background_foreground_orphan(cluster: RunningAPIServer,
                                                        namespace: str) -> None:
    for name in ("bg", "fg", "orphan"):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment(name, 2))
        cluster.kubectl("rollout", "status", "-n", namespace, f"deploy/{name}",
                        "--timeout=60s")
    cluster.kubectl("delete", "-n", namespace, "deploy/bg")
    wait(lambda: not get(cluster, "rs", "-n", namespace, "-l", "app=bg")["items"]
         and not pods(cluster, namespace, "app=bg"), what="background deletion")

    cluster.kubectl("delete", "-n", namespace, "deploy/fg", "--cascade=foreground",
                    "--wait=false")
    # While its dependents go the owner stays, with the foregroundDeletion finalizer.
    fg = get(cluster, "deploy", "fg", "-n", namespace)
    if fg is not None:
        assert "foregroundDeletion" in fg["metadata"]["finalizers"]
    wait(lambda: get(cluster, "deploy", "fg", "-n", namespace) is None,
         what="foreground deletion to finish")
    assert not get(cluster, "rs", "-n", namespace, "-l", "app=fg")["items"]
    assert not pods(cluster, namespace, "app=fg")

    cluster.kubectl("delete", "-n", namespace, "deploy/orphan", "--cascade=orphan")
    wait(lambda: get(cluster, "deploy", "orphan", "-n", namespace) is None,
         what="orphan deletion")
    rs = get(cluster, "rs", "-n", namespace, "-l", "app=orphan")["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    assert len(pods(cluster, namespace, "app=orphan")) == 2


def test_namespace_deletion_removes_its_objects_then_the_namespace(
        cluster: RunningAPIServer) -> None:
    ns = "doomed"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=deployment("web", 2))
    cluster.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=a=b")
    cluster.kubectl("rollout", "status", "-n", ns, "deploy/web", "--timeout=60s")
    # An object with a finalizer of someone else's holds the namespace in Terminating.
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}))
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    wait(lambda: not pods(cluster, ns) and [c["metadata"]["name"] for c in get(
        cluster, "configmaps", "-n", ns)["items"]] == ["held"], what="content deleted")
    state = get(cluster, "namespace", ns)
    assert state["status"]["phase"] == "Terminating"
    refused = cluster.kubectl("create", "configmap", "late", "-n", ns, check=False)
    assert refused.returncode != 0
    assert "because it is being terminated" in refused.stderr
    wait(lambda: any(c["type"] == "NamespaceContentRemaining" for c in (get(
        cluster, "namespace", ns) or {}).get("status", {}).get("conditions", [])),
         what="NamespaceContentRemaining")
    cluster.kubectl("patch", "configmap", "held", "-n", ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')
    wait(lambda: get(cluster, "namespace", ns) is None, 60, "the namespace to go")
    assert get(cluster, "pods", "-n", ns)["items"] == []
    assert get(cluster, "configmaps", "-n", ns)["items"] == []


def test_restart_mid_rollout_creates_no_extra_pods(cluster: RunningAPIServer,
                                                   controllers: ControllersProcess,
                                                   kubelet: FakeKubelet, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment(
        "roll", 4, strategy={"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    cluster.kubectl("rollout", "status", "-n", namespace, "deploy/roll", "--timeout=60s")
    seen: set[str] = {p["metadata"]["name"] for p in pods(cluster, namespace, "app=roll")}
    kubelet.ready_after = 1.0
    try:
        cluster.kubectl("set", "image", "-n", namespace, "deploy/roll", "c=busybox:2")
        wait(lambda: len(get(cluster, "rs", "-n", namespace, "-l", "app=roll")["items"]) == 2,
             what="the new ReplicaSet")
        controllers.kill()
        time.sleep(0.5)
        controllers.start()
        deadline = time.monotonic() + 60
        while True:
            live = [p for p in pods(cluster, namespace, "app=roll")
                    if not p["metadata"].get("deletionTimestamp")]
            seen |= {p["metadata"]["name"] for p in live}
            assert len(live) <= 5, "more than replicas + maxSurge pods"
            status = cluster.kubectl("rollout", "status", "-n", namespace, "deploy/roll",
                                     "--watch=false").stdout
            if "successfully rolled out" in status:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
    finally:
        kubelet.ready_after = 0.0
    # 4 old pods and exactly 4 new ones were ever created: the restart duplicated none.
    assert len(seen) == 8, sorted(seen)
    time.sleep(1)
    assert len([p for p in pods(cluster, namespace, "app=roll")
                if not p["metadata"].get("deletionTimestamp")]) == 4
