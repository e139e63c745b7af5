"""Defaults of the other core/v1 kinds: Service, Namespace, Secret, Node, PV/PVC, ..."""

from __future__ import annotations

import base64
import ipaddress

from nodeless.apiserver.resources.defaults.common import (
    Obj,
    _Ctx,
    _dict_at,
    _set_if_empty,
    _set_if_missing,
)
from nodeless.apiserver.resources.defaults.quantities import _resource_list


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def _service(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        client_ip = config.get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_if_empty(spec, "type", "ClusterIP")
    svc_type = spec["type"]
    for port in spec.get("ports") or ():
        if not isinstance(port, dict):
            continue
        _set_if_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = svc_type in ("LoadBalancer", "NodePort") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible:
        _set_if_empty(spec, "externalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        _set_if_missing(spec, "internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        _set_if_missing(spec, "allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        _service_ip_fields(spec)
    status = obj.setdefault("status", {})
    load_balancer = status.setdefault("loadBalancer", {})
    if svc_type == "LoadBalancer":
        for ingress in load_balancer.get("ingress") or ():
            if isinstance(ingress, dict) and ingress.get("ip"):
                _set_if_missing(ingress, "ipMode", "VIP")


def _service_ip_fields(spec: Obj) -> None:
    """clusterIP/clusterIPs kept in step, and the families of a single-stack IPv4 cluster."""
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = spec.get("clusterIPs") or []
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = cluster_ips = [cluster_ip]
    elif cluster_ips and not cluster_ip and isinstance(cluster_ips, list):
        spec["clusterIP"] = cluster_ip = cluster_ips[0]
    headless = cluster_ip == "None"
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = ("RequireDualStack" if headless and not spec.get("selector")
                                  else "SingleStack")
    if not spec.get("ipFamilies"):
        first = cluster_ips[0] if cluster_ips and not headless else ""
        spec["ipFamilies"] = ["IPv6" if _is_ipv6(str(first)) else "IPv4"]


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace(obj: Obj, ctx: _Ctx) -> None:
    meta = obj.setdefault("metadata", {})
    if meta.get("name"):
        labels = _dict_at(meta, "labels")
        labels[NAMESPACE_NAME_LABEL] = meta["name"]
    if ctx.is_create(obj):
        spec = _dict_at(obj, "spec")
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = spec["finalizers"] = []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Active")


def _secret(obj: Obj, ctx: _Ctx) -> None:
    _set_if_empty(obj, "type", "Opaque")
    # v1 -> internal conversion merges stringData into data; stringData is never stored.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict_at(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _node(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    _resource_list(status, "capacity", errs)
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])
    _resource_list(status, "allocatable", errs)


def _pvc_spec(spec: Obj, errs: list[str]) -> None:
    _set_if_missing(spec, "volumeMode", "Filesystem")
    resources = spec.get("resources")
    if isinstance(resources, dict):
        _resource_list(resources, "limits", errs)
        _resource_list(resources, "requests", errs)


def _pvc(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = _dict_at(obj, "spec")
    _pvc_spec(spec, errs)
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Pending")
    _resource_list(status, "capacity", errs)
    _resource_list(status, "allocatedResources", errs)


def _pv(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set_if_missing(spec, "volumeMode", "Filesystem")
    _resource_list(spec, "capacity", errs)
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict):
        _set_if_missing(host_path, "type", "")
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Pending")


def _endpoints(obj: Obj, ctx: _Ctx) -> None:
    for subset in obj.get("subsets") or ():
        for port in (subset.get("ports") or ()) if isinstance(subset, dict) else ():
            if isinstance(port, dict):
                _set_if_empty(port, "protocol", "TCP")


def _resource_quota(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    if isinstance(obj.get("spec"), dict):
        _resource_list(obj["spec"], "hard", errs)
    if isinstance(obj.get("status"), dict):
        _resource_list(obj["status"], "hard", errs)
        _resource_list(obj["status"], "used", errs)


def _limit_range(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    for item in (obj.get("spec") or {}).get("limits") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "Container":
            default = item.setdefault("default", {})
            default_request = item.setdefault("defaultRequest", {})
            for name, value in (item.get("max") or {}).items():
                default.setdefault(name, value)
            for name, value in default.items():
                default_request.setdefault(name, value)
            for name, value in (item.get("min") or {}).items():
                default_request.setdefault(name, value)
            if not default:
                del item["default"]
            if not default_request:
                del item["defaultRequest"]
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _resource_list(item, key, errs)
