"""CustomResourceDefinitions: name, group, versions, names, stored versions."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import go_quote, is_dns1035_label, is_dns1123_subdomain
from nodeless.apiserver.resources.validation.context import Obj, V, _d, _l
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    go_value,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.meta import NameFn, name_is_dns_subdomain


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
