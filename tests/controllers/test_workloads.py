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
