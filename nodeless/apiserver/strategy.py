"""What kube-apiserver's per-type REST strategies do that is not defaulting or validation:
which fields a write may touch (spec vs status), when `generation` moves, what status a
new object starts with. Kept as small functions keyed by kind, like the strategies in
kubernetes' pkg/registry, so the generic object store stays generic.
"""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.resources.registry import ResourceType

CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

# Kinds whose spec changes bump metadata.generation (custom resources always do).
_GENERATION_KINDS = {
    "Pod", "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob",
    "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler",
    "Ingress", "NetworkPolicy", "IngressClass", "PriorityClass",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}

# Kinds whose status a client may set on create (the rest start from an empty status).
_KEEP_STATUS_ON_CREATE = {"Node", "PersistentVolume", "Event"}

# Top-level fields that are neither metadata nor status: a change to any bumps generation.
_NOT_SPEC = {"apiVersion", "kind", "metadata", "status"}

# Metadata fields only the server sets; a client's values are replaced by the stored ones.
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "generation")


# Kinds whose DELETE answers with the object rather than a Status (kube's
# ReturnDeletedObject), as the official clients' typings expect.
_RETURN_DELETED = {"Pod", "Service", "PersistentVolume", "PersistentVolumeClaim",
                   "ServiceAccount", "ResourceQuota"}


def returns_deleted_object(rt: ResourceType) -> bool:
    return rt.is_custom or (not rt.group and rt.kind in _RETURN_DELETED)


def tracks_generation(rt: ResourceType) -> bool:
    return rt.is_custom or rt.kind in _GENERATION_KINDS


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Reset what a create may not set: status of types with a status subresource."""
    meta = obj.setdefault("metadata", {})
    if tracks_generation(rt):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if rt.is_custom:
        if rt.has_subresource("status"):
            obj.pop("status", None)  # a custom resource's status is written via /status
    elif rt.has_subresource("status") and rt.kind not in _KEEP_STATUS_ON_CREATE:
        obj["status"] = _initial_status(rt, obj)
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    if rt.kind == "CustomResourceDefinition":
        finalizers = meta.setdefault("finalizers", [])
        if CRD_CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CRD_CLEANUP_FINALIZER)


def _initial_status(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rt.kind == "Pod":
        return {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec") or {})}
    if rt.kind == "Namespace":
        return {"phase": "Active"}
    if rt.kind == "Service":
        return {"loadBalancer": {}}
    if rt.kind == "CustomResourceDefinition":
        return {}
    if rt.kind == "PersistentVolumeClaim":
        return {"phase": "Pending"}
    return {}


def prepare_for_update(
    rt: ResourceType, new: dict[str, Any], old: dict[str, Any], subresource: str
) -> None:
    """Carry over what this kind of write may not change, and move generation."""
    new_meta = new.setdefault("metadata", {})
    old_meta = old.get("metadata", {})
    for field in SYSTEM_METADATA:
        if field in old_meta:
            new_meta[field] = old_meta[field]
        else:
            new_meta.pop(field, None)
    if subresource == "status":
        # A status write changes status only (and may not touch spec or metadata).
        status = new.get("status")
        new.clear()
        new.update({k: v for k, v in old.items() if k != "status"})
        if status is not None:
            new["status"] = status
        new["metadata"] = dict(old_meta)
        return
    if rt.has_subresource("status"):
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if tracks_generation(rt) and spec_of(new) != spec_of(old):
        new_meta["generation"] = int(old_meta.get("generation") or 1) + 1


_COMPUTE = ("cpu", "memory")


def pod_qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if any(r in requests or r in limits for r in _COMPUTE):
            any_set = True
        for r in _COMPUTE:
            if r not in limits or (r in requests and str(requests[r]) != str(limits[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def is_pod_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
