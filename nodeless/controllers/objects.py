"""Facts about objects that several controllers share: controller references, pod
readiness and availability, the order in which surplus pods are deleted, conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(t: datetime | None = None) -> str:
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Obj, *, block: bool = True) -> Obj:
    """A controller reference to `owner` for the objects it creates."""
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": block}


def labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Counts towards a controller's replicas: not finished, not being deleted."""
    return not is_terminal(pod) and not is_deleting(pod)


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, at: datetime | None = None) -> bool:
    """Ready for at least `min_ready_seconds`."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return since is None or (at or now()) - since >= _seconds(min_ready_seconds)


def _seconds(n: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


def restarts(pod: Obj) -> int:
    return sum(int(s.get("restartCount") or 0)
               for s in (pod.get("status") or {}).get("containerStatuses") or [])


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key, first deleted first: unscheduled before scheduled, Pending before
    Unknown before Running, not ready before ready, ready for less time before longer,
    more restarts before fewer, newer before older (ReplicaSet's ActivePods order)."""
    ready_since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    created = parse_time(pod["metadata"].get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(phase(pod), 1),
        1 if is_ready(pod) else 0,
        -(ready_since.timestamp()) if ready_since and is_ready(pod) else 0,
        -restarts(pod),
        -(created.timestamp()) if created else 0,
    )


def set_condition(conditions: list[Obj], new: Obj, *, touch: bool = False) -> list[Obj]:
    """`conditions` with `new` in place of its type; lastTransitionTime kept while the
    status does not change (and lastUpdateTime kept if nothing else changes either,
    unless `touch`: progress made refreshes it)."""
    out, placed = [], False
    for c in conditions:
        if c.get("type") != new["type"]:
            out.append(c)
            continue
        if c.get("status") == new.get("status"):
            new = {**new, "lastTransitionTime": c.get("lastTransitionTime",
                                                      new.get("lastTransitionTime"))}
            if not touch and (c.get("reason") == new.get("reason") and c.get("message") == new.get(
                    "message") and "lastUpdateTime" in c and "lastUpdateTime" in new):
                new["lastUpdateTime"] = c["lastUpdateTime"]
        out.append(new)
        placed = True
    return out if placed else [*out, new]


def remove_condition(conditions: list[Obj], kind: str) -> list[Obj]:
    return [c for c in conditions if c.get("type") != kind]
