"""A container's environment as kubelet's makeEnvironmentVariables builds it.

Order: `envFrom` sources in turn, then `env` entries (each may expand `$(VAR)` references
to the variables defined before it and to the service variables), then the service
variables not already defined. Missing sources and keys raise ContainerConfigError with
kubelet's own messages, which the worker shows as `CreateContainerConfigError`.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from cri_api.v1 import api_pb2

from nodeless.agent.pods.errors import ContainerConfigError
from nodeless.agent.pods.podutil import Container, Pod, find_container, format_map, quantity

FARGATE_EPHEMERAL_STORAGE = "20Gi"
"""Default ephemeral storage of a Fargate pod: the downward API's limit when none is set."""


class EnvSources(Protocol):
    """What resolving an environment needs from outside the pod object."""

    node_allocatable: Mapping[str, Any]
    """The micro-node's allocatable (= the pod's provisioned capacity): the default
    limits the downward API reports for containers that set none."""
    pod_ips: Sequence[str]
    host_ips: Sequence[str]

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The ConfigMap object, or None when it does not exist."""

    async def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The Secret object (data base64-encoded, as the API returns it), or None."""


Warn = Callable[[str, str], None]
"""Receives (reason, message) of a Warning Event kubelet would record."""


# --- $(VAR) expansion (kubelet's third_party/forked/golang/expansion) -----------------

def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `$(VAR)` in text; `$$` is a literal `$`; unknown or unclosed references are
    kept as written, exactly as kubelet does."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            if nxt == "$":
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = text[cursor + 2:close]
                    value = lookup(name)
                    out.append(f"$({name})" if value is None else value)
                    advance = close - cursor
            else:
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def lookup_in(*maps: Mapping[str, str]) -> Callable[[str], str | None]:
    """kubelet's MappingFuncFor: the first map holding the name wins."""
    def lookup(name: str) -> str | None:
        for m in maps:
            if name in m:
                return m[name]
        return None
    return lookup


def expand_command_and_args(container: Container, envs: Iterable[api_pb2.KeyValue]
                            ) -> tuple[list[str], list[str]]:
    """command and args with `$(VAR)` expanded against the container's final environment."""
    env = {kv.key: kv.value for kv in envs}
    look = lookup_in(env)
    return ([expand(str(c), look) for c in container.get("command") or []],
            [expand(str(a), look) for a in container.get("args") or []])


def expand_subpath(expr: str, envs: Iterable[api_pb2.KeyValue]) -> str:
    """A volumeMount's subPathExpr; every variable must be set and non-empty."""
    env = {kv.key: kv.value for kv in envs}
    missing: set[str] = set()

    def look(name: str) -> str:
        value = env.get(name, "")
        if not value:
            missing.add(name)
        return value

    result = expand(expr, look)
    if missing:
        raise ContainerConfigError(f"missing value for {', '.join(sorted(missing))}")
    return result


# --- service links ----------------------------------------------------------------

def service_environment(services: Iterable[Mapping[str, Any]], namespace: str,
                        enable_service_links: bool = True) -> dict[str, str]:
    """`{SVC}_SERVICE_HOST`, `{SVC}_PORT_...` of kubelet's getServiceEnvVarMap.

    `services` are Service objects of the pod's namespace and of `default`; the
    `default/kubernetes` service is always included, the pod's namespace's services only
    with enableServiceLinks (true by default). Headless services are skipped."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        spec = chosen[name]["spec"]
        ip = spec["clusterIP"]
        ports = spec.get("ports") or []
        prefix = name.upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        if not ports:
            continue
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                pname = p["name"].upper().replace("-", "_")
                env[f"{prefix}_SERVICE_PORT_{pname}"] = str(p["port"])
        # Docker-link style variables.
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{_host_port(ip, first['port'])}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{_host_port(ip, p['port'])}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(p["port"])
            env[f"{base}_ADDR"] = ip
    return env


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --- downward API values ----------------------------------------------------------

def field_value(pod: Pod, field_path: str, *, pod_ips: Sequence[str] = (),
                host_ips: Sequence[str] = ()) -> str:
    """A fieldRef's value (env and downwardAPI volumes). Raises ContainerConfigError for
    a path kubelet does not support."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ips[0] if host_ips else "",
        "status.hostIPs": ",".join(host_ips),
        "status.podIP": pod_ips[0] if pod_ips else "",
        "status.podIPs": ",".join(pod_ips),
    }
    if field_path in simple:
        return simple[field_path]
    for key in ("labels", "annotations"):
        values = meta.get(key) or {}
        if field_path == f"metadata.{key}":
            return format_map(values)
        prefix = f"metadata.{key}['"
        if field_path.startswith(prefix) and field_path.endswith("']"):
            return str(values.get(field_path[len(prefix):-2], ""))
    raise ContainerConfigError(f"unsupported fieldPath: {field_path}")


def resource_value(pod: Pod, container: Container, ref: Mapping[str, Any],
                   allocatable: Mapping[str, Any]) -> str:
    """A resourceFieldRef's value: limits default to the node's allocatable (the pod's
    provisioned capacity), requests do not; rounded up to a whole divisor."""
    resource = ref.get("resource", "")
    name = ref.get("containerName")
    if name and name != container.get("name"):
        found = find_container(pod, name)
        if found is None:
            raise ContainerConfigError(f"container {name} not found")
        container = found
    divisor = quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        divisor = quantity("1")
    kind, _, res = resource.partition(".")
    if kind not in ("limits", "requests") or not res:
        raise ContainerConfigError(f"unsupported container resource : {resource}")
    values = dict((container.get("resources") or {}).get(kind) or {})
    if kind == "limits":
        defaults = {"ephemeral-storage": FARGATE_EPHEMERAL_STORAGE, **allocatable}
        for key in ("cpu", "memory", "ephemeral-storage"):
            if key not in values and key in defaults:
                values[key] = defaults[key]
    if res == "cpu":
        milli = math.ceil(quantity(values.get("cpu", "0")) * 1000)
        div_milli = math.ceil(divisor * 1000)
        return str(math.ceil(milli / div_milli))
    if res in ("memory", "ephemeral-storage") or res.startswith("hugepages-"):
        amount = math.ceil(quantity(values.get(res, "0")))
        return str(math.ceil(amount / math.ceil(divisor)))
    raise ContainerConfigError(f"unsupported container resource : {resource}")


# --- the environment ---------------------------------------------------------------

def _is_env_name(name: str) -> bool:
    """Relaxed environment variable names (GA in Kubernetes 1.34): printable ASCII but '='."""
    return bool(name) and all(32 <= ord(c) < 127 and c != "=" for c in name)


def secret_text(value: str) -> str:
    """A Secret data value: base64 in the API, text in the environment."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise ContainerConfigError("secret data is not valid base64") from None


async def resolve_env(pod: Pod, container: Container, sources: EnvSources, *,
                      service_env: Mapping[str, str] | None = None,
                      warn: Warn | None = None) -> list[api_pb2.KeyValue]:
    """The container's environment as CRI KeyValues, in kubelet's order.

    Raises ContainerConfigError (reason CreateContainerConfigError) with kubelet's message
    when a referenced ConfigMap/Secret or key is missing and not optional."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    service_env = dict(service_env or {})
    env: dict[str, str] = {}
    look = lookup_in(env, service_env)

    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref, kind = source["configMapRef"], "configMap"
            obj = await sources.get_configmap(namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'configmap "{ref.get("name", "")}" not found')
            data = dict(obj.get("data") or {})
        elif "secretRef" in source:
            ref, kind = source["secretRef"], "secret"
            obj = await sources.get_secret(namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'secret "{ref.get("name", "")}" not found')
            data = {k: secret_text(v) for k, v in (obj.get("data") or {}).items()}
        else:
            continue
        invalid = []
        for key, value in data.items():
            name = prefix + key
            if not _is_env_name(name):
                invalid.append(name)
                continue
            env[name] = value
        if invalid and warn:
            warn("InvalidEnvironmentVariableNames",
                 f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {kind} "
                 f"{namespace}/{ref.get('name', '')} were skipped since they are considered "
                 "invalid environment variable names.")

    for var in container.get("env") or []:
        name = var.get("name", "")
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), look)
            continue
        value = await _value_from(pod, container, var["valueFrom"], namespace, sources)
        if value is None:
            continue  # an optional source or key that is missing: the variable is unset
        env[name] = value

    result = [api_pb2.KeyValue(key=k, value=v) for k, v in env.items()]
    result += [api_pb2.KeyValue(key=k, value=v) for k, v in service_env.items() if k not in env]
    return result


async def _value_from(pod: Pod, container: Container, source: Mapping[str, Any],
                      namespace: str, sources: EnvSources) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""),
                           pod_ips=sources.pod_ips, host_ips=sources.host_ips)
    if "resourceFieldRef" in source:
        return resource_value(pod, container, source["resourceFieldRef"],
                              sources.node_allocatable)
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        obj = await sources.get_configmap(namespace, name)
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'configmap "{name}" not found')
        data = obj.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(
                f"couldn't find key {key} in ConfigMap {namespace}/{name}")
        return str(data[key])
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        obj = await sources.get_secret(namespace, name)
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'secret "{name}" not found')
        data = obj.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in Secret {namespace}/{name}")
        return secret_text(data[key])
    raise ContainerConfigError(f"unsupported valueFrom source: {sorted(source)}")
