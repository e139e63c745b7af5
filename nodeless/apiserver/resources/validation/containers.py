"""Containers and init containers: ports, env, mounts, probes, security context."""

from __future__ import annotations

import re
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import is_dns1123_label, is_qualified_name, regex_error
from nodeless.apiserver.resources.validation.context import Obj, _d, _l, _nonneg
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    duplicate,
    forbidden,
    invalid,
    not_found,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import (
    _HTTP_HEADER,
    _http_header_re,
    is_config_map_key,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
)
from nodeless.apiserver.resources.validation.meta import name_is_dns_subdomain
from nodeless.apiserver.resources.validation.quantities import validate_resource_requirements
from nodeless.apiserver.resources.validation.volumes import _local_descending_path

_PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(_l(ports)):
        port = _d(port)
        p = f"{path}[{i}]"
        name = port.get("name")
        if name:
            msgs = is_valid_port_name(str(name))
            if msgs:
                errs.extend(invalid(f"{p}.name", name, m) for m in msgs)
            elif name in names:
                errs.append(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errs.append(required(f"{p}.containerPort"))
        else:
            errs.extend(invalid(f"{p}.containerPort", container_port, m)
                        for m in is_valid_port_num(container_port))
        if port.get("hostPort"):
            errs.extend(invalid(f"{p}.hostPort", port["hostPort"], m)
                        for m in is_valid_port_num(port["hostPort"]))
        protocol = port.get("protocol")
        if not protocol:
            errs.append(required(f"{p}.protocol"))
        elif protocol not in _PORT_PROTOCOLS:
            errs.append(unsupported(f"{p}.protocol", protocol, _PORT_PROTOCOLS))
    return errs


_ENV_FIELD_PATHS = sorted({"metadata.name", "metadata.namespace", "metadata.uid",
                           "spec.nodeName", "spec.serviceAccountName", "status.hostIP",
                           "status.hostIPs", "status.podIP", "status.podIPs"})
_RESOURCE_FIELD_PATHS = sorted({"limits.cpu", "limits.memory", "limits.ephemeral-storage",
                                "requests.cpu", "requests.memory",
                                "requests.ephemeral-storage"})
_SUBSCRIPT_RE = re.compile(r"(metadata\.(?:annotations|labels))\['(.*)'\]\Z")


def _field_selector(ref: Obj, path: str) -> list[FieldError]:
    if not ref.get("apiVersion"):
        return [required(f"{path}.apiVersion")]
    field_path = ref.get("fieldPath")
    if not field_path:
        return [required(f"{path}.fieldPath")]
    m = _SUBSCRIPT_RE.match(str(field_path))
    if m:
        key = m.group(2).lower() if m.group(1) == "metadata.annotations" else m.group(2)
        return [invalid(path, key, msg) for msg in is_qualified_name(key)]
    if field_path not in _ENV_FIELD_PATHS:
        return [unsupported(f"{path}.fieldPath", field_path, _ENV_FIELD_PATHS)]
    return []


def _key_selector(ref: Obj, path: str) -> list[FieldError]:
    errs = [invalid(f"{path}.name", ref.get("name") or "", m)
            for m in name_is_dns_subdomain(str(ref.get("name") or ""), False)]
    key = ref.get("key")
    if not key:
        errs.append(required(f"{path}.key"))
    else:
        errs.extend(invalid(f"{path}.key", key, m) for m in is_config_map_key(str(key)))
    return errs


def _env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, var in enumerate(_l(env)):
        var = _d(var)
        p = f"{path}[{i}]"
        name = var.get("name")
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            errs.extend(invalid(f"{p}.name", name, m) for m in is_relaxed_env_var_name(str(name)))
        value_from = var.get("valueFrom")
        if value_from is None:
            continue
        value_from = _d(value_from)
        vp = f"{p}.valueFrom"
        sources = 0
        if isinstance(value_from.get("fieldRef"), dict):
            sources += 1
            errs.extend(_field_selector(value_from["fieldRef"], f"{vp}.fieldRef"))
        if isinstance(value_from.get("resourceFieldRef"), dict):
            sources += 1
            ref = value_from["resourceFieldRef"]
            resource = ref.get("resource")
            if not resource:
                errs.append(required(f"{vp}.resourceFieldRef.resource"))
            elif resource not in _RESOURCE_FIELD_PATHS and not str(resource).startswith(
                    ("requests.hugepages-", "limits.hugepages-")):
                errs.append(unsupported(f"{vp}.resourceFieldRef.resource", resource,
                                        _RESOURCE_FIELD_PATHS))
        if isinstance(value_from.get("configMapKeyRef"), dict):
            sources += 1
            errs.extend(_key_selector(value_from["configMapKeyRef"], f"{vp}.configMapKeyRef"))
        if isinstance(value_from.get("secretKeyRef"), dict):
            sources += 1
            errs.extend(_key_selector(value_from["secretKeyRef"], f"{vp}.secretKeyRef"))
        if sources == 0:
            errs.append(invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
        elif var.get("value"):
            errs.append(invalid(vp, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def _env_from(env_from: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, source in enumerate(_l(env_from)):
        source = _d(source)
        p = f"{path}[{i}]"
        if source.get("prefix"):
            errs.extend(invalid(f"{p}.prefix", source["prefix"], m)
                        for m in is_relaxed_env_var_name(str(source["prefix"])))
        count = 0
        for key in ("configMapRef", "secretRef"):
            ref = source.get(key)
            if not isinstance(ref, dict):
                continue
            count += 1
            if not ref.get("name"):
                errs.append(required(f"{p}.{key}.name"))
            else:
                errs.extend(invalid(f"{p}.{key}.name", ref["name"], m)
                            for m in name_is_dns_subdomain(str(ref["name"]), True))
        if count == 0:
            errs.append(invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _volume_mounts(mounts: Any, volumes: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, mount in enumerate(_l(mounts)):
        mount = _d(mount)
        p = f"{path}[{i}]"
        name = mount.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        if name not in volumes:
            errs.append(not_found(f"{p}.name", name))
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            errs.append(required(f"{p}.mountPath"))
        if mount_path in seen:
            errs.append(invalid(f"{p}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
        if mount.get("subPath"):
            errs.extend(_local_descending_path(str(mount["subPath"]), f"{path}.subPath"))
        if mount.get("subPathExpr"):
            if mount.get("subPath"):
                errs.append(invalid(f"{p}.subPathExpr", mount["subPathExpr"],
                                    "subPathExpr and subPath are mutually exclusive"))
            errs.extend(_local_descending_path(str(mount["subPathExpr"]), f"{path}.subPathExpr"))
    return errs


def _port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return [invalid(path, port, m) for m in is_valid_port_name(port)]
    return [invalid(path, port if isinstance(port, int) else 0, m)
            for m in is_valid_port_num(port)]


def _handler(handler: Obj, path: str, grace: Any, probe: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else (
        "exec", "httpGet", "tcpSocket", "sleep")
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action = _d(action)
        p = f"{path}.{kind}"
        if kind == "exec":
            if not action.get("command"):
                errs.append(required(f"{p}.command"))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(f"{p}.path"))
            errs.extend(_port_num_or_name(action.get("port"), f"{p}.port"))
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(unsupported(f"{p}.scheme", action.get("scheme") or "",
                                        ("HTTP", "HTTPS")))
            for header in _l(action.get("httpHeaders")):
                header_name = str(_d(header).get("name") or "")
                if not _http_header_re.match(header_name):
                    errs.append(invalid(f"{p}.httpHeaders", header_name, regex_error(
                        "a valid HTTP header must consist of alphanumeric characters or '-'",
                        _HTTP_HEADER, "X-Header-Name")))
        elif kind in ("tcpSocket", "grpc"):
            errs.extend(_port_num_or_name(action.get("port"), f"{p}.port"))
        elif kind == "sleep":
            seconds = action.get("seconds")
            if isinstance(grace, int) and isinstance(seconds, int) and not (
                    0 <= seconds <= grace):
                errs.append(invalid(p, seconds, "must be non-negative and less than "
                                                f"terminationGracePeriodSeconds ({grace})"))
    if not count:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _probe(probe: Any, path: str, grace: Any, kind: str) -> list[FieldError]:
    if probe is None:
        return []
    probe = _d(probe)
    errs = _handler(probe, path, grace, probe=True)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        errs.extend(_nonneg(f"{path}.{key}", probe.get(key)))
    tgps = probe.get("terminationGracePeriodSeconds")
    if isinstance(tgps, int) and tgps <= 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps,
                            "must be greater than 0"))
    if kind in ("liveness", "startup") and probe.get("successThreshold", 1) != 1:
        errs.append(invalid(f"{path}.successThreshold", probe.get("successThreshold"),
                            "must be 1"))
    if kind == "readiness" and tgps is not None:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", tgps,
                            "must not be set for readinessProbes"))
    return errs


def _lifecycle(lifecycle: Any, path: str, grace: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("postStart", "preStop"):
        handler = _d(lifecycle).get(key)
        if handler is not None:
            errs.extend(_handler(_d(handler), f"{path}.{key}", grace, probe=False))
    return errs


_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MAX_ID = 0xFFFFFFFF


def _id_range(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not 0 <= value <= _MAX_ID:
        return [invalid(path, value, f"must be between 0 and {_MAX_ID}, inclusive")]
    return []


def _seccomp(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    profile = _d(profile)
    kind = profile.get("type") or ""
    if kind == "":
        return [required(f"{path}.type", "type is required when seccompProfile is set")]
    if kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        return [unsupported(f"{path}.type", kind, ("Localhost", "RuntimeDefault", "Unconfined"))]
    if kind == "Localhost" and not profile.get("localhostProfile"):
        return [required(f"{path}.localhostProfile",
                         "must be set when seccomp type is Localhost")]
    if kind != "Localhost" and profile.get("localhostProfile") is not None:
        return [invalid(f"{path}.localhostProfile", profile["localhostProfile"],
                        "can only be set when seccomp type is Localhost")]
    return []


def _container_security_context(sc: Any, path: str, host_users: bool) -> list[FieldError]:
    if sc is None:
        return []
    sc = _d(sc)
    errs = _id_range(sc.get("runAsUser"), f"{path}.runAsUser")
    errs.extend(_id_range(sc.get("runAsGroup"), f"{path}.runAsGroup"))
    proc_mount = sc.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errs.append(unsupported(f"{path}.procMount", proc_mount, ("Default", "Unmasked")))
        elif host_users and proc_mount == "Unmasked":
            errs.append(invalid(f"{path}.procMount", proc_mount,
                                "`hostUsers` must be false to use `Unmasked`"))
    errs.extend(_seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged"):
            errs.append(invalid(path, GoValue("&core.SecurityContext{...}"),
                                "cannot set `allowPrivilegeEscalation` to false and "
                                "`privileged` to true"))
        if "CAP_SYS_ADMIN" in _l(_d(sc.get("capabilities")).get("add")):
            errs.append(invalid(path, GoValue("&core.SecurityContext{...}"),
                                "cannot set `allowPrivilegeEscalation` to false and "
                                "`capabilities.Add` CAP_SYS_ADMIN"))
    return errs


def _container_common(
    c: Obj, path: str, volumes: set[str], host_users: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    name = c.get("name")
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in is_dns1123_label(str(name)))
    if not c.get("image"):
        errs.append(required(f"{path}.image"))
    policy = c.get("terminationMessagePolicy") or ""
    if policy == "":
        errs.append(required(f"{path}.terminationMessagePolicy"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.append(unsupported(f"{path}.terminationMessagePolicy", policy,
                                ("File", "FallbackToLogsOnError")))
    errs.extend(_container_ports(c.get("ports"), f"{path}.ports"))
    errs.extend(_env(c.get("env"), f"{path}.env"))
    errs.extend(_env_from(c.get("envFrom"), f"{path}.envFrom"))
    errs.extend(_volume_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts"))
    pull = c.get("imagePullPolicy") or ""
    if pull == "":
        errs.append(required(f"{path}.imagePullPolicy"))
    elif pull not in _PULL_POLICIES:
        errs.append(unsupported(f"{path}.imagePullPolicy", pull, _PULL_POLICIES))
    errs.extend(validate_resource_requirements(c.get("resources"), f"{path}.resources"))
    errs.extend(_container_security_context(c.get("securityContext"),
                                            f"{path}.securityContext", host_users))
    return errs


def _host_port_conflicts(containers: list[Obj], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for ci, c in enumerate(containers):
        for pi, port in enumerate(_l(c.get("ports"))):
            port = _d(port)
            if not port.get("hostPort"):
                continue
            key = f"{port.get('protocol') or ''}/{port.get('hostIP') or ''}/{port['hostPort']}"
            if key in seen:
                errs.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return errs


def _containers(spec: Obj, path: str, volumes: set[str], host_users: bool) -> list[FieldError]:
    containers = [_d(c) for c in _l(spec.get("containers"))]
    if not containers:
        return [required(f"{path}.containers")]
    errs: list[FieldError] = []
    grace = spec.get("terminationGracePeriodSeconds")
    names: set[Any] = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        errs.extend(_container_common(c, p, volumes, host_users))
        if c.get("name") in names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        else:
            names.add(c.get("name"))
        if c.get("lifecycle") is not None:
            errs.extend(_lifecycle(c["lifecycle"], f"{p}.lifecycle", grace))
        errs.extend(_probe(c.get("livenessProbe"), f"{p}.livenessProbe", grace, "liveness"))
        errs.extend(_probe(c.get("readinessProbe"), f"{p}.readinessProbe", grace, "readiness"))
        errs.extend(_probe(c.get("startupProbe"), f"{p}.startupProbe", grace, "startup"))
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(f"{p}.restartPolicy", "may not be set for non-init containers"))
    errs.extend(_host_port_conflicts(containers, f"{path}.containers"))
    return errs


def _init_containers(
    spec: Obj, path: str, volumes: set[str], host_users: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    grace = spec.get("terminationGracePeriodSeconds")
    names = {_d(c).get("name") for c in _l(spec.get("containers"))}
    for i, c in enumerate(_l(spec.get("initContainers"))):
        c = _d(c)
        p = f"{path}.initContainers[{i}]"
        errs.extend(_container_common(c, p, volumes, host_users))
        restart_always = False
        if c.get("restartPolicy") is not None:
            if c["restartPolicy"] != "Always":
                errs.append(unsupported(f"{p}.restartPolicy", c["restartPolicy"], ("Always",)))
            restart_always = c["restartPolicy"] == "Always"
        if c.get("name") in names:
            errs.append(duplicate(f"{p}.name", c.get("name")))
        elif c.get("name"):
            names.add(c["name"])
        errs.extend(_host_port_conflicts([c], f"{path}.initContainers"))
        if restart_always:
            if c.get("lifecycle") is not None:
                errs.extend(_lifecycle(c["lifecycle"], f"{p}.lifecycle", grace))
            errs.extend(_probe(c.get("livenessProbe"), f"{p}.livenessProbe", grace, "liveness"))
            errs.extend(_probe(c.get("readinessProbe"), f"{p}.readinessProbe", grace,
                               "readiness"))
            errs.extend(_probe(c.get("startupProbe"), f"{p}.startupProbe", grace, "startup"))
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.append(forbidden(f"{p}.{key}", "may not be set for init containers "
                                                        "without restartPolicy=Always"))
    return errs
