"""The table of resource types the API server serves.

Built-in types come from upstream data, not hand-written modules: `lightkube-models`
carries kube-apiserver's resource table (group, version, kind, plural, scope, verbs,
subresources) and `kubernetes-validate` the schemas. This module only adds what those
lack (short names, categories, singular names) and the list of types we serve.
Custom resources are added and removed at run time as their CRDs become Established.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lightkube.core import resource as lk

from nodeless.apiserver.resources import schema

# (group/version, plural) of every built-in resource we serve: the list.
SERVED: dict[str, tuple[str, ...]] = {
    "v1": (
        "namespaces", "pods", "nodes", "events", "services", "endpoints", "configmaps",
        "secrets", "serviceaccounts", "persistentvolumes", "persistentvolumeclaims",
        "resourcequotas", "limitranges",
    ),
    "apps/v1": ("deployments", "replicasets", "daemonsets", "statefulsets",
                "controllerrevisions"),
    "batch/v1": ("jobs", "cronjobs"),
    "coordination.k8s.io/v1": ("leases",),
    "events.k8s.io/v1": ("events",),
    "apiextensions.k8s.io/v1": ("customresourcedefinitions",),
    "admissionregistration.k8s.io/v1": (
        "mutatingwebhookconfigurations", "validatingwebhookconfigurations",
    ),
    "rbac.authorization.k8s.io/v1": ("roles", "rolebindings", "clusterroles",
                                     "clusterrolebindings"),
    "networking.k8s.io/v1": ("ingresses", "ingressclasses", "networkpolicies"),
    "policy/v1": ("poddisruptionbudgets",),
    "autoscaling/v2": ("horizontalpodautoscalers",),
    "discovery.k8s.io/v1": ("endpointslices",),
    "storage.k8s.io/v1": ("storageclasses",),
    "scheduling.k8s.io/v1": ("priorityclasses",),
}

# Short names as kube-apiserver announces them in discovery.
SHORT_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "namespaces"): ("ns",),
    ("", "pods"): ("po",),
    ("", "nodes"): ("no",),
    ("", "events"): ("ev",),
    ("", "services"): ("svc",),
    ("", "endpoints"): ("ep",),
    ("", "configmaps"): ("cm",),
    ("", "serviceaccounts"): ("sa",),
    ("", "persistentvolumes"): ("pv",),
    ("", "persistentvolumeclaims"): ("pvc",),
    ("", "resourcequotas"): ("quota",),
    ("", "limitranges"): ("limits",),
    ("apps", "deployments"): ("deploy",),
    ("apps", "replicasets"): ("rs",),
    ("apps", "daemonsets"): ("ds",),
    ("apps", "statefulsets"): ("sts",),
    ("batch", "cronjobs"): ("cj",),
    ("events.k8s.io", "events"): ("ev",),
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("crd", "crds"),
    ("networking.k8s.io", "ingresses"): ("ing",),
    ("networking.k8s.io", "networkpolicies"): ("netpol",),
    ("policy", "poddisruptionbudgets"): ("pdb",),
    ("autoscaling", "horizontalpodautoscalers"): ("hpa",),
    ("storage.k8s.io", "storageclasses"): ("sc",),
    ("scheduling.k8s.io", "priorityclasses"): ("pc",),
}

# Members of the `all` category (what `kubectl get all` lists).
CATEGORY_ALL = {
    ("", "pods"), ("", "services"), ("apps", "deployments"), ("apps", "replicasets"),
    ("apps", "daemonsets"), ("apps", "statefulsets"), ("batch", "jobs"),
    ("batch", "cronjobs"), ("autoscaling", "horizontalpodautoscalers"),
}

# Subresources that are not a separate lightkube class but kube-apiserver serves.
EXTRA_SUBRESOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("log",),
}

# The subresources nodeless implements; others in the upstream table are not announced.
IMPLEMENTED_SUBRESOURCES = {"status", "scale", "binding", "log"}


@dataclass(frozen=True)
class ResourceType:
    """Everything the generic REST machinery needs to serve one resource."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    schema_ref: str | None = None
    """Definition name in `schema.definitions()` (built-in types)."""
    crd_schema: dict[str, Any] | None = None
    """openAPIV3Schema of a custom resource version (custom types)."""
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """The CustomResourceDefinition a custom type comes from."""
    storage_resource: str = ""
    """Group/plural whose storage this type shares (events.k8s.io -> core events)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified_plural(self) -> str:
        """`pods`, `deployments.apps`: how kube-apiserver names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Pod`, `Deployment.apps`: the kind as it appears in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def is_custom(self) -> bool:
        return self.crd is not None

    @property
    def storage_prefix(self) -> str:
        """Key prefix of every object of this resource, across namespaces."""
        resource = self.storage_resource or f"{self.group or 'core'}/{self.plural}"
        return f"/registry/{resource}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix}{namespace}/{name}"
        return f"{self.storage_prefix}{name}"

    def prefix(self, namespace: str | None) -> str:
        """Key prefix of a list: one namespace, or all of them when namespace is None."""
        if self.namespaced and namespace:
            return f"{self.storage_prefix}{namespace}/"
        return self.storage_prefix

    def has_subresource(self, name: str) -> bool:
        return name in self.subresources


_VERB_NAMES = {
    "post": "create", "put": "update", "global_list": None, "global_watch": None,
}


def _verbs(lightkube_verbs: list[str]) -> tuple[str, ...]:
    verbs = []
    for v in lightkube_verbs:
        mapped = _VERB_NAMES.get(v, v)
        if mapped and mapped not in verbs:
            verbs.append(mapped)
    return tuple(sorted(verbs))


def _builtin_types() -> list[ResourceType]:
    modules = {
        gv: importlib.import_module(
            "lightkube.resources." + (gv.replace("/", "_").replace(".k8s.io", "").replace(".", "_")
                                      if "/" in gv else "core_v1")
        )
        for gv in SERVED
    }
    types = []
    for gv, plurals in SERVED.items():
        module = modules[gv]
        mains: dict[str, Any] = {}
        subs: dict[str, list[str]] = {}
        for obj in vars(module).values():
            info = getattr(obj, "_api_info", None)
            if not isinstance(info, lk.ApiInfo) or obj.__module__ != module.__name__:
                continue
            if info.parent is None:
                mains[info.plural] = obj
            elif info.action:
                subs.setdefault(info.plural, []).append(info.action)
        for plural in plurals:
            cls = mains[plural]
            info = cls._api_info
            group, version, kind = info.resource.group, info.resource.version, info.resource.kind
            subresources = tuple(sorted(
                (set(subs.get(plural, [])) | set(EXTRA_SUBRESOURCES.get((group, plural), ())))
                & IMPLEMENTED_SUBRESOURCES
            ))
            types.append(
                ResourceType(
                    group=group,
                    version=version,
                    kind=kind,
                    plural=plural,
                    singular=kind.lower(),
                    namespaced=issubclass(cls, lk.NamespacedResource),
                    verbs=_verbs(info.verbs),
                    short_names=SHORT_NAMES.get((group, plural), ()),
                    categories=("all",) if (group, plural) in CATEGORY_ALL else (),
                    subresources=subresources,
                    schema_ref=schema.definition_name(group, version, kind),
                    storage_resource="core/events" if (group, plural) == (
                        "events.k8s.io", "events") else "",
                )
            )
    return types


class Registry:
    """Lookup of served resource types; custom types come and go with their CRDs."""

    def __init__(self, types: list[ResourceType] | None = None) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self.generation = 0
        """Bumped on every change, so discovery and OpenAPI documents can be cached."""
        for t in types if types is not None else _builtin_types():
            self._types[(t.group, t.version, t.plural)] = t

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for t in self._types.values():
            if (t.group, t.version, t.kind) == (group, version, kind):
                return t
        return None

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self.by_kind(group, version, kind)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> its served versions (preferred first)."""
        result: dict[str, list[str]] = {}
        for t in self._types.values():
            versions = result.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return result

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if (t.group, t.version) == (group, version)]

    def add(self, t: ResourceType) -> None:
        with self._lock:
            self._types[(t.group, t.version, t.plural)] = t
            self.generation += 1

    def remove(self, group: str, version: str, plural: str) -> None:
        with self._lock:
            if self._types.pop((group, version, plural), None) is not None:
                self.generation += 1

    def custom_types(self) -> list[ResourceType]:
        return [t for t in self._types.values() if t.is_custom]
