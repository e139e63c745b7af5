"""Object metadata: name rules, labels, annotations, owner references, finalizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import (
    byte_len,
    go_string_slice,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
)
from nodeless.apiserver.resources.validation.context import Obj, _d, _l, _nonneg
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    forbidden,
    invalid,
    required,
    too_long,
)
from nodeless.apiserver.resources.validation.formats import is_path_segment_name

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
