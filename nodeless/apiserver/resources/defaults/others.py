"""Defaults of the other API groups: autoscaling, networking, storage, RBAC, CRDs, ..."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.resources.defaults.common import (
    Obj,
    _Ctx,
    _dict_at,
    _set_if_empty,
    _set_if_missing,
)


def _scaling_rules(rules: Any, defaults: Obj) -> Obj:
    out = dict(defaults)
    if isinstance(rules, dict):
        for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
            if rules.get(key) is not None:
                out[key] = rules[key]
    return out


_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _hpa(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    _set_if_missing(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)
    _set_if_missing(obj, "status", {"desiredReplicas": 0})


def _network_policy(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or ():
            for port in (rule.get("ports") or ()) if isinstance(rule, dict) else ():
                if isinstance(port, dict):
                    _set_if_missing(port, "protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _ingress_class(obj: Obj, ctx: _Ctx) -> None:
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        _set_if_missing(params, "scope", "Cluster")


def _endpoint_slice(obj: Obj, ctx: _Ctx) -> None:
    for port in obj.get("ports") or ():
        if isinstance(port, dict):
            _set_if_missing(port, "name", "")
            _set_if_missing(port, "protocol", "TCP")


def _storage_class(obj: Obj, ctx: _Ctx) -> None:
    _set_if_missing(obj, "reclaimPolicy", "Delete")
    _set_if_missing(obj, "volumeBindingMode", "Immediate")


def _priority_class(obj: Obj, ctx: _Ctx) -> None:
    _set_if_missing(obj, "preemptionPolicy", "PreemptLowerPriority")


RBAC_GROUP = "rbac.authorization.k8s.io"


def _role_binding(obj: Obj, ctx: _Ctx) -> None:
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict):
        _set_if_empty(role_ref, "apiGroup", RBAC_GROUP)
    for subject in obj.get("subjects") or ():
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = RBAC_GROUP
            elif subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""


def _webhooks(obj: Obj, mutating: bool) -> None:
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        _set_if_missing(hook, "failurePolicy", "Fail")
        _set_if_missing(hook, "matchPolicy", "Equivalent")
        _set_if_missing(hook, "namespaceSelector", {})
        _set_if_missing(hook, "objectSelector", {})
        _set_if_missing(hook, "timeoutSeconds", 10)
        if mutating:
            _set_if_missing(hook, "reinvocationPolicy", "Never")
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                _set_if_missing(rule, "scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            _set_if_missing(service, "port", 443)


def _crd(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.get("names")
    if isinstance(names, dict):
        if not names.get("singular"):
            names["singular"] = str(names.get("kind") or "").lower()
        if not names.get("listKind") and names.get("kind"):
            names["listKind"] = f"{names['kind']}List"
    conversion = spec.get("conversion")
    if not isinstance(conversion, dict):
        spec["conversion"] = {"strategy": "None"}
    else:
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            _set_if_missing(service, "port", 443)
    status = _dict_at(obj, "status")
    if not status.get("storedVersions"):
        for version in spec.get("versions") or ():
            if isinstance(version, dict) and version.get("storage"):
                status["storedVersions"] = [version.get("name")]
                break
