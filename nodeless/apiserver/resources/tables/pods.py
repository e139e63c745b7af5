"""The pod printer: readiness, the status reason kubectl shows, restarts, IPs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.resources.tables.common import (
    _AGE,
    _NAME,
    Obj,
    RowFn,
    _age,
    _Col,
    _get,
    _name,
    _parse_time,
    human_duration,
)


def _row_conditions(rt: ResourceType, obj: Obj) -> list[Obj] | None:
    """Pods that ran to completion are marked so clients may hide them (kube does this)."""
    if (rt.group, rt.plural) != ("", "pods"):
        return None
    phase = _get(obj, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


def _restartable(container: Obj | None) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[Obj], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _pod_initialized(conditions: list[Obj]) -> bool:
    for c in conditions:
        if c.get("type") == "Initialized":
            return c.get("status") == "True"
    return False


def _later(a: datetime | None, b: Any) -> datetime | None:
    t = _parse_time(b)
    if t is None:
        return a
    return t if a is None or t > a else a


def _pod(pod: Obj, now: datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    init_list = spec.get("initContainers") or []
    init_specs = {c.get("name"): c for c in init_list}
    total = len(spec.get("containers") or []) + sum(map(_restartable, init_list))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    sidecar_last_restart: datetime | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in conditions):
        reason = "SchedulingGated"

    initializing = False
    n_init = len(init_list)
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount") or 0
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount") or 0
            sidecar_last_restart = _later(sidecar_last_restart, finished)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _pod_initialized(conditions):
        restarts, last_restart = sidecar_restarts, sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount") or 0
            last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
            waiting = _get(cs, "state", "waiting")
            terminated = _get(cs, "state", "terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and _get(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = _get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"

    # kube prints its internal type, where the singular podIP leads podIPs.
    pod_ips = status.get("podIPs") or [{}]
    pod_ip = status.get("podIP") or pod_ips[0].get("ip")
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        by_type: dict[str, Obj] = {}
        for c in conditions:
            by_type.setdefault(c.get("type", ""), c)
        true = sum(1 for g in gates
                   if _get(by_type, g.get("conditionType", ""), "status") == "True")
        gates_text = f"{true}/{len(gates)}"
    return [
        _name(pod), f"{ready}/{total}", reason, restarts_text, _age(pod, now),
        pod_ip or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>", gates_text,
    ]


_POD_COLUMNS = (
    _NAME,
    _Col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _Col("Status", "The aggregate status of the containers in this pod."),
    _Col("Restarts", "The number of times the containers in this pod have been restarted "
         "and when the last container in this pod has restarted."),
    _AGE,
    _Col("IP", "@core.v1.PodStatus.podIP", priority=1),
    _Col("Node", "@core.v1.PodSpec.nodeName", priority=1),
    _Col("Nominated Node", "@core.v1.PodStatus.nominatedNodeName", priority=1),
    _Col("Readiness Gates", "@core.v1.PodSpec.readinessGates", priority=1),
)

PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    ("", "pods"): (_POD_COLUMNS, _pod),
}
