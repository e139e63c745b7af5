"""Printers of the kinds of the other API groups: networking, storage, RBAC, ..."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nodeless.apiserver.resources.tables.common import (
    _AGE,
    _NAME,
    Obj,
    RowFn,
    _age,
    _Col,
    _format_selector,
    _get,
    _list_with_more,
    _name,
)
from nodeless.apiserver.resources.tables.core import _lb_ingress


def _lease(lease: Obj, now: datetime) -> list[Any]:
    return [_name(lease), _get(lease, "spec", "holderIdentity", default=""), _age(lease, now)]


def _ingress(ing: Obj, now: datetime) -> list[Any]:
    spec = ing.get("spec") or {}
    rules = spec.get("rules") or []
    hosts: list[str] = []
    more = False
    for rule in rules:  # the first three hosts; kube counts "more" in rules, not hosts
        more = more or len(hosts) == 3
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        host_text = "*"
    elif more:
        host_text = f"{','.join(hosts)} + {len(rules) - 3} more..."
    else:
        host_text = ",".join(hosts)
    return [
        _name(ing), spec.get("ingressClassName") or "<none>", host_text,
        _lb_ingress(_get(ing, "status", "loadBalancer")),
        "80, 443" if spec.get("tls") else "80", _age(ing, now),
    ]


def _ingressclass(ic: Obj, now: datetime) -> list[Any]:
    params = _get(ic, "spec", "parameters")
    text = "<none>"
    if params is not None:
        text = params.get("kind", "")
        if params.get("apiGroup") is not None:
            text += "." + params["apiGroup"]
        text += "/" + params.get("name", "")
    return [_name(ic), _get(ic, "spec", "controller", default=""), text, _age(ic, now)]


def _networkpolicy(np: Obj, now: datetime) -> list[Any]:
    return [_name(np), _format_selector(_get(np, "spec", "podSelector") or {}), _age(np, now)]


def _endpointslice(es: Obj, now: datetime) -> list[Any]:
    ports = []
    for p in es.get("ports") or []:
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        else:
            ports.append(p.get("name") if p.get("name") is not None else "*")
    addresses = (a for e in es.get("endpoints") or [] for a in e.get("addresses") or [])
    return [_name(es), es.get("addressType", ""), _list_with_more(ports),
            _list_with_more(addresses), _age(es, now)]


def _storageclass(sc: Obj, now: datetime) -> list[Any]:
    annotations = _get(sc, "metadata", "annotations", default={})
    name = _name(sc)
    if "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                  annotations.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [
        name, sc.get("provisioner", ""), sc.get("reclaimPolicy") or "Delete",
        sc.get("volumeBindingMode") or "Immediate", bool(sc.get("allowVolumeExpansion")),
        _age(sc, now),
    ]


def _priorityclass(pc: Obj, now: datetime) -> list[Any]:
    return [_name(pc), pc.get("value") or 0, bool(pc.get("globalDefault")), _age(pc, now),
            pc.get("preemptionPolicy") or ""]


def _binding(rb: Obj, now: datetime) -> list[Any]:
    ref = rb.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in rb.get("subjects") or []:
        if s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif s.get("kind") == "User":
            users.append(s.get("name", ""))
        elif s.get("kind") == "Group":
            groups.append(s.get("name", ""))
    return [_name(rb), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(rb, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _webhooks(cfg: Obj, now: datetime) -> list[Any]:
    return [_name(cfg), len(cfg.get("webhooks") or []), _age(cfg, now)]


def _binding_columns(kind: str) -> tuple[_Col, ...]:
    return (
        _NAME, _Col("Role", f"@rbac.v1.{kind}.roleRef"), _AGE,
        _Col("Users", f"Users in the {kind[0].lower()}{kind[1:]}", priority=1),
        _Col("Groups", f"Groups in the {kind[0].lower()}{kind[1:]}", priority=1),
        _Col("ServiceAccounts", f"ServiceAccounts in the {kind[0].lower()}{kind[1:]}",
             priority=1),
    )


_WEBHOOK_COLUMNS = (
    _NAME,
    _Col("Webhooks", "Webhooks indicates the number of webhooks registered in this "
         "configuration", type="integer"),
    _AGE,
)

PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    ("coordination.k8s.io", "leases"): ((
        _NAME, _Col("Holder", "@coordination.v1.LeaseSpec.holderIdentity"), _AGE,
    ), _lease),
    ("networking.k8s.io", "ingresses"): ((
        _NAME,
        _Col("Class", "The name of the IngressClass resource that should be used for "
             "additional configuration"),
        _Col("Hosts", "Hosts that incoming requests are matched against before the ingress "
             "rule"),
        _Col("Address", "Address is a list containing ingress points for the load-balancer"),
        _Col("Ports", "Ports of TLS configurations that open"),
        _AGE,
    ), _ingress),
    ("networking.k8s.io", "ingressclasses"): ((
        _NAME,
        _Col("Controller", "Controller that is responsible for handling this class"),
        _Col("Parameters", "A reference to a resource with additional parameters"),
        _AGE,
    ), _ingressclass),
    ("networking.k8s.io", "networkpolicies"): ((
        _NAME, _Col("Pod-Selector", "@networking.v1.NetworkPolicySpec.podSelector"), _AGE,
    ), _networkpolicy),
    ("discovery.k8s.io", "endpointslices"): ((
        _NAME,
        _Col("AddressType", "@discovery.v1.EndpointSlice.addressType"),
        _Col("Ports", "@discovery.v1.EndpointSlice.ports"),
        _Col("Endpoints", "@discovery.v1.EndpointSlice.endpoints"),
        _AGE,
    ), _endpointslice),
    ("storage.k8s.io", "storageclasses"): ((
        _NAME,
        _Col("Provisioner", "@storage.v1.StorageClass.provisioner"),
        _Col("ReclaimPolicy", "@storage.v1.StorageClass.reclaimPolicy"),
        _Col("VolumeBindingMode", "@storage.v1.StorageClass.volumeBindingMode"),
        _Col("AllowVolumeExpansion", "@storage.v1.StorageClass.allowVolumeExpansion"),
        _AGE,
    ), _storageclass),
    ("scheduling.k8s.io", "priorityclasses"): ((
        _NAME,
        _Col("Value", "@scheduling.v1.PriorityClass.value", type="integer"),
        _Col("Global-Default", "@scheduling.v1.PriorityClass.globalDefault", type="boolean"),
        _AGE,
        _Col("PreemptionPolicy", "@scheduling.v1.PriorityClass.preemptionPolicy", priority=1),
    ), _priorityclass),
    ("rbac.authorization.k8s.io", "rolebindings"): (_binding_columns("RoleBinding"),
                                                     _binding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (
        _binding_columns("ClusterRoleBinding"), _binding),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): (
        _WEBHOOK_COLUMNS, _webhooks),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): (
        _WEBHOOK_COLUMNS, _webhooks),
}
