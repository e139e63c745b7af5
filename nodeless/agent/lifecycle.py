"""The steps of a pod's life on CRI, in kubelet's order; the pod worker calls them.

`run_sandbox`: cgroup at the provisioned size, volumes, the micro-node's IP recorded for
our CNI plugin, RunPodSandbox. `step_containers`: init containers one at a time (each
must exit 0), native sidecars (init containers with restartPolicy Always) started and
kept running, then every container; restarts per restartPolicy with CrashLoopBackOff.
`stop_containers`: preStop, SIGTERM, SIGKILL at the end of the grace period, sidecars
last. `status`: what kubelet writes to pods/status. The spec-to-CRI translation lives in
`nodeless.agent.pods`; this module only orders the calls and keeps the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Any

import grpc
from cri_api.v1 import api_pb2

from nodeless.agent.logs import container_log_path
from nodeless.agent.podworker import PodWorker, SandboxError, Waiting, ensure_dir
from nodeless.agent.pulls import field_path as _field_path
from nodeless.agent.snapshot import CREATED, EXITED, RUNNING, PodSnapshot

if TYPE_CHECKING:
    from nodeless.agent.agent import Agent

log = logging.getLogger(__name__)


def node_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return None


class Lifecycle:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    # ---- sandbox -----------------------------------------------------------------------

    async def run_sandbox(self, worker: PodWorker, pod: dict[str, Any], attempt: int) -> str:
        agent = self.agent
        node = agent.nodes.get(pod["spec"]["nodeName"])
        if node is None:
            raise SandboxError("NodeNotReady", f"micro-node {pod['spec']['nodeName']} is not "
                               "known to this host's agent yet", retry_after=0.5)
        ip = node_ip(node)
        if ip is None:
            raise SandboxError("FailedCreatePodSandBox",
                               f"micro-node {node['metadata']['name']} has no InternalIP")
        subnet = agent.subnet_of(ip)
        if subnet is None:
            raise SandboxError("FailedCreatePodSandBox",
                               f"the pod IP {ip} is in no published subnet")
        meta = pod["metadata"]
        cgroup_parent = agent.translation.pod_cgroup(pod, node)
        worker.runtime.volume_paths = await agent.translation.prepare_volumes(pod, node)
        agent.network.assign(meta["namespace"], meta["name"], ip, subnet)
        log_directory = ensure_dir(agent.log_directory(pod))
        config = agent.translation.sandbox_config(
            pod, node=node, attempt=attempt, log_directory=log_directory,
            cgroup_parent=cgroup_parent)
        try:
            response = await agent.cri.runtime.RunPodSandbox(
                api_pb2.RunPodSandboxRequest(config=config))
        except grpc.aio.AioRpcError as exc:
            raise SandboxError("FailedCreatePodSandBox",
                               f"Failed to create pod sandbox: {exc.details()}") from exc
        worker.runtime.sandbox_config = config
        worker.runtime.sandbox_ip = ip
        worker.runtime.waiting.pop("*", None)
        if not worker.runtime.node_ready:
            await agent.mark_node_ready(node["metadata"]["name"])
            worker.runtime.node_ready = True
        return str(response.pod_sandbox_id)

    # ---- containers --------------------------------------------------------------------

    def pod_finished(self, pod: dict[str, Any], snapshot: PodSnapshot, runtime: Any) -> bool:
        """A pod whose containers all ended for good gets no new sandbox."""
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if policy == "Always":
            return False
        containers = (pod.get("spec") or {}).get("containers") or []
        for c in containers:
            latest = snapshot.latest(c["name"])
            if latest is None or latest.state != EXITED:
                return False
            code = runtime.exit_codes.get(latest.id)
            if policy == "OnFailure" and code != 0:
                return False
        return True

    async def step_containers(self, worker: PodWorker, pod: dict[str, Any],
                              snapshot: PodSnapshot, sandbox: api_pb2.PodSandbox) -> None:
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        await self._learn_exits(worker, snapshot)
        for container in spec.get("initContainers") or []:
            latest = snapshot.latest(container["name"], sandbox.id)
            if container.get("restartPolicy") == "Always":  # a native sidecar
                if latest is None or latest.state == EXITED:
                    await self._start_or_back_off(worker, pod, container, snapshot, sandbox,
                                                  latest, restart=True)
                    return
                if latest.state != RUNNING or not worker.probes.started(container["name"]):
                    return
                continue
            if latest is None:
                await self._start(worker, pod, container, snapshot, sandbox)
                return
            if latest.state in (RUNNING, CREATED):
                return
            if worker.runtime.exit_codes.get(latest.id) == 0:
                continue
            await self._start_or_back_off(worker, pod, container, snapshot, sandbox, latest,
                                          restart=policy != "Never")
            return
        for container in spec.get("containers") or []:
            latest = snapshot.latest(container["name"], sandbox.id)
            if latest is None:
                if snapshot.latest(container["name"]) is not None and policy != "Always":
                    previous = snapshot.latest(container["name"])
                    code = worker.runtime.exit_codes.get(previous.id) if previous else None
                    if policy == "Never" or code == 0:
                        continue  # ended for good in an earlier sandbox
                await self._start(worker, pod, container, snapshot, sandbox)
                continue
            if latest.state == RUNNING:
                if worker.probes.liveness_failed(container["name"]):
                    await self._kill_unhealthy(worker, pod, container, latest)
                continue
            if latest.state == EXITED:
                code = worker.runtime.exit_codes.get(latest.id)
                restart = policy == "Always" or (policy == "OnFailure" and code != 0)
                if restart:
                    await self._start_or_back_off(worker, pod, container, snapshot, sandbox,
                                                  latest, restart=True)

    async def _learn_exits(self, worker: PodWorker, snapshot: PodSnapshot) -> None:
        """Exit codes of exited containers (ListContainers does not carry them)."""
        for c in snapshot.containers:
            if c.state == EXITED and c.id not in worker.runtime.exit_codes:
                status = await self.agent.container_status(c.id)
                if status is not None:
                    worker.runtime.exit_codes[c.id] = status.exit_code
                    if status.reason == "OOMKilled" or status.exit_code != 0:
                        worker.runtime.exited_reason[c.id] = status.reason

    async def _start_or_back_off(self, worker: PodWorker, pod: dict[str, Any],
                                 container: dict[str, Any], snapshot: PodSnapshot,
                                 sandbox: api_pb2.PodSandbox,
                                 latest: api_pb2.Container | None, *, restart: bool) -> None:
        name = container["name"]
        if latest is not None and not restart:
            return
        if latest is not None:
            wait = worker.backoff.delay_left(name, latest, time.time())
            if wait > 0:
                worker.runtime.waiting[name] = Waiting(
                    "CrashLoopBackOff",
                    f"back-off {worker.backoff.current(name):.0f}s restarting failed "
                    f"container={name} pod={pod['metadata']['name']}_"
                    f"{pod['metadata']['namespace']}({pod['metadata']['uid']})")
                worker.wake(wait)
                return
        await self._start(worker, pod, container, snapshot, sandbox)

    async def _start(self, worker: PodWorker, pod: dict[str, Any], container: dict[str, Any],
                     snapshot: PodSnapshot, sandbox: api_pb2.PodSandbox) -> None:
        agent, name = self.agent, container["name"]
        try:
            image_ref = await agent.images.ensure(pod, container, worker)
        except Exception as exc:  # ImageError: reason and message are set by ensure
            worker.runtime.waiting[name] = Waiting(getattr(exc, "reason", "ErrImagePull"),
                                                   str(exc))
            worker.wake(getattr(exc, "retry_after", 10.0))
            return
        attempt = snapshot.next_attempt(name)
        log_directory = agent.log_directory(pod)
        log_path = container_log_path(log_directory, name, attempt)
        ensure_dir(log_path.parent)
        try:
            config = await agent.translation.container_config(
                pod, container, worker=worker, image_ref=image_ref, attempt=attempt,
                log_path=log_path.relative_to(log_directory))
        except Exception as exc:  # missing ConfigMap/Secret key, bad securityContext
            worker.runtime.waiting[name] = Waiting("CreateContainerConfigError", str(exc))
            await agent.events.pod(pod, "Warning", "Failed", f"Error: {exc}")
            worker.wake(10.0)
            return
        try:
            created = await agent.cri.runtime.CreateContainer(api_pb2.CreateContainerRequest(
                pod_sandbox_id=sandbox.id, config=config,
                sandbox_config=worker.runtime.sandbox_config))
            await agent.events.pod(pod, "Normal", "Created", f"Created container {name}",
                                   field_path=_field_path(pod, name))
            await agent.cri.runtime.StartContainer(api_pb2.StartContainerRequest(
                container_id=created.container_id))
        except grpc.aio.AioRpcError as exc:
            worker.runtime.waiting[name] = Waiting("CreateContainerError", exc.details() or "")
            await agent.events.pod(pod, "Warning", "Failed", f"Error: {exc.details()}",
                                   field_path=_field_path(pod, name))
            worker.wake(5.0)
            return
        worker.runtime.waiting.pop(name, None)
        worker.backoff.started(name, time.time())
        worker.probes.container_started(name, created.container_id)
        await agent.events.pod(pod, "Normal", "Started", f"Started container {name}",
                               field_path=_field_path(pod, name))

    async def _kill_unhealthy(self, worker: PodWorker, pod: dict[str, Any],
                              container: dict[str, Any], latest: api_pb2.Container) -> None:
        name = container["name"]
        await self.agent.events.pod(
            pod, "Normal", "Killing",
            f"Container {name} failed liveness probe, will be restarted",
            field_path=_field_path(pod, name))
        grace = _grace(pod)
        await self._pre_stop(worker, pod, container, latest.id, grace)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.agent.cri.runtime.StopContainer(api_pb2.StopContainerRequest(
                container_id=latest.id, timeout=grace))
        worker.probes.container_stopped(name)
        worker.wake()

    # ---- stopping ----------------------------------------------------------------------

    async def stop_containers(self, worker: PodWorker, pod: dict[str, Any],
                              snapshot: PodSnapshot, grace: int) -> None:
        """preStop hooks and SIGTERM for the containers, then the sidecars in reverse
        order, all within `grace` seconds; StopContainer SIGKILLs at its timeout."""
        deadline = time.monotonic() + grace
        spec = pod.get("spec") or {}
        running = {c.metadata.name: c for c in snapshot.containers if c.state == RUNNING}
        worker.probes.stop()

        async def stop(container: dict[str, Any]) -> None:
            if (current := running.get(container["name"])) is None:
                return
            left = max(0, int(deadline - time.monotonic()))
            await self._pre_stop(worker, pod, container, current.id, left)
            left = max(0, int(deadline - time.monotonic()))
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.agent.cri.runtime.StopContainer(api_pb2.StopContainerRequest(
                    container_id=current.id, timeout=left))

        await asyncio.gather(*(stop(c) for c in spec.get("containers") or []))
        sidecars = [c for c in spec.get("initContainers") or []
                    if c.get("restartPolicy") == "Always"]
        for sidecar in reversed(sidecars):
            await stop(sidecar)

    async def _pre_stop(self, worker: PodWorker, pod: dict[str, Any], container: dict[str, Any],
                        container_id: str, timeout: int) -> None:
        hook = ((container.get("lifecycle") or {}).get("preStop")) or None
        if not hook or timeout <= 0:
            return
        try:
            await asyncio.wait_for(
                self.agent.translation.run_hook(hook, pod, container, container_id,
                                                worker.runtime.sandbox_ip), timeout)
        except Exception as exc:  # kubelet records it and goes on stopping
            await self.agent.events.pod(
                pod, "Warning", "FailedPreStopHook",
                f"PreStopHook failed: {exc or type(exc).__name__}",
                field_path=_field_path(pod, container["name"]))

    async def release(self, worker: PodWorker) -> None:
        """After the sandbox is gone: IP record, volumes, cgroup, files, back-offs."""
        worker.probes.stop()
        pod = worker.pod or worker.last_pod
        if pod is not None:
            meta = pod["metadata"]
            self.agent.network.release(meta["namespace"], meta["name"])
        await self.agent.translation.release(worker.uid)
        worker.cleanup_files()

    # ---- status ------------------------------------------------------------------------

    async def status(self, worker: PodWorker, pod: dict[str, Any], snapshot: PodSnapshot,
                     sandbox: api_pb2.PodSandbox | None) -> dict[str, Any]:
        statuses: dict[str, api_pb2.ContainerStatus] = {}
        previous: dict[str, api_pb2.ContainerStatus] = {}
        for container in _all_containers(pod):
            runs = snapshot.runs(container["name"])
            for run, into in zip(runs[:2], (statuses, previous), strict=False):
                if (found := await self.agent.container_status(run.id)) is not None:
                    into[container["name"]] = found
        worker.runtime.running = {name: s.state == RUNNING for name, s in statuses.items()}
        node = self.agent.nodes.get(pod["spec"]["nodeName"]) or {}
        return self.agent.translation.pod_status(
            pod, sandbox=sandbox, statuses=statuses, previous=previous,
            waiting=worker.runtime.waiting, probes=worker.probes,
            pod_ip=worker.runtime.sandbox_ip or (node_ip(node) or ""),
            host_ip=self.agent.options.address)


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _grace(pod: dict[str, Any]) -> int:
    return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


def subnet_containing(ip: str, cidrs: list[str]) -> str | None:
    address = ipaddress.ip_address(ip)
    for cidr in cidrs:
        if address in ipaddress.ip_network(cidr):
            return cidr
    return None
