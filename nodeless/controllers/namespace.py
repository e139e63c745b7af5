"""Namespace lifecycle: a deleted namespace is Terminating (the API server sets the phase
and refuses new objects in it with 403); this controller deletes everything namespaced
in it, waits until nothing is left (pods finish their grace period, finalizers run),
then removes the `kubernetes` finalizer through `namespaces/NAME/finalize`, after which
the API server removes the namespace.

"Everything" is every namespaced resource type the API serves: the built-in types (from
lightkube-models' table, the same one the embedded API server is built from; a type this
server does not serve answers 404 and is skipped) plus every namespaced custom resource.
The namespace's conditions say what is still left, as kube-controller-manager's do.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Namespace

from nodeless.controllers import api
from nodeless.controllers.base import Controller, Requeue, is_not_found
from nodeless.controllers.informer import Obj, SharedInformers, key_of
from nodeless.controllers.objects import rfc3339, set_condition

FINALIZER = "kubernetes"
SKIPPED = {("", "Event"), ("events.k8s.io", "Event")}
"""Events go with the namespace's storage when it is removed; not worth a round trip
each (and kube deletes them last too)."""


def _version_rank(version: str) -> tuple[int, int, int]:
    """v1 > v1beta2 > v1beta1 > v1alpha1, and v2 > v1 (kube's version priority)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2}.get(m.group(2) or "", 3)
    return (stage, int(m.group(1)), int(m.group(3) or 0))


def builtin_namespaced_resources() -> list[Any]:
    """One lightkube class per namespaced (group, kind) that can be listed and deleted,
    in its preferred version."""
    import lightkube.resources as package

    best: dict[tuple[str, str], Any] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"lightkube.resources.{module_info.name}")
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, NamespacedResource)):
                continue
            info = getattr(value, "_api_info", None)
            if info is None or info.parent is not None or info.action:
                continue
            if "list" not in info.verbs or "delete" not in info.verbs:
                continue
            group_kind = (info.resource.group, info.resource.kind)
            if group_kind in SKIPPED:
                continue
            current = best.get(group_kind)
            if current is None or _version_rank(info.resource.version) > _version_rank(
                    current._api_info.resource.version):
                best[group_kind] = value
    return sorted(best.values(), key=lambda r: (r._api_info.resource.group,
                                                r._api_info.resource.kind))


class NamespaceController(Controller):
    name = "namespace"
    workers = 2

    def __init__(self, client: Any, informers: SharedInformers, *,
                 recheck: float = 1.0) -> None:
        super().__init__(client, informers)
        self.namespaces = informers.get(Namespace)
        self.crds = informers.get(CustomResourceDefinition)
        self.builtin = builtin_namespaced_resources()
        self.recheck = recheck
        self._unserved: set[Any] = set()
        self.namespaces.add_handler(self._on_namespace)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None and new["metadata"].get("deletionTimestamp"):
            self.enqueue(key_of(new))

    def _custom_resources(self) -> list[Any]:
        out = []
        for crd in self.crds.list():
            spec = crd.get("spec") or {}
            names = spec.get("names") or {}
            version = next((v["name"] for v in spec.get("versions") or []
                            if v.get("storage")), None)
            if spec.get("scope") == "Namespaced" and version and names.get("kind"):
                out.append(create_namespaced_resource(spec["group"], version, names["kind"],
                                                      names["plural"]))
        return out

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        name = ns["metadata"]["name"]
        resources = [r for r in self.builtin if r not in self._unserved]
        resources += self._custom_resources()
        left = await asyncio.gather(*(self._delete_all(r, name) for r in resources))
        remaining = {r._api_info.plural + (f".{r._api_info.resource.group}"
                                           if r._api_info.resource.group else ""): n
                     for r, n in zip(resources, left, strict=True) if n}
        if remaining:
            await self._set_conditions(ns, remaining)
            raise Requeue(self.recheck)
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or []
                      if f != FINALIZER]
        body = Namespace.Finalize.from_dict({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "resourceVersion": ns["metadata"]["resourceVersion"]},
            "spec": {"finalizers": finalizers}})
        try:
            await self.client.replace(body, name)
        except ApiError as exc:
            if not is_not_found(exc):
                raise

    async def _delete_all(self, resource: Any, namespace: str) -> int:
        """Delete what is left of `resource` in `namespace`; how many still exist."""
        try:
            items = [i async for i in self.client.list(resource, namespace=namespace)]
        except ApiError as exc:
            if exc.status.code in (404, 405):
                if resource in self.builtin:
                    self._unserved.add(resource)
                return 0
            raise
        pending = []
        for item in items:
            meta = item.metadata
            if meta is not None and not meta.deletionTimestamp:
                pending.append(self._delete_one(resource, meta.name or "", namespace))
        await asyncio.gather(*pending)
        return len(items)

    async def _delete_one(self, resource: Any, name: str, namespace: str) -> None:
        try:
            await self.client.delete(resource, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code not in (404, 409):
                raise

    async def _set_conditions(self, ns: Obj, remaining: dict[str, int]) -> None:
        stamp = rfc3339()
        summary = ", ".join(f"{k} has {n} resource instances" for k, n in
                            sorted(remaining.items()))
        conditions = set_condition((ns.get("status") or {}).get("conditions") or [], {
            "type": "NamespaceContentRemaining", "status": "True",
            "reason": "SomeResourcesRemain", "message": f"Some resources are remaining: "
                                                        f"{summary}",
            "lastTransitionTime": stamp})
        if conditions == (ns.get("status") or {}).get("conditions"):
            return
        try:
            await api.patch(self.client, Namespace.Status, ns,
                            {"status": {"conditions": conditions}}, pin=False)
        except ApiError as exc:
            if not is_not_found(exc):
                raise
