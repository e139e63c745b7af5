"""Validation of built-in objects with kube-apiserver v1.37's rules and messages.

Clients, scripts and tests match on kube's error text (`spec.containers[0].image:
Required value`), so every message here is the one kube-apiserver produces for the same
object: the same field path, the same `field.ErrorType`, the same detail, and the bad
value printed the way Go's `field.Error.ErrorBody` prints it (`%q` for strings, `%#v`
for maps, slices and structs, e.g. `map[string]string{"app":"web"}`).

`validate(rt, obj, old)` runs after defaulting, like kube's strategies' Validate and
ValidateUpdate: object metadata first, then the kind's own rules from a table keyed by
(group, kind), then (on update) what may not change. Kinds without a table entry get
metadata validation only. Errors keep kube's order; duplicates are dropped as
`ErrorList.ToAggregate` drops them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.defaults import QuantityError, parse_quantity
from nodeless.apiserver.resources.names import (
    byte_len,
    go_quote,
    go_string_slice,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    max_len_chars,
    regex_error,
)
from nodeless.apiserver.resources.registry import ResourceType

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------
# field errors, printed as Go prints them


class GoValue:
    """A bad value already formatted the way Go's `%#v` prints it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


OMIT = GoValue("")
"""The value of errors that print no value (field.OmitValueType)."""

_NO_VALUE_KINDS = frozenset({"Required value", "Forbidden", "Too long", "Internal error"})


class KubeFieldError(FieldError):
    """A FieldError whose text is exactly `field.Error.Error()` of apimachinery."""

    def body(self) -> str:
        if self.kind in _NO_VALUE_KINDS or self.value is OMIT:
            text = self.kind
        else:
            text = f"{self.kind}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, Any]:
        reasons = {
            "Required value": "FieldValueRequired", "Invalid value": "FieldValueInvalid",
            "Unsupported value": "FieldValueNotSupported", "Forbidden": "FieldValueForbidden",
            "Duplicate value": "FieldValueDuplicate", "Too long": "FieldValueTooLong",
            "Too many": "FieldValueTooMany", "Not found": "FieldValueNotFound",
            "Internal error": "InternalError",
        }
        return {"reason": reasons.get(self.kind, "FieldValueInvalid"), "message": self.body(),
                "field": self.field}


def go_value(value: Any) -> str:
    """How ErrorBody prints a bad value: simple types with %v/%q, the rest with %#v."""
    if isinstance(value, GoValue):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return go_string_map(value)
    if isinstance(value, list):
        return go_string_slice(value)
    return repr(value)


def go_string_map(m: Any) -> str:
    """%#v of a map[string]string; nil prints as `map[string]string(nil)`."""
    if m is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(m.items()))
    return "map[string]string{" + items + "}"


def go_label_selector(sel: Any) -> str:
    """%#v of a metav1.LabelSelector, as kube prints an invalid or changed selector."""
    if not isinstance(sel, dict):
        return "null"
    exprs = sel.get("matchExpressions")
    if exprs is None:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key') or ''))}, "
                f"Operator:{go_quote(str(e.get('operator') or ''))}, "
                f"Values:{go_string_slice(e.get('values'))}}}")
        exprs_text = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return (f"v1.LabelSelector{{MatchLabels:{go_string_map(sel.get('matchLabels'))}, "
            f"MatchExpressions:{exprs_text}}}")


def go_int_or_string(value: Any) -> str:
    """%#v of an intstr.IntOrString."""
    if isinstance(value, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}'
    return f'intstr.IntOrString{{Type:0, IntVal:{int(value or 0)}, StrVal:""}}'


def required(field: str, detail: str = "") -> FieldError:
    return KubeFieldError(field, "Required value", detail, "")


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return KubeFieldError(field, "Invalid value", detail, value)


def unsupported(field: str, value: Any, allowed: Iterable[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(a) for a in allowed) if allowed else ""
    return KubeFieldError(field, "Unsupported value", detail, value)


def forbidden(field: str, detail: str = "") -> FieldError:
    return KubeFieldError(field, "Forbidden", detail, "")


def duplicate(field: str, value: Any) -> FieldError:
    return KubeFieldError(field, "Duplicate value", "", value)


def not_found(field: str, value: Any, detail: str = "") -> FieldError:
    return KubeFieldError(field, "Not found", detail, value)


def too_long(field: str, max_length: int) -> FieldError:
    unit = "byte" if max_length == 1 else "bytes"
    return KubeFieldError(field, "Too long", f"may not be more than {max_length} {unit}", "")


def too_many(field: str, actual: int, maximum: int) -> FieldError:
    return KubeFieldError(field, "Too many", f"must have at most {maximum} items", actual)


# --------------------------------------------------------------------------------------
# the rest of apimachinery's string formats (names and labels are in `names`)

_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_PERCENT = "[0-9]+%"
_HTTP_HEADER = "[-A-Za-z0-9]+"

_config_key_re = re.compile(_CONFIG_KEY + r"\Z")
_percent_re = re.compile(_PERCENT + r"\Z")
_http_header_re = re.compile(_HTTP_HEADER + r"\Z")
_port_name_charset_re = re.compile(r"[-a-z0-9]+\Z")
_port_name_letter_re = re.compile(r"[a-z]")


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if byte_len(value) > 253:
        errs.append(max_len_chars(253))
    if not _config_key_re.match(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, "
                                "'-', '_' or '.'", _CONFIG_KEY, "key.name", "KEY_NAME",
                                "key-name"))
    return errs + _chdir_prefix(value)


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append(max_len_chars(15))
    if not _port_name_charset_re.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_letter_re.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def is_relaxed_env_var_name(value: str) -> list[str]:
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    for ch in value:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            errs.append("a valid environment variable name must consist only of printable "
                        "ASCII characters other than '='")
            break
    return errs


def is_valid_ip(value: Any) -> bool:
    """net.ParseIP, sloppily: IPv4 components with leading zeros are accepted."""
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


_IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _ip_errors(path: str, value: Any) -> list[FieldError]:
    return [] if is_valid_ip(value) else [invalid(path, value, _IP_MESSAGE)]


def _cidr_errors(path: str, value: Any) -> list[FieldError]:
    try:
        ipaddress.ip_network(str(value), strict=False)
        return []
    except ValueError:
        return [invalid(path, value, _CIDR_MESSAGE)]


# name validation functions: (name, prefix) -> messages


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


NameFn = Callable[[str, bool], list[str]]

NAME_RULES: dict[tuple[str, str], NameFn] = {
    ("", "Namespace"): name_is_dns_label,
    ("", "Service"): name_is_dns1035_label,
    ("apps", "StatefulSet"): name_is_dns_label,
    ("rbac.authorization.k8s.io", "Role"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "RoleBinding"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "ClusterRole"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): is_path_segment_name,
}
"""Name rules that are not a DNS-1123 subdomain (the rule of every other kind)."""

# Kinds validated with apimachinery's ObjectMeta rules only (no core finalizer-name rule).
_GENERIC_META = {("apiextensions.k8s.io", "CustomResourceDefinition"),
                 ("coordination.k8s.io", "Lease")}

# --------------------------------------------------------------------------------------
# the validation context


class V:
    """Collects the errors of one object; kind validators append to it."""

    __slots__ = ("errs", "rt", "obj", "old")

    def __init__(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        self.errs: list[FieldError] = []
        self.rt = rt
        self.obj = obj
        self.old = old

    def add(self, *errs: FieldError) -> None:
        self.errs.extend(errs)

    def extend(self, errs: Iterable[FieldError]) -> None:
        self.errs.extend(errs)


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nonneg(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


# --------------------------------------------------------------------------------------
# object metadata

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in _d(labels).items():
        errs.extend(invalid(path, key, m) for m in is_qualified_name(str(key)))
        if not isinstance(value, str):
            continue
        errs.extend(invalid(path, value, m) for m in is_label_value(value))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for key, value in _d(annotations).items():
        errs.extend(invalid(path, key, m) for m in is_qualified_name(str(key).lower()))
        total += byte_len(str(key)) + byte_len(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    for ref in _l(refs):
        ref = _d(ref)
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        group, _, version = api_version.rpartition("/")
        if not version:
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(f"{path}.name", str(ref.get("name") or ""),
                                "name must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(f"{path}.uid", str(ref.get("uid") or ""),
                                "uid must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            errs.append(invalid(path, GoValue("v1.OwnerReference{...}"),
                                "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller"):
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                errs.append(invalid(path, GoValue("[]v1.OwnerReference{...}"),
                                    "Only one reference can have Controller set to true. Found "
                                    f'"true" in references for {first_controller} and '
                                    f"{current}"))
            else:
                first_controller = current
    return errs


def _finalizers(finalizers: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = [f for f in _l(finalizers) if isinstance(f, str)]
    for name in names:
        errs.extend(invalid(path, name, m) for m in is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid(path, GoValue(go_string_slice(names)),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _kube_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    return [invalid(f"{path}[{i}]", f,
                    "name is neither a standard finalizer name nor is it fully qualified")
            for i, f in enumerate(_l(finalizers))
            if isinstance(f, str) and "/" not in f and f not in _STANDARD_FINALIZERS]


def validate_object_meta(
    meta: Obj, *, namespaced: bool, name_fn: NameFn, core: bool = True
) -> list[FieldError]:
    """ValidateObjectMeta on create (core=True adds the core finalizer-name rule)."""
    errs: list[FieldError] = []
    generate_name = meta.get("generateName")
    if generate_name and isinstance(generate_name, str):
        errs.extend(invalid("metadata.generateName", generate_name, m)
                    for m in name_fn(generate_name, True))
    name = meta.get("name")
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(invalid("metadata.name", name, m) for m in name_fn(str(name), False))
    namespace = meta.get("namespace")
    if namespaced:
        if not namespace:
            errs.append(required("metadata.namespace"))
        else:
            errs.extend(invalid("metadata.namespace", namespace, m)
                        for m in name_is_dns_label(str(namespace), False))
    elif namespace:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    errs.extend(_nonneg("metadata.generation", meta.get("generation")))
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    errs.extend(_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    errs.extend(_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    if core:
        errs.extend(_kube_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    return errs


def validate_object_meta_update(new: Obj, old: Obj, *, core: bool = True) -> list[FieldError]:
    """ValidateObjectMetaUpdate: identity fields may not change."""
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(_l(new.get("finalizers"))) - set(_l(old.get("finalizers"))))
        if added:
            errs.append(forbidden(
                "metadata.finalizers", "no new finalizers can be added if the object is being "
                f"deleted, found new finalizers {go_string_slice(added)}"))
    if (new.get("generation") or 0) < (old.get("generation") or 0):
        errs.append(invalid("metadata.generation", new.get("generation") or 0,
                            "must not be decremented"))
    for key in ("name", "namespace", "uid"):
        new_value = new.get(key) or ""
        if key == "uid" and not new_value:
            continue
        if new_value != (old.get(key) or ""):
            errs.append(invalid(f"metadata.{key}", new_value, "field is immutable"))
    errs.extend(validate_labels(new.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(new.get("annotations"), "metadata.annotations"))
    errs.extend(_owner_references(new.get("ownerReferences"), "metadata.ownerReferences"))
    if core:
        errs.extend(_kube_finalizers(new.get("finalizers"), "metadata.finalizers"))
    return errs


# --------------------------------------------------------------------------------------
# label selectors

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabelSelector: field errors for an object's selector (a
    Deployment's, a webhook's namespaceSelector, ...); None is no selector, no error."""
    errs: list[FieldError] = []
    if not isinstance(sel, dict):
        return errs
    errs.extend(validate_labels(sel.get("matchLabels"), f"{path}.matchLabels"))
    for i, expr in enumerate(_l(sel.get("matchExpressions"))):
        expr = _d(expr)
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator")
        values = _l(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{p}.values",
                                     "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(
                    f"{p}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{p}.operator", op or "", "not a valid selector operator"))
        errs.extend(invalid(f"{p}.key", expr.get("key") or "", m)
                    for m in is_qualified_name(str(expr.get("key") or "")))
        for j, value in enumerate(values):
            errs.extend(invalid(f"{p}.values[{j}]", value, m)
                        for m in is_label_value(str(value)))
    return errs


def selector_parses(sel: Any) -> bool:
    """Whether LabelSelectorAsSelector accepts the selector."""
    if sel is None:
        return True
    if not isinstance(sel, dict):
        return False
    for key, value in _d(sel.get("matchLabels")).items():
        if is_qualified_name(str(key)) or is_label_value(str(value)):
            return False
    for expr in _l(sel.get("matchExpressions")):
        expr = _d(expr)
        op = expr.get("operator")
        values = _l(expr.get("values"))
        if op not in _SELECTOR_OPS or is_qualified_name(str(expr.get("key") or "")):
            return False
        if (op in ("In", "NotIn")) != bool(values):
            return False
        if any(is_label_value(str(v)) for v in values):
            return False
    return True


def selector_matches(sel: Any, labels: Any) -> bool:
    """LabelSelectorAsSelector(sel).Matches(labels); nil matches nothing, {} everything."""
    if sel is None:
        return False
    labels = _d(labels)
    for label, value in _d(sel.get("matchLabels")).items():
        if labels.get(label) != value:
            return False
    for expr in _l(sel.get("matchExpressions")):
        expr = _d(expr)
        key, op, values = expr.get("key"), expr.get("operator"), _l(expr.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --------------------------------------------------------------------------------------
# quantities

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "storage", "pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
    "configmaps", "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
    "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage"}


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_native(name: str) -> bool:
    return "/" not in name or name.startswith("kubernetes.io/") or ".kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not _is_hugepages(name)


def _quantity(value: Any) -> Fraction | None:
    try:
        return parse_quantity(value)[0]
    except QuantityError:
        return None


def _container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and (
            name.startswith("requests.") or is_qualified_name("requests." + name)):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_resource_requirements(resources: Any, path: str) -> list[FieldError]:
    """validateResourceRequirements for containers: names, quantities, requests <= limits."""
    errs: list[FieldError] = []
    resources = _d(resources)
    limits = _d(resources.get("limits"))
    requests = _d(resources.get("requests"))
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    compute = {"cpu", "memory"}
    has_compute = has_huge = False
    for name, value in limits.items():
        p = f"{lim_path}[{name}]"
        errs.extend(_container_resource_name(str(name), p))
        q = _quantity(value)
        if q is not None and q < 0:
            errs.append(invalid(p, str(value), "must be greater than or equal to 0"))
        has_compute |= name in compute
        has_huge |= _is_hugepages(str(name))
    for name, value in requests.items():
        p = f"{req_path}[{name}]"
        errs.extend(_container_resource_name(str(name), p))
        q = _quantity(value)
        if q is not None and q < 0:
            errs.append(invalid(p, str(value), "must be greater than or equal to 0"))
        if name in limits:
            lim = _quantity(limits[name])
            if q is not None and lim is not None:
                if q != lim and not _overcommit_allowed(str(name)):
                    errs.append(invalid(req_path, str(value),
                                        f"must be equal to {name} limit of {limits[name]}"))
                elif q > lim:
                    errs.append(invalid(req_path, str(value), f"must be less than or equal to "
                                                              f"{name} limit of {limits[name]}"))
        elif not _overcommit_allowed(str(name)):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        has_compute |= name in compute
        has_huge |= _is_hugepages(str(name))
    if has_huge and not has_compute:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs


# --------------------------------------------------------------------------------------
# pods

_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                    "CharDevice", "BlockDevice")
_VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)
_SOURCE_PATHS = {"gcePersistentDisk": "persistentDisk", "downwardAPI": "downwarAPI"}


def _path_no_backsteps(value: str, path: str) -> list[FieldError]:
    parts = value.replace("\\", "/").split("/")
    if ".." in parts:
        return [invalid(path, value, "must not contain '..'")]
    return []


def _local_descending_path(value: str, path: str) -> list[FieldError]:
    if value.startswith("/"):
        return [invalid(path, value, "must be a relative path")]
    return _path_no_backsteps(value, path)


def _local_non_reserved_path(value: str, path: str) -> list[FieldError]:
    errs = _local_descending_path(value, path)
    if value.startswith("..") and not value.startswith("../"):
        errs.append(invalid(path, value, "must not start with '..'"))
    return errs


def _mode(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not 0 <= value <= 0o777:
        return [invalid(path, value, _FILE_MODE_MSG)]
    return []


def _key_to_paths(items: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(_l(items)):
        item = _d(item)
        p = f"{path}.items[{i}]"
        if not item.get("key"):
            errs.append(required(f"{p}.key"))
        if not item.get("path"):
            errs.append(required(f"{p}.path"))
        else:
            errs.extend(_local_non_reserved_path(str(item["path"]), f"{p}.path"))
        errs.extend(_mode(item.get("mode"), f"{p}.mode"))
    return errs


def _volume_source(vol: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for key in _VOLUME_SOURCES:
        source = vol.get(key)
        if source is None:
            continue
        p = f"{path}.{_SOURCE_PATHS.get(key, key)}"
        if count:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 volume type"))
            continue
        count += 1
        source = _d(source)
        if key == "emptyDir":
            q = _quantity(source.get("sizeLimit")) if source.get("sizeLimit") else None
            if q is not None and q < 0:
                errs.append(forbidden(f"{p}.sizeLimit",
                                      "SizeLimit field must be a valid resource quantity"))
        elif key == "hostPath":
            host_path = str(source.get("path") or "")
            if not host_path:
                errs.append(required(f"{p}.path"))
            else:
                errs.extend(_path_no_backsteps(host_path, f"{p}.path"))
                if source.get("type") not in _HOST_PATH_TYPES and source.get("type") is not None:
                    errs.append(unsupported(f"{p}.type", source.get("type"),
                                            _HOST_PATH_TYPES))
        elif key == "secret":
            if not source.get("secretName"):
                errs.append(required(f"{p}.secretName"))
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
            errs.extend(_key_to_paths(source.get("items"), p))
        elif key == "configMap":
            if not source.get("name"):
                errs.append(required(f"{p}.name"))
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
            errs.extend(_key_to_paths(source.get("items"), p))
        elif key == "persistentVolumeClaim":
            if not source.get("claimName"):
                errs.append(required(f"{p}.claimName"))
        elif key == "nfs":
            if not source.get("server"):
                errs.append(required(f"{p}.server"))
            if not source.get("path"):
                errs.append(required(f"{p}.path"))
            elif not str(source["path"]).startswith("/"):
                errs.append(invalid(f"{p}.path", source["path"], "must be an absolute path"))
        elif key == "csi":
            if not source.get("driver"):
                errs.append(required(f"{p}.driver"))
        elif key in ("downwardAPI", "projected"):
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
        elif key == "ephemeral":
            if not isinstance(source.get("volumeClaimTemplate"), dict):
                errs.append(required(f"{p}.volumeClaimTemplate"))
        elif key == "image" and not source.get("reference"):
            errs.append(required(f"{p}.reference"))
    if not count:
        errs.append(required(path, "must specify a volume type"))
    return errs


def _volumes(spec: Obj, path: str) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(_l(spec.get("volumes"))):
        vol = _d(vol)
        p = f"{path}[{i}]"
        name = vol.get("name") or ""
        el = _volume_source(vol, p)
        if not name:
            el.append(required(f"{p}.name"))
        else:
            el.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(str(name)))
        if name in names:
            el.append(duplicate(f"{p}.name", name))
        if el:
            errs.extend(el)
        else:
            names.add(name)
    return names, errs


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


# --------------------------------------------------------------------------------------
# workloads


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: template labels, annotations and its PodSpec."""
    template = _d(template)
    meta = _d(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    spec = _d(template.get("spec"))
    errs.extend(validate_pod_spec(spec, f"{path}.spec", pod=False))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden(f"{path}.spec.ephemeralContainers",
                              "ephemeral containers not allowed in pod template"))
    return errs


def _template_labels(spec: Obj) -> Any:
    return _d(_d(spec.get("template")).get("metadata")).get("labels")


def _selector_template_errors(
    spec: Obj, kind: str, *, required_selector: bool = True, message: str = "invalid label "
                                                                              "selector"
) -> list[FieldError]:
    """Selector present, valid, non-empty, and matching the template's labels."""
    errs: list[FieldError] = []
    sel = spec.get("selector")
    if sel is None and required_selector:
        errs.append(required("spec.selector"))
    elif isinstance(sel, dict):
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if not _d(sel.get("matchLabels")) and not _l(sel.get("matchExpressions")):
            errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)),
                                f"empty selector is invalid for {kind}"))
    if not selector_parses(sel):
        errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)), message))
    return errs


def _template_match(spec: Obj, sel: Any, path: str = "spec.template") -> list[FieldError]:
    labels = _template_labels(spec)
    if sel is not None and selector_parses(sel) and (
            _d(sel).get("matchLabels") or _d(sel).get("matchExpressions")) and not (
            selector_matches(sel, labels)):
        return [invalid(f"{path}.metadata.labels", GoValue(go_string_map(labels)),
                        "`selector` does not match template `labels`")]
    return []


def _controller_template(spec: Obj, kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (also Deployment's): restartPolicy Always only."""
    errs = _template_match(spec, spec.get("selector"))
    errs.extend(validate_pod_template(spec.get("template"), "spec.template"))
    errs.extend(_restarts_always(spec, kind))
    return errs


def _restarts_always(spec: Obj, kind: str) -> list[FieldError]:
    """The pods of a controller that keeps them running: restartPolicy Always and no
    activeDeadlineSeconds (ReplicaSets, Deployments, DaemonSets, StatefulSets)."""
    errs: list[FieldError] = []
    template_spec = _d(_d(spec.get("template")).get("spec"))
    restart = template_spec.get("restartPolicy") or ""
    if restart != "Always":
        errs.append(unsupported("spec.template.spec.restartPolicy", restart, ("Always",)))
    if template_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        if not _percent_re.match(value):
            return [invalid(path, GoValue(go_int_or_string(value)), regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'",
                _PERCENT, "1%", "93%"))]
        return []
    return [invalid(path, value, "must be greater than or equal to 0")
            for _ in (0,) if isinstance(value, int) and value < 0]


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if _percent_re.match(value) else 0
    return value if isinstance(value, int) else 0


def _not_more_than_100(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and _percent_re.match(value) and int(value[:-1]) > 100:
        return [invalid(path, GoValue(go_int_or_string(value)), "must not be greater than 100%")]
    return []


def _deployment(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_selector_template_errors(spec, "deployment"))
    if selector_parses(spec.get("selector")):
        v.extend(_controller_template(spec, "ReplicaSet"))
    strategy = _d(spec.get("strategy"))
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            v.add(forbidden("spec.strategy.rollingUpdate",
                            "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            v.add(required("spec.strategy.rollingUpdate",
                           "this should be defaulted and never be nil"))
        else:
            p = "spec.strategy.rollingUpdate"
            v.extend(_int_or_percent(rolling.get("maxUnavailable"), f"{p}.maxUnavailable"))
            v.extend(_int_or_percent(rolling.get("maxSurge"), f"{p}.maxSurge"))
            if (_int_or_percent_value(rolling.get("maxUnavailable")) == 0
                    and _int_or_percent_value(rolling.get("maxSurge")) == 0):
                v.add(invalid(f"{p}.maxUnavailable",
                              GoValue(go_int_or_string(rolling.get("maxUnavailable"))),
                              "may not be 0 when `maxSurge` is 0"))
            v.extend(_not_more_than_100(rolling.get("maxUnavailable"), f"{p}.maxUnavailable"))
    else:
        v.add(unsupported("spec.strategy", GoValue(
            f"apps.DeploymentStrategy{{Type:{go_quote(str(kind or ''))}, "
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"), ("Recreate",
                                                                       "RollingUpdate")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        v.extend(_nonneg("spec.progressDeadlineSeconds", deadline))
        if isinstance(deadline, int) and deadline <= (spec.get("minReadySeconds") or 0):
            v.add(invalid("spec.progressDeadlineSeconds", deadline,
                          "must be greater than minReadySeconds"))
    _selector_immutable(v)


def _selector_immutable(v: V) -> None:
    """apps/v1 strategies: a controller's selector never changes."""
    if v.old is None:
        return
    sel = _d(v.obj.get("spec")).get("selector")
    if sel != _d(v.old.get("spec")).get("selector"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)), "field is immutable"))


def _replicaset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_selector_template_errors(spec, "deployment"))
    if selector_parses(spec.get("selector")):
        v.extend(_controller_template(spec, "ReplicaSet"))
    _selector_immutable(v)


def _daemonset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    sel = spec.get("selector")
    v.extend(validate_label_selector(sel, "spec.selector"))
    if (selector_parses(sel) and not selector_matches(sel, _template_labels(spec)) and (
            sel is None or _d(sel).get("matchLabels") or _d(sel).get("matchExpressions"))):
        v.add(invalid("spec.template.metadata.labels",
                      GoValue(go_string_map(_template_labels(spec))),
                      "`selector` does not match template `labels`"))
    if isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)),
                      "empty selector is invalid for daemonset"))
    v.extend(validate_pod_template(spec.get("template"), "spec.template"))
    v.extend(_restarts_always(spec, "DaemonSet"))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_nonneg("spec.templateGeneration", spec.get("templateGeneration")))
    strategy = _d(spec.get("updateStrategy"))
    kind = strategy.get("type")
    p = "spec.updateStrategy"
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            v.add(required(f"{p}.rollingUpdate"))
        else:
            rp = f"{p}.rollingUpdate"
            for key in ("maxUnavailable", "maxSurge"):
                v.extend(_int_or_percent(rolling.get(key), f"{rp}.{key}"))
            for key in ("maxUnavailable", "maxSurge"):
                v.extend(_not_more_than_100(rolling.get(key), f"{rp}.{key}"))
            has_unavailable = _int_or_percent_value(rolling.get("maxUnavailable")) != 0
            has_surge = _int_or_percent_value(rolling.get("maxSurge")) != 0
            if has_unavailable and has_surge:
                v.add(invalid(f"{rp}.maxSurge", GoValue(go_int_or_string(rolling.get("maxSurge"))),
                              "may not be set when maxUnavailable is non-zero"))
            elif not has_unavailable and not has_surge:
                v.add(required(f"{rp}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        shown = GoValue(f"apps.DaemonSetUpdateStrategy{{Type:{go_quote(str(kind or ''))}, "
                        "RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}")
        v.add(unsupported(p, shown,
                          ("RollingUpdate", "OnDelete")))
    v.extend(_nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    _selector_immutable(v)


def _statefulset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    policy = spec.get("podManagementPolicy") or ""
    if policy == "":
        v.add(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        v.add(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _d(spec.get("updateStrategy"))
    kind = strategy.get("type") or ""
    if kind == "":
        v.add(required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            v.add(invalid("spec.updateStrategy.rollingUpdate",
                          GoValue("&apps.RollingUpdateStatefulSetStrategy{...}"),
                          "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if isinstance(rolling, dict):
            p = "spec.updateStrategy.rollingUpdate"
            v.extend(_nonneg(f"{p}.partition", rolling.get("partition")))
            if rolling.get("maxUnavailable") is not None:
                mu = rolling["maxUnavailable"]
                v.extend(_int_or_percent(mu, f"{p}.maxUnavailable"))
                if _int_or_percent_value(mu) == 0:
                    v.add(invalid(f"{p}.maxUnavailable", GoValue(go_int_or_string(mu)),
                                  "cannot be 0"))
                v.extend(_not_more_than_100(mu, f"{p}.maxUnavailable"))
    else:
        v.add(invalid("spec.updateStrategy", GoValue(
            f"apps.StatefulSetUpdateStrategy{{Type:{go_quote(kind)}, "
            "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}"),
            "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in ("Retain", "Delete"):
                v.add(unsupported(f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                                  retention.get(key) or "", ("Retain", "Delete")))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    if isinstance(spec.get("ordinals"), dict):
        v.extend(_nonneg("spec.ordinals.start", spec["ordinals"].get("start")))
    v.extend(_selector_template_errors(spec, "statefulset", message=""))
    if selector_parses(spec.get("selector")):
        # Upstream validates only the template's metadata here, not its pod spec (a TODO
        # in ValidatePodTemplateSpecForStatefulSet): bad pod specs fail at pod creation.
        v.extend(_template_match(spec, spec.get("selector")))
        tmeta = _d(_d(spec.get("template")).get("metadata"))
        v.extend(validate_labels(tmeta.get("labels"), "spec.template.labels"))
        v.extend(validate_annotations(tmeta.get("annotations"), "spec.template.annotations"))
    v.extend(_restarts_always(spec, "StatefulSet"))
    if v.old is not None:
        old_spec = dict(_d(v.old.get("spec")))
        mutable = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                   "persistentVolumeClaimRetentionPolicy")
        if {k: x for k, x in spec.items() if k not in mutable} != {
                k: x for k, x in old_spec.items() if k not in mutable}:
            v.add(forbidden("spec", "updates to statefulset spec for fields other than "
                                    "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                    "'persistentVolumeClaimRetentionPolicy' and "
                                    "'minReadySeconds' are forbidden"))


JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _has_label(labels: Obj, key: str, expected: str, path: str) -> list[FieldError]:
    if key not in labels:
        return [required(f"{path}.labels[{key}]", f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(f"{path}.labels[{key}]", GoValue(go_string_map(labels)),
                        f"must be '{expected}'")]
    return []


def _generated_selector(job: Obj, prefixed: bool) -> list[FieldError]:
    spec = _d(job.get("spec"))
    meta = _d(job.get("metadata"))
    if spec.get("manualSelector") or spec.get("selector") is None:
        return []
    errs: list[FieldError] = []
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    if not uid:
        errs.append(required("metadata.uid"))
    labels = _d(_template_labels(spec))
    path = "spec.template.metadata"
    errs.extend(_has_label(labels, "controller-uid", uid, path))
    errs.extend(_has_label(labels, "job-name", name, path))
    expected = {"controller-uid": uid, "job-name": name}
    if prefixed:
        errs.extend(_has_label(labels, CONTROLLER_UID_LABEL, uid, path))
        errs.extend(_has_label(labels, JOB_NAME_LABEL, name, path))
        expected.update({CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name})
    sel = spec["selector"]
    if selector_parses(sel) and not selector_matches(sel, expected):
        errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)),
                            "`selector` not auto-generated"))
    return errs


def _job_spec(spec: Obj, path: str) -> list[FieldError]:
    """validateJobSpec: counts, modes and a pod template that never restarts Always."""
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                "ttlSecondsAfterFinished", "backoffLimitPerIndex"):
        errs.extend(_nonneg(f"{path}.{key}", spec.get(key)))
    if spec.get("maxFailedIndexes") is not None:
        errs.extend(_nonneg(f"{path}.maxFailedIndexes", spec["maxFailedIndexes"]))
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(required(f"{path}.backoffLimitPerIndex",
                                 "when maxFailedIndexes is specified"))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(unsupported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if isinstance(parallelism, int) and parallelism > 100000:
                errs.append(invalid(f"{path}.parallelism", parallelism,
                                    "must be less than or equal to 100000 when completion mode "
                                    "is Indexed"))
    if mode in (None, "NonIndexed"):
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errs.append(invalid(f"{path}.{key}", spec[key], "requires indexed completion "
                                                                "mode"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                errs.append(unsupported(f"{path}.podReplacementPolicy", replacement,
                                        ("Failed",)))
        elif replacement not in ("Failed", "TerminatingOrFailed"):
            errs.append(unsupported(f"{path}.podReplacementPolicy", replacement,
                                    ("Failed", "TerminatingOrFailed")))
    errs.extend(validate_pod_template(spec.get("template"), f"{path}.template"))
    restart = _d(_d(spec.get("template")).get("spec")).get("restartPolicy") or ""
    rp = f"{path}.template.spec.restartPolicy"
    if restart in ("Always", ""):
        errs.append(required(rp, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errs.append(unsupported(rp, restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        errs.append(invalid(rp, restart, 'only "Never" is supported when podFailurePolicy is '
                                         "specified"))
    return errs


def _job(v: V) -> None:
    job, old = v.obj, v.old
    spec = _d(job.get("spec"))
    prefixed = True
    if old is not None:
        old_labels = _d(_template_labels(_d(old.get("spec"))))
        prefixed = JOB_NAME_LABEL in old_labels and CONTROLLER_UID_LABEL in old_labels
    v.extend(_generated_selector(job, prefixed))
    v.extend(_job_spec(spec, "spec"))
    sel = spec.get("selector")
    if sel is None:
        v.add(required("spec.selector"))
    else:
        v.extend(validate_label_selector(sel, "spec.selector"))
    if sel is not None and selector_parses(sel) and (
            _d(sel).get("matchLabels") or _d(sel).get("matchExpressions")) and not (
            selector_matches(sel, _template_labels(spec))):
        v.add(invalid("spec.template.metadata.labels",
                      GoValue(go_string_map(_template_labels(spec))),
                      "`selector` does not match template `labels`"))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions:
        name = str(_d(job.get("metadata")).get("name") or "")
        hostname = f"{name}-{completions - 1}"
        if is_dns1123_label(hostname):
            v.add(invalid("metadata.name", name, "will not able to create pod with invalid DNS "
                                                 f"label: {hostname}"))
    if old is None:
        return
    old_spec = _d(old.get("spec"))
    if spec.get("completions") != old_spec.get("completions"):
        if spec.get("completionMode") == "Indexed" and spec.get("completions") is not None:
            if spec.get("completions") != spec.get("parallelism"):
                v.add(invalid("spec.completions", spec.get("completions"),
                              "can only be modified in tandem with spec.parallelism"))
        else:
            v.add(invalid("spec.completions", spec.get("completions"), "field is immutable"))
    if sel != old_spec.get("selector"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)), "field is immutable"))
    template, old_template = _d(spec.get("template")), _d(old_spec.get("template"))
    suspended_not_started = old_spec.get("suspend") and not _d(old.get("status")).get(
        "startTime")
    if suspended_not_started:
        template = _scheduling_free(template)
        old_template = _scheduling_free(old_template)
    if template != old_template:
        v.add(invalid("spec.template", GoValue("core.PodTemplateSpec{...}"),
                      "field is immutable"))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
                "successPolicy"):
        if spec.get(key) != old_spec.get(key):
            value = spec.get(key)
            shown = value if isinstance(value, str | int) or value is None else GoValue(
                "{...}")
            v.add(invalid(f"spec.{key}", shown, "field is immutable"))


def _scheduling_free(template: Obj) -> Obj:
    """A template without what a suspended, never-started Job may change."""
    out = dict(template)
    meta = dict(_d(out.get("metadata")))
    meta.pop("labels", None)
    meta.pop("annotations", None)
    out["metadata"] = meta
    spec = dict(_d(out.get("spec")))
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        spec.pop(key, None)
    affinity = dict(_d(spec.get("affinity")))
    affinity.pop("nodeAffinity", None)
    if affinity:
        spec["affinity"] = affinity
    else:
        spec.pop("affinity", None)
    out["spec"] = spec
    return out


_CRON_FIELDS = ((0, 59, None), (0, 23, None), (1, 31, None),
                (1, 12, {m: i + 1 for i, m in enumerate(
                    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                     "dec"))}),
                (0, 6, {d: i for i, d in enumerate(
                    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                     "@hourly"}


def _cron_number(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    try:
        return int(expr)
    except ValueError:
        raise ValueError(f'failed to parse int from {expr}: strconv.Atoi: parsing '
                         f'{go_quote(expr)}: invalid syntax') from None


def cron_error(schedule: str) -> str | None:
    """robfig/cron's ParseStandard error for a schedule, or None if it parses."""
    spec = schedule.strip()
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        tz, _, spec = spec.partition(" ")
        try:
            zoneinfo.ZoneInfo(tz.split("=", 1)[1])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return f"provided bad location {tz.split('=', 1)[1]}: unknown time zone " + tz.split(
                "=", 1)[1]
    if spec.startswith("@"):
        if spec in _CRON_DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            return None
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field_text, (lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in field_text.split(","):
            range_and_step = expr.split("/")
            if len(range_and_step) > 2:
                return f"too many slashes: {expr}"
            low_high = range_and_step[0].split("-")
            if len(low_high) > 2:
                return f"too many hyphens: {expr}"
            try:
                if low_high[0] in ("*", "?"):
                    start, end = lo, hi
                else:
                    start = _cron_number(low_high[0], names)
                    end = _cron_number(low_high[1], names) if len(low_high) == 2 else start
                if len(range_and_step) == 2:
                    step = _cron_number(range_and_step[1], None)
                    if step <= 0:
                        return f"step of range should be a positive number: {expr}"
            except ValueError as exc:
                return str(exc)
            if start < lo:
                return f"beginning of range ({start}) below minimum ({lo}): {expr}"
            if end > hi:
                return f"end of range ({end}) above maximum ({hi}): {expr}"
            if start > end:
                return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def _cronjob(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    old_spec = _d(v.old.get("spec")) if v.old is not None else None
    schedule = spec.get("schedule") or ""
    if not schedule:
        v.add(required("spec.schedule"))
    else:
        err = cron_error(str(schedule))
        if err:
            v.add(invalid("spec.schedule", schedule, err))
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            v.add(invalid("spec.schedule", schedule,
                          "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            v.add(invalid("spec.schedule", schedule,
                          "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    v.extend(_nonneg("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds")))
    tz = spec.get("timeZone")
    if tz is not None and (old_spec is None or old_spec.get("timeZone") != tz):
        v.extend(_time_zone(tz))
    policy = spec.get("concurrencyPolicy") or ""
    if policy == "":
        v.add(required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        v.add(unsupported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    job_template = _d(spec.get("jobTemplate"))
    job_spec = _d(job_template.get("spec"))
    v.extend(_job_spec(job_spec, "spec.jobTemplate.spec"))
    if job_spec.get("selector") is not None:
        v.add(invalid("spec.jobTemplate.spec.selector",
                      GoValue(go_label_selector(job_spec["selector"])),
                      "`selector` will be auto-generated"))
    if job_spec.get("manualSelector"):
        v.add(unsupported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    v.extend(_nonneg("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit")))
    v.extend(_nonneg("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit")))
    name = str(_d(v.obj.get("metadata")).get("name") or "")
    if v.old is None and len(name) > 52:
        v.add(invalid("metadata.name", name, "must be no more than 52 characters"))


_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}\Z")


def _time_zone(tz: Any) -> list[FieldError]:
    path = "spec.timeZone"
    if not isinstance(tz, str) or tz == "":
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    errs = []
    if tz.lower() == "local":
        errs.append(invalid(path, tz, "timeZone must be an explicit time zone as defined in "
                                      "https://www.iana.org/time-zones"))
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errs.append(invalid(path, tz, f"unknown time zone {tz}"))
    return errs


# --------------------------------------------------------------------------------------
# services

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _go_service_port(protocol: str, port: Any) -> str:
    return (f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, '
            f"AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, "
            'IntVal:0, StrVal:""}, NodePort:0}')


def _service(v: V) -> None:
    obj = v.obj
    spec = _d(obj.get("spec"))
    svc_type = spec.get("type") or ""
    cluster_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    headless = len(cluster_ips) == 1 and cluster_ips[0] == "None"
    ports = _l(spec.get("ports"))
    if not ports and not headless and svc_type != "ExternalName":
        v.add(required("spec.ports"))
    if svc_type == "LoadBalancer" and headless:
        v.add(invalid("spec.clusterIPs[0]", cluster_ips[0],
                      "may not be set to 'None' for LoadBalancer services"))
    elif svc_type == "NodePort" and headless:
        v.add(invalid("spec.clusterIPs[0]", cluster_ips[0],
                      "may not be set to 'None' for NodePort services"))
    elif svc_type == "ExternalName":
        if cluster_ips:
            v.add(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            v.add(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            v.add(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            v.extend(invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname))
        else:
            v.add(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            v.add(required(f"{p}.name"))
        elif name:
            v.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(str(name)))
            if name in names:
                v.add(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        v.extend(invalid(f"{p}.port", port.get("port") or 0, m)
                 for m in is_valid_port_num(port.get("port")))
        protocol = port.get("protocol") or ""
        if protocol == "":
            v.add(required(f"{p}.protocol"))
        elif protocol not in _PORT_PROTOCOLS:
            v.add(unsupported(f"{p}.protocol", protocol, _PORT_PROTOCOLS))
        v.extend(_port_num_or_name(port.get("targetPort"), f"{p}.targetPort"))
        if port.get("appProtocol") is not None:
            v.extend(invalid(f"{p}.appProtocol", port["appProtocol"], m)
                     for m in is_qualified_name(str(port["appProtocol"])))
    if spec.get("selector") is not None:
        v.extend(validate_labels(spec["selector"], "spec.selector"))
    affinity = spec.get("sessionAffinity") or ""
    if affinity == "":
        v.add(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        v.add(unsupported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    if affinity == "ClientIP":
        timeout = _d(_d(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        if isinstance(timeout, int) and not 0 < timeout <= 86400:
            v.add(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                          "must be greater than 0 and less than 86400"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        v.add(forbidden("spec.sessionAffinityConfig",
                        "must not be set when session affinity is None"))
    if svc_type != "ExternalName":
        v.extend(_cluster_ips(spec))
    for i, ip in enumerate(_l(spec.get("externalIPs"))):
        v.extend(_ip_errors(f"spec.externalIPs[{i}]", ip))
    if svc_type == "":
        v.add(required("spec.type"))
    elif svc_type not in _SERVICE_TYPES:
        v.add(unsupported("spec.type", svc_type, _SERVICE_TYPES))
    if svc_type == "ClusterIP":
        for i, port in enumerate(ports):
            if _d(port).get("nodePort"):
                v.add(forbidden(f"spec.ports[{i}].nodePort",
                                "may not be used when `type` is 'ClusterIP'"))
    seen_node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol") or "", port["nodePort"])
        if key in seen_node_ports:
            v.add(duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
        seen_node_ports.add(key)
    seen_ports: set[tuple[str, Any]] = set()
    for i, port in enumerate(ports):
        port = _d(port)
        key2 = (str(port.get("protocol") or ""), port.get("port"))
        if key2 in seen_ports:
            v.add(duplicate(f"spec.ports[{i}]", GoValue(_go_service_port(*key2))))
        seen_ports.add(key2)
    ranges = _l(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if svc_type != "LoadBalancer":
            v.add(forbidden("spec.LoadBalancerSourceRanges",
                            "may only be used when `type` is 'LoadBalancer'"))
        for i, value in enumerate(ranges):
            v.extend(_cidr_errors(f"spec.LoadBalancerSourceRanges[{i}]", str(value).strip()))
    if spec.get("allocateLoadBalancerNodePorts") is not None and svc_type != "LoadBalancer":
        v.add(forbidden("spec.allocateLoadBalancerNodePorts",
                        "may only be used when `type` is 'LoadBalancer'"))
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        v.add(required("allocateLoadBalancerNodePorts"))
    external = svc_type in ("LoadBalancer", "NodePort") or bool(spec.get("externalIPs"))
    etp = spec.get("externalTrafficPolicy") or ""
    if not external:
        if etp:
            v.add(invalid("spec.externalTrafficPolicy", etp,
                          "may only be set for externally-accessible services"))
    elif etp == "":
        v.add(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        v.add(unsupported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    needs_health_check = svc_type == "LoadBalancer" and etp == "Local"
    hcnp = spec.get("healthCheckNodePort") or 0
    if not needs_health_check and hcnp:
        v.add(invalid("spec.healthCheckNodePort", hcnp, "may only be set when `type` is "
                                                        "'LoadBalancer' and "
                                                        "`externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        v.add(required("spec.internalTrafficPolicy"))
    if itp is not None and itp not in ("Cluster", "Local"):
        v.add(unsupported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    if v.old is not None:
        v.extend(_service_update(spec, _d(v.old.get("spec"))))


def _cluster_ips(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    shown = GoValue(go_string_slice(cluster_ips))
    if cluster_ip:
        if not cluster_ips:
            errs.append(required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errs.append(invalid("spec.clusterIPs", shown, "first value must match `clusterIP`"))
    elif cluster_ips:
        errs.append(invalid("spec.clusterIPs", shown,
                            "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, family in enumerate(_l(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            errs.append(unsupported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        errs.append(unsupported("spec.ipFamilyPolicy", policy, policies))
    bad = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                bad = True
                errs.append(invalid("spec.clusterIPs", shown,
                                    "'None' must be the first and only value"))
            continue
        ip_errs = _ip_errors(f"spec.clusterIPs[{i}]", ip)
        bad |= bool(ip_errs)
        errs.extend(ip_errs)
    if len(cluster_ips) > 2:
        errs.append(invalid("spec.clusterIPs", shown, "may only hold up to 2 values"))
    if bad:
        return errs
    if len(cluster_ips) > 1:
        versions = {ipaddress.ip_address(ip).version for ip in cluster_ips}
        if len(versions) != 2 or len(cluster_ips) != 2:
            errs.append(invalid("spec.clusterIPs", shown,
                                "may specify no more than one IP for each IP family"))
    families = _l(spec.get("ipFamilies"))
    if cluster_ips and cluster_ips != ["None"] and families:
        for i, ip in enumerate(cluster_ips[:len(families)]):
            is6 = ipaddress.ip_address(ip).version == 6
            if families[i] == "IPv4" and is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, "expected an IPv4 value as "
                                                                 f"indicated by `ipFamilies[{i}]`"))
            if families[i] == "IPv6" and not is6:
                errs.append(invalid(f"spec.clusterIPs[{i}]", ip, "expected an IPv6 value as "
                                                                 f"indicated by `ipFamilies[{i}]`"))
    return errs


def _service_update(spec: Obj, old_spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return errs
    new_ips = [str(x) for x in _l(spec.get("clusterIPs"))]
    old_ips = [str(x) for x in _l(old_spec.get("clusterIPs"))]
    if new_ips == ["None"] and old_ips == ["None"]:
        return errs
    shown = GoValue(go_string_slice(new_ips))
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                "must be set to 'SingleStack' when releasing the secondary "
                                "clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    return errs


# --------------------------------------------------------------------------------------
# config and other core kinds

MAX_SECRET_SIZE = 1024 * 1024


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def _secret(v: V) -> None:
    obj = v.obj
    data = _d(obj.get("data"))
    total = 0
    for key, value in data.items():
        v.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key)))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        v.add(too_long("data", MAX_SECRET_SIZE))
    kind = obj.get("type") or ""
    annotations = _d(_d(obj.get("metadata")).get("annotations"))
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            v.add(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/dockercfg":
        if ".dockercfg" not in data:
            v.add(required("data[.dockercfg]"))
    elif kind == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            v.add(required("data[.dockerconfigjson]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            v.add(required("data[username]"), required("data[password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            v.add(required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        if "tls.crt" not in data:
            v.add(required("data[tls.crt]"))
        if "tls.key" not in data:
            v.add(required("data[tls.key]"))
    if v.old is not None:
        if (obj.get("type") or "") != (v.old.get("type") or ""):
            v.add(invalid("type", obj.get("type") or "", "field is immutable"))
        _immutable_data(v, ("data",))


def _immutable_data(v: V, keys: tuple[str, ...]) -> None:
    assert v.old is not None
    if not v.old.get("immutable"):
        return
    if not v.obj.get("immutable"):
        v.add(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (v.obj.get(key) or {}) != (v.old.get(key) or {}):
            v.add(forbidden(key, "field is immutable when `immutable` is set"))


def _configmap(v: V) -> None:
    obj = v.obj
    if v.old is not None:
        _immutable_data(v, ("data", "binaryData"))
    total = 0
    binary = _d(obj.get("binaryData"))
    for key, value in _d(obj.get("data")).items():
        v.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key)))
        if key in binary:
            v.add(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += byte_len(str(value))
    for key, value in binary.items():
        v.extend(invalid(f"binaryData[{key}]", key, m) for m in is_config_map_key(str(key)))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        v.add(too_long("", MAX_SECRET_SIZE))


def _namespace(v: V) -> None:
    for finalizer in _l(_d(v.obj.get("spec")).get("finalizers")):
        v.extend(invalid("spec.finalizers", finalizer, m)
                 for m in is_qualified_name(str(finalizer)))
        if "/" not in str(finalizer) and finalizer not in _STANDARD_FINALIZERS:
            v.add(invalid("spec.finalizers", finalizer,
                          "name is neither a standard finalizer name nor is it fully qualified"))


def _node(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(_l(spec.get("taints"))):
        taint = _d(taint)
        p = f"metadata.taints[{i}]"
        key, value, effect = str(taint.get("key") or ""), taint.get("value") or "", taint.get(
            "effect") or ""
        v.extend(invalid(f"{p}.key", key, m) for m in is_qualified_name(key))
        msgs = is_label_value(str(value))
        if msgs:
            v.add(invalid(f"{p}.value", value, ";".join(msgs)))
        if not effect:
            v.add(required(f"{p}.effect"))
        elif effect not in _TAINT_EFFECTS:
            v.add(unsupported(f"{p}.effect", effect, _TAINT_EFFECTS))
        if (effect, key) in seen:
            error = duplicate(p, GoValue(
                f"core.Taint{{Key:{go_quote(key)}, Value:{go_quote(str(value))}, "
                f"Effect:{go_quote(effect)}, TimeAdded:<nil>}}"))
            error.detail = "taints must be unique by key and effect pair"
            v.add(error)
            continue
        seen.add((effect, key))
    for i, cidr in enumerate(_l(spec.get("podCIDRs"))):
        v.extend(_cidr_errors(f"spec.podCIDRs[{i}]", cidr))
    if v.old is not None:
        old_spec = _d(v.old.get("spec"))
        old_cidrs = _l(old_spec.get("podCIDRs"))
        if old_cidrs and old_cidrs != _l(spec.get("podCIDRs")):
            v.add(forbidden("spec.podCIDRs",
                            'node updates may not change podCIDR except from "" to valid'))
        if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
            v.add(forbidden("spec.providerID",
                            'node updates may not change providerID except from "" to valid'))


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _pvc(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    modes = _l(spec.get("accessModes"))
    if not modes:
        v.add(required("spec.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        v.extend(validate_label_selector(spec["selector"], "spec.selector"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            v.add(unsupported("spec.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m != "ReadWriteOncePod" and m in _ACCESS_MODES
                                           for m in modes):
        v.add(forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access "
                                            "modes"))
    storage = _d(_d(spec.get("resources")).get("requests")).get("storage")
    if storage is None:
        v.add(required("spec.resources[storage]"))
    else:
        q = _quantity(storage)
        if q is not None and q <= 0:
            v.add(invalid("spec.resources[storage]", str(storage), "must be greater than zero"))
    if spec.get("storageClassName"):
        v.extend(invalid("spec.storageClassName", spec["storageClassName"], m)
                 for m in name_is_dns_subdomain(str(spec["storageClassName"]), False))
    if spec.get("volumeMode") is not None and spec["volumeMode"] not in ("Block", "Filesystem"):
        v.add(unsupported("spec.volumeMode", spec["volumeMode"], ("Block", "Filesystem")))


def _endpoints(v: V) -> None:
    for i, subset in enumerate(_l(v.obj.get("subsets"))):
        subset = _d(subset)
        p = f"subsets[{i}]"
        if not subset.get("addresses") and not subset.get("notReadyAddresses"):
            v.add(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(_l(subset.get(key))):
                address = _d(address)
                ap = f"{p}.{key}[{j}]"
                v.extend(_ip_errors(f"{ap}.ip", address.get("ip") or ""))
                if address.get("hostname"):
                    v.extend(invalid(f"{ap}.hostname", address["hostname"], m)
                             for m in is_dns1123_label(str(address["hostname"])))
        ports = _l(subset.get("ports"))
        for j, port in enumerate(ports):
            port = _d(port)
            pp = f"{p}.ports[{j}]"
            if len(ports) > 1 and not port.get("name"):
                v.add(required(f"{pp}.name"))
            elif port.get("name"):
                v.extend(invalid(f"{pp}.name", port["name"], m)
                         for m in is_dns1123_label(str(port["name"])))
            v.extend(invalid(f"{pp}.port", port.get("port") or 0, m)
                     for m in is_valid_port_num(port.get("port")))
            protocol = port.get("protocol") or ""
            if not protocol:
                v.add(required(f"{pp}.protocol"))
            elif protocol not in _PORT_PROTOCOLS:
                v.add(unsupported(f"{pp}.protocol", protocol, _PORT_PROTOCOLS))


def _lease(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        v.add(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        v.add(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None and strategy != "OldestEmulationVersion":
        v.add(unsupported("spec.strategy", strategy, ("OldestEmulationVersion",)))
    if spec.get("preferredHolder") and not strategy:
        v.add(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))


# --------------------------------------------------------------------------------------
# RBAC

RBAC_GROUP = "rbac.authorization.k8s.io"


def _rules(v: V, namespaced: bool) -> None:
    for i, rule in enumerate(_l(v.obj.get("rules"))):
        rule = _d(rule)
        p = f"rules[{i}]"
        if not rule.get("verbs"):
            v.add(required(f"{p}.verbs", "verbs must contain at least one value"))
        urls = _l(rule.get("nonResourceURLs"))
        if urls:
            shown = GoValue(go_string_slice(urls))
            if namespaced:
                v.add(invalid(f"{p}.nonResourceURLs", shown,
                              "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                v.add(invalid(f"{p}.nonResourceURLs", shown,
                              "rules cannot apply to both regular resources and non-resource "
                              "URLs"))
            continue
        if not rule.get("apiGroups"):
            v.add(required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            v.add(required(f"{p}.resources", "resource rules must supply at least one resource"))


def _binding(v: V, namespaced: bool) -> None:
    obj = v.obj
    ref = _d(obj.get("roleRef"))
    if ref.get("apiGroup") != RBAC_GROUP:
        v.add(unsupported("roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        v.add(unsupported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        v.add(required("roleRef.name"))
    else:
        v.extend(invalid("roleRef.name", ref["name"], m)
                 for m in is_path_segment_name(str(ref["name"])))
    for i, subject in enumerate(_l(obj.get("subjects"))):
        subject = _d(subject)
        p = f"subjects[{i}]"
        if not subject.get("name"):
            v.add(required(f"{p}.name"))
        kind = subject.get("kind") or ""
        group = subject.get("apiGroup") or ""
        if kind == "ServiceAccount":
            if subject.get("name"):
                v.extend(invalid(f"{p}.name", subject["name"], m)
                         for m in name_is_dns_subdomain(str(subject["name"]), False))
            if group:
                v.add(unsupported(f"{p}.apiGroup", group, ("",)))
            if not namespaced and not subject.get("namespace"):
                v.add(required(f"{p}.namespace"))
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                v.add(unsupported(f"{p}.apiGroup", group, (RBAC_GROUP,)))
        else:
            v.add(unsupported(f"{p}.kind", kind, ("ServiceAccount", "User", "Group")))
    if v.old is not None and _d(v.old.get("roleRef")) != ref:
        v.add(invalid("roleRef", GoValue(
            f"rbac.RoleRef{{APIGroup:{go_quote(str(ref.get('apiGroup') or ''))}, "
            f"Kind:{go_quote(str(ref.get('kind') or ''))}, "
            f"Name:{go_quote(str(ref.get('name') or ''))}}}"), "cannot change roleRef"))


# --------------------------------------------------------------------------------------
# CustomResourceDefinitions


def _crd_name(obj: Obj) -> NameFn:
    spec = _d(obj.get("spec"))
    expected = f"{_d(spec.get('names')).get('plural') or ''}.{spec.get('group') or ''}"

    def name_fn(name: str, prefix: bool) -> list[str]:
        msgs = name_is_dns_subdomain(name, prefix)
        if name != expected:
            msgs.append('must be spec.names.plural+"."+spec.group')
        return msgs

    return name_fn


def _go_crd_versions(versions: list[Any]) -> GoValue:
    if not versions:
        return GoValue("[]apiextensions.CustomResourceDefinitionVersion(nil)")
    parts = [f"apiextensions.CustomResourceDefinitionVersion{{"
             f"Name:{go_quote(str(_d(x).get('name') or ''))}, "
             f"Served:{go_value(bool(_d(x).get('served')))}, "
             f"Storage:{go_value(bool(_d(x).get('storage')))}, ...}}" for x in versions]
    return GoValue("[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(parts) + "}")


def _crd_names(names: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("plural", "singular"):
        value = names.get(key)
        if value:
            msgs = is_dns1035_label(str(value))
            if msgs:
                errs.append(invalid(f"{path}.{key}", value, ",".join(msgs)))
    for key in ("kind", "listKind"):
        value = names.get(key)
        if value:
            msgs = is_dns1035_label(str(value).lower())
            if msgs:
                errs.append(invalid(f"{path}.{key}", value, "may have mixed case, but should "
                                                            "otherwise match: " + ",".join(msgs)))
    for i, short in enumerate(_l(names.get("shortNames"))):
        msgs = is_dns1035_label(str(short))
        if msgs:
            errs.append(invalid(f"{path}.shortNames[{i}]", short, ",".join(msgs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid(f"{path}.listKind", names["listKind"],
                            "kind and listKind may not be the same"))
    for i, category in enumerate(_l(names.get("categories"))):
        msgs = is_dns1035_label(str(category))
        if msgs:
            errs.append(invalid(f"{path}.categories[{i}]", category, ",".join(msgs)))
    return errs


def _crd(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    group = spec.get("group") or ""
    if not group:
        v.add(required("spec.group"))
    elif is_dns1123_subdomain(str(group)):
        v.add(invalid("spec.group", group, ",".join(is_dns1123_subdomain(str(group)))))
    elif len(str(group).split(".")) < 2:
        v.add(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        v.add(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        v.add(unsupported("spec.scope", scope, ("Cluster", "Namespaced")))
    versions = _l(spec.get("versions"))
    storage = 0
    names_seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        version = _d(version)
        storage += bool(version.get("storage"))
        name = str(version.get("name") or "")
        if name in names_seen:
            unique = False
        names_seen.add(name)
        msgs = is_dns1035_label(name)
        if msgs:
            v.add(invalid(f"spec.versions[{i}].name", name, ",".join(msgs)))
    if not unique:
        v.add(invalid("spec.versions", _go_crd_versions(versions),
                      "must contain unique version names"))
    if storage != 1:
        v.add(invalid("spec.versions", _go_crd_versions(versions),
                      "must have exactly one version marked as storage version"))
    names = _d(spec.get("names"))
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            v.add(required(f"spec.names.{key}"))
    v.extend(_crd_names(names, "spec.names"))
    for i, version in enumerate(versions):
        schema = _d(_d(version).get("schema")).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            v.add(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    strategy = _d(spec.get("conversion")).get("strategy")
    if strategy is not None and strategy not in ("None", "Webhook"):
        v.add(unsupported("spec.conversion.strategy", strategy, ("None", "Webhook")))
    # The CRD strategy records the storage version on create before validating.
    stored = _l(_d(v.obj.get("status")).get("storedVersions")) or [
        _d(x).get("name") for x in versions if _d(x).get("storage")][:1]
    if not stored:
        v.add(invalid("status.storedVersions", GoValue("[]string(nil)"),
                      "must have at least one stored version"))
    else:
        names_by_index = {name: i for i, name in enumerate(stored)}
        for version in versions:
            version_name = _d(version).get("name")
            if _d(version).get("storage") and version_name not in names_by_index:
                v.add(invalid("status.storedVersions", GoValue(
                    "apiextensions.CustomResourceDefinitionVersion{"
                    f"Name:{go_quote(str(version_name))}, ...}}"),
                    f"must have the storage version {version_name}"))
            names_by_index.pop(version_name, None)
        for name, i in names_by_index.items():
            v.add(invalid(f"status.storedVersions[{i}]", name, "must appear in spec.versions"))
    if v.old is not None:
        old_spec = _d(v.old.get("spec"))
        established = any(_d(c).get("type") == "Established" and _d(c).get("status") == "True"
                          for c in _l(_d(v.old.get("status")).get("conditions")))
        if established:
            if scope != (old_spec.get("scope") or ""):
                v.add(invalid("spec.scope", scope, "field is immutable"))
            kind = names.get("kind") or ""
            if kind != (_d(old_spec.get("names")).get("kind") or ""):
                v.add(invalid("spec.names.kind", kind, "field is immutable"))
        if group != (old_spec.get("group") or ""):
            v.add(invalid("spec.group", group, "field is immutable"))
        plural = names.get("plural") or ""
        if plural != (_d(old_spec.get("names")).get("plural") or ""):
            v.add(invalid("spec.names.plural", plural, "field is immutable"))


# --------------------------------------------------------------------------------------
# the table and the entry point

Validator = Callable[[V], None]

VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "ConfigMap"): _configmap,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Endpoints"): _endpoints,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("coordination.k8s.io", "Lease"): _lease,
    (RBAC_GROUP, "Role"): lambda v: _rules(v, True),
    (RBAC_GROUP, "ClusterRole"): lambda v: _rules(v, False),
    (RBAC_GROUP, "RoleBinding"): lambda v: _binding(v, True),
    (RBAC_GROUP, "ClusterRoleBinding"): lambda v: _binding(v, False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def name_rule(rt: ResourceType, obj: Obj) -> NameFn:
    """How this kind's metadata.name is validated."""
    if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        return _crd_name(obj)
    return NAME_RULES.get((rt.group, rt.kind), name_is_dns_subdomain)


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out = []
    for e in errs:
        text = str(e)
        if text not in seen:
            seen.add(text)
            out.append(e)
    return out


def validate(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """The field errors kube-apiserver reports for obj (old set on update), in its order."""
    if not isinstance(obj, dict):
        return [invalid("", GoValue(repr(obj)), "must be an object")]
    v = V(rt, obj, old)
    meta = _d(obj.get("metadata"))
    core = not rt.is_custom and (rt.group, rt.kind) not in _GENERIC_META
    if old is None:
        v.extend(validate_object_meta(meta, namespaced=rt.namespaced,
                                      name_fn=name_rule(rt, obj), core=core))
    else:
        v.extend(validate_object_meta_update(meta, _d(old.get("metadata")), core=core))
        if (rt.group, rt.kind) in (("", "Pod"),):
            # ValidatePodUpdate re-runs the create-time metadata rules on the new pod.
            v.extend(validate_object_meta(meta, namespaced=rt.namespaced,
                                          name_fn=name_rule(rt, obj), core=core))
    fn = VALIDATORS.get((rt.group, rt.kind))
    if fn is not None and not rt.is_custom:
        fn(v)
    return _dedupe(v.errs)


__all__ = ["KubeFieldError", "GoValue", "validate", "validate_pod_spec", "validate_labels",
           "validate_annotations", "validate_object_meta", "validate_label_selector",
           "is_dns1123_label", "is_dns1123_subdomain", "is_dns1035_label", "is_qualified_name",
           "is_label_value", "is_config_map_key", "cron_error"]
