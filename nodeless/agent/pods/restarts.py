"""Which containers to (re)start, and the CrashLoopBackOff delay, as kubelet decides them.

`should_restart` is kubelet's ShouldContainerBeRestarted (with native sidecars), `plan`
the order of computePodActions (init containers one by one, sidecars left running once
started, then the regular containers), `CrashLoopBackoff` kubelet's per-container
back-off: 10 s doubling to 300 s, forgotten after 10 minutes without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cri_api.v1 import api_pb2

from nodeless.agent.pods.podutil import (
    Container,
    Pod,
    format_pod,
    go_duration,
    init_containers,
    is_sidecar,
    regular_containers,
)

INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0

RUNNING = api_pb2.CONTAINER_RUNNING
EXITED = api_pb2.CONTAINER_EXITED


def should_restart(pod: Pod, container: Container,
                   latest: api_pb2.ContainerStatus | None) -> bool:
    """Whether the container must be started (again): never started, created but not
    running, unknown, or exited under a restart policy that says so. A sidecar's own
    `restartPolicy: Always` wins over the pod's; a pod being deleted restarts nothing."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if latest is None:
        return True
    if latest.state == RUNNING:
        return False
    if latest.state != EXITED:
        return True
    policy = "Always" if is_sidecar(container) else \
        ((pod.get("spec") or {}).get("restartPolicy") or "Always")
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return latest.exit_code != 0
    return True


@dataclass
class Plan:
    """What the worker does next for a pod whose sandbox is ready."""

    start_init: list[str] = field(default_factory=list)
    """Init containers to start, in order (a restarted sidecar and/or the next init)."""
    start: list[str] = field(default_factory=list)
    """Regular containers to start (only once initialization is done)."""
    initialized: bool = False
    kill_pod: bool = False
    """An init container failed under restartPolicy Never: the pod fails."""
    failed_init: str | None = None


def plan(pod: Pod, latest: Mapping[str, api_pb2.ContainerStatus | None],
         started: Callable[[str], bool] = lambda name: True) -> Plan:
    """The next start actions. latest: newest CRI status per container name (absent: never
    created). started(name): the container's startup probe has succeeded (or it has none)
    and its postStart hook ran; a sidecar must be started before the next init runs."""
    out = Plan()
    spec_policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return out
    any_regular_started = any(
        (s := latest.get(c.get("name", ""))) is not None and s.state in (RUNNING, EXITED)
        for c in regular_containers(pod))
    for c in init_containers(pod):
        name = c.get("name", "")
        status = latest.get(name)
        if is_sidecar(c):
            if status is None or status.state != RUNNING:
                out.start_init.append(name)
                if status is None and not any_regular_started:
                    return out  # start it, then wait until it has started
                continue
            if not started(name) and not any_regular_started:
                return out
            continue
        if any_regular_started:
            continue  # initialization finished before; regular init containers never rerun
        if status is None or status.state not in (RUNNING, EXITED):
            out.start_init.append(name)
            return out
        if status.state == RUNNING:
            return out
        if status.exit_code != 0:
            if spec_policy == "Never":
                return Plan(kill_pod=True, failed_init=name)
            out.start_init.append(name)
            return out
    out.initialized = True
    for c in regular_containers(pod):
        if should_restart(pod, c, latest.get(c.get("name", ""))):
            out.start.append(c.get("name", ""))
    return out


@dataclass
class _Entry:
    backoff: float
    last_update: float


class CrashLoopBackoff:
    """kubelet's container back-off (flowcontrol.Backoff without jitter), keyed by pod uid,
    container name and optionally the container's hash.

    Before restarting an exited container the worker calls `check`: None means restart
    now (and the next delay doubles), a message means wait (`CrashLoopBackOff`). The first
    restart is immediate, then 10 s, 20 s, ... 300 s; a container that ran 10 minutes
    (twice the maximum) since the last restart starts over at 10 s."""

    def __init__(self, initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF,
                 clock: Callable[[], float] = time.time) -> None:
        self.initial, self.maximum, self.clock = initial, maximum, clock
        self._entries: dict[tuple[str, ...], _Entry] = {}

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        return event_time - entry.last_update > 2 * self.maximum

    def in_backoff(self, key: tuple[str, ...], finished_at: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(finished_at, entry):
            return False
        return self.clock() - finished_at < entry.backoff

    def delay(self, key: tuple[str, ...]) -> float:
        """The current back-off window of a key (0 when none)."""
        entry = self._entries.get(key)
        return entry.backoff if entry else 0.0

    def next(self, key: tuple[str, ...], finished_at: float) -> None:
        entry = self._entries.get(key)
        if entry is None or self._expired(finished_at, entry):
            entry = _Entry(self.initial, 0.0)
        else:
            entry.backoff = min(entry.backoff * 2, self.maximum)
        entry.last_update = self.clock()
        self._entries[key] = entry

    def check(self, pod: Pod, container: Container, finished_at: float,
              container_hash: str = "") -> str | None:
        """None: restart now (recorded). Else the waiting message kubelet shows with reason
        `CrashLoopBackOff`, e.g. `back-off 20s restarting failed container=app
        pod=web_default(uid)`. finished_at: the exited container's finish time (unix s)."""
        key = ((pod.get("metadata") or {}).get("uid", ""), container.get("name", ""),
               container_hash)
        if self.in_backoff(key, finished_at):
            return (f"back-off {go_duration(self.delay(key))} restarting failed "
                    f"container={container.get('name', '')} pod={format_pod(pod)}")
        self.next(key, finished_at)
        return None

    def retry_at(self, pod: Pod, container: Container, finished_at: float,
                 container_hash: str = "") -> float:
        """When the back-off of this container ends (unix s), for the worker's timer."""
        key = ((pod.get("metadata") or {}).get("uid", ""), container.get("name", ""),
               container_hash)
        return finished_at + self.delay(key)

    def forget_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._entries if k[0] == pod_uid]:
            del self._entries[key]

    def gc(self) -> None:
        """Drop entries not updated for twice the maximum (kubelet's periodic GC)."""
        now = self.clock()
        for key in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.maximum]:
            del self._entries[key]
