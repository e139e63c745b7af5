"""ReplicaSet: keeps `spec.replicas` active pods, owned through a controller reference.

Pods are created in slow-start batches (1, 2, 4, ...) so a template the API refuses fails
once, not five hundred times. Surplus pods go in `deletion_rank` order: unscheduled,
pending, not ready, newest first. Status counts what the caches show.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import ReplicaSet
from lightkube.resources.core_v1 import Pod

from nodeless.controllers import api
from nodeless.controllers.base import Controller, is_not_found, status_patch
from nodeless.controllers.expectations import Expectations
from nodeless.controllers.informer import Obj, SharedInformers, key_of
from nodeless.controllers.objects import (
    controller_ref,
    deletion_rank,
    is_active,
    is_available,
    is_deleting,
    is_ready,
    labels,
    now,
    rfc3339,
)
from nodeless.controllers.selectors import label_selector_matches, map_selector_matches

BURST = 500
"""Pods created or deleted in one sync at most (kube-controller-manager's burstReplicas)."""


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4

    def __init__(self, client: Any, informers: SharedInformers) -> None:
        super().__init__(client, informers)
        self.sets = informers.get(ReplicaSet)
        self.pods = informers.get(Pod)
        self.expectations = Expectations()
        self.events = api.EventRecorder(client, "replicaset-controller")
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)

    # ---- event handlers: which keys to look at again --------------------------------

    def _on_set(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.expectations.forget(key_of(old))
        self.enqueue(key_of(new or old))  # type: ignore[arg-type]

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        rs = self.sets.get(key)
        return key if rs is not None and rs["metadata"]["uid"] == ref.get("uid") else None

    def _orphan_matches(self, pod: Obj) -> list[str]:
        return [key_of(rs) for rs in self.sets.list(pod["metadata"]["namespace"])
                if label_selector_matches(rs["spec"].get("selector"), labels(pod))]

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        uid = pod["metadata"]["uid"]
        if new is None or (is_deleting(new) and (old is None or not is_deleting(old))):
            key = self._owner_key(pod)
            if key:
                self.expectations.deletion_observed(key, uid)
                self.enqueue(key)
            if new is None:
                return
        key = self._owner_key(new)
        if old is None:
            if key:
                self.expectations.creation_observed(key)
                self.enqueue(key)
            elif controller_ref(new) is None:
                for k in self._orphan_matches(new):
                    self.enqueue(k)
            return
        old_key = self._owner_key(old)
        if old_key and old_key != key:
            self.enqueue(old_key)
        if key:
            self.enqueue(key)
            rs = self.sets.get(key)
            min_ready = int((rs or {}).get("spec", {}).get("minReadySeconds") or 0)
            if min_ready and is_ready(new) and not is_ready(old):
                self.queue.add_after(key, min_ready + 0.5)
        elif controller_ref(new) is None and (labels(old) != labels(new) or old_key):
            for k in self._orphan_matches(new):
                self.enqueue(k)

    # ---- sync ----------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.sets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        spec = rs["spec"]
        namespace = rs["metadata"]["namespace"]
        candidates = [p for p in self.pods.list(namespace) if not _terminal_orphan(p)]
        pods = await api.claim(self.client, Pod, rs, candidates, spec.get("selector"))
        active = [p for p in pods if is_active(p)]
        failure = None
        if self.expectations.satisfied(key) and not is_deleting(rs):
            failure = await self._manage(key, rs, active)
        await self._update_status(rs, active, failure)
        min_ready = int(spec.get("minReadySeconds") or 0)
        if min_ready and any(is_ready(p) and not is_available(p, min_ready) for p in active):
            self.queue.add_after(key, min_ready)

    async def _manage(self, key: str, rs: Obj, active: list[Obj]) -> str | None:
        """Create or delete pods towards spec.replicas; returns a creation failure."""
        diff = len(active) - int(rs["spec"].get("replicas", 1))
        if diff < 0:
            return await self._create(key, rs, min(-diff, BURST))
        if diff > 0:
            await self._delete(key, rs, sorted(active, key=deletion_rank)[:min(diff, BURST)])
        return None

    async def _create(self, key: str, rs: Obj, count: int) -> str | None:
        self.expectations.expect_creations(key, count)
        template = rs["spec"].get("template") or {}
        name = rs["metadata"]["name"]
        created, batch, failure = 0, 1, None
        while created < count and failure is None:
            size = min(batch, count - created)
            results = await asyncio.gather(
                *(api.create_pod(self.client, api.pod_from_template(
                    template, rs, generate_name=f"{name}-")) for _ in range(size)),
                return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    self.expectations.creation_observed(key)  # it will never be seen
                    failure = str(getattr(getattr(result, "status", None), "message", None)
                                  or result)
                else:
                    self.events.event(rs, "Normal", "SuccessfulCreate",
                                      f"Created pod: {result['metadata']['name']}")
            created += size
            batch *= 2
        for _ in range(count - created):  # batches never tried
            self.expectations.creation_observed(key)
        if failure is not None:
            self.events.event(rs, "Warning", "FailedCreate", f"Error creating: {failure}")
        return failure

    async def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in victims})

        async def delete(pod: Obj) -> None:
            meta = pod["metadata"]
            try:
                await self.client.delete(Pod, meta["name"], namespace=meta["namespace"])
                self.events.event(rs, "Normal", "SuccessfulDelete",
                                  f"Deleted pod: {meta['name']}")
            except ApiError as exc:
                self.expectations.deletion_observed(key, meta["uid"])
                if not is_not_found(exc):
                    raise

        await asyncio.gather(*(delete(p) for p in victims))

    async def _update_status(self, rs: Obj, active: list[Obj], failure: str | None) -> None:
        spec = rs["spec"]
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get(
            "labels") or {}
        at = now()
        old = rs.get("status") or {}
        counts = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(map_selector_matches(template_labels, labels(p))
                                        for p in active),
            "readyReplicas": sum(is_ready(p) for p in active),
            "availableReplicas": sum(is_available(p, min_ready, at) for p in active),
        }
        status: Obj = {k: v for k, v in counts.items() if v or k == "replicas"}
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        conditions = [c for c in old.get("conditions") or []
                      if c.get("type") != "ReplicaFailure"]
        if failure is not None:
            conditions.append({"type": "ReplicaFailure", "status": "True",
                               "reason": "FailedCreate", "message": failure,
                               "lastTransitionTime": rfc3339()})
        elif any(c.get("type") == "ReplicaFailure" for c in old.get("conditions") or []) and (
                len(active) < int(spec.get("replicas", 1))):
            conditions = old.get("conditions") or []  # still short: keep the failure
        if conditions:
            status["conditions"] = conditions
        body = status_patch(old, status)
        if body is not None:
            try:
                await api.patch(self.client, ReplicaSet.Status, rs, {"status": body},
                                pin=False)
            except ApiError as exc:
                if not is_not_found(exc):
                    raise


def _terminal_orphan(pod: Obj) -> bool:
    """A finished pod nobody owns is never adopted (it would count for nothing)."""
    return controller_ref(pod) is None and (pod.get("status") or {}).get("phase") in (
        "Succeeded", "Failed")
