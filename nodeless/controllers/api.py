"""Writes every controller makes: pods from a template, merge patches that fail on a
stale read, claims (adopt and release by selector), Events."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event, Pod
from lightkube.types import PatchType

from nodeless.controllers.informer import plain
from nodeless.controllers.objects import (
    controller_ref,
    is_deleting,
    labels,
    owner_reference,
    rfc3339,
)
from nodeless.controllers.selectors import label_selector_matches

log = logging.getLogger(__name__)
Obj = dict[str, Any]


async def patch(client: AsyncClient, resource: Any, obj: Obj, body: Obj, *,
                pin: bool = True) -> Obj:
    """A JSON merge patch of `obj`; with `pin` it carries obj's resourceVersion, so a
    decision made on a stale cache fails with 409 instead of overwriting."""
    meta = obj["metadata"]
    if pin:
        body = {**body, "metadata": {**(body.get("metadata") or {}),
                                     "resourceVersion": meta["resourceVersion"]}}
    kwargs = {"namespace": meta["namespace"]} if meta.get("namespace") else {}
    return plain(await client.patch(resource, meta["name"], body,
                                    patch_type=PatchType.MERGE, **kwargs))


def pod_from_template(template: Obj, owner: Obj, *, generate_name: str,
                      extra_labels: dict[str, str] | None = None) -> Obj:
    meta = copy.deepcopy(template.get("metadata") or {})
    pod_meta: Obj = {"generateName": generate_name,
                     "namespace": owner["metadata"]["namespace"],
                     "labels": {**(meta.get("labels") or {}), **(extra_labels or {})},
                     "ownerReferences": [owner_reference(owner)]}
    for field in ("annotations", "finalizers"):
        if meta.get(field):
            pod_meta[field] = meta[field]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def create_pod(client: AsyncClient, pod: Obj) -> Obj:
    return plain(await client.create(Pod.from_dict(pod),
                                     namespace=pod["metadata"]["namespace"]))


async def claim(client: AsyncClient, resource: Any, owner: Obj, candidates: list[Obj],
                selector: Obj | None) -> list[Obj]:
    """The objects `owner` controls, after adopting orphans its selector matches and
    releasing those it controls but no longer matches (ControllerRefManager)."""
    uid = owner["metadata"]["uid"]
    owned = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = label_selector_matches(selector, labels(obj))
        if ref is not None and ref.get("uid") == uid:
            if matches or is_deleting(owner):
                owned.append(obj)
                continue
            await _release(client, resource, obj, uid)
        elif ref is None and matches and not is_deleting(owner) and not is_deleting(obj):
            adopted = await _adopt(client, resource, obj, owner)
            if adopted is not None:
                owned.append(adopted)
    return owned


async def _adopt(client: AsyncClient, resource: Any, obj: Obj, owner: Obj) -> Obj | None:
    refs = [*(obj["metadata"].get("ownerReferences") or []), owner_reference(owner)]
    try:
        return await patch(client, resource, obj, {"metadata": {"ownerReferences": refs}})
    except ApiError as exc:
        if exc.status.code in (404, 409):
            return None  # gone or changed: the next sync sees what it became
        raise


async def _release(client: AsyncClient, resource: Any, obj: Obj, uid: str) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
    try:
        await patch(client, resource, obj, {"metadata": {"ownerReferences": refs or None}})
    except ApiError as exc:
        if exc.status.code not in (404, 409):
            raise


class EventRecorder:
    """core/v1 Events about objects, as `kubectl describe` shows them. Best effort: an
    Event that cannot be written is logged, never a reason to fail a sync."""

    def __init__(self, client: AsyncClient, component: str) -> None:
        self.client = client
        self.component = component
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(self._write(obj, kind, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = rfc3339()
        event = Event.from_dict({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": meta["name"], "namespace": meta.get("namespace"),
                               "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": self.component},
            "reportingComponent": self.component})
        try:
            await self.client.create(event, namespace=namespace)
        except Exception as exc:  # noqa: BLE001 - best effort, see the class
            log.debug("event %s for %s not written: %s", reason, meta["name"], exc)
