"""CustomResourceDefinitions: from a stored CRD to served resource types.

kube-apiserver's apiextensions controllers accept the names and mark the CRD
Established; here that happens as the CRD is written (so `kubectl apply` of a CRD
followed by one of its objects works at once), and every API server process keeps its
registry in step by watching CRDs.
"""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.objects import now_rfc3339
from nodeless.apiserver.resources.registry import Registry, ResourceType
from nodeless.apiserver.strategy import CRD_CLEANUP_FINALIZER as CLEANUP_FINALIZER

__all__ = ["CLEANUP_FINALIZER", "resource_types", "sync_registry"]


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of the CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(ResourceType(
            group=spec.get("group", ""),
            version=version["name"],
            kind=names.get("kind", ""),
            plural=names.get("plural", ""),
            singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope") == "Namespaced",
            verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update",
                   "watch"),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subresources),
            crd_schema=schema or {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True},
            crd=crd,
        ))
    return types


def is_established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def accepted_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The status kube's naming and establishing controllers would give a valid CRD."""
    spec = crd.get("spec") or {}
    now = now_rfc3339()
    names = dict(spec.get("names") or {})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    return {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": names,
        "storedVersions": list(dict.fromkeys(previous + stored)),
    }


def sync_registry(registry: Registry, crd: dict[str, Any], *, deleted: bool = False) -> None:
    """Make the registry serve exactly the CRD's served versions (none if deleted)."""
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    plural = (spec.get("names") or {}).get("plural", "")
    wanted = [] if deleted else resource_types(crd)
    wanted_versions = {t.version for t in wanted}
    for existing in registry.custom_types():
        if (existing.group, existing.plural) == (group, plural) and (
            existing.version not in wanted_versions
        ):
            registry.remove(existing.group, existing.version, existing.plural)
    for t in wanted:
        registry.add(t)
