"""What every printer shares: durations, cell formatters, quantities, columns."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from nodeless.apiserver.resources import schema

Obj = dict[str, Any]
RowFn = Callable[[Obj, datetime], list[Any]]
ColumnDefs = tuple[tuple[tuple[str, Any], ...], ...]
"""TableColumnDefinitions as hashable (key, value) pairs, so they can be cached."""


# ---------------------------------------------------------------------------------------
# Time


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _parse_time(value: Any) -> datetime | None:
    """RFC 3339 (metav1.Time) or with microseconds (MicroTime); None when unset or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _seconds(d: timedelta) -> int:
    """Whole seconds, truncated toward zero like Go's int(d.Seconds())."""
    return math.trunc(d.total_seconds())


def human_duration(d: timedelta) -> str:
    """kube's duration.HumanDuration: ~2-3 significant figures (`5m3s`, `3h10m`, `2d`)."""
    seconds = _seconds(d)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def short_human_duration(d: timedelta) -> str:
    """kube's duration.ShortHumanDuration, which custom resources' date columns use."""
    seconds = _seconds(d)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    """translateTimestampSince: the age of a timestamp, `<unknown>` when unset."""
    t = _parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


# ---------------------------------------------------------------------------------------
# Small formatters shared by several printers


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name", default=""))


def _format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


_SELECTOR_OPS = {"In": " in ", "NotIn": " notin "}


def _selector_string(selector: Obj | None) -> str | None:
    """metav1.LabelSelectorAsSelector(...).String(); None when the selector is invalid."""
    if not selector:
        return ""
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        if op in _SELECTOR_OPS:
            if not values:
                return None
            requirements.append((key, f"{key}{_SELECTOR_OPS[op]}({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                return None
            requirements.append((key, key if op == "Exists" else f"!{key}"))
        else:
            return None
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements)


def _format_selector(selector: Obj | None) -> str:
    """metav1.FormatLabelSelector: `<none>` for empty, `<error>` for invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(pod_spec: Obj | None) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma separated."""
    containers = _get(pod_spec, "containers", default=[])
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _list_with_more(items: Iterable[str], limit: int = 3, empty: str = "<unset>") -> str:
    """The first `limit` items, then ` + N more...`, as kube shortens long cells."""
    items = list(items)
    text = ",".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text or empty


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _int_or_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# Quantities print in canonical form (Quantity.String()); kube re-serializes every stored
# quantity canonically, we keep what clients sent, so canonicalize here.
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[A-Za-z]*)$")


def _quantity(value: Any, missing: str = "0") -> str:
    """resource.Quantity.String(); `missing` is what an absent quantity prints as."""
    if value is None:
        return missing
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        return text
    number, suffix = match.groups()
    with localcontext() as ctx:
        ctx.prec = 200
        try:
            amount = Decimal(number)
            if suffix in _BINARY:
                amount *= Decimal(1024) ** _BINARY[suffix]
                fmt = "binary"
            elif suffix in _DECIMAL:
                amount = amount.scaleb(_DECIMAL[suffix])
                fmt = "decimal"
            elif suffix[:1] in ("e", "E"):
                amount = amount.scaleb(int(suffix[1:]))
                fmt = "exponent"
            else:
                return text
            # Quantities keep nano precision, rounding away from zero.
            amount = amount.quantize(Decimal("1e-9"), rounding=ROUND_UP)
        except InvalidOperation:
            return text
        # Small or fractional binary amounts print in decimal rather than lose precision.
        if fmt == "binary" and (-1024 < amount < 1024 or amount != amount.to_integral_value()):
            fmt = "decimal"
        if fmt == "binary":
            whole, power = int(amount), 0
            while whole and whole % 1024 == 0 and power < 6:
                whole, power = whole // 1024, power + 1
            return f"{whole}{'' if power == 0 else list(_BINARY)[power - 1]}"
        return _decimal_quantity(amount, fmt)


def _decimal_quantity(amount: Decimal, fmt: str) -> str:
    if amount == 0:
        return "0"
    sign, digits, exponent = amount.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    prefix = "-" if sign else ""
    if exponent == 0:
        return f"{prefix}{mantissa}"
    if fmt == "decimal" and exponent in _DECIMAL_SUFFIX:
        return f"{prefix}{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{prefix}{mantissa}e{exponent}"


# ---------------------------------------------------------------------------------------
# Column definitions. Descriptions are the field docs kube uses (SwaggerDoc), read from
# the OpenAPI definitions; "@group.version.Kind.field" refers to one.


@dataclass(frozen=True)
class _Col:
    name: str
    desc: str = ""
    type: str = "string"
    priority: int = 0
    format: str = ""


_NAME = _Col("Name", "@meta.name", format="name")
_AGE = _Col("Age", "@meta.creationTimestamp")
_CONTAINERS = _Col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _Col("Images", "Images referenced by each container in the template.", priority=1)


def _describe(ref: str) -> str:
    if not ref.startswith("@"):
        return ref
    path, _, field = ref[1:].rpartition(".")
    if path == "meta":
        definition = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    else:
        definition = f"io.k8s.api.{path}"
    props = schema.definitions().get(definition, {}).get("properties", {})
    return str(props.get(field, {}).get("description", ""))


@functools.cache
def _definitions(cols: tuple[_Col, ...]) -> ColumnDefs:
    return tuple(
        (("name", c.name), ("type", c.type), ("format", c.format),
         ("description", _describe(c.desc)), ("priority", c.priority))
        for c in cols
    )
