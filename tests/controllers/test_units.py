"""The pure parts alone: the work queue's guarantees, selectors and tolerations, the
Deployment arithmetic, the order surplus pods are deleted in, port resolution."""

from __future__ import annotations

import asyncio

from nodeless.controllers.daemonset import should_run
from nodeless.controllers.deployment import (
    equal_ignore_hash,
    resolve,
    surge_and_unavailable,
    template_hash,
)
from nodeless.controllers.endpoints import resolve_port
from nodeless.controllers.objects import deletion_rank
from nodeless.controllers.selectors import label_selector_matches, tolerates
from nodeless.workqueue import WorkQueue


async def test_workqueue_hands_a_key_to_one_worker_and_again_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 1
    key = await queue.get()
    queue.add("a")  # changed while processing: not handed out twice at once
    assert len(queue) == 0
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_workqueue_rate_limit_backs_off_per_key() -> None:
    queue = WorkQueue(base_delay=0.01)
    for _ in range(3):
        queue.add_rate_limited("k")
    assert queue.requeues("k") == 3
    assert await asyncio.wait_for(queue.get(), 1) == "k"
    queue.forget("k")
    assert queue.requeues("k") == 0


def test_label_selectors() -> None:
    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
    assert label_selector_matches(sel, {"app": "web", "tier": "a"})
    assert not label_selector_matches(sel, {"app": "web"})
    assert label_selector_matches({}, {"x": "y"})
    assert not label_selector_matches(None, {"x": "y"})


def test_fargate_nodes_are_never_eligible_for_daemonsets() -> None:
    taint = {"key": "eks.amazonaws.com/compute-type", "value": "fargate",
             "effect": "NoSchedule"}
    fargate = {"metadata": {"name": "fargate-ip-10-0-1-2", "labels": {
        "eks.amazonaws.com/compute-type": "fargate"}}, "spec": {"taints": [taint]}}
    tolerate_all = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert tolerates([{"operator": "Exists"}], taint)
    assert not should_run(tolerate_all, fargate)[0]
    tainted = {"metadata": {"name": "n", "labels": {}}, "spec": {"taints": [taint]}}
    assert not should_run({"spec": {}}, tainted)[0]
    assert should_run(tolerate_all, tainted)[0]
    plain = {"metadata": {"name": "n", "labels": {"disk": "ssd"}}, "spec": {}}
    assert should_run({"spec": {"nodeSelector": {"disk": "ssd"}}}, plain)[0]
    assert not should_run({"spec": {"nodeSelector": {"disk": "hdd"}}}, plain)[0]


def test_surge_and_unavailable_round_as_kube_does() -> None:
    assert resolve("25%", 10, round_up=True) == 3
    assert resolve("25%", 10, round_up=False) == 2
    d = {"spec": {"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": "10%"}}}}
    assert surge_and_unavailable(d) == (0, 1)  # never both zero


def test_template_hash_ignores_its_own_label_when_comparing() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    h = template_hash(t)
    assert h == template_hash(t) and h != template_hash(t, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": h}},
                "spec": {"containers": []}}
    assert equal_ignore_hash(t, labelled)


def test_surplus_pods_unscheduled_and_not_ready_go_first() -> None:
    def pod(name: str, node: str | None, ready: bool, created: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node} if node else {},
                "status": {"phase": "Running" if node else "Pending", "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": created}]}}

    pods = [pod("ready-old", "n", True, "2026-01-01T00:00:00Z"),
            pod("ready-new", "n", True, "2026-01-02T00:00:00Z"),
            pod("not-ready", "n", False, "2026-01-01T00:00:00Z"),
            pod("unscheduled", None, False, "2026-01-01T00:00:00Z")]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_rank)]
    assert order == ["unscheduled", "not-ready", "ready-new", "ready-old"]


def test_ports_resolve_by_number_or_container_port_name() -> None:
    pod = {"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}}
    assert resolve_port({"port": 80, "targetPort": "http"}, pod) == 8080
    assert resolve_port({"port": 80, "targetPort": 9000}, pod) == 9000
    assert resolve_port({"port": 80}, pod) == 80
    assert resolve_port({"port": 80, "targetPort": "grpc"}, pod) is None
