"""Server-side printing: objects to the `meta.k8s.io/v1` Tables `kubectl get` asks for.

kubectl prints what the server sends and adds nothing but padding, so every column and
every cell must be what kube-apiserver sends (`pkg/printers/internalversion`), or users
see a cluster that looks wrong. Kubernetes always prints the wide columns on the server:
kubectl hides columns with priority > 0 unless `-o wide`. Custom resources follow the
apiextensions table convertor (`additionalPrinterColumns`); any type without a printer
gets kube's default convertor (Name, Created At).

Cells are computed from the versioned JSON we store, where kube prints its internal
types; the few places where the two differ (pod and cluster IPs, events.k8s.io events,
quantities) are bridged explicitly in the printers.

The printers live in one module per topic: `common` (durations, cell formats, columns),
`pods`, `core` (the other core/v1 kinds), `workloads` (apps, batch, autoscaling, policy),
`others` (the other groups) and `custom` (the default convertor and custom resources);
this module builds the Table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nodeless.apiserver.errors import BadRequest
from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.resources.tables import core, others, pods, workloads
from nodeless.apiserver.resources.tables.common import (
    ColumnDefs,
    Obj,
    RowFn,
    _Col,
    _definitions,
    _utc,
    human_duration,
    short_human_duration,
)
from nodeless.apiserver.resources.tables.custom import (
    _DEFAULT_COLUMNS,
    JSONPath,
    _created_at,
    _custom_printer,
)
from nodeless.apiserver.resources.tables.pods import _row_conditions

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT = ("None", "Metadata", "Object")

__all__ = ["INCLUDE_OBJECT", "TABLE_API_VERSION", "JSONPath", "human_duration",
           "short_human_duration", "to_table"]


def to_table(
    rt: ResourceType,
    objects: list[Obj],
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    now: datetime | None = None,
    no_headers: bool = False,
    api_version: str = TABLE_API_VERSION,
) -> Obj:
    """A Table of `objects` (a list's items, one GET result, or one watch event's object).

    `list_meta` is the list's metadata; without it the Table carries the single object's
    resourceVersion, as kube does for GET. `no_headers` drops the column definitions, as
    kube does for every watch event after the first. `api_version` is `meta.k8s.io/v1` or
    `meta.k8s.io/v1beta1`, whichever the client negotiated.
    """
    if include_object not in INCLUDE_OBJECT and include_object != "":
        raise BadRequest(f'unrecognized includeObject value: "{include_object}"')
    now = _utc(now) if now is not None else datetime.now(UTC)
    columns, row_fn = _printer_for(rt)
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj, now)}
        conditions = _row_conditions(rt, obj)
        if conditions:
            row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object in ("Metadata", ""):
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": api_version,
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": _table_meta(objects, list_meta),
        "columnDefinitions": [] if no_headers else [dict(c) for c in columns],
        "rows": rows,
    }


def _table_meta(objects: list[Obj], list_meta: dict[str, Any] | None) -> Obj:
    if list_meta is None:
        if len(objects) == 1:
            rv = (objects[0].get("metadata") or {}).get("resourceVersion")
            return {"resourceVersion": rv} if rv else {}
        return {}
    meta = {k: list_meta[k] for k in ("resourceVersion", "continue") if list_meta.get(k)}
    if list_meta.get("remainingItemCount") is not None:
        meta["remainingItemCount"] = list_meta["remainingItemCount"]
    return meta


_PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    **pods.PRINTERS, **core.PRINTERS, **workloads.PRINTERS, **others.PRINTERS,
}
"""Printer of each built-in resource, by (group, plural); each module holds its own."""


def _printer_for(rt: ResourceType) -> tuple[ColumnDefs, RowFn]:
    if rt.crd is not None:
        return _custom_printer(rt)
    columns, row = _PRINTERS.get((rt.group, rt.plural), (_DEFAULT_COLUMNS, _created_at))
    return _definitions(columns), row
