"""Label selectors: validation, whether one parses, and whether one matches."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import is_label_value, is_qualified_name
from nodeless.apiserver.resources.validation.context import _d, _l
from nodeless.apiserver.resources.validation.field import forbidden, invalid, required
from nodeless.apiserver.resources.validation.meta import validate_labels

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
