"""The garbage collector: objects whose owners are gone are deleted, and owners deleted
with propagationPolicy Foreground or Orphan get their finalizer handled.

- Background (the default, `kubectl delete deploy`): the owner goes at once; its
  dependents find their owner gone (checked live, never on a lagging cache alone) and
  are deleted, and theirs after them.
- Foreground: the API server leaves the owner with a deletionTimestamp and the
  `foregroundDeletion` finalizer; its dependents are deleted, and once none with
  `blockOwnerDeletion: true` is left the finalizer is removed and the owner goes.
- Orphan: the `orphan` finalizer; the owner reference is removed from every dependent,
  then the finalizer.

Dependents are found through the shared informers of the types in `GC_RESOURCES` (one
watch per type, shared with the controllers) plus every custom resource type that
appears; an owner of a kind no informer covers is looked up with a GET.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import (
    ControllerRevision,
    DaemonSet,
    Deployment,
    ReplicaSet,
    StatefulSet,
)
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import (
    ConfigMap,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
    ServiceAccount,
)
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import CascadeType

from nodeless.controllers import api
from nodeless.controllers.base import Controller, is_not_found
from nodeless.controllers.informer import Obj, SharedInformers, key_of, plain

GC_RESOURCES: list[Any] = [Pod, ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob,
                           ControllerRevision, Service, EndpointSlice, ConfigMap, Secret,
                           PersistentVolumeClaim, ServiceAccount]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


def _type_id(resource: Any) -> str:
    info = resource._api_info.resource
    version = f"{info.group}/{info.version}" if info.group else info.version
    return f"{version}/{info.kind}"


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 4

    def __init__(self, client: Any, informers: SharedInformers) -> None:
        super().__init__(client, informers)
        self._types: dict[str, Any] = {}
        self._dependents: dict[str, set[str]] = {}
        """owner uid -> item keys (`type|namespace/name`) of its dependents"""
        self._owners_of: dict[str, set[str]] = {}
        """item key -> owner uids (to keep `_dependents` exact on updates)"""
        self._uids: dict[str, str] = {}
        """uid -> item key, for owners seen by an informer"""
        for resource in GC_RESOURCES:
            self.watch_type(resource)
        crds = informers.get(CustomResourceDefinition)
        crds.add_handler(self._on_crd)

    def watch_type(self, resource: Any) -> None:
        type_id = _type_id(resource)
        if type_id in self._types:
            return
        self._types[type_id] = resource
        self.informers.get(resource).add_handler(
            lambda old, new: self._on_object(type_id, old, new))

    def _on_crd(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            return
        spec = new.get("spec") or {}
        names = spec.get("names") or {}
        version = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")),
                       None)
        if not version or not names.get("kind") or not names.get("plural"):
            return
        make = (create_namespaced_resource if spec.get("scope") == "Namespaced"
                else create_global_resource)
        self.watch_type(make(spec["group"], version, names["kind"], names["plural"]))

    # ---- indexes and triggers --------------------------------------------------------

    def _on_object(self, type_id: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        item = f"{type_id}|{key_of(obj)}"
        uid = obj["metadata"]["uid"]
        for owner in self._owners_of.pop(item, set()):
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(item)
                if not deps:
                    del self._dependents[owner]
        if new is None:
            self._uids.pop(uid, None)
            for dep in self._dependents.get(uid, set()):
                self.enqueue(dep)
            for ref in obj["metadata"].get("ownerReferences") or []:
                self.enqueue(self._uids.get(ref.get("uid", "")))
            return
        self._uids[uid] = item
        refs = new["metadata"].get("ownerReferences") or []
        owners = {r["uid"] for r in refs if r.get("uid")}
        if owners:
            self._owners_of[item] = owners
            for owner in owners:
                self._dependents.setdefault(owner, set()).add(item)
            self.enqueue(item)
        finalizers = new["metadata"].get("finalizers") or []
        if new["metadata"].get("deletionTimestamp") and (
                ORPHAN in finalizers or FOREGROUND in finalizers):
            self.enqueue(item)

    def _get(self, item: str) -> tuple[Any, Obj | None]:
        type_id, _, key = item.partition("|")
        resource = self._types[type_id]
        return resource, self.informers.get(resource).get(key)

    # ---- sync ----------------------------------------------------------------------

    async def sync(self, item: str) -> None:
        resource, obj = self._get(item)
        if obj is None:
            return
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or []
            if ORPHAN in finalizers:
                await self._orphan_dependents(resource, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents(resource, obj)
            return
        refs = meta.get("ownerReferences") or []
        if not refs:
            return
        solid, gone, waiting = [], [], []
        for ref in refs:
            owner = await self._owner(ref, meta.get("namespace"))
            if owner is None:
                gone.append(ref)
            elif owner is True:
                solid.append(ref)
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (
                    owner["metadata"].get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if gone or waiting:
                drop = {r["uid"] for r in gone + waiting}
                await api.patch(self.client, resource, obj, {"metadata": {
                    "ownerReferences": [r for r in refs if r["uid"] not in drop]}})
            return
        has_dependents = bool(self._dependents.get(meta["uid"]))
        cascade = CascadeType.FOREGROUND if waiting and has_dependents else self._policy(obj)
        await self._delete(resource, obj, cascade)

    @staticmethod
    def _policy(obj: Obj) -> CascadeType:
        finalizers = obj["metadata"].get("finalizers") or []
        if ORPHAN in finalizers:
            return CascadeType.ORPHAN
        if FOREGROUND in finalizers:
            return CascadeType.FOREGROUND
        return CascadeType.BACKGROUND

    async def _owner(self, ref: Obj, namespace: str | None) -> Obj | bool | None:
        """The owner if it exists (None if gone or replaced by another of that name);
        True for a kind no informer covers (never collected on a guess)."""
        type_id = ref.get("apiVersion", "") + "/" + ref.get("kind", "")
        resource = self._types.get(type_id)
        if resource is None:
            return True
        namespaced = _is_namespaced(resource)
        key = f"{namespace}/{ref['name']}" if namespaced else ref["name"]
        cached = self.informers.get(resource).get(key)
        if cached is not None and cached["metadata"].get("uid") == ref.get("uid"):
            return cached
        try:  # not in the cache (or another uid): ask, the cache may lag
            live = plain(await self.client.get(resource, ref["name"], **(
                {"namespace": namespace} if namespaced else {})))
        except ApiError as exc:
            if is_not_found(exc):
                return None
            raise
        return live if live["metadata"].get("uid") == ref.get("uid") else None

    async def _delete(self, resource: Any, obj: Obj, cascade: CascadeType) -> None:
        meta = obj["metadata"]
        try:
            await self.client.delete(resource, meta["name"], cascade=cascade, **(
                {"namespace": meta["namespace"]} if meta.get("namespace") else {}))
        except ApiError as exc:
            if not is_not_found(exc):
                raise

    def _dependents_of(self, obj: Obj) -> list[tuple[Any, Obj, Obj]]:
        """(resource, dependent, its reference to obj) for every dependent in the caches."""
        uid = obj["metadata"]["uid"]
        out = []
        for item in sorted(self._dependents.get(uid, set())):
            resource, dep = self._get(item)
            if dep is None:
                continue
            ref = next((r for r in dep["metadata"].get("ownerReferences") or []
                        if r.get("uid") == uid), None)
            if ref is not None:
                out.append((resource, dep, ref))
        return out

    async def _orphan_dependents(self, resource: Any, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]

        async def release(dep_resource: Any, dep: Obj) -> None:
            refs = [r for r in dep["metadata"].get("ownerReferences") or []
                    if r.get("uid") != uid]
            try:
                await api.patch(self.client, dep_resource, dep,
                                {"metadata": {"ownerReferences": refs or None}})
            except ApiError as exc:
                if not is_not_found(exc):
                    raise

        await asyncio.gather(*(release(r, d) for r, d, _ in self._dependents_of(obj)))
        await self._remove_finalizer(resource, obj, ORPHAN)

    async def _delete_dependents(self, resource: Any, obj: Obj) -> None:
        blocking = 0
        deletions = []
        for dep_resource, dep, ref in self._dependents_of(obj):
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                others = [r for r in dep["metadata"].get("ownerReferences") or []
                          if r.get("uid") != obj["metadata"]["uid"]]
                if others:  # someone else owns it too: only our reference goes
                    deletions.append(api.patch(self.client, dep_resource, dep, {
                        "metadata": {"ownerReferences": others}}))
                else:
                    has_own = bool(self._dependents.get(dep["metadata"]["uid"]))
                    deletions.append(self._delete(dep_resource, dep, CascadeType.FOREGROUND
                                                  if has_own else self._policy(dep)))
        results = await asyncio.gather(*deletions, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not is_not_found(result):
                raise result
        if blocking == 0:
            await self._remove_finalizer(resource, obj, FOREGROUND)

    async def _remove_finalizer(self, resource: Any, obj: Obj, finalizer: str) -> None:
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        try:
            await api.patch(self.client, resource, obj,
                            {"metadata": {"finalizers": finalizers or None}})
        except ApiError as exc:
            if not is_not_found(exc):
                raise


def _is_namespaced(resource: Any) -> bool:
    from lightkube.core.resource import NamespacedResource

    return issubclass(resource, NamespacedResource)
