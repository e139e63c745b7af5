"""Field errors with kube's exact text, and bad values printed as Go prints them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import go_quote, go_string_slice


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
