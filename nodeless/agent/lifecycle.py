"""The steps of a pod's life on CRI, in kubelet's order; the pod worker calls them.

`run_sandbox`: cgroup at the provisioned size, volumes, /etc/hosts, the micro-node's IP
recorded for our CNI plugin, RunPodSandbox. `step_containers`: kubelet's
computePodActions (`pods.restarts.plan`): init containers one at a time, native
sidecars kept running, then the containers; kills for failed probes; restarts behind
CrashLoopBackOff. `stop_containers`: preStop, SIGTERM, SIGKILL at the end of the grace
period, sidecars last. `status`: what kubelet writes to pods/status. The translation of
the pod spec into CRI messages lives in `nodeless.agent.pods`; this module orders the
calls and keeps the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any

import grpc
from cri_api.v1 import api_pb2

from nodeless.agent.logs import container_log_path
from nodeless.agent.pods import cgroups, containers, env, hosts, restarts, sandbox, status
from nodeless.agent.pods.errors import PodSetupError
from nodeless.agent.pods.podutil import find_container, provisioned_capacity
from nodeless.agent.pods.probes import run_probe
from nodeless.agent.pods.sources import PodSources
from nodeless.agent.podworker import PodWorker, SandboxError, Waiting, ensure_dir
from nodeless.agent.pulls import ImageError, field_path
from nodeless.agent.snapshot import EXITED, RUNNING, PodSnapshot

if TYPE_CHECKING:
    from nodeless.agent.agent import Agent

log = logging.getLogger(__name__)

SANDBOX_STARTS_IN_FLIGHT = max(4, 2 * (os.cpu_count() or 1))
"""RunPodSandbox calls at once. Hundreds at once (pods created together) only share
the CPU: each takes as long as all of them, runs into its CRI deadline and is retried;
in turns, each pod starts as soon as its turn comes (first come, first served)."""


def node_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return None


def subnet_containing(ip: str, cidrs: list[str]) -> str | None:
    address = ipaddress.ip_address(ip)
    for cidr in cidrs:
        if address in ipaddress.ip_network(cidr):
            return cidr
    return None


class Lifecycle:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._sandbox_starts = asyncio.Semaphore(SANDBOX_STARTS_IN_FLIGHT)

    def _node(self, pod: dict[str, Any]) -> dict[str, Any]:
        node = self.agent.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is None:
            raise SandboxError("NodeNotReady", f"micro-node {pod['spec'].get('nodeName')} is "
                               "not known to this host's agent yet", retry_after=0.5)
        return node

    def capacity(self, pod: dict[str, Any]) -> tuple[int, int]:
        """(millicores, bytes) the pod was provisioned: its node's allocatable."""
        node = self.agent.nodes.get((pod.get("spec") or {}).get("nodeName") or "") or {}
        return provisioned_capacity(pod, (node.get("status") or {}).get("allocatable"))

    # ---- sandbox -----------------------------------------------------------------------

    async def prepare_sandbox(self, worker: PodWorker, pod: dict[str, Any], attempt: int
                              ) -> tuple[api_pb2.PodSandboxConfig, str, str]:
        """Everything a sandbox needs on the host (cgroup, volumes, /etc/hosts) and its
        config; idempotent, so an adopted sandbox gets the same. Returns (config, IP,
        subnet)."""
        agent = self.agent
        node = self._node(pod)
        ip = node_ip(node)
        if ip is None:
            raise SandboxError("FailedCreatePodSandBox",
                               f"micro-node {node['metadata']['name']} has no InternalIP")
        subnet = agent.subnet_of(ip)
        if subnet is None:
            raise SandboxError("FailedCreatePodSandBox",
                               f"the pod IP {ip} is in no published subnet")
        meta = pod["metadata"]
        millicores, memory = self.capacity(pod)
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        try:
            cgroup = cgroups.PodCgroup.create(meta["uid"], millicores, memory)
            worker.runtime.volumes = await agent.volumes.setup(
                pod, memory_limit=memory, allocatable=allocatable)
            hostname, domain = sandbox.hostname_and_domain(pod)
            worker.runtime.etc_hosts = hosts.write_etc_hosts(
                agent.volumes.pod_dir(meta["uid"]),
                hosts.etc_hosts([ip], hostname, domain,
                                (pod.get("spec") or {}).get("hostAliases") or []))
            log_directory = ensure_dir(agent.log_directory(pod))
            config = sandbox.sandbox_config(
                pod, log_directory=str(log_directory), cgroup_parent=cgroup.cgroup_parent,
                dns=agent.dns, attempt=attempt, capacity=(millicores, memory),
                warn=lambda reason, message: worker.warn(reason, message))
        except PodSetupError as exc:
            raise SandboxError(getattr(exc, "reason", "FailedCreatePodSandBox"),
                               str(exc), retry_after=10.0) from exc
        return config, ip, subnet

    async def run_sandbox(self, worker: PodWorker, pod: dict[str, Any], attempt: int) -> str:
        meta = pod["metadata"]
        config, ip, subnet = await self.prepare_sandbox(worker, pod, attempt)
        self.agent.network.assign(meta["namespace"], meta["name"], ip, subnet,
                                  uid=meta["uid"])
        log.debug("pod %s/%s: RunPodSandbox (attempt %d, %s)", meta["namespace"],
                  meta["name"], attempt, ip)
        try:
            async with self._sandbox_starts:
                response = await self.agent.cri.runtime.RunPodSandbox(
                    api_pb2.RunPodSandboxRequest(config=config))
        except grpc.aio.AioRpcError as exc:
            raise SandboxError("FailedCreatePodSandBox",
                               f"Failed to create pod sandbox: {exc.details()}") from exc
        await self._serving(worker, pod, config, ip)
        return str(response.pod_sandbox_id)

    async def adopt_sandbox(self, worker: PodWorker, pod: dict[str, Any],
                            running: api_pb2.PodSandbox) -> None:
        """A sandbox this worker did not start (an agent restart): the same preparation,
        without touching it, so restarts of its containers get the same config."""
        config, ip, _ = await self.prepare_sandbox(worker, pod, running.metadata.attempt)
        log.info("pod %s: adopted its running sandbox %s", worker.key, running.id[:12])
        await self._serving(worker, pod, config, ip)

    async def _serving(self, worker: PodWorker, pod: dict[str, Any],
                       config: api_pb2.PodSandboxConfig, ip: str) -> None:
        worker.runtime.sandbox_config = config
        worker.runtime.sandbox_ip = ip
        worker.runtime.waiting.pop("*", None)
        worker.probes.pod_ip = ip
        worker.probes.start()
        if not worker.runtime.node_ready and worker.runtime.marking_ready is None:
            # The node's Ready and this agent's endpoint (two API writes) go alongside the
            # containers' start; the pod's status waits for them (write_status), so the
            # node is Ready first.
            worker.runtime.marking_ready = asyncio.create_task(
                self.agent.mark_node_ready(pod["spec"]["nodeName"]))

    # ---- containers --------------------------------------------------------------------

    async def latest_statuses(self, snapshot: PodSnapshot, sandbox_id: str | None
                              ) -> dict[str, list[api_pb2.ContainerStatus]]:
        """CRI statuses of the pod's containers by name, newest first; with a sandbox id,
        only that sandbox's (a new sandbox starts every container again)."""
        found = []
        for c in snapshot.containers:
            if sandbox_id is not None and c.pod_sandbox_id != sandbox_id:
                continue
            if (st := await self.agent.container_status(c.id, c.state)) is not None:
                found.append(st)
        return status.by_container(found)

    def pod_finished(self, pod: dict[str, Any], statuses: dict[str, list[Any]]) -> bool:
        """No new sandbox for a pod whose containers all ended for good (kubelet does not
        recreate the sandbox of a restartPolicy Never pod whose containers ran)."""
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        if policy == "Always":
            return False
        for c in spec.get("containers") or []:
            runs = statuses.get(c["name"]) or []
            if not runs or runs[0].state != EXITED:
                return False
            if policy == "OnFailure" and runs[0].exit_code != 0:
                return False
        return True

    async def step_containers(self, worker: PodWorker, pod: dict[str, Any],
                              snapshot: PodSnapshot, sandbox_id: str) -> bool:
        """One round of kubelet's actions; False when an init container failed for good
        under restartPolicy Never (the pod fails)."""
        current = await self.latest_statuses(snapshot, sandbox_id)
        latest = {name: runs[0] for name, runs in current.items()}
        for name, st in latest.items():
            worker.probes.set_container(name, st.id, running=st.state == RUNNING,
                                        started_at=st.started_at / 1e9,
                                        exited=st.state == EXITED)
        plan = restarts.plan(pod, latest, startup=worker.probes.started,
                             liveness=worker.probes.live)
        if plan.kill_pod:
            return False
        for kill in plan.kill:
            container = find_container(pod, kill.name) or {"name": kill.name}
            await self.agent.events.pod(pod, "Normal", "Killing", kill.message,
                                        field_path=field_path(pod, kill.name))
            grace = restarts.grace_period(pod, container, kill.reason)
            if kill.reason in ("LivenessProbe", "StartupProbe"):
                await self._pre_stop(worker, pod, container, kill.container_id, grace)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.agent.cri.runtime.StopContainer(api_pb2.StopContainerRequest(
                    container_id=kill.container_id, timeout=grace))
        for name in [*plan.start_init, *plan.start]:
            container = find_container(pod, name)
            if container is None:
                continue
            previous = latest.get(name)
            if previous is not None and previous.state == EXITED:
                finished = previous.finished_at / 1e9
                message = self.agent.backoff.check(pod, container, finished)
                if message is not None:
                    worker.runtime.waiting[name] = Waiting("CrashLoopBackOff", message)
                    await self.agent.events.pod(
                        pod, "Warning", "BackOff", "Back-off restarting failed container "
                        f"{name} in pod {pod['metadata']['name']}_"
                        f"{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                        field_path=field_path(pod, name))
                    worker.wake(max(0.1, self.agent.backoff.retry_at(pod, container, finished)
                                    - time.time()))
                    continue
            await self._start(worker, pod, container, snapshot, sandbox_id)
        return True

    async def _start(self, worker: PodWorker, pod: dict[str, Any], container: dict[str, Any],
                     snapshot: PodSnapshot, sandbox_id: str) -> None:
        agent, name, meta = self.agent, container["name"], pod["metadata"]
        path = field_path(pod, name)
        try:
            image_ref = await agent.images.ensure(pod, container, worker)
        except ImageError as exc:
            worker.runtime.waiting[name] = Waiting(exc.reason, str(exc))
            worker.wake(exc.retry_after)
            return
        attempt = snapshot.next_attempt(name)
        log_directory = agent.log_directory(pod)
        ensure_dir(container_log_path(log_directory, name, attempt).parent)
        _, memory = self.capacity(pod)
        node = agent.nodes.get(pod["spec"].get("nodeName") or "") or {}
        ip = worker.runtime.sandbox_ip
        try:
            sources = PodSources(agent.client,
                                 node_allocatable=(node.get("status") or {}).get(
                                     "allocatable") or {},
                                 pod_ips=[ip] if ip else [], host_ips=[ip] if ip else [])
            envs = await env.resolve_env(pod, container, sources,
                                         warn=lambda r, m: worker.warn(r, m))
            termination = containers.new_termination_log(ensure_dir(
                agent.pod_dir(meta["uid"]) / "containers" / name).as_posix())
            mounts = containers.container_mounts(
                pod, container, worker.runtime.volumes, envs=envs,
                etc_hosts_path=worker.runtime.etc_hosts,
                termination_message_host_path=termination)
            image_uid, image_user = await agent.images.user_of(image_ref)
            config = containers.container_config(
                pod, container, image_ref=image_ref, env=envs, mounts=mounts,
                log_path=containers.container_log_path(name, attempt), attempt=attempt,
                memory_capacity=memory, image_uid=image_uid, image_username=image_user)
        except PodSetupError as exc:
            worker.runtime.waiting[name] = Waiting(getattr(exc, "reason",
                                                           "CreateContainerConfigError"),
                                                   str(exc))
            await agent.events.pod(pod, "Warning", "Failed", f"Error: {exc}", field_path=path)
            worker.wake(10.0)
            return
        try:
            created = await agent.cri.runtime.CreateContainer(api_pb2.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=config,
                sandbox_config=worker.runtime.sandbox_config))
            await agent.events.pod(pod, "Normal", "Created", f"Created container {name}",
                                   field_path=path)
            await agent.cri.runtime.StartContainer(api_pb2.StartContainerRequest(
                container_id=created.container_id))
        except grpc.aio.AioRpcError as exc:
            worker.runtime.waiting[name] = Waiting("CreateContainerError", exc.details() or "")
            await agent.events.pod(pod, "Warning", "Failed", f"Error: {exc.details()}",
                                   field_path=path)
            worker.wake(5.0)
            return
        worker.runtime.waiting.pop(name, None)
        worker.probes.set_container(name, created.container_id, running=True,
                                    started_at=time.time())
        await agent.events.pod(pod, "Normal", "Started", f"Started container {name}",
                               field_path=path)
        await self._post_start(worker, pod, container, created.container_id)

    async def _post_start(self, worker: PodWorker, pod: dict[str, Any],
                          container: dict[str, Any], container_id: str) -> None:
        hook = (container.get("lifecycle") or {}).get("postStart")
        if not hook:
            return
        ok, output = await self._run_hook(worker, hook, container, container_id, 30.0)
        if not ok:
            await self.agent.events.pod(
                pod, "Warning", "FailedPostStartHook", f"PostStartHook failed: {output}",
                field_path=field_path(pod, container["name"]))
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.agent.cri.runtime.StopContainer(api_pb2.StopContainerRequest(
                    container_id=container_id, timeout=restarts.grace_period(pod, container)))

    async def _run_hook(self, worker: PodWorker, hook: dict[str, Any],
                        container: dict[str, Any], container_id: str, timeout: float
                        ) -> tuple[bool, str]:
        if "sleep" in hook:
            await asyncio.sleep(min(timeout, float(hook["sleep"].get("seconds", 0))))
            return True, ""
        try:
            return await run_probe(hook, container, pod_ip=worker.runtime.sandbox_ip,
                                   container_id=container_id, timeout=timeout,
                                   exec_sync=self.agent.exec_sync)
        except Exception as exc:  # the hook's own failure, reported as kubelet does
            return False, str(exc) or type(exc).__name__

    # ---- stopping ----------------------------------------------------------------------

    async def stop_containers(self, worker: PodWorker, pod: dict[str, Any],
                              snapshot: PodSnapshot, grace: int) -> None:
        """preStop hooks and SIGTERM for the containers, then the sidecars in reverse
        order, all within `grace` seconds; StopContainer SIGKILLs at its timeout."""
        deadline = time.monotonic() + grace
        spec = pod.get("spec") or {}
        running = {c.metadata.name: c for c in snapshot.containers if c.state == RUNNING}
        await worker.probes.stop()

        async def stop(container: dict[str, Any]) -> None:
            if (current := running.get(container["name"])) is None:
                return
            left = max(0, math.ceil(deadline - time.monotonic()))
            await self._pre_stop(worker, pod, container, current.id, left)
            left = max(0, math.ceil(deadline - time.monotonic()))
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
        hook = (container.get("lifecycle") or {}).get("preStop")
        if not hook or timeout <= 0:
            return
        ok, output = await self._run_hook(worker, hook, container, container_id, timeout)
        if not ok:
            await self.agent.events.pod(
                pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {output}",
                field_path=field_path(pod, container["name"]))

    async def release(self, worker: PodWorker) -> None:
        """After the sandbox is gone: IP record, volumes, cgroup, files, back-offs."""
        await worker.probes.stop()
        pod = worker.last_pod
        meta = pod["metadata"]
        self.agent.network.release(meta["namespace"], meta["name"])
        await self.agent.volumes.cleanup(worker.uid)
        with contextlib.suppress(OSError, RuntimeError):
            cgroups.PodCgroup.existing(worker.uid).remove()
        self.agent.backoff.forget_pod(worker.uid)
        worker.cleanup_files()

    # ---- status ------------------------------------------------------------------------

    async def status(self, worker: PodWorker, pod: dict[str, Any], snapshot: PodSnapshot,
                     sandbox_id: str | None, *, terminal: bool = False) -> dict[str, Any]:
        every = await self.latest_statuses(snapshot, None)
        infos: dict[str, status.ContainerInfo] = {}
        for c in _all_containers(pod):
            name = c["name"]
            waiting = worker.runtime.waiting.get(name) or worker.runtime.waiting.get("*")
            infos[name] = status.ContainerInfo(
                statuses=(every.get(name) or [])[:2],
                waiting=(waiting.reason, waiting.message) if waiting else None,
                started=worker.probes.started(name), ready=worker.probes.ready(name))
        worker.runtime.running = {name: bool(runs) and runs[0].state == RUNNING
                                  for name, runs in every.items()}
        sandbox_status = None
        if sandbox_id is not None:
            listed = next((s.state for s in snapshot.sandboxes if s.id == sandbox_id), None)
            with contextlib.suppress(grpc.aio.AioRpcError):
                sandbox_status = await self.agent.sandbox_status(sandbox_id, listed)
        node = self.agent.nodes.get((pod.get("spec") or {}).get("nodeName") or "") or {}
        ip = node_ip(node)
        return status.pod_status(pod, sandbox=sandbox_status, containers=infos,
                                 host_ips=[ip] if ip else [], terminal=terminal)


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
