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

from nodeless.agent.pods.containers import HASH_ANNOTATION, container_hash
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
CREATED = api_pb2.CONTAINER_CREATED


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


@dataclass(frozen=True)
class Kill:
    """A container to stop; `message` is the `Killing` Event's text."""

    name: str
    container_id: str
    message: str
    reason: str = ""
    """"", "StartupProbe", "LivenessProbe" or "Unknown" (which grace period applies)."""


@dataclass
class Plan:
    """What the worker does next for a pod whose sandbox is ready (computePodActions)."""

    start_init: list[str] = field(default_factory=list)
    """Init containers to start, in spec order (the next init and/or sidecars to restart)."""
    start: list[str] = field(default_factory=list)
    """Regular containers to start (only once the pod has initialized)."""
    kill: list[Kill] = field(default_factory=list)
    """Running containers to stop first (failed probes, changed definition, unknown state)."""
    initialized: bool = False
    kill_pod: bool = False
    """An init container failed under restartPolicy Never: the pod fails."""
    failed_init: str | None = None


ProbeResult = Callable[[str], bool | None]
"""container name -> the probe's result for its current instance (None: none yet)."""


def _none(name: str) -> bool | None:
    return None


def plan(pod: Pod, latest: Mapping[str, api_pb2.ContainerStatus | None], *,
         startup: ProbeResult = _none, liveness: ProbeResult = _none) -> Plan:
    """The next actions, as kubelet's computeInitContainerActions + computePodActions.

    latest: newest CRI status per container name (absent: never created). Init
    containers run one at a time; a sidecar must be running and, with a startup probe,
    have passed it before the next one starts; a failed init container is retried, or
    fails the pod under restartPolicy Never. Once initialized, regular containers are
    started per should_restart, and running ones killed (and restarted unless the policy
    is Never) when their liveness or startup probe failed or their image/name changed."""
    out = Plan()
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return out
    restart_on_failure = ((pod.get("spec") or {}).get("restartPolicy") or "Always") != "Never"
    inits = init_containers(pod)
    initialized = not inits or any(
        (s := latest.get(c.get("name", ""))) is not None and s.state in (CREATED, RUNNING)
        for c in regular_containers(pod))
    previously = initialized
    starts: list[int] = []
    for i in range(len(inits) - 1, -1, -1):
        c = inits[i]
        name = c.get("name", "")
        status = latest.get(name)
        sidecar = is_sidecar(c)
        if status is None:
            if previously and sidecar:
                starts.append(i)
            continue
        if previously and not sidecar:
            continue
        if status.state == CREATED:
            starts.append(i)
        elif status.state == RUNNING:
            if sidecar:
                ready = True
                if c.get("startupProbe"):
                    result = startup(name)
                    if result is not True:
                        ready = False
                        if result is False:
                            out.kill.append(Kill(name, status.id, f"Init container {name} failed "
                                                 "startup probe", "StartupProbe"))
                            starts.append(i)
                if ready:
                    if i == len(inits) - 1:
                        initialized = True
                    elif not previously:
                        starts.append(i + 1)
                    if c.get("livenessProbe") and liveness(name) is False:
                        out.kill.append(Kill(name, status.id, f"Init container {name} failed "
                                             "liveness probe", "LivenessProbe"))
                        starts.append(i)
        elif status.state == EXITED:
            if sidecar:
                starts.append(i)
            elif status.exit_code != 0:
                if not restart_on_failure:
                    return Plan(kill_pod=True, failed_init=name)
                starts.append(i)
            elif i == len(inits) - 1:
                initialized = True
            else:
                starts.append(i + 1)
        else:
            if not sidecar and not restart_on_failure:
                return Plan(kill_pod=True, failed_init=name)
            out.kill.append(Kill(name, status.id, 'Init container is in "unknown" state, try '
                                 "killing it before restart", "Unknown"))
            starts.append(i)
        previously = True
    if not previously:
        starts.append(0)
    out.start_init = [inits[i].get("name", "") for i in sorted(set(starts))]
    out.initialized = initialized
    if not initialized:
        return out
    for c in regular_containers(pod):
        name = c.get("name", "")
        status = latest.get(name)
        if status is None or status.state != RUNNING:
            if should_restart(pod, c, status):
                out.start.append(name)
                if status is not None and status.state not in (CREATED, EXITED):
                    out.kill.append(Kill(name, status.id, 'Container is in "unknown" state, '
                                         "try killing it before restart", "Unknown"))
            continue
        restart, reason = restart_on_failure, ""
        recorded = status.annotations.get(HASH_ANNOTATION)
        if recorded and recorded != container_hash(c):
            message, restart = f"Container {name} definition changed", True
        elif c.get("livenessProbe") and liveness(name) is False:
            message, reason = f"Container {name} failed liveness probe", "LivenessProbe"
        elif c.get("startupProbe") and startup(name) is False:
            message, reason = f"Container {name} failed startup probe", "StartupProbe"
        else:
            continue
        if restart:
            message += ", will be restarted"
            out.start.append(name)
        out.kill.append(Kill(name, status.id, message, reason))
    return out


MIN_GRACE_PERIOD = 2
"""kubelet never gives a container less than 2 s to stop."""


def grace_period(pod: Pod, container: Container, reason: str = "") -> int:
    """Seconds a container gets between SIGTERM (after its preStop hook) and SIGKILL
    (setTerminationGracePeriod): the deletion's grace period, else the probe's own
    terminationGracePeriodSeconds when a failed probe kills it, else the pod's."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        value = int(meta["deletionGracePeriodSeconds"])
    elif spec.get("terminationGracePeriodSeconds") is not None:
        value = int(spec["terminationGracePeriodSeconds"])
        probe = {"StartupProbe": "startupProbe", "LivenessProbe": "livenessProbe"}.get(reason)
        override = (container.get(probe) or {}).get("terminationGracePeriodSeconds") \
            if probe else None
        if override is not None:
            value = int(override)
    else:
        value = MIN_GRACE_PERIOD
    return max(value, MIN_GRACE_PERIOD)


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
