"""Label selectors (metav1.LabelSelector) and node selectors (node affinity terms),
evaluated as the API server and the scheduler evaluate them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def _requirement(op: str, key: str, values: list[str], labels: Mapping[str, str]) -> bool:
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def label_selector_matches(selector: Obj | None, labels: Mapping[str, str] | None) -> bool:
    """A LabelSelector: an empty one matches everything, a missing one nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not _requirement(expr.get("operator", ""), expr.get("key", ""),
                            list(expr.get("values") or []), labels):
            return False
    return True


def selector_is_empty(selector: Obj | None) -> bool:
    return not selector or (not selector.get("matchLabels")
                            and not selector.get("matchExpressions"))


def map_selector_matches(selector: Mapping[str, str] | None,
                         labels: Mapping[str, str] | None) -> bool:
    """A Service's or a pod's nodeSelector: every pair present."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: all its expressions (labels) and fields (metadata.name)."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    labels = (node.get("metadata") or {}).get("labels") or {}
    for expr in exprs:
        if not _requirement(expr.get("operator", ""), expr.get("key", ""),
                            list(expr.get("values") or []), labels):
            return False
    node_fields = {"metadata.name": node["metadata"]["name"]}
    for expr in fields:
        if not _requirement(expr.get("operator", ""), expr.get("key", ""),
                            list(expr.get("values") or []), node_fields):
            return False
    return True


def required_node_affinity_matches(affinity: Obj | None, node: Obj) -> bool:
    required = (((affinity or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(node_selector_term_matches(t, node) for t in required.get("nodeSelectorTerms")
               or [])


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    """Whether any toleration tolerates `taint` (the scheduler's rule)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("key") and t["key"] != taint.get("key"):
            continue
        if not t.get("key") and t.get("operator") != "Exists":
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == taint.get(
                "value", ""):
            return True
    return False
