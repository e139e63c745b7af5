"""DaemonSet: one pod on every eligible node. A node is eligible when the pod's
nodeSelector and required node affinity match it and the pod tolerates its NoSchedule
and NoExecute taints (with the tolerations kube adds to every daemon pod).

Fargate micro-nodes carry the taint `eks.amazonaws.com/compute-type=fargate:NoSchedule`
and are never eligible, not even for a DaemonSet that tolerates every taint: on EKS such
a pod would sit Pending on a Fargate node for ever; here it is simply not created.

nodeless runs no default scheduler, so a daemon pod is created bound (`spec.nodeName`)
as well as carrying the node-name affinity kube's DaemonSet controller gives it.
Rolling updates replace pods of an old template (label `controller-revision-hash`) on
at most maxUnavailable nodes at a time; OnDelete replaces them only once deleted.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Node, Pod

from nodeless.controllers import api
from nodeless.controllers.base import Controller, is_not_found, status_patch
from nodeless.controllers.deployment import resolve, template_hash
from nodeless.controllers.expectations import Expectations
from nodeless.controllers.informer import Obj, SharedInformers, key_of
from nodeless.controllers.objects import (
    controller_ref,
    is_active,
    is_available,
    is_deleting,
    is_ready,
    labels,
)
from nodeless.controllers.selectors import (
    map_selector_matches,
    required_node_affinity_matches,
    tolerates,
)

REVISION_LABEL = "controller-revision-hash"
FARGATE_LABEL = "eks.amazonaws.com/compute-type"
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def should_run(template: Obj, node: Obj) -> tuple[bool, str]:
    """Whether a pod of `template` belongs on `node`, and if not, why."""
    if labels(node).get(FARGATE_LABEL) == "fargate":
        return False, "Fargate node (DaemonSets are not supported on Fargate)"
    spec = template.get("spec") or {}
    if not map_selector_matches(spec.get("nodeSelector"), labels(node)):
        return False, "node does not match the pod's nodeSelector"
    if not required_node_affinity_matches(spec.get("affinity"), node):
        return False, "node does not match the pod's node affinity"
    tolerations = [*(spec.get("tolerations") or []), *DAEMON_TOLERATIONS]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
                tolerations, taint):
            return False, f"untolerated taint {taint.get('key')}"
    return True, ""


def daemon_pod(ds: Obj, node: str, revision: str) -> Obj:
    template = copy.deepcopy(ds["spec"].get("template") or {})
    pod = api.pod_from_template(template, ds, generate_name=f"{ds['metadata']['name']}-",
                                extra_labels={REVISION_LABEL: revision})
    spec = pod["spec"]
    spec["nodeName"] = node
    known = {(t.get("key"), t.get("effect")) for t in spec.get("tolerations") or []}
    spec["tolerations"] = [*(spec.get("tolerations") or []),
                           *(t for t in DAEMON_TOLERATIONS
                             if (t["key"], t["effect"]) not in known)]
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {**(affinity.get("nodeAffinity") or {}),
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [{"matchFields": [{
                                        "key": "metadata.name", "operator": "In",
                                        "values": [node]}]}]}}
    return pod


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, client: Any, informers: SharedInformers) -> None:
        super().__init__(client, informers)
        self.sets = informers.get(DaemonSet)
        self.pods = informers.get(Pod)
        self.nodes = informers.get(Node)
        self.expectations = Expectations()
        self.events = api.EventRecorder(client, "daemonset-controller")
        self.sets.add_handler(lambda o, n: self.enqueue(key_of(n or o)))  # type: ignore[arg-type]
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and (
                labels(old) == labels(new) and old.get("spec") == new.get("spec")):
            return
        for ds in self.sets.list():
            self.enqueue(key_of(ds))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "DaemonSet":
            return
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        self.expectations.observe_pod(key, old, new)
        self.enqueue(key)

    async def sync(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        spec = ds["spec"]
        template = spec.get("template") or {}
        revision = template_hash(template, int((ds.get("status") or {}).get(
            "collisionCount") or 0))
        pods = await api.claim(self.client, Pod, ds, self.pods.list(ds["metadata"]["namespace"]),
                               spec.get("selector"))
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            if is_active(pod):
                by_node.setdefault((pod.get("spec") or {}).get("nodeName") or "", []).append(pod)
        eligible = {n["metadata"]["name"] for n in self.nodes.list()
                    if should_run(template, n)[0]}
        if self.expectations.satisfied(key) and not is_deleting(ds):
            await self._manage(key, ds, by_node, eligible, revision)
        await self._update_status(ds, by_node, eligible, revision)

    async def _manage(self, key: str, ds: Obj, by_node: dict[str, list[Obj]],
                      eligible: set[str], revision: str) -> None:
        create = sorted(n for n in eligible if not by_node.get(n))
        delete = [p for node, ps in by_node.items() if node not in eligible for p in ps]
        delete += [p for node, ps in by_node.items() if node in eligible for p in ps[1:]]
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            max_unavailable = max(1, resolve((strategy.get("rollingUpdate") or {}).get(
                "maxUnavailable", 1), len(eligible), round_up=False))
            min_ready = int(ds["spec"].get("minReadySeconds") or 0)
            unavailable = sum(1 for n in eligible
                              if not any(is_available(p, min_ready) for p in by_node.get(n, [])))
            budget = max_unavailable - unavailable
            for node in sorted(eligible):
                pods = by_node.get(node) or []
                if budget <= 0:
                    break
                old = [p for p in pods[:1] if labels(p).get(REVISION_LABEL) != revision]
                if old:
                    delete += old
                    budget -= 1
        if not create and not delete:
            return
        self.expectations.expect_creations(key, len(create))
        if delete:
            self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in delete})

        async def make(node: str) -> None:
            try:
                await api.create_pod(self.client, daemon_pod(ds, node, revision))
            except ApiError as exc:
                self.expectations.creation_observed(key)
                self.events.event(ds, "Warning", "FailedCreate",
                                  f"Error creating: {exc.status.message}")
                raise

        async def remove(pod: Obj) -> None:
            try:
                await self.client.delete(Pod, pod["metadata"]["name"],
                                         namespace=pod["metadata"]["namespace"])
            except ApiError as exc:
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if not is_not_found(exc):
                    raise

        await asyncio.gather(*(make(n) for n in create), *(remove(p) for p in delete))

    async def _update_status(self, ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str],
                             revision: str) -> None:
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        scheduled = {n for n, ps in by_node.items() if ps and n}
        status: Obj = {
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(scheduled & eligible),
            "numberMisscheduled": len(scheduled - eligible),
            "numberReady": sum(1 for n in eligible if any(is_ready(p) for p in by_node.get(n, []))),
            "numberAvailable": sum(1 for n in eligible
                                   if any(is_available(p, min_ready) for p in by_node.get(n, []))),
            "updatedNumberScheduled": sum(
                1 for n in eligible if any(labels(p).get(REVISION_LABEL) == revision
                                           for p in by_node.get(n, []))),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        status["numberUnavailable"] = status["desiredNumberScheduled"] - status["numberAvailable"]
        old = ds.get("status") or {}
        keep = {"desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled",
                "numberReady"}
        status = {k: v for k, v in status.items() if v or k in keep}
        if old.get("collisionCount"):
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        body = status_patch(old, status)
        if body is not None:
            try:
                await api.patch(self.client, DaemonSet.Status, ds, {"status": body}, pin=False)
            except ApiError as exc:
                if not is_not_found(exc):
                    raise
