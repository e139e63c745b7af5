"""Server-side printing: objects to the `meta.k8s.io/v1` Tables `kubectl get` asks for.

kubectl prints what the server sends and adds nothing but padding, so every column and
every cell must be what kube-apiserver sends (`pkg/printers/internalversion`), or users
see a cluster that looks wrong. Kubernetes always prints the wide columns on the server:
kubectl hides columns with priority > 0 unless `-o wide`. Custom resources follow the
apiextensions table convertor (`additionalPrinterColumns`); any type without a printer
gets kube's default convertor (Name, Created At).

Cells are computed from the versioned JSON we store, where kube prints its internal
types; the few places where the two differ (pod and cluster IPs, events.k8s.io events,
quantities) are bridged explicitly below.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from nodeless.apiserver.errors import BadRequest
from nodeless.apiserver.resources import schema
from nodeless.apiserver.resources.registry import ResourceType

Obj = dict[str, Any]
RowFn = Callable[[Obj, datetime], list[Any]]
ColumnDefs = tuple[tuple[tuple[str, Any], ...], ...]
"""TableColumnDefinitions as hashable (key, value) pairs, so they can be cached."""

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT = ("None", "Metadata", "Object")

__all__ = ["INCLUDE_OBJECT", "TABLE_API_VERSION", "JSONPath", "human_duration",
           "short_human_duration", "to_table"]


def to_table(
    rt: ResourceType,
    objects: list[Obj],
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    now: datetime | None = None,
    no_headers: bool = False,
    api_version: str = TABLE_API_VERSION,
) -> Obj:
    """A Table of `objects` (a list's items, one GET result, or one watch event's object).

    `list_meta` is the list's metadata; without it the Table carries the single object's
    resourceVersion, as kube does for GET. `no_headers` drops the column definitions, as
    kube does for every watch event after the first. `api_version` is `meta.k8s.io/v1` or
    `meta.k8s.io/v1beta1`, whichever the client negotiated.
    """
    if include_object not in INCLUDE_OBJECT and include_object != "":
        raise BadRequest(f'unrecognized includeObject value: "{include_object}"')
    now = _utc(now) if now is not None else datetime.now(UTC)
    columns, row_fn = _printer_for(rt)
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj, now)}
        conditions = _row_conditions(rt, obj)
        if conditions:
            row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object in ("Metadata", ""):
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": api_version,
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": _table_meta(objects, list_meta),
        "columnDefinitions": [] if no_headers else [dict(c) for c in columns],
        "rows": rows,
    }


def _table_meta(objects: list[Obj], list_meta: dict[str, Any] | None) -> Obj:
    if list_meta is None:
        if len(objects) == 1:
            rv = (objects[0].get("metadata") or {}).get("resourceVersion")
            return {"resourceVersion": rv} if rv else {}
        return {}
    meta = {k: list_meta[k] for k in ("resourceVersion", "continue") if list_meta.get(k)}
    if list_meta.get("remainingItemCount") is not None:
        meta["remainingItemCount"] = list_meta["remainingItemCount"]
    return meta


def _row_conditions(rt: ResourceType, obj: Obj) -> list[Obj] | None:
    """Pods that ran to completion are marked so clients may hide them (kube does this)."""
    if (rt.group, rt.plural) != ("", "pods"):
        return None
    phase = _get(obj, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


# ---------------------------------------------------------------------------------------
# Time


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _parse_time(value: Any) -> datetime | None:
    """RFC 3339 (metav1.Time) or with microseconds (MicroTime); None when unset or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _seconds(d: timedelta) -> int:
    """Whole seconds, truncated toward zero like Go's int(d.Seconds())."""
    return math.trunc(d.total_seconds())


def human_duration(d: timedelta) -> str:
    """kube's duration.HumanDuration: ~2-3 significant figures (`5m3s`, `3h10m`, `2d`)."""
    seconds = _seconds(d)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def short_human_duration(d: timedelta) -> str:
    """kube's duration.ShortHumanDuration, which custom resources' date columns use."""
    seconds = _seconds(d)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` when unset."""
    t = _parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


# ---------------------------------------------------------------------------------------
# Small formatters shared by several printers


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name", default=""))


def _format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


_SELECTOR_OPS = {"In": " in ", "NotIn": " notin "}


def _selector_string(selector: Obj | None) -> str | None:
    """metav1.LabelSelectorAsSelector(...).String(); None when the selector is invalid."""
    if not selector:
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        if op in _SELECTOR_OPS:
            if not values:
                return None
            requirements.append((key, f"{key}{_SELECTOR_OPS[op]}({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return None
            requirements.append((key, key if op == "Exists" else f"!{key}"))
        else:
            return None
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements)


def _format_selector(selector: Obj | None) -> str:
    """metav1.FormatLabelSelector: `<none>` for empty, `<error>` for invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(pod_spec: Obj | None) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma separated."""
    containers = _get(pod_spec, "containers", default=[])
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _list_with_more(items: Iterable[str], limit: int = 3, empty: str = "<unset>") -> str:
    """The first `limit` items, then ` + N more...`, as kube shortens long cells."""
    items = list(items)
    text = ",".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text or empty


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _int_or_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# Quantities print in canonical form (Quantity.String()); kube re-serializes every stored
# quantity canonically, we keep what clients sent, so canonicalize here.
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[A-Za-z]*)$")


def _quantity(value: Any, missing: str = "0") -> str:
    """resource.Quantity.String(); `missing` is what an absent quantity prints as."""
    if value is None:
        return missing
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        return text
    number, suffix = match.groups()
    with localcontext() as ctx:
        ctx.prec = 200
        try:
            amount = Decimal(number)
            if suffix in _BINARY:
                amount *= Decimal(1024) ** _BINARY[suffix]
                fmt = "binary"
            elif suffix in _DECIMAL:
                amount = amount.scaleb(_DECIMAL[suffix])
                fmt = "decimal"
            elif suffix[:1] in ("e", "E"):
                amount = amount.scaleb(int(suffix[1:]))
                fmt = "exponent"
            else:
                return text
            # Quantities keep nano precision, rounding away from zero.
            amount = amount.quantize(Decimal("1e-9"), rounding=ROUND_UP)
        except InvalidOperation:
            return text
        # Small or fractional binary amounts print in decimal rather than lose precision.
        if fmt == "binary" and (-1024 < amount < 1024 or amount != amount.to_integral_value()):
            fmt = "decimal"
        if fmt == "binary":
            whole, power = int(amount), 0
            while whole and whole % 1024 == 0 and power < 6:
                whole, power = whole // 1024, power + 1
            return f"{whole}{'' if power == 0 else list(_BINARY)[power - 1]}"
        return _decimal_quantity(amount, fmt)


def _decimal_quantity(amount: Decimal, fmt: str) -> str:
    if amount == 0:
        return "0"
    sign, digits, exponent = amount.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    prefix = "-" if sign else ""
    if exponent == 0:
        return f"{prefix}{mantissa}"
    if fmt == "decimal" and exponent in _DECIMAL_SUFFIX:
        return f"{prefix}{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{prefix}{mantissa}e{exponent}"


# ---------------------------------------------------------------------------------------
# Column definitions. Descriptions are the field docs kube uses (SwaggerDoc), read from
# the OpenAPI definitions; "@group.version.Kind.field" refers to one.


@dataclass(frozen=True)
class _Col:
    name: str
    desc: str = ""
    type: str = "string"
    priority: int = 0
    format: str = ""


_NAME = _Col("Name", "@meta.name", format="name")
_AGE = _Col("Age", "@meta.creationTimestamp")
_CONTAINERS = _Col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _Col("Images", "Images referenced by each container in the template.", priority=1)


def _describe(ref: str) -> str:
    if not ref.startswith("@"):
        return ref
    path, _, field = ref[1:].rpartition(".")
    if path == "meta":
        definition = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    else:
        definition = f"io.k8s.api.{path}"
    props = schema.definitions().get(definition, {}).get("properties", {})
    return str(props.get(field, {}).get("description", ""))


@functools.cache
def _definitions(cols: tuple[_Col, ...]) -> ColumnDefs:
    return tuple(
        (("name", c.name), ("type", c.type), ("format", c.format),
         ("description", _describe(c.desc)), ("priority", c.priority))
        for c in cols
    )


# ---------------------------------------------------------------------------------------
# core/v1


def _restartable(container: Obj | None) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[Obj], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _pod_initialized(conditions: list[Obj]) -> bool:
    for c in conditions:
        if c.get("type") == "Initialized":
            return c.get("status") == "True"
    return False


def _later(a: datetime | None, b: Any) -> datetime | None:
    t = _parse_time(b)
    if t is None:
        return a
    return t if a is None or t > a else a


def _pod(pod: Obj, now: datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    init_list = spec.get("initContainers") or []
    init_specs = {c.get("name"): c for c in init_list}
    total = len(spec.get("containers") or []) + sum(map(_restartable, init_list))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    sidecar_last_restart: datetime | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in conditions):
        reason = "SchedulingGated"

    initializing = False
    n_init = len(init_list)
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount") or 0
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount") or 0
            sidecar_last_restart = _later(sidecar_last_restart, finished)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _pod_initialized(conditions):
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount") or 0
            last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
            waiting = _get(cs, "state", "waiting")
            terminated = _get(cs, "state", "terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and _get(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"

    # kube prints its internal type, where the singular podIP leads podIPs.
    pod_ips = status.get("podIPs") or [{}]
    pod_ip = status.get("podIP") or pod_ips[0].get("ip")
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        by_type: dict[str, Obj] = {}
        for c in conditions:
            by_type.setdefault(c.get("type", ""), c)
        true = sum(1 for g in gates
                   if _get(by_type, g.get("conditionType", ""), "status") == "True")
        gates_text = f"{true}/{len(gates)}"
    return [
        _name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
        pod_ip or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>", gates_text,
    ]


_POD_COLUMNS = (
    _NAME,
    _Col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _Col("Status", "The aggregate status of the containers in this pod."),
    _Col("Restarts", "The number of times the containers in this pod have been restarted "
         "and when the last container in this pod has restarted."),
    _AGE,
    _Col("IP", "@core.v1.PodStatus.podIP", priority=1),
    _Col("Node", "@core.v1.PodSpec.nodeName", priority=1),
    _Col("Nominated Node", "@core.v1.PodStatus.nominatedNodeName", priority=1),
    _Col("Readiness Gates", "@core.v1.PodSpec.readinessGates", priority=1),
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


# ---------------------------------------------------------------------------------------
# apps, batch, autoscaling, policy


def _replicas(obj: Obj) -> int:
    """spec.replicas, defaulted to 1 as the v1 defaulting does."""
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else value


def _deployment(d: Obj, now: datetime) -> list[Any]:
    status = d.get("status") or {}
    names, images = _containers(_get(d, "spec", "template", "spec"))
    selector = _selector_string(_get(d, "spec", "selector"))
    return [
        _name(d), f"{status.get('readyReplicas') or 0}/{_replicas(d)}",
        status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0,
        _age(d, now), names, images, "<invalid>" if selector is None else selector,
    ]


def _replicaset(rs: Obj, now: datetime) -> list[Any]:
    status = rs.get("status") or {}
    names, images = _containers(_get(rs, "spec", "template", "spec"))
    return [
        _name(rs), _replicas(rs), status.get("replicas") or 0,
        status.get("readyReplicas") or 0, _age(rs, now), names, images,
        _format_selector(_get(rs, "spec", "selector")),
    ]


def _daemonset(ds: Obj, now: datetime) -> list[Any]:
    status = ds.get("status") or {}
    pod_spec = _get(ds, "spec", "template", "spec")
    names, images = _containers(pod_spec)
    return [
        _name(ds), status.get("desiredNumberScheduled") or 0,
        status.get("currentNumberScheduled") or 0, status.get("numberReady") or 0,
        status.get("updatedNumberScheduled") or 0, status.get("numberAvailable") or 0,
        _format_labels(_get(pod_spec, "nodeSelector")), _age(ds, now), names, images,
        _format_selector(_get(ds, "spec", "selector")),
    ]


def _statefulset(sts: Obj, now: datetime) -> list[Any]:
    names, images = _containers(_get(sts, "spec", "template", "spec"))
    ready = _get(sts, "status", "readyReplicas", default=0)
    return [_name(sts), f"{ready}/{_replicas(sts)}", _age(sts, now), names, images]


def _controllerrevision(cr: Obj, now: datetime) -> list[Any]:
    controller = "<none>"
    for ref in _get(cr, "metadata", "ownerReferences", default=[]):
        if ref.get("controller"):
            group = ref.get("apiVersion", "").rpartition("/")[0]
            kind = f"{ref.get('kind', '')}.{group}" if group else ref.get("kind", "")
            controller = f"{kind.lower()}/{ref.get('name', '')}" if kind else ref.get("name", "")
            break
    return [_name(cr), controller, cr.get("revision") or 0, _age(cr, now)]


def _job_condition(job: Obj, type_: str) -> bool:
    for c in _get(job, "status", "conditions", default=[]):
        if c.get("type") == type_:
            return bool(c.get("status") == "True")
    return False


def _job(job: Obj, now: datetime) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start = _parse_time(status.get("startTime"))
    end = _parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end or now) - start)
    if _job_condition(job, "Complete"):
        state = "Complete"
    elif _job_condition(job, "Failed"):
        state = "Failed"
    elif _get(job, "metadata", "deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(job, "Suspended"):
        state = "Suspended"
    elif _job_condition(job, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_get(spec, "template", "spec"))
    return [
        _name(job), state, completions, duration, _age(job, now), names, images,
        _format_selector(spec.get("selector")),
    ]


def _cronjob(cj: Obj, now: datetime) -> list[Any]:
    spec = cj.get("spec") or {}
    last = _get(cj, "status", "lastScheduleTime")
    job_spec = _get(spec, "jobTemplate", "spec", default={})
    names, images = _containers(_get(job_spec, "template", "spec"))
    return [
        _name(cj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
        _bool_ptr(spec.get("suspend")), len(_get(cj, "status", "active", default=[])),
        "<none>" if last is None else _since(last, now), _age(cj, now), names, images,
        _format_selector(job_spec.get("selector")),
    ]


def _hpa_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    if not specs:
        return "<none>"
    shown = []
    for i, spec in enumerate(specs):
        kind = spec.get("type")
        current_status = statuses[i] if i < len(statuses) else {}
        if kind in ("External", "Object", "Pods"):
            source = spec.get(kind[0].lower() + kind[1:]) or {}
            target = source.get("target") or {}
            current = _get(current_status, kind[0].lower() + kind[1:])
            if kind == "Pods":
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "averageValue"), missing="<nil>")
                shown.append(f"{value}/{_quantity(target.get('averageValue'), '<nil>')}")
            elif target.get("averageValue") is not None:
                value = _quantity(_get(current, "current", "averageValue"), "<unknown>")
                shown.append(f"{value}/{_quantity(target['averageValue'])} (avg)")
            else:
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "value"), missing="<nil>")
                shown.append(f"{value}/{_quantity(target.get('value'), '<nil>')}")
        elif kind in ("Resource", "ContainerResource"):
            key = "resource" if kind == "Resource" else "containerResource"
            source = spec.get(key) or {}
            target = source.get("target") or {}
            current = _get(current_status, key)
            if target.get("averageValue") is not None:
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "averageValue"), missing="<nil>")
                shown.append(f"{source.get('name', '')}: {value}/"
                             f"{_quantity(target['averageValue'])}")
            else:
                utilization = _get(current, "current", "averageUtilization")
                value = "<unknown>" if utilization is None else f"{utilization}%"
                goal = target.get("averageUtilization")
                shown.append(f"{source.get('name', '')}: {value}/"
                             f"{'<auto>' if goal is None else f'{goal}%'}")
        else:
            shown.append("<unknown type>")
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa(hpa: Obj, now: datetime) -> list[Any]:
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [
        _name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _hpa_metrics(spec.get("metrics") or [], _get(hpa, "status", "currentMetrics") or []),
        "<unset>" if minimum is None else str(minimum), spec.get("maxReplicas") or 0,
        _get(hpa, "status", "currentReplicas", default=0), _age(hpa, now),
    ]


def _pdb(pdb: Obj, now: datetime) -> list[Any]:
    spec = pdb.get("spec") or {}
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(pdb), "N/A" if min_available is None else _int_or_string(min_available),
        "N/A" if max_unavailable is None else _int_or_string(max_unavailable),
        _get(pdb, "status", "disruptionsAllowed", default=0), _age(pdb, now),
    ]


# ---------------------------------------------------------------------------------------
# Other groups


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

_PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    ("", "pods"): (_POD_COLUMNS, _pod),
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
    ("apps", "deployments"): ((
        _NAME,
        _Col("Ready", "Number of the pod with ready state"),
        _Col("Up-to-date", "@apps.v1.DeploymentStatus.updatedReplicas"),
        _Col("Available", "@apps.v1.DeploymentStatus.availableReplicas"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.DeploymentSpec.selector", priority=1),
    ), _deployment),
    ("apps", "replicasets"): ((
        _NAME,
        _Col("Desired", "@apps.v1.ReplicaSetSpec.replicas", type="integer"),
        _Col("Current", "@apps.v1.ReplicaSetStatus.replicas", type="integer"),
        _Col("Ready", "@apps.v1.ReplicaSetStatus.readyReplicas", type="integer"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.ReplicaSetSpec.selector", priority=1),
    ), _replicaset),
    ("apps", "daemonsets"): ((
        _NAME,
        _Col("Desired", "@apps.v1.DaemonSetStatus.desiredNumberScheduled", type="integer"),
        _Col("Current", "@apps.v1.DaemonSetStatus.currentNumberScheduled", type="integer"),
        _Col("Ready", "@apps.v1.DaemonSetStatus.numberReady", type="integer"),
        _Col("Up-to-date", "@apps.v1.DaemonSetStatus.updatedNumberScheduled", type="integer"),
        _Col("Available", "@apps.v1.DaemonSetStatus.numberAvailable", type="integer"),
        _Col("Node Selector", "@core.v1.PodSpec.nodeSelector"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.DaemonSetSpec.selector", priority=1),
    ), _daemonset),
    ("apps", "statefulsets"): ((
        _NAME, _Col("Ready", "Number of the pod with ready state"), _AGE, _CONTAINERS, _IMAGES,
    ), _statefulset),
    ("apps", "controllerrevisions"): ((
        _NAME, _Col("Controller", "Controller of the object"),
        _Col("Revision", "@apps.v1.ControllerRevision.revision"), _AGE,
    ), _controllerrevision),
    ("batch", "jobs"): ((
        _NAME,
        _Col("Status", "Status of the job."),
        _Col("Completions", "@batch.v1.JobStatus.succeeded"),
        _Col("Duration", "Time required to complete the job."),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@batch.v1.JobSpec.selector", priority=1),
    ), _job),
    ("batch", "cronjobs"): ((
        _NAME,
        _Col("Schedule", "@batch.v1.CronJobSpec.schedule"),
        _Col("Timezone", "@batch.v1.CronJobSpec.timeZone"),
        _Col("Suspend", "@batch.v1.CronJobSpec.suspend", type="boolean"),
        _Col("Active", "@batch.v1.CronJobStatus.active", type="integer"),
        _Col("Last Schedule", "@batch.v1.CronJobStatus.lastScheduleTime"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@batch.v1.JobSpec.selector", priority=1),
    ), _cronjob),
    ("autoscaling", "horizontalpodautoscalers"): ((
        _NAME,
        _Col("Reference", "@autoscaling.v2.HorizontalPodAutoscalerSpec.scaleTargetRef"),
        _Col("Targets", "@autoscaling.v2.HorizontalPodAutoscalerSpec.metrics"),
        _Col("MinPods", "@autoscaling.v2.HorizontalPodAutoscalerSpec.minReplicas"),
        _Col("MaxPods", "@autoscaling.v2.HorizontalPodAutoscalerSpec.maxReplicas"),
        _Col("Replicas", "@autoscaling.v2.HorizontalPodAutoscalerStatus.currentReplicas"),
        _AGE,
    ), _hpa),
    ("policy", "poddisruptionbudgets"): ((
        _NAME,
        _Col("Min Available", "The minimum number of pods that must be available."),
        _Col("Max Unavailable", "The maximum number of pods that may be unavailable."),
        _Col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this "
             "time.", type="integer"),
        _AGE,
    ), _pdb),
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


# ---------------------------------------------------------------------------------------
# The default convertor, and custom resources


def _created_at(obj: Obj, now: datetime) -> list[Any]:
    created = _parse_time(_get(obj, "metadata", "creationTimestamp"))
    stamp = (created or datetime(1, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_name(obj), stamp]


_DEFAULT_COLUMNS = (_NAME, _Col("Created At", "@meta.creationTimestamp", type="date"))


def _printer_for(rt: ResourceType) -> tuple[ColumnDefs, RowFn]:
    if rt.crd is not None:
        return _custom_printer(rt)
    columns, row = _PRINTERS.get((rt.group, rt.plural), (_DEFAULT_COLUMNS, _created_at))
    return _definitions(columns), row


def _printer_columns(rt: ResourceType) -> list[Obj]:
    """The CRD version's additionalPrinterColumns; kube serves Age when there are none."""
    for version in _get(rt.crd, "spec", "versions", default=[]):
        if version.get("name") == rt.version:
            columns = version.get("additionalPrinterColumns") or []
            break
    else:
        columns = _get(rt.crd, "spec", "additionalPrinterColumns", default=[])
    if columns:
        return columns
    return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
             "description": _describe("@meta.creationTimestamp")}]


def _custom_printer(rt: ResourceType) -> tuple[ColumnDefs, RowFn]:
    specs = _printer_columns(rt)
    paths: list[JSONPath | None] = []
    definitions = list(_definitions((_NAME,)))
    for spec in specs:
        path = spec.get("jsonPath", "")
        try:
            paths.append(JSONPath(path))
        except ValueError:
            paths.append(None)
        description = spec.get("description") or (
            f"Custom resource definition column (in JSONPath format): {path}")
        definitions.append((
            ("name", spec.get("name", "")), ("type", spec.get("type", "string")),
            ("format", spec.get("format", "")), ("description", description),
            ("priority", spec.get("priority", 0)),
        ))
    types = [spec.get("type", "string") for spec in specs]

    def row(obj: Obj, now: datetime) -> list[Any]:
        cells: list[Any] = [_name(obj)]
        for path, type_ in zip(paths, types, strict=True):
            found = path.find(obj) if path is not None else []
            cells.append(_custom_cell(type_, found[0], now) if found else None)
        return cells

    return tuple(definitions), row


def _custom_cell(type_: str, value: Any, now: datetime) -> Any:
    """One CR cell: strings print like kubectl's JSONPath, others keep their JSON type."""
    if value is None:
        return None
    if type_ == "string":
        return _jsonpath_text(value)
    if type_ == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return int(value)
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        if not isinstance(value, str):
            return None
        t = _parse_time(value)
        return "<invalid>" if t is None else short_human_duration(now - t)
    return None


def _jsonpath_text(value: Any) -> str:
    """How client-go's JSONPath prints a value: JSON for objects and lists, else Go's %v."""
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form outside [1e-4, 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp  # position of the decimal point in `text`
    x = point - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


class JSONPath:
    """The JSONPath subset CRD printer columns use, with missing keys allowed.

    Supports `.field` (with `\\.` escapes), `['field']`, `[n]` (negative counts from the
    end), `[*]`, `.*`, and filters `[?(@.a.b=="x")]`, `!=`, and `[?(@.a)]`. `find` returns
    every match in document order; printers use the first.
    """

    _TOKEN = re.compile(r"""
        \.(?P<field>(?:\\.|[^.\[\\])+)
      | \[\*\](?P<star>)
      | \[(?P<index>-?\d+)\]
      | \[\s*(?P<q>['"])(?P<key>.*?)(?P=q)\s*\]
      | \[\?\(\s*@(?P<fpath>(?:\.(?:\\.|[^.\s=!)\\])+)+)\s*
            (?:(?P<op>==|!=)\s*(?P<lit>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false))?\s*\)\]
    """, re.VERBOSE)

    def __init__(self, text: str) -> None:
        text = text.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].strip()
        if text.startswith("$"):
            text = text[1:]
        self.text = text
        self.steps: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            m = self._TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"unsupported JSONPath {text!r} at {pos}")
            self.steps.append(self._step(m))
            pos = m.end()
        if not self.steps:
            raise ValueError("empty JSONPath")

    @staticmethod
    def _unescape(field: str) -> str:
        return re.sub(r"\\(.)", r"\1", field)

    def _step(self, m: re.Match[str]) -> tuple[str, Any]:
        if m.group("field") is not None:
            field = m.group("field")
            return ("all", None) if field == "*" else ("field", self._unescape(field))
        if m.group("star") is not None:
            return ("all", None)
        if m.group("index") is not None:
            return ("index", int(m.group("index")))
        if m.group("key") is not None:
            return ("field", m.group("key"))
        fields = [self._unescape(f) for f in
                  re.findall(r"\.((?:\\.|[^.\\])+)", m.group("fpath"))]
        literal: Any = None
        if m.group("op"):
            lit = m.group("lit")
            literal = lit[1:-1] if lit[0] in "\"'" else json.loads(lit)
        return ("filter", (fields, m.group("op"), literal))

    def find(self, data: Any) -> list[Any]:
        current = [data]
        for kind, arg in self.steps:
            current = list(self._apply(kind, arg, current))
        return current

    @staticmethod
    def _apply(kind: str, arg: Any, values: list[Any]) -> Iterator[Any]:
        for value in values:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    yield value[arg]
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    yield value[arg]
            elif kind == "all":
                if isinstance(value, list):
                    yield from value
                elif isinstance(value, dict):
                    yield from (value[k] for k in sorted(value))
            elif kind == "filter" and isinstance(value, list):
                fields, op, literal = arg
                for item in value:
                    found, subject = True, item
                    for f in fields:
                        if isinstance(subject, dict) and f in subject:
                            subject = subject[f]
                        else:
                            found = False
                            break
                    if op is None:
                        keep = found
                    elif op == "==":
                        keep = found and subject == literal
                    else:
                        keep = found and subject != literal
                    if keep:
                        yield item
