"""The pod status kubelet would write, computed from what the runtime and probes report.

Pure except that exited containers' termination messages are read from their files (and
logs, for FallbackToLogsOnError), as kubelet does. The result is a whole PodStatus dict,
for a patch of the pod's `status` subresource.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cri_api.v1 import api_pb2

from nodeless.agent.pods.containers import (
    RESTART_COUNT_ANNOTATION,
    TERMINATION_MESSAGE_PATH_ANNOTATION,
    TERMINATION_MESSAGE_POLICY_ANNOTATION,
)
from nodeless.agent.pods.podutil import (
    Container,
    Pod,
    init_containers,
    is_sidecar,
    regular_containers,
)
from nodeless.agent.pods.resources import qos_class
from nodeless.agent.pods.restarts import should_restart

RUNTIME = "containerd"
MAX_TERMINATION_MESSAGE = 4096
MAX_TERMINATION_LOG_BYTES = 2048
MAX_TERMINATION_LOG_LINES = 80

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                      "PodScheduled")


@dataclass
class ContainerInfo:
    """What the worker knows of one container (by name)."""

    statuses: Sequence[api_pb2.ContainerStatus] = ()
    """CRI statuses of its instances; the newest is the current one, the one before gives
    lastState (keep the last exited instance until the next one exits)."""
    waiting: tuple[str, str] | None = None
    """(reason, message) of the last failed start (kubelet's reason cache):
    CrashLoopBackOff, ErrImagePull, ImagePullBackOff, CreateContainerConfigError, ..."""
    started: bool | None = None
    """The startup probe's last result for the current instance (None: none yet)."""
    ready: bool | None = None
    """The readiness probe's last result for the current instance (None: none yet)."""


def rfc3339(ns: int | float | dt.datetime) -> str:
    """metav1.Time's JSON form: seconds precision, UTC."""
    if isinstance(ns, dt.datetime):
        when = ns
    else:
        when = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restart_count(status: api_pb2.ContainerStatus) -> int:
    """The restart count kubelet stored in the container's annotations."""
    try:
        return int(status.annotations.get(RESTART_COUNT_ANNOTATION, "0"))
    except ValueError:
        return 0


def by_container(statuses: Iterable[api_pb2.ContainerStatus]
                 ) -> dict[str, list[api_pb2.ContainerStatus]]:
    """A pod's CRI container statuses by container name, newest first (for ContainerInfo
    and restarts.plan, whose `latest` is each list's first)."""
    out: dict[str, list[api_pb2.ContainerStatus]] = {}
    for st in statuses:
        name = st.labels.get("io.kubernetes.container.name") or st.metadata.name
        out.setdefault(name, []).append(st)
    for items in out.values():
        items.sort(key=lambda s: s.created_at, reverse=True)
    return out


def read_cri_log_tail(path: str, lines: int = MAX_TERMINATION_LOG_LINES,
                      limit: int = MAX_TERMINATION_LOG_BYTES) -> str:
    """The last lines of a CRI log file (`<time> <stream> <P|F> <text>`) as the container
    wrote them, at most `limit` bytes: kubelet's fallback termination message."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text: list[str] = []
    for line in raw.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        body = parts[3] if len(parts) == 4 else ""
        text.append(body if parts[2] == "P" else body + "\n")
    joined = "".join(text)
    tail = "".join(joined.splitlines(keepends=True)[-lines:])
    return tail.encode()[:limit].decode("utf-8", "ignore")


def termination_message(status: api_pb2.ContainerStatus, container: Container | None = None
                        ) -> str:
    """The message of an exited container: the last 4 KiB of its termination-message file,
    or with FallbackToLogsOnError and a failure, the tail of its log (getTerminationMessage)."""
    path = status.annotations.get(TERMINATION_MESSAGE_PATH_ANNOTATION) or \
        (container or {}).get("terminationMessagePath", "")
    policy = status.annotations.get(TERMINATION_MESSAGE_POLICY_ANNOTATION) or \
        (container or {}).get("terminationMessagePolicy", "File")
    fallback = (policy == "FallbackToLogsOnError" and status.exit_code != 0
                and status.reason != "ContainerCannotRun")
    message, check_logs = "", fallback
    if path:
        for mount in status.mounts:
            if mount.container_path != path:
                continue
            try:
                with open(mount.host_path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - MAX_TERMINATION_MESSAGE))
                    message = f.read().decode("utf-8", "replace")
                check_logs = fallback and not message
            except FileNotFoundError:
                pass
            except OSError as e:
                return f"Error on reading termination log {mount.host_path}: {e}"
            break
    if check_logs and status.log_path:
        message = read_cri_log_tail(status.log_path)
    return message


def _state(status: api_pb2.ContainerStatus, container: Container | None,
           old: Mapping[str, Any] | None) -> tuple[dict[str, Any], int]:
    """(state, restart count) of one CRI container instance (convertContainerStatus)."""
    count = restart_count(status)
    cid = f"{RUNTIME}://{status.id}"
    if status.state == api_pb2.CONTAINER_RUNNING:
        return {"running": {"startedAt": rfc3339(status.started_at)}}, count
    if status.state == api_pb2.CONTAINER_CREATED:
        return {"waiting": {}}, count
    if status.state == api_pb2.CONTAINER_EXITED:
        message = status.message
        extra = termination_message(status, container)
        if extra:
            message = f"{message}: {extra}" if message else extra
        term: dict[str, Any] = {"exitCode": status.exit_code, "reason": status.reason,
                                "startedAt": rfc3339(status.started_at) if status.started_at
                                else None,
                                "finishedAt": rfc3339(status.finished_at) if status.finished_at
                                else None,
                                "containerID": cid}
        if message:
            term["message"] = message
        if not term["reason"]:
            del term["reason"]
        return {"terminated": term}, count
    if old is not None and "running" in (old.get("state") or {}):
        return {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                               "message": "The container could not be located when the pod "
                                          "was terminated"}}, int(old.get("restartCount", 0)) + 1
    return {"waiting": {}}, count


def _volume_mounts(container: Container) -> list[dict[str, Any]]:
    out = []
    for vm in container.get("volumeMounts") or []:
        item: dict[str, Any] = {"name": vm.get("name", ""), "mountPath": vm.get("mountPath", "")}
        if vm.get("readOnly"):
            item["readOnly"] = True
            item["recursiveReadOnly"] = "Disabled"
        out.append(item)
    return out


def container_statuses(pod: Pod, containers: Sequence[Container],
                       infos: Mapping[str, ContainerInfo], *, init: bool
                       ) -> list[dict[str, Any]]:
    """convertToAPIContainerStatuses plus the probe manager's started/ready."""
    has_init = bool(init_containers(pod))
    default = {"waiting": {"reason": "PodInitializing" if has_init else "ContainerCreating"}}
    old_key = "initContainerStatuses" if init else "containerStatuses"
    old_list = (pod.get("status") or {}).get(old_key) or []
    olds = {s.get("name"): s for s in old_list}
    result: list[dict[str, Any]] = []
    for c in containers:
        name = c.get("name", "")
        info = infos.get(name) or ContainerInfo()
        old = olds.get(name)
        runtime = sorted(info.statuses, key=lambda s: s.created_at, reverse=True)
        status: dict[str, Any] = {"name": name, "image": c.get("image", ""), "imageID": "",
                                  "state": default, "lastState": {}, "ready": False,
                                  "restartCount": 0}
        if old is not None:
            if "terminated" in (old.get("state") or {}):
                status = {**old}
            else:
                status["restartCount"] = int(old.get("restartCount", 0))
                status["lastState"] = old.get("lastState") or {}
            if not runtime and "running" in (old.get("state") or {}) \
                    and status["state"] == default and "terminated" not in status["lastState"]:
                # It ran and is gone from the runtime: show it stopped, not back to Pending.
                status["lastState"] = {"terminated": {
                    "exitCode": 137, "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was deleted.  "
                               "The container used to be Running"}}
                if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    status["restartCount"] += 1
        if runtime:
            cur = runtime[0]
            state, count = _state(cur, c, old)
            status = {"name": name, "image": cur.image.image or c.get("image", ""),
                      "imageID": cur.image_ref, "containerID": f"{RUNTIME}://{cur.id}",
                      "state": state, "lastState": {}, "ready": False, "restartCount": count}
            if len(runtime) > 1:
                status["lastState"], _ = _state(runtime[1], c, None)
        latest = runtime[0] if runtime else None
        skip = init and latest is not None and latest.state == api_pb2.CONTAINER_EXITED \
            and latest.exit_code == 0
        if not skip and info.waiting and should_restart(pod, c, latest):
            if "terminated" in status["state"]:
                status["lastState"] = status["state"]
            reason, message = info.waiting
            waiting = {"reason": reason}
            if message:
                waiting["message"] = message
            status["state"] = {"waiting": waiting}
        _probe_flags(status, c, info, init=init)
        if c.get("volumeMounts"):
            status["volumeMounts"] = _volume_mounts(c)
        result.append(status)
    if not init:
        result.sort(key=lambda s: s["name"])
    return result


def _probe_flags(status: dict[str, Any], c: Container, info: ContainerInfo, *,
                 init: bool) -> None:
    """started and ready as the probe manager's UpdatePodStatus sets them."""
    running = "running" in status["state"]
    if not running:
        started = False
    elif info.started is not None:
        started = info.started
    else:
        started = not c.get("startupProbe")
    status["started"] = started
    if init and not is_sidecar(c):
        term = status["state"].get("terminated")
        status["ready"] = bool(term and term.get("exitCode") == 0)
        return
    if not started:
        status["ready"] = False
        return
    if info.ready is True:
        status["ready"] = True
    else:
        status["ready"] = info.ready is None and not c.get("readinessProbe")


# --- phase and conditions ---------------------------------------------------------

def _get(statuses: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((s for s in statuses if s.get("name") == name), None)


def pod_phase(pod: Pod, statuses: Sequence[Mapping[str, Any]], terminal: bool = False) -> str:
    """kubelet's getPhase over the API container statuses (init and regular)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    pending_init = pending_sidecars = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for c in init_containers(pod):
        s = _get(statuses, c.get("name", ""))
        state = (s or {}).get("state") or {}
        last = (s or {}).get("lastState") or {}
        if is_sidecar(c):
            if s is None:
                unknown += 1
            elif "running" in state:
                if not s.get("started"):
                    pending_sidecars += 1
                running += 1
            elif "terminated" in state:
                pass
            elif "waiting" in state:
                if "terminated" not in last:
                    pending_sidecars += 1
                    waiting += 1
            else:
                pending_sidecars += 1
                unknown += 1
            continue
        if s is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode", 0) != 0:
                failed_init += 1
        elif "waiting" in state:
            if "terminated" in last:
                if last["terminated"].get("exitCode", 0) != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    for c in regular_containers(pod):
        s = _get(statuses, c.get("name", ""))
        state = (s or {}).get("state") or {}
        if s is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode", 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in (s.get("lastState") or {}):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_init > 0 or (pending_sidecars > 0 and not _any_regular_started(pod, statuses)):
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _any_regular_started(pod: Pod, statuses: Sequence[Mapping[str, Any]]) -> bool:
    """HasAnyRegularContainerStarted: a regular container is running or has run."""
    for c in regular_containers(pod):
        state = (_get(statuses, c.get("name", "")) or {}).get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def containers_ready_condition(pod: Pod, statuses: Sequence[Mapping[str, Any]], phase: str
                               ) -> dict[str, Any]:
    unknown, unready = [], []
    for c in [*(c for c in init_containers(pod) if is_sidecar(c)), *regular_containers(pod)]:
        s = _get(statuses, c.get("name", ""))
        if s is None:
            unknown.append(c.get("name", ""))
        elif not s.get("ready"):
            unready.append(c.get("name", ""))
    if phase == "Succeeded" and not unknown:
        return {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}
    if phase == "Failed":
        return {"type": "ContainersReady", "status": "False", "reason": "PodFailed"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_names(unready)}")
    if messages:
        return {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                "message": ", ".join(messages)}
    return {"type": "ContainersReady", "status": "True"}


def ready_condition(pod: Pod, containers_ready: Mapping[str, Any],
                    conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Ready: ContainersReady, then every readiness gate's condition True."""
    if containers_ready["status"] != "True":
        out = {"type": "Ready", "status": containers_ready["status"]}
        for k in ("reason", "message"):
            if k in containers_ready:
                out[k] = containers_ready[k]
        return out
    messages = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        c = _get_condition(conditions, kind)
        if c is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not '
                            "exist.")
        elif c.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", but '
                            f"{c.get('status')}")
    if messages:
        return {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady",
                "message": ", ".join(messages)}
    return {"type": "Ready", "status": "True"}


def _get_condition(conditions: Sequence[Mapping[str, Any]], kind: str
                   ) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def initialized_condition(pod: Pod, statuses: Sequence[Mapping[str, Any]], phase: str
                          ) -> dict[str, Any]:
    inits = init_containers(pod)
    if not inits:
        return {"type": "Initialized", "status": "True"}
    unknown, incomplete = [], []
    for c in inits:
        s = _get(statuses, c.get("name", ""))
        if s is None:
            unknown.append(c.get("name", ""))
        elif is_sidecar(c):
            if not s.get("started"):
                incomplete.append(c.get("name", ""))
        else:
            term = (s.get("state") or {}).get("terminated")
            if not (term and term.get("exitCode") == 0):
                incomplete.append(c.get("name", ""))
    if phase == "Succeeded" and not unknown:
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if _any_regular_started(pod, statuses):
        return {"type": "Initialized", "status": "True"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_names(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {_names(incomplete)}")
    if messages:
        return {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                "message": ", ".join(messages)}
    return {"type": "Initialized", "status": "True"}


def sandbox_ips(sandbox: api_pb2.PodSandboxStatus | None) -> list[str]:
    if sandbox is None or not sandbox.network.ip:
        return []
    return [sandbox.network.ip, *(p.ip for p in sandbox.network.additional_ips)]


def pod_status(pod: Pod, *, sandbox: api_pb2.PodSandboxStatus | None,
               containers: Mapping[str, ContainerInfo], host_ips: Sequence[str] = (),
               terminal: bool = False, now: dt.datetime | None = None) -> dict[str, Any]:
    """The PodStatus kubelet would write (generateAPIPodStatus + the status manager).

    sandbox: the current sandbox's CRI status (None before RunPodSandbox). containers:
    per container name. host_ips: the node's InternalIP(s) (= the pod IP on Fargate).
    terminal: the worker decided the pod will run nothing more (kubelet's podIsTerminal).
    Transition times of unchanged conditions and startTime are kept from pod.status."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = rfc3339(now)
    old = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    inits = container_statuses(pod, init_containers(pod), containers, init=True)
    regular = container_statuses(pod, regular_containers(pod), containers, init=False)
    everything = [*inits, *regular]
    phase = pod_phase(pod, everything, terminal)
    if phase not in ("Failed", "Succeeded") and old.get("phase") in ("Failed", "Succeeded"):
        phase = old["phase"]
    status: dict[str, Any] = {"phase": phase}
    if phase == old.get("phase"):
        for k in ("reason", "message"):
            if old.get(k):
                status[k] = old[k]
    old_conditions = list(old.get("conditions") or [])
    conditions = [c for c in old_conditions if c.get("type") not in KUBELET_CONDITIONS]
    ips = sandbox_ips(sandbox)
    sandbox_ready = sandbox is not None and sandbox.state == api_pb2.SANDBOX_READY and bool(ips)
    conditions.append({"type": "PodReadyToStartContainers",
                       "status": "True" if sandbox_ready else "False"})
    conditions.append(initialized_condition(pod, everything, phase))
    cready = containers_ready_condition(pod, everything, phase)
    conditions.append(ready_condition(pod, cready, conditions))
    conditions.append(cready)
    conditions.append({"type": "PodScheduled", "status": "True"})
    generation = meta.get("generation")
    for c in conditions:
        if c.get("type") not in KUBELET_CONDITIONS:
            continue
        prev = _get_condition(old_conditions, c["type"])
        c["lastProbeTime"] = None
        if prev is not None and prev.get("status") == c["status"] and \
                prev.get("lastTransitionTime"):
            c["lastTransitionTime"] = prev["lastTransitionTime"]
        else:
            c["lastTransitionTime"] = stamp
        if generation is not None:
            c["observedGeneration"] = generation
    status["conditions"] = conditions
    if host_ips:
        status["hostIP"] = host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in host_ips]
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    elif old.get("podIP"):
        status["podIP"] = old["podIP"]
        status["podIPs"] = old.get("podIPs") or [{"ip": old["podIP"]}]
    status["startTime"] = old.get("startTime") or stamp
    if init_containers(pod):
        status["initContainerStatuses"] = inits
    status["containerStatuses"] = regular
    status["qosClass"] = old.get("qosClass") or qos_class(pod)
    if generation is not None:
        status["observedGeneration"] = generation
    return status
