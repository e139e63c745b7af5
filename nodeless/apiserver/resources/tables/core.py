"""Printers of the other core/v1 kinds: nodes, services, volumes, events, ..."""

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
    _format_labels,
    _get,
    _join_host_port,
    _list_with_more,
    _name,
    _parse_time,
    _quantity,
    _since,
)


def _node(node: Obj, now: datetime) -> list[Any]:
    status = node.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready")
    states = ["Unknown"] if ready is None else [
        "Ready" if ready.get("status") == "True" else "NotReady"]
    if _get(node, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for a in status.get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address", ""))
        return "<none>"

    return [
        _name(node), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(node, now),
        info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
        info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_NODE_COLUMNS = (
    _NAME,
    _Col("Status", "The status of the node"),
    _Col("Roles", "The roles of the node"),
    _AGE,
    _Col("Version", "@core.v1.NodeSystemInfo.kubeletVersion"),
    _Col("Internal-IP", "@core.v1.NodeStatus.addresses", priority=1),
    _Col("External-IP", "@core.v1.NodeStatus.addresses", priority=1),
    _Col("OS-Image", "@core.v1.NodeSystemInfo.osImage", priority=1),
    _Col("Kernel-Version", "@core.v1.NodeSystemInfo.kernelVersion", priority=1),
    _Col("Container-Runtime", "@core.v1.NodeSystemInfo.containerRuntimeVersion", priority=1),
)


def _lb_ingress(status: Obj | None) -> str:
    """loadBalancerStatusStringer, wide (the server never clips it): sorted unique IPs."""
    found = {i.get("ip") or i.get("hostname") for i in _get(status, "ingress", default=[])}
    return ",".join(sorted(x for x in found if x))


def _service(svc: Obj, now: datetime) -> list[Any]:
    spec = svc.get("spec") or {}
    svc_type = spec.get("type") or ""
    cluster_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0] or "<none>"
    external_ips = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        external = ",".join(external_ips) or "<none>"
    elif svc_type == "LoadBalancer":
        lb = _lb_ingress(_get(svc, "status", "loadBalancer"))
        if external_ips:
            external = ",".join(([*lb.split(",")] if lb else []) + external_ips)
        else:
            external = lb or "<pending>"
    elif svc_type == "ExternalName":
        external = spec.get("externalName", "")
    else:
        external = "<unknown>"
    ports = []
    for p in spec.get("ports") or []:
        protocol = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{protocol}")
        else:
            ports.append(f"{p.get('port')}/{protocol}")
    return [
        _name(svc), svc_type, cluster_ip, external, ",".join(ports) or "<none>",
        _age(svc, now), _format_labels(spec.get("selector")),
    ]


_SERVICE_COLUMNS = (
    _NAME,
    _Col("Type", "@core.v1.ServiceSpec.type"),
    _Col("Cluster-IP", "@core.v1.ServiceSpec.clusterIP"),
    _Col("External-IP", "@core.v1.ServiceSpec.externalIPs"),
    _Col("Port(s)", "@core.v1.ServiceSpec.ports"),
    _AGE,
    _Col("Selector", "@core.v1.ServiceSpec.selector", priority=1),
)


def _endpoints(ep: Obj, now: datetime) -> list[Any]:
    subsets = ep.get("subsets") or []
    if not subsets:
        text = "<none>"
    else:
        found: list[str] = []
        for ss in subsets:
            addresses = [a.get("ip", "") for a in ss.get("addresses") or []]
            if not ss.get("ports"):
                found.extend(addresses)
                continue
            for port in ss["ports"]:
                found.extend(_join_host_port(ip, port.get("port")) for ip in addresses)
        text = _list_with_more(found, empty="")
    return [_name(ep), text, _age(ep, now)]


def _namespace(ns: Obj, now: datetime) -> list[Any]:
    return [_name(ns), _get(ns, "status", "phase", default=""), _age(ns, now)]


def _configmap(cm: Obj, now: datetime) -> list[Any]:
    count = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [_name(cm), count, _age(cm, now)]


def _secret(secret: Obj, now: datetime) -> list[Any]:
    return [_name(secret), secret.get("type") or "", len(secret.get("data") or {}),
            _age(secret, now)]


def _serviceaccount(sa: Obj, now: datetime) -> list[Any]:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, now)]


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: list[str] | None) -> str:
    modes = modes or []
    return ",".join(short for mode, short in _ACCESS_MODES if mode in modes)


def _storage_class(obj: Obj) -> str:
    """The beta annotation wins over spec.storageClassName, as in kube's helper."""
    annotation = _get(obj, "metadata", "annotations", "volume.beta.kubernetes.io/storage-class")
    if annotation is not None:
        return str(annotation)
    return str(_get(obj, "spec", "storageClassName", default=""))


def _pv(pv: Obj, now: datetime) -> list[Any]:
    spec = pv.get("spec") or {}
    claim = ""
    if spec.get("claimRef") is not None:
        claim = f"{spec['claimRef'].get('namespace', '')}/{spec['claimRef'].get('name', '')}"
    phase = _get(pv, "status", "phase", default="")
    if _get(pv, "metadata", "deletionTimestamp") is not None:
        phase = "Terminating"
    return [
        _name(pv), _quantity(_get(spec, "capacity", "storage")),
        _access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
        phase, claim, _storage_class(pv), spec.get("volumeAttributesClassName") or "<unset>",
        _get(pv, "status", "reason", default=""), _age(pv, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _pvc(pvc: Obj, now: datetime) -> list[Any]:
    spec = pvc.get("spec") or {}
    phase = _get(pvc, "status", "phase", default="")
    if _get(pvc, "metadata", "deletionTimestamp") is not None:
        phase = "Terminating"
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = _access_modes(_get(pvc, "status", "accessModes"))
        capacity = _quantity(_get(pvc, "status", "capacity", "storage"))
    return [
        _name(pvc), phase, spec.get("volumeName", ""), capacity, modes, _storage_class(pvc),
        spec.get("volumeAttributesClassName") or "<unset>", _age(pvc, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _resourcequota(rq: Obj, now: datetime) -> list[Any]:
    hard = _get(rq, "status", "hard", default={})
    used = _get(rq, "status", "used", default={})
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        text = f"{resource}: {_quantity(used.get(resource))}/{_quantity(hard[resource])}"
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(text)
    return [_name(rq), ", ".join(requests), ", ".join(limits), _age(rq, now)]


def _core_event(event: Obj) -> Obj:
    """An events.k8s.io/v1 Event in core/v1 shape: kube prints both from one internal type."""
    if "regarding" not in event and "note" not in event and not str(
            event.get("apiVersion", "")).startswith("events.k8s.io/"):
        return event
    source = event.get("deprecatedSource") or {}
    return {
        "metadata": event.get("metadata") or {},
        "involvedObject": event.get("regarding") or {},
        "reason": event.get("reason", ""),
        "message": event.get("note", ""),
        "type": event.get("type", ""),
        "source": source,
        "firstTimestamp": event.get("deprecatedFirstTimestamp"),
        "lastTimestamp": event.get("deprecatedLastTimestamp"),
        "count": event.get("deprecatedCount") or 0,
        "eventTime": event.get("eventTime"),
        "series": event.get("series"),
        "reportingComponent": event.get("reportingController", ""),
        "reportingInstance": event.get("reportingInstance", ""),
    }


def _event(obj: Obj, now: datetime) -> list[Any]:
    event = _core_event(obj)
    first = _since(event.get("firstTimestamp"), now)
    if _parse_time(event.get("firstTimestamp")) is None:
        first = _since(event.get("eventTime"), now)
    last = first if _parse_time(event.get("lastTimestamp")) is None else _since(
        event.get("lastTimestamp"), now)
    count = event.get("count") or 0
    if event.get("series"):
        last = _since(event["series"].get("lastObservedTime"), now)
        count = event["series"].get("count") or 0
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = event.get("involvedObject") or {}
    target = (involved.get("kind") or "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    component = _get(event, "source", "component") or event.get("reportingComponent") or ""
    instance = _get(event, "source", "host") or event.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return [
        last, event.get("type", ""), event.get("reason", ""), target,
        involved.get("fieldPath", ""), source, (event.get("message") or "").strip(), first,
        count, _name(event),
    ]


_EVENT_COLUMNS = (
    _Col("Last Seen", "@core.v1.Event.lastTimestamp"),
    _Col("Type", "@core.v1.Event.type"),
    _Col("Reason", "@core.v1.Event.reason"),
    _Col("Object", "@core.v1.Event.involvedObject"),
    _Col("Subobject", "@core.v1.ObjectReference.fieldPath", priority=1),
    _Col("Source", "@core.v1.Event.source", priority=1),
    _Col("Message", "@core.v1.Event.message"),
    _Col("First Seen", "@core.v1.Event.firstTimestamp", priority=1),
    _Col("Count", "@core.v1.Event.count", priority=1),
    _Col("Name", "@meta.name", priority=1, format="name"),
)

PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    ("", "nodes"): (_NODE_COLUMNS, _node),
    ("", "services"): (_SERVICE_COLUMNS, _service),
    ("", "endpoints"): ((_NAME, _Col("Endpoints", "@core.v1.Endpoints.subsets"), _AGE),
                        _endpoints),
    ("", "namespaces"): ((_NAME, _Col("Status", "The status of the namespace"), _AGE),
                         _namespace),
    ("", "configmaps"): ((_NAME, _Col("Data", "@core.v1.ConfigMap.data"), _AGE), _configmap),
    ("", "secrets"): ((_NAME, _Col("Type", "@core.v1.Secret.type"),
                       _Col("Data", "@core.v1.Secret.data"), _AGE), _secret),
    ("", "serviceaccounts"): ((_NAME, _Col("Secrets", "@core.v1.ServiceAccount.secrets"),
                               _AGE), _serviceaccount),
    ("", "persistentvolumes"): ((
        _NAME,
        _Col("Capacity", "@core.v1.PersistentVolumeSpec.capacity"),
        _Col("Access Modes", "@core.v1.PersistentVolumeSpec.accessModes"),
        _Col("Reclaim Policy", "@core.v1.PersistentVolumeSpec.persistentVolumeReclaimPolicy"),
        _Col("Status", "@core.v1.PersistentVolumeStatus.phase"),
        _Col("Claim", "@core.v1.PersistentVolumeSpec.claimRef"),
        _Col("StorageClass", "StorageClass of the pv"),
        _Col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        _Col("Reason", "@core.v1.PersistentVolumeStatus.reason"),
        _AGE,
        _Col("VolumeMode", "@core.v1.PersistentVolumeSpec.volumeMode", priority=1),
    ), _pv),
    ("", "persistentvolumeclaims"): ((
        _NAME,
        _Col("Status", "@core.v1.PersistentVolumeClaimStatus.phase"),
        _Col("Volume", "@core.v1.PersistentVolumeClaimSpec.volumeName"),
        _Col("Capacity", "@core.v1.PersistentVolumeClaimStatus.capacity"),
        _Col("Access Modes", "@core.v1.PersistentVolumeClaimStatus.accessModes"),
        _Col("StorageClass", "StorageClass of the pvc"),
        _Col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        _AGE,
        _Col("VolumeMode", "@core.v1.PersistentVolumeClaimSpec.volumeMode", priority=1),
    ), _pvc),
    ("", "resourcequotas"): ((
        _NAME,
        _Col("Request", "Request represents a minimum amount of cpu/memory that a "
             "container may consume."),
        _Col("Limit", "Limits control the maximum amount of cpu/memory that a container may "
             "use independent of contention on the node."),
        _AGE,
    ), _resourcequota),
    ("", "events"): (_EVENT_COLUMNS, _event),
    ("events.k8s.io", "events"): (_EVENT_COLUMNS, _event),
}
