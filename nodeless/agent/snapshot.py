"""What containerd runs for one pod, read back through CRI: the agent's only memory.

kubelet keeps no database: after a restart it lists sandboxes and containers by the
pod-uid label it put on them and carries on. The agent does the same, so adoption after
a crash is not a special path. A container's restart count is its CRI `attempt`
(kubelet's convention), which outlives a sandbox being recreated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cri_api.v1 import api_pb2

from nodeless.agent.runtime.cri import CRIClient

POD_UID_LABEL = "io.kubernetes.pod.uid"
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"

READY = api_pb2.PodSandboxState.SANDBOX_READY
RUNNING = api_pb2.ContainerState.CONTAINER_RUNNING
CREATED = api_pb2.ContainerState.CONTAINER_CREATED
EXITED = api_pb2.ContainerState.CONTAINER_EXITED


@dataclass
class PodSnapshot:
    sandboxes: list[api_pb2.PodSandbox] = field(default_factory=list)
    containers: list[api_pb2.Container] = field(default_factory=list)

    @property
    def ready_sandbox(self) -> api_pb2.PodSandbox | None:
        ready = [s for s in self.sandboxes if s.state == READY]
        return max(ready, key=lambda s: s.created_at) if ready else None

    @property
    def next_sandbox_attempt(self) -> int:
        return max((s.metadata.attempt for s in self.sandboxes), default=-1) + 1

    def runs(self, name: str) -> list[api_pb2.Container]:
        """Every run of a container still known to containerd, newest first."""
        mine = [c for c in self.containers if c.metadata.name == name]
        return sorted(mine, key=lambda c: (c.metadata.attempt, c.created_at), reverse=True)

    def latest(self, name: str, sandbox_id: str | None = None) -> api_pb2.Container | None:
        runs = self.runs(name)
        if sandbox_id is not None:
            runs = [c for c in runs if c.pod_sandbox_id == sandbox_id]
        return runs[0] if runs else None

    def next_attempt(self, name: str) -> int:
        runs = self.runs(name)
        return runs[0].metadata.attempt + 1 if runs else 0


async def pod_snapshot(cri: CRIClient, uid: str) -> PodSnapshot:
    selector = {POD_UID_LABEL: uid}
    sandboxes = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(
        filter=api_pb2.PodSandboxFilter(label_selector=selector)))
    containers = await cri.runtime.ListContainers(api_pb2.ListContainersRequest(
        filter=api_pb2.ContainerFilter(label_selector=selector)))
    return PodSnapshot(list(sandboxes.items), list(containers.containers))


@dataclass(frozen=True)
class HostState:
    """Every sandbox and container of the host by id -> (pod uid, state): the relist
    that tells which pods changed (kubelet's PLEG)."""

    states: dict[str, tuple[str, int]]

    def changed_pods(self, before: HostState) -> set[str]:
        changed = {uid for key, (uid, state) in self.states.items()
                   if before.states.get(key) != (uid, state)}
        changed |= {uid for key, (uid, _) in before.states.items() if key not in self.states}
        return changed


async def host_state(cri: CRIClient) -> HostState:
    sandboxes = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())
    containers = await cri.runtime.ListContainers(api_pb2.ListContainersRequest())
    states: dict[str, tuple[str, int]] = {}
    for s in sandboxes.items:
        if uid := s.labels.get(POD_UID_LABEL):
            states["s/" + s.id] = (uid, s.state)
    for c in containers.containers:
        if uid := c.labels.get(POD_UID_LABEL):
            states["c/" + c.id] = (uid, c.state)
    return HostState(states)
