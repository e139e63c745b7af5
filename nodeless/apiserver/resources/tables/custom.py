"""The default convertor, and custom resources' additionalPrinterColumns (JSONPath)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.resources.tables.common import (
    _NAME,
    ColumnDefs,
    Obj,
    RowFn,
    _Col,
    _definitions,
    _describe,
    _get,
    _name,
    _parse_time,
    short_human_duration,
)


def _created_at(obj: Obj, now: datetime) -> list[Any]:
    created = _parse_time(_get(obj, "metadata", "creationTimestamp"))
    stamp = (created or datetime(1, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [_name(obj), stamp]


_DEFAULT_COLUMNS = (_NAME, _Col("Created At", "@meta.creationTimestamp", type="date"))


def _printer_columns(rt: ResourceType) -> list[Obj]:
    """The CRD version's additionalPrinterColumns; kube serves Age when there are none."""
    for version in _get(rt.crd, "spec", "versions", default=[]):
        if version.get("name") == rt.version:
            columns = version.get("additionalPrinterColumns") or []
            break
    else:
        columns = _get(rt.crd, "spec", "additionalPrinterColumns", default=[])
    if columns:
        return columns
    return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
             "description": _describe("@meta.creationTimestamp")}]


def _custom_printer(rt: ResourceType) -> tuple[ColumnDefs, RowFn]:
    specs = _printer_columns(rt)
    paths: list[JSONPath | None] = []
    definitions = list(_definitions((_NAME,)))
    for spec in specs:
        path = spec.get("jsonPath", "")
        try:
            paths.append(JSONPath(path))
        except ValueError:
            paths.append(None)
        description = spec.get("description") or (
            f"Custom resource definition column (in JSONPath format): {path}")
        definitions.append((
            ("name", spec.get("name", "")), ("type", spec.get("type", "string")),
            ("format", spec.get("format", "")), ("description", description),
            ("priority", spec.get("priority", 0)),
        ))
    types = [spec.get("type", "string") for spec in specs]

    def row(obj: Obj, now: datetime) -> list[Any]:
        cells: list[Any] = [_name(obj)]
        for path, type_ in zip(paths, types, strict=True):
            found = path.find(obj) if path is not None else []
            cells.append(_custom_cell(type_, found[0], now) if found else None)
        return cells

    return tuple(definitions), row


def _custom_cell(type_: str, value: Any, now: datetime) -> Any:
    """One CR cell: strings print like kubectl's JSONPath, others keep their JSON type."""
    if value is None:
        return None
    if type_ == "string":
        return _jsonpath_text(value)
    if type_ == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return int(value)
    if type_ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        if not isinstance(value, str):
            return None
        t = _parse_time(value)
        return "<invalid>" if t is None else short_human_duration(now - t)
    return None


def _jsonpath_text(value: Any) -> str:
    """How client-go's JSONPath prints a value: JSON for objects and lists, else Go's %v."""
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form outside [1e-4, 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    point = len(text) + exp  # position of the decimal point in `text`
    x = point - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


class JSONPath:
    """The JSONPath subset CRD printer columns use, with missing keys allowed.

    Supports `.field` (with `\\.` escapes), `['field']`, `[n]` (negative counts from the
    end), `[*]`, `.*`, and filters `[?(@.a.b=="x")]`, `!=`, and `[?(@.a)]`. `find` returns
    every match in document order; printers use the first.
    """

    _TOKEN = re.compile(r"""
        \.(?P<field>(?:\\.|[^.\[\\])+)
      | \[\*\](?P<star>)
      | \[(?P<index>-?\d+)\]
      | \[\s*(?P<q>['"])(?P<key>.*?)(?P=q)\s*\]
      | \[\?\(\s*@(?P<fpath>(?:\.(?:\\.|[^.\s=!)\\])+)+)\s*
            (?:(?P<op>==|!=)\s*(?P<lit>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|true|false))?\s*\)\]
    """, re.VERBOSE)

    def __init__(self, text: str) -> None:
        text = text.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].strip()
        if text.startswith("$"):
            text = text[1:]
        self.text = text
        self.steps: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            m = self._TOKEN.match(text, pos)
            if m is None:
                raise ValueError(f"unsupported JSONPath {text!r} at {pos}")
            self.steps.append(self._step(m))
            pos = m.end()
        if not self.steps:
            raise ValueError("empty JSONPath")

    @staticmethod
    def _unescape(field: str) -> str:
        return re.sub(r"\\(.)", r"\1", field)

    def _step(self, m: re.Match[str]) -> tuple[str, Any]:
        if m.group("field") is not None:
            field = m.group("field")
            return ("all", None) if field == "*" else ("field", self._unescape(field))
        if m.group("star") is not None:
            return ("all", None)
        if m.group("index") is not None:
            return ("index", int(m.group("index")))
        if m.group("key") is not None:
            return ("field", m.group("key"))
        fields = [self._unescape(f) for f in
                  re.findall(r"\.((?:\\.|[^.\\])+)", m.group("fpath"))]
        literal: Any = None
        if m.group("op"):
            lit = m.group("lit")
            literal = lit[1:-1] if lit[0] in "\"'" else json.loads(lit)
        return ("filter", (fields, m.group("op"), literal))

    def find(self, data: Any) -> list[Any]:
        current = [data]
        for kind, arg in self.steps:
            current = list(self._apply(kind, arg, current))
        return current

    @staticmethod
    def _apply(kind: str, arg: Any, values: list[Any]) -> Iterator[Any]:
        for value in values:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    yield value[arg]
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    yield value[arg]
            elif kind == "all":
                if isinstance(value, list):
                    yield from value
                elif isinstance(value, dict):
                    yield from (value[k] for k in sorted(value))
            elif kind == "filter" and isinstance(value, list):
                fields, op, literal = arg
                for item in value:
                    found, subject = True, item
                    for f in fields:
                        if isinstance(subject, dict) and f in subject:
                            subject = subject[f]
                        else:
                            found = False
                            break
                    if op is None:
                        keep = found
                    elif op == "==":
                        keep = found and subject == literal
                    else:
                        keep = found and subject != literal
                    if keep:
                        yield item
