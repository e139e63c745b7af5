"""One pod's life on this host, as kubelet's pod worker lives it.

Each pod bound to one of this host's micro-nodes gets a worker: a task that, whenever
woken (the pod changed in the API, one of its containers changed state in containerd,
a back-off or probe fired, a periodic resync), compares what the pod asks for with what
containerd runs (`PodSnapshot`) and does the next steps: sandbox (cgroup at the
provisioned size, volumes, the scheduler's IP, RunPodSandbox), init containers one at a
time, native sidecars, then the containers; restarts with CrashLoopBackOff; the status
kubelet would write. A deleted pod is stopped within its grace period (preStop, SIGTERM,
SIGKILL), its sandbox, IP, volumes and cgroup released, and only then its deletion
confirmed, which is what lets the scheduler free the micro-node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cri_api.v1 import api_pb2

from nodeless.agent.pods.probes import ProbeManager
from nodeless.agent.snapshot import RUNNING, PodSnapshot, pod_snapshot

if TYPE_CHECKING:
    from nodeless.agent.agent import Agent

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0


def pod_key(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass
class Waiting:
    """Why a container is not running, kubelet's `state.waiting` (reason, message)."""

    reason: str
    message: str = ""


@dataclass
class PodRuntime:
    """What the worker learned that containerd does not keep (or that is costly to ask
    again): why containers wait, exit codes of ended runs, the sandbox it made."""

    waiting: dict[str, Waiting] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    exited_reason: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)
    etc_hosts: str | None = None
    sandbox_config: api_pb2.PodSandboxConfig | None = None
    sandbox_ip: str = ""
    running: dict[str, bool] = field(default_factory=dict)
    node_ready: bool = False
    marking_ready: asyncio.Task[None] | None = None
    """The micro-node's Ready being written (started with the sandbox)."""


class PodWorker:
    def __init__(self, agent: Agent, uid: str, pod: dict[str, Any]) -> None:
        self.agent = agent
        self.uid = uid
        self.pod: dict[str, Any] | None = pod
        self.last_pod: dict[str, Any] = pod
        self.key = pod_key(pod)
        self.runtime = PodRuntime()
        self.probes = ProbeManager(pod, exec_sync=agent.exec_sync,
                                   on_change=lambda *_: self.wake(),
                                   on_event=self.record)
        self.finished = False
        self._wake = asyncio.Event()
        self._wake.set()
        self._next_wake: float | None = None
        self._last_status: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None

    # ---- driving -----------------------------------------------------------------------

    def update(self, pod: dict[str, Any] | None) -> None:
        """The API's newest view of the pod; None once it is gone from the API. A change
        of the status alone (mostly our own writes coming back through the watch) does
        not wake the worker: as in kubelet, only what the pod asks for triggers a sync."""
        before = self.pod
        self.pod = pod
        if pod is not None:
            self.last_pod = pod
        if pod is None or before is None or _spec_view(pod) != _spec_view(before):
            self._wake.set()

    def wake(self, after: float | None = None) -> None:
        if after is None:
            self._wake.set()
        else:
            at = time.monotonic() + after
            if self._next_wake is None or at < self._next_wake:
                self._next_wake = at

    async def run(self) -> None:
        failures = 0
        while not self.finished:
            timeout = RESYNC_SECONDS
            if self._next_wake is not None:
                timeout = max(0.0, min(timeout, self._next_wake - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._next_wake = None
            try:
                await self.sync()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(10.0, 0.2 * 2 ** min(failures, 6))
                log.warning("pod %s: sync failed (%s: %s); again in %.1fs", self.key,
                            type(exc).__name__, exc, delay,
                            exc_info=failures == 1 and not isinstance(exc, grpc.aio.AioRpcError))
                self.wake(delay)

    # ---- one pass ----------------------------------------------------------------------

    async def sync(self) -> None:
        pod = self.pod
        if pod is None:  # force-deleted: nothing to confirm, just stop everything now
            await self.teardown(grace=0)
            self.finished = True
            return
        self.probes.set_pod(pod)
        if pod["metadata"].get("deletionTimestamp"):
            await self.terminate(pod)
            return
        lifecycle = self.agent.lifecycle
        snapshot = await pod_snapshot(self.agent.cri, self.uid)
        if is_terminal(pod):
            await self.stop_sandboxes(snapshot)
            return
        sandbox = snapshot.ready_sandbox
        if sandbox is None:
            if lifecycle.pod_finished(pod, await lifecycle.latest_statuses(snapshot, None)):
                await self.finish(pod, snapshot)
                return
            sandbox_id = await self.start_sandbox(pod, snapshot)
            if sandbox_id is None:
                await self.write_status(pod, snapshot, None)
                return
            # No re-read: RunPodSandbox adds no container, so the snapshot's containers
            # (their attempt numbers) still hold, and none of them is in the new sandbox.
        else:
            sandbox_id = sandbox.id
            if self.runtime.sandbox_config is None:
                try:
                    await lifecycle.adopt_sandbox(self, pod, sandbox)
                except SandboxError as exc:
                    log.warning("pod %s: %s: %s", self.key, exc.reason, exc)
                    self.wake(exc.retry_after)
                    return
        if not await lifecycle.step_containers(self, pod, snapshot, sandbox_id):
            await self.finish(pod, await pod_snapshot(self.agent.cri, self.uid))
            return
        snapshot = await pod_snapshot(self.agent.cri, self.uid)
        if lifecycle.pod_finished(pod, await lifecycle.latest_statuses(snapshot, sandbox_id)):
            await self.finish(pod, snapshot)
            return
        status = await self.write_status(pod, snapshot, sandbox_id)
        if status.get("phase") in ("Succeeded", "Failed"):
            await self.stop_sandboxes(snapshot)

    async def finish(self, pod: dict[str, Any], snapshot: PodSnapshot) -> None:
        """The pod will run nothing more: its final status, then its sandbox stopped (the
        containers stay for `kubectl logs` until the pod is deleted)."""
        ready = snapshot.ready_sandbox
        await self.stop_sandboxes(snapshot)  # sidecars go when the containers are done
        snapshot = await pod_snapshot(self.agent.cri, self.uid)
        await self.write_status(pod, snapshot, ready.id if ready else None, terminal=True)

    def warn(self, reason: str, message: str) -> None:
        self.record("Warning", reason, message)

    def record(self, type_: str, reason: str, message: str) -> None:
        """An Event for the pod, from code that cannot wait for it (the recorder only
        queues it)."""
        asyncio.get_running_loop().create_task(
            self.agent.events.pod(self.last_pod, type_, reason, message))

    async def start_sandbox(self, pod: dict[str, Any], snapshot: PodSnapshot) -> str | None:
        """A fresh sandbox (the previous one died or never was): kills what is left of
        the old one first, as kubelet does when a sandbox changes."""
        await self.stop_sandboxes(snapshot)
        try:
            return await self.agent.lifecycle.run_sandbox(self, pod,
                                                          snapshot.next_sandbox_attempt)
        except SandboxError as exc:
            log.warning("pod %s: %s: %s", self.key, exc.reason, exc)
            self.runtime.waiting["*"] = Waiting("ContainerCreating", str(exc))
            await self.agent.events.pod(pod, "Warning", exc.reason, str(exc))
            self.wake(exc.retry_after)
            return None

    async def stop_sandboxes(self, snapshot: PodSnapshot, *, remove: bool = False,
                             grace: int = 0) -> None:
        cri = self.agent.cri
        for container in snapshot.containers:
            if container.state == RUNNING:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await cri.runtime.StopContainer(api_pb2.StopContainerRequest(
                        container_id=container.id, timeout=grace))
        for sandbox in snapshot.sandboxes:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await cri.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(
                    pod_sandbox_id=sandbox.id))
            if remove:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await cri.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(
                        pod_sandbox_id=sandbox.id))

    # ---- status ------------------------------------------------------------------------

    async def write_status(self, pod: dict[str, Any], snapshot: PodSnapshot,
                           sandbox_id: str | None, *, terminal: bool = False
                           ) -> dict[str, Any]:
        runtime = self.runtime
        if not runtime.node_ready and runtime.marking_ready is None and \
                runtime.sandbox_config is not None:  # an earlier attempt failed: again
            runtime.marking_ready = asyncio.create_task(
                self.agent.mark_node_ready(pod["spec"]["nodeName"]))
        if (marking := runtime.marking_ready) is not None:
            runtime.marking_ready = None
            try:
                await marking
                runtime.node_ready = True
            except Exception as exc:  # containerd or the API hiccuped: the next sync retries
                log.warning("pod %s: marking its micro-node Ready failed: %s", self.key, exc)
                self.wake(2.0)
        status = await self.agent.lifecycle.status(self, pod, snapshot, sandbox_id,
                                                   terminal=terminal)
        comparable = {k: v for k, v in status.items() if k != "conditions"}
        comparable["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                    for c in status.get("conditions") or []]
        if comparable != self._last_status:
            await self.agent.patch_pod_status(pod, status)
            self._last_status = comparable
        return status

    # ---- deletion ----------------------------------------------------------------------

    async def terminate(self, pod: dict[str, Any]) -> None:
        """Graceful deletion: preStop hooks and SIGTERM, SIGKILL when the grace period
        (counted from now, as kubelet counts it: deletionTimestamp has only seconds)
        ends; then release everything and confirm the deletion (grace 0)."""
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        await self.teardown(grace=int(grace), pod=pod)
        await self.agent.confirm_deletion(pod)
        self.finished = True

    async def teardown(self, *, grace: int, pod: dict[str, Any] | None = None) -> None:
        snapshot = await pod_snapshot(self.agent.cri, self.uid)
        if pod is not None and grace > 0:
            await self.agent.lifecycle.stop_containers(self, pod, snapshot, grace)
            snapshot = await pod_snapshot(self.agent.cri, self.uid)
        await self.stop_sandboxes(snapshot, remove=True, grace=0)
        await self.agent.lifecycle.release(self)

    def cleanup_files(self) -> None:
        shutil.rmtree(self.agent.log_directory(self.last_pod), ignore_errors=True)


class SandboxError(Exception):
    """The sandbox cannot be made now; `reason` is the Event's, retried later."""

    def __init__(self, reason: str, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


_STATUS_ONLY_FIELDS = ("resourceVersion", "managedFields")


def _spec_view(pod: dict[str, Any]) -> tuple[Any, Any]:
    """What of a pod can ask the worker for something: its spec and metadata (labels,
    annotations, deletion), not its status or the version a status write gives it."""
    meta = {k: v for k, v in (pod.get("metadata") or {}).items()
            if k not in _STATUS_ONLY_FIELDS}
    return pod.get("spec"), meta


def log_dir_name(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}_{meta['name']}_{meta['uid']}"


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
