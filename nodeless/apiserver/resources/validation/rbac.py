"""RBAC: the rules of roles and the references and subjects of bindings."""

from __future__ import annotations

from nodeless.apiserver.resources.names import go_quote, go_string_slice
from nodeless.apiserver.resources.validation.context import V, _d, _l
from nodeless.apiserver.resources.validation.field import GoValue, invalid, required, unsupported
from nodeless.apiserver.resources.validation.formats import is_path_segment_name
from nodeless.apiserver.resources.validation.meta import name_is_dns_subdomain

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
