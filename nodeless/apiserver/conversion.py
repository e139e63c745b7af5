"""Conversion between API versions that share one storage.

kube-apiserver stores core/v1 and events.k8s.io/v1 Events in one place, so an Event a
scheduler writes through either API shows in `kubectl describe` and `kubectl events`
alike. Stored form: core/v1. Custom resources are stored once for all their versions
and read back at the version asked for. Every other type is stored as served.
"""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.resources.registry import ResourceType

# events.k8s.io/v1 field -> core/v1 field
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason",
         "related", "type")


def _is_events_v1(rt: ResourceType) -> bool:
    return rt.group == "events.k8s.io" and rt.kind == "Event"


def to_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if not _is_events_v1(rt):
        return obj
    core: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for name in _SAME:
        if name in obj:
            core[name] = obj[name]
    for new_name, core_name in _EVENT_FIELDS.items():
        if new_name in obj:
            core[core_name] = obj[new_name]
    series = obj.get("series")
    if series:
        core["series"] = {"count": series.get("count"),
                          "lastObservedTime": series.get("lastObservedTime")}
    return core


def from_storage(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as `rt` serves it. Never changes `obj` itself (watchers share it), though
    the result may be `obj` or share parts with it."""
    if rt.is_custom:
        # All served versions of a CRD share one storage; with the `None` conversion
        # strategy kube only rewrites apiVersion to the version asked for.
        if obj.get("apiVersion") == rt.api_version:
            return obj
        return {**obj, "apiVersion": rt.api_version}
    if not _is_events_v1(rt):
        return obj
    event: dict[str, Any] = {"apiVersion": rt.api_version, "kind": "Event"}
    for name in _SAME:
        if name in obj:
            event[name] = obj[name]
    for new_name, core_name in _EVENT_FIELDS.items():
        if core_name in obj:
            event[new_name] = obj[core_name]
    if not event.get("eventTime"):
        # events.k8s.io requires eventTime; core events written by old clients lack it.
        event["eventTime"] = obj.get("firstTimestamp") or (obj.get("metadata") or {}).get(
            "creationTimestamp")
        if event["eventTime"] and event["eventTime"].endswith("Z") and "." not in event[
                "eventTime"]:
            event["eventTime"] = event["eventTime"][:-1] + ".000000Z"
    return event
