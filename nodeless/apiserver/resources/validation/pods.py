"""Pod specs and pods: tolerations, pod security context, DNS, and the update rules."""

from __future__ import annotations

import re
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import (
    byte_len,
    go_string_slice,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    max_len_chars,
    regex_error,
)
from nodeless.apiserver.resources.validation.containers import (
    _containers,
    _id_range,
    _init_containers,
    _seccomp,
)
from nodeless.apiserver.resources.validation.context import Obj, V, _d, _l
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    duplicate,
    forbidden,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import _ip_errors
from nodeless.apiserver.resources.validation.meta import name_is_dns_subdomain, validate_labels
from nodeless.apiserver.resources.validation.quantities import _is_hugepages, _quantity
from nodeless.apiserver.resources.validation.volumes import _volumes

_TOLERATION_OPS = ("Equal", "Exists")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(_l(tolerations)):
        t = _d(t)
        p = f"{path}[{i}]"
        key = t.get("key") or ""
        op = t.get("operator") or ""
        if key:
            errs.extend(invalid(f"{p}.key", key, m) for m in is_qualified_name(str(key)))
        if not key and op != "Exists":
            errs.append(invalid(f"{p}.operator", op, "operator must be Exists when `key` is "
                                                     'empty, which means "match all values '
                                                     'and all keys"'))
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            errs.append(invalid(f"{p}.effect", t.get("effect") or "",
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        value = t.get("value") or ""
        if op in ("Equal", ""):
            msgs = is_label_value(str(value))
            if msgs:
                errs.append(invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(f"{p}.operator", value,
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(unsupported(f"{p}.operator", op, _TOLERATION_OPS))
        effect = t.get("effect") or ""
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(unsupported(f"{p}.effect", effect, _TAINT_EFFECTS))
    return errs


def _pod_security_context(sc: Any, path: str) -> list[FieldError]:
    if not isinstance(sc, dict):
        return []
    errs = _id_range(sc.get("fsGroup"), f"{path}.fsGroup")
    errs.extend(_id_range(sc.get("runAsUser"), f"{path}.runAsUser"))
    errs.extend(_id_range(sc.get("runAsGroup"), f"{path}.runAsGroup"))
    for i, gid in enumerate(_l(sc.get("supplementalGroups"))):
        errs.extend(_id_range(gid, f"{path}.supplementalGroups[{i}]"))
    sysctl_names: set[str] = set()
    for i, sysctl in enumerate(_l(sc.get("sysctls"))):
        name = str(_d(sysctl).get("name") or "")
        p = f"{path}.sysctls[{i}].name"
        if not name:
            errs.append(required(p))
        elif len(name) > 253 or not _SYSCTL_RE.match(name):
            errs.append(invalid(p, name, "must have at most 253 characters and match regex "
                                         + _SYSCTL_FMT))
        elif name in sysctl_names:
            errs.append(duplicate(p, name))
        sysctl_names.add(name)
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errs.append(unsupported(f"{path}.fsGroupChangePolicy", policy,
                                ("Always", "OnRootMismatch")))
    errs.extend(_seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile"))
    return errs


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$"
_SYSCTL_RE = re.compile(_SYSCTL_FMT)
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_MAX_INT32 = 2**31 - 1


def _dns_config(spec: Obj, path: str) -> list[FieldError]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not config.get("nameservers"):
            return [required(f"{path}.nameservers", "must provide at least one DNS nameserver "
                                                    "when `dnsPolicy` is None")]
    if not isinstance(config, dict):
        return []
    errs: list[FieldError] = []
    nameservers = _l(config.get("nameservers"))
    if len(nameservers) > 3:
        errs.append(invalid(f"{path}.nameservers", GoValue(go_string_slice(nameservers)),
                            "must not have more than 3 nameservers"))
    for i, ns in enumerate(nameservers):
        errs.extend(_ip_errors(f"{path}.nameservers[{i}]", ns))
    searches = [str(s) for s in _l(config.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid(f"{path}.searches", GoValue(go_string_slice(searches)),
                            "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid(f"{path}.searches", GoValue(go_string_slice(searches)),
                            "must not have more than 2048 characters (including spaces) in the "
                            "search list"))
    for i, search in enumerate(searches):
        if search == ".":
            continue
        search = search.removesuffix(".")
        if byte_len(search) > 253 or not re.match(
                r"_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*\Z",
                search):
            fmt = r"_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*"
            msgs = [max_len_chars(253)] if byte_len(search) > 253 else []
            msgs.append(regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '_', '-' or '.', and must start and end with an alphanumeric "
                "character", fmt, "example.com"))
            errs.extend(invalid(f"{path}.searches[{i}]", search, m) for m in msgs)
    for i, option in enumerate(_l(config.get("options"))):
        if not _d(option).get("name"):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


def validate_pod_spec(spec: Obj, path: str, *, pod: bool) -> list[FieldError]:
    """ValidatePodSpec, in kube's order; pod=True when the spec is a Pod's own."""
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(f"{path}.terminationGracePeriodSeconds"))
    sc = _d(spec.get("securityContext"))
    host_users = sc.get("hostUsers") is not False
    volumes, vol_errs = _volumes(spec, f"{path}.volumes")
    errs.extend(vol_errs)
    errs.extend(_containers(spec, path, volumes, host_users))
    errs.extend(_init_containers(spec, path, volumes, host_users))
    if isinstance(spec.get("resources"), dict):
        errs.extend(_pod_resources(spec, f"{path}.resources"))
    if spec.get("hostNetwork"):
        for i, c in enumerate(_l(spec.get("containers"))):
            for j, port in enumerate(_l(_d(c).get("ports"))):
                port = _d(port)
                hp, cp = port.get("hostPort") or 0, port.get("containerPort") or 0
                if (pod or hp != 0) and hp != cp:
                    errs.append(invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                        "must match `containerPort` when `hostNetwork` is true"))
    restart = spec.get("restartPolicy") or ""
    if restart == "":
        errs.append(required(f"{path}.restartPolicy"))
    elif restart not in _RESTART_POLICIES:
        errs.append(unsupported(f"{path}.restartPolicy", restart, _RESTART_POLICIES))
    dns = spec.get("dnsPolicy") or ""
    if dns == "":
        errs.append(required(f"{path}.dnsPolicy"))
    elif dns not in _DNS_POLICIES:
        errs.append(unsupported(f"{path}.dnsPolicy", dns, _DNS_POLICIES))
    errs.extend(validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    errs.extend(_pod_security_context(spec.get("securityContext"), f"{path}.securityContext"))
    for i, secret in enumerate(_l(spec.get("imagePullSecrets"))):
        if set(_d(secret)) - {"name"}:
            errs.append(invalid(f"{path}.imagePullSecrets[{i}]",
                                GoValue("core.LocalObjectReference{...}"), "only name may be set"))
    errs.extend(_dns_config(spec, f"{path}.dnsConfig"))
    for i, gate in enumerate(_l(spec.get("readinessGates"))):
        condition = str(_d(gate).get("conditionType") or "")
        errs.extend(invalid(f"{path}.readinessGates[{i}].conditionType", condition, m)
                    for m in is_qualified_name(condition))
    seen_gates: set[str] = set()
    for i, gate in enumerate(_l(spec.get("schedulingGates"))):
        gate_name = str(_d(gate).get("name") or "")
        errs.extend(invalid(f"{path}.schedulingGates[{i}]", gate_name, m)
                    for m in is_qualified_name(gate_name))
        if gate_name in seen_gates:
            errs.append(duplicate(f"{path}.schedulingGates[{i}]", gate_name))
        seen_gates.add(gate_name)
    if spec.get("serviceAccountName"):
        errs.extend(invalid(f"{path}.serviceAccountName", spec["serviceAccountName"], m)
                    for m in name_is_dns_subdomain(str(spec["serviceAccountName"]), False))
    if spec.get("nodeName"):
        errs.extend(invalid(f"{path}.nodeName", spec["nodeName"], m)
                    for m in name_is_dns_subdomain(str(spec["nodeName"]), False))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= _MAX_INT32:
        errs.append(invalid(f"{path}.activeDeadlineSeconds", deadline,
                            f"must be between 1 and {_MAX_INT32}, inclusive"))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs.extend(invalid(f"{path}.{key}", spec[key], m)
                        for m in is_dns1123_label(str(spec[key])))
    if spec.get("tolerations"):
        errs.extend(validate_tolerations(spec["tolerations"], f"{path}.tolerations"))
    for i, alias in enumerate(_l(spec.get("hostAliases"))):
        alias = _d(alias)
        errs.extend(_ip_errors(f"{path}.hostAliases[{i}].ip", alias.get("ip") or ""))
        for j, hostname in enumerate(_l(alias.get("hostnames"))):
            errs.extend(invalid(f"{path}.hostAliases[{i}].hostnames[{j}]", hostname, m)
                        for m in is_dns1123_subdomain(str(hostname)))
    if spec.get("priorityClassName"):
        errs.extend(invalid(f"{path}.priorityClassName", spec["priorityClassName"], m)
                    for m in name_is_dns_subdomain(str(spec["priorityClassName"]), False))
    if spec.get("runtimeClassName") is not None:
        errs.extend(invalid(f"{path}.runtimeClassName", spec["runtimeClassName"], m)
                    for m in name_is_dns_subdomain(str(spec["runtimeClassName"]), False))
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        if preemption == "":
            errs.append(required(f"{path}.preemptionPolicy"))
        elif preemption not in ("PreemptLowerPriority", "Never"):
            errs.append(unsupported(f"{path}.preemptionPolicy", preemption,
                                    ("PreemptLowerPriority", "Never")))
    os_name = _d(spec.get("os")).get("name")
    if spec.get("os") is not None and os_name not in ("linux", "windows"):
        errs.append(unsupported(f"{path}.os.name", os_name or "", ("linux", "windows")))
    return errs


def _pod_resources(spec: Obj, path: str) -> list[FieldError]:
    resources = _d(spec.get("resources"))
    errs: list[FieldError] = []
    if resources.get("claims") is not None:
        errs.append(forbidden(f"{path}.claims", "claims cannot be set for Resources at pod-level"))
    supported = ("cpu", "hugepages-", "memory")
    for kind in ("limits", "requests"):
        for name in _d(resources.get(kind)):
            if name not in ("cpu", "memory") and not _is_hugepages(str(name)):
                errs.append(unsupported(f"{path}.{kind}[{name}]", name, supported))
    for name, value in _d(resources.get("requests")).items():
        lim = _d(resources.get("limits")).get(name)
        q, limq = _quantity(value), _quantity(lim) if lim is not None else None
        if q is not None and limq is not None and q > limq:
            errs.append(invalid(f"{path}.requests", str(value),
                                f"must be less than or equal to {name} limit of {lim}"))
    return errs


_UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)")


def _spec_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """A short description of what differs, in place of the cmp.Diff kube appends."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            if old.get(key) != new.get(key):
                out.extend(_spec_diff(old.get(key), new.get(key), f"{prefix}.{key}"))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                out.extend(_spec_diff(a, b, f"{prefix}[{i}]"))
        return out
    return [f"- {prefix.lstrip('.')}: {old!r}", f"+ {prefix.lstrip('.')}: {new!r}"]


def _pod_update(new: Obj, old: Obj) -> list[FieldError]:
    spec, old_spec = _d(new.get("spec")), _d(old.get("spec"))
    errs: list[FieldError] = []
    for key in ("containers", "initContainers"):
        ctrs, old_ctrs = _l(spec.get(key)), _l(old_spec.get(key))
        if len(ctrs) != len(old_ctrs):
            return errs + [forbidden(f"spec.{key}",
                                     "pod updates may not add or remove containers")]
        for i, c in enumerate(ctrs):
            image = _d(c).get("image") or ""
            if not image:
                errs.append(required(f"spec.{key}[{i}].image"))
            if image != image.strip():
                errs.append(invalid(f"spec.{key}[{i}].image", image,
                                    "must not have leading or trailing whitespace"))
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get(
        "activeDeadlineSeconds")
    if deadline is not None:
        if not 0 <= deadline <= _MAX_INT32:
            return errs + [invalid("spec.activeDeadlineSeconds", deadline,
                                   f"must be between 0 and {_MAX_INT32}, inclusive")]
        if old_deadline is not None and old_deadline < deadline:
            return errs + [invalid("spec.activeDeadlineSeconds", deadline,
                                   "must be less than or equal to previous value")]
    elif old_deadline is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None,
                            "must not update from a positive integer to nil value"))
    new_tolerations = _l(spec.get("tolerations"))
    for old_t in _l(old_spec.get("tolerations")):
        old_t = {k: v for k, v in _d(old_t).items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in _d(t).items() if k != "tolerationSeconds"} == old_t
                   for t in new_tolerations):
            errs.append(forbidden("spec.tolerations", "existing toleration can not be modified "
                                                      "except its tolerationSeconds"))
            break
    else:
        errs.extend(validate_tolerations(new_tolerations, "spec.tolerations"))
    old_gates = {_d(g).get("name") for g in _l(old_spec.get("schedulingGates"))}
    for i, gate in enumerate(_l(spec.get("schedulingGates"))):
        if _d(gate).get("name") not in old_gates:
            errs.append(forbidden(f"spec.schedulingGates[{i}].name",
                                  "only deletion is allowed, but found new scheduling gate "
                                  f"'{_d(gate).get('name')}'"))
    if spec == old_spec:
        return errs
    munged = dict(spec)
    for key in ("containers", "initContainers"):
        if key in munged:
            munged[key] = [dict(_d(c), image=_d(o).get("image"))
                           if "image" in _d(o) else {k: v for k, v in _d(c).items()
                                                      if k != "image"}
                           for c, o in zip(_l(spec[key]), _l(old_spec.get(key)), strict=True)]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get(
            "terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_spec.get("schedulingGates") and munged.get("nodeSelector") != old_spec.get(
            "nodeSelector"):
        old_selector = _d(old_spec.get("nodeSelector"))
        new_selector = _d(munged.get("nodeSelector"))
        if all(new_selector.get(k) == v for k, v in old_selector.items()):
            munged["nodeSelector"] = old_spec.get("nodeSelector")
    if munged != old_spec:
        diff = "\n".join(["  core.PodSpec{", *_spec_diff(old_spec, munged), "  }"])
        errs.append(forbidden("spec", "pod updates may not change fields other than "
                                      f"{_UPDATABLE_POD_FIELDS}\n{diff}"))
    return errs


def _pod(v: V) -> None:
    obj, old = v.obj, v.old
    spec = _d(obj.get("spec"))
    v.extend(validate_pod_spec(spec, "spec", pod=True))
    for key in ("containers", "initContainers"):
        for i, c in enumerate(_l(spec.get(key))):
            image = _d(c).get("image")
            if isinstance(image, str) and image and image != image.strip():
                v.add(invalid(f"spec.{key}[{i}].image", image,
                              "must not have leading or trailing whitespace"))
    if old is None:
        if spec.get("ephemeralContainers"):
            v.add(forbidden("spec.ephemeralContainers", "cannot be set on create"))
        if spec.get("nodeName") and spec.get("schedulingGates"):
            v.add(forbidden("spec.nodeName",
                            "cannot be set until all schedulingGates have been cleared"))
    else:
        v.extend(_pod_update(obj, old))
