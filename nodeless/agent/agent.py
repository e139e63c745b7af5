"""The host agent: a kubelet for every micro-node placed on this host.

It registers the host (`host.py`), watches the micro-nodes labelled with its name and
the Fargate pods bound to them, and gives each such pod a `PodWorker`. A relist of
containerd every second (kubelet's PLEG) wakes the workers whose containers changed. On
start it adopts what containerd already runs: sandboxes of pods still in the API keep
running under a new worker; sandboxes of pods gone from the API are stopped and removed —
only once the pod list is known, so nothing is killed by mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cri_api.v1 import api_pb2
from lightkube import ApiError, AsyncClient
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from nodeless.agent import host as host_mod
from nodeless.agent.events import EventRecorder
from nodeless.agent.lifecycle import Lifecycle, subnet_containing
from nodeless.agent.logs import LogError, container_log_path, pick_log_file
from nodeless.agent.network.podnetwork import PodNetwork
from nodeless.agent.pods.restarts import CrashLoopBackoff
from nodeless.agent.pods.sandbox import DnsSettings
from nodeless.agent.pods.sources import ApiObjects
from nodeless.agent.pods.volumes import ApiTokenSource, PodVolumes
from nodeless.agent.podworker import PodWorker, log_dir_name
from nodeless.agent.pulls import ImagePuller
from nodeless.agent.runtime.cri import CRIClient
from nodeless.agent.server import AgentServer, LogTarget
from nodeless.agent.snapshot import POD_UID_LABEL, HostState, host_state
from nodeless.aiotasks import cancel_all, until_one_ends
from nodeless.apiserver.kubelet import KUBELET_ENDPOINT_ANNOTATION
from nodeless.fargate.names import HOST_LABEL, HOST_LEASE_NAMESPACE, SCHEDULER_NAME
from nodeless.fargate.resources import Subnet
from nodeless.fargate.scheduler.cache import ObjectCache

log = logging.getLogger(__name__)

RELIST_SECONDS = 1.0
LEASE_TICK_SECONDS = 1.0
"""How often the node leases that are due are looked for."""
KUBELET_VERSION = "v1.37.0-nodeless"


@dataclass
class AgentOptions:
    host: str
    address: str
    state_dir: Path
    offer: host_mod.HostOffer
    listen_host: str = "127.0.0.1"
    listen_port: int = 10250
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Agent:
    def __init__(self, client: AsyncClient, cri: CRIClient, network: PodNetwork,
                 options: AgentOptions, *, server: AgentServer | None = None) -> None:
        self.client, self.cri, self.network, self.options = client, cri, network, options
        self.server = server
        if server is not None:
            server.locator = self
        self.lifecycle = Lifecycle(self)
        self.images = ImagePuller(self)
        self.volumes = PodVolumes(str(options.state_dir / "pods"), ApiObjects(client),
                                  ApiTokenSource(client))
        self.dns = DnsSettings()
        self.backoff = CrashLoopBackoff()
        self.events = EventRecorder(client, options.host)
        self.workers: dict[str, PodWorker] = {}
        self._statuses: dict[str, api_pb2.ContainerStatus] = {}
        self._sandbox_statuses: dict[str, api_pb2.PodSandboxStatus] = {}
        self.nodes_cache = ObjectCache(client, Node, labels={HOST_LABEL: options.host},
                                       handler=self._on_node, name="micro-nodes")
        self.pods_cache = ObjectCache(client, Pod, namespace="*",
                                      fields={"spec.schedulerName": SCHEDULER_NAME},
                                      handler=self._on_pod, name="fargate pods")
        self.subnets_cache = ObjectCache(client, Subnet, name="subnets")
        self._adopted = asyncio.Event()

    # ---- views the lifecycle uses ------------------------------------------------------

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.nodes_cache.objects

    def subnet_of(self, ip: str) -> str | None:
        cidrs = [str((s.get("spec") or {}).get("cidrBlock")) for s in
                 self.subnets_cache.objects.values() if (s.get("spec") or {}).get("cidrBlock")]
        return subnet_containing(ip, cidrs)

    def log_directory(self, pod: dict[str, Any]) -> Path:
        return self.options.state_dir / "logs" / log_dir_name(pod)

    def pod_dir(self, uid: str) -> Path:
        return Path(self.volumes.pod_dir(uid))

    async def exec_sync(self, container_id: str, command: list[str], timeout: float
                        ) -> tuple[int, bytes]:
        """CRI ExecSync, for exec probes and hooks: (exit code, stdout + stderr)."""
        response = await self.cri.runtime.ExecSync(api_pb2.ExecSyncRequest(
            container_id=container_id, cmd=command, timeout=max(1, int(timeout))),
            timeout=timeout + 5)
        return response.exit_code, bytes(response.stdout) + bytes(response.stderr)

    async def container_status(self, container_id: str, listed_state: int | None = None
                               ) -> api_pb2.ContainerStatus | None:
        """CRI ContainerStatus, kept: an exited container's is final, and a running one's
        does not change while it runs, so a kept status whose state is still the one
        containerd lists (`listed_state`, from ListContainers) is answered without a
        call. The relist forgets containers containerd no longer has."""
        known = self._statuses.get(container_id)
        if known is not None and (known.state == api_pb2.ContainerState.CONTAINER_EXITED
                                  or known.state == listed_state):
            return known
        try:
            response = await self.cri.runtime.ContainerStatus(
                api_pb2.ContainerStatusRequest(container_id=container_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        status = response.status
        if status.state in (api_pb2.ContainerState.CONTAINER_EXITED,
                            api_pb2.ContainerState.CONTAINER_RUNNING):
            self._statuses[container_id] = status
        return status

    async def sandbox_status(self, sandbox_id: str, listed_state: int | None = None
                             ) -> api_pb2.PodSandboxStatus:
        """CRI PodSandboxStatus, kept while its state is the one containerd lists (its
        IPs do not change for the life of the sandbox)."""
        known = self._sandbox_statuses.get(sandbox_id)
        if known is not None and known.state == listed_state:
            return known
        status = (await self.cri.runtime.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))).status
        self._sandbox_statuses[sandbox_id] = status
        return status

    # ---- API writes --------------------------------------------------------------------

    async def patch_pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            await self.client.patch(Pod.Status, meta["name"], {"status": status},
                                    namespace=meta["namespace"], patch_type=PatchType.MERGE)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def confirm_deletion(self, pod: dict[str, Any]) -> None:
        """Delete with grace 0 once everything is released: the pod (and with it, through
        the scheduler, the micro-node and its IP) goes. The name cannot be reused before
        this, so checking the uid first is enough to never delete a successor."""
        meta = pod["metadata"]
        try:
            current = await self.client.get(Pod, meta["name"], namespace=meta["namespace"])
            if current.metadata and current.metadata.uid == meta["uid"]:
                await self.client.delete(Pod, meta["name"], namespace=meta["namespace"],
                                         grace_period=0)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        if node := (pod.get("spec") or {}).get("nodeName"):
            with contextlib.suppress(ApiError):  # the micro-node's lease goes with it
                await self.client.delete(Lease, node, namespace=HOST_LEASE_NAMESPACE)

    async def mark_node_ready(self, node_name: str) -> None:
        """The micro-node's Ready condition, versions and where its agent answers."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        endpoint = self.server.url if self.server else ""
        with contextlib.suppress(ApiError):
            if endpoint:
                await self.client.patch(Node, node_name, {"metadata": {"annotations": {
                    KUBELET_ENDPOINT_ANNOTATION: endpoint}}}, patch_type=PatchType.MERGE)
            version = await self.cri.version()
            await self.client.patch(Node.Status, node_name, {"status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port
                                                        if self.server else 0}},
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                             "kubeProxyVersion": "", "operatingSystem": "linux",
                             "architecture": "amd64",
                             "containerRuntimeVersion":
                                 f"{version.runtime_name}://{version.runtime_version}",
                             "machineID": "", "systemUUID": "", "bootID": "",
                             "kernelVersion": "", "osImage": ""}}},
                patch_type=PatchType.MERGE)

    # ---- informer handlers -------------------------------------------------------------

    def _mine(self, pod: dict[str, Any]) -> bool:
        node = (pod.get("spec") or {}).get("nodeName")
        return bool(node) and node in self.nodes

    def _on_pod(self, kind: str, _key: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.update(None)
            return
        if worker is not None:
            worker.update(pod)
        elif self._mine(pod) and self._adopted.is_set():
            self._start_worker(pod)

    def _on_node(self, kind: str, _key: str, node: dict[str, Any]) -> None:
        if kind == "DELETED" or not self._adopted.is_set():
            return
        for pod in list(self.pods_cache.objects.values()):
            if (pod.get("spec") or {}).get("nodeName") == node["metadata"]["name"] and \
                    pod["metadata"]["uid"] not in self.workers:
                self._start_worker(pod)

    def _start_worker(self, pod: dict[str, Any]) -> PodWorker:
        worker = PodWorker(self, pod["metadata"]["uid"], pod)
        log.debug("pod %s: worker started", worker.key)
        self.workers[worker.uid] = worker
        worker.task = asyncio.create_task(self._run_worker(worker), name=f"pod-{worker.key}")
        return worker

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]

    # ---- logs (the agent endpoint's LogLocator) ----------------------------------------

    def locate(self, namespace: str, pod: str, container: str, previous: bool) -> LogTarget:
        found = next((w for w in self.workers.values()
                      if w.last_pod["metadata"]["namespace"] == namespace
                      and w.last_pod["metadata"]["name"] == pod), None)
        if found is None:
            raise LogError(f'pod "{pod}" in namespace "{namespace}" is not on this host', 404)
        directory = self.log_directory(found.last_pod)
        waiting = found.runtime.waiting.get(container)
        try:
            path = pick_log_file(directory, container, previous)
        except LogError:
            if waiting is not None and not previous:
                raise LogError(f'container "{container}" in pod "{pod}" is waiting to '
                               f"start: {waiting.reason}") from None
            raise
        run = int(path.stem)

        def running() -> bool:
            live = self.workers.get(found.uid)
            if live is None:
                return False
            newest = container_log_path(directory, container, run + 1)
            return not newest.exists() and live.runtime.running.get(container, False)

        return LogTarget(path, running)

    # ---- running -----------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        tasks: list[asyncio.Task[Any]] = []
        try:
            if self.server is not None:
                await self.server.start()
                self.options.offer.endpoint = self.server.url
            if not self.options.offer.zones:
                await self._wait_subnets()
            await host_mod.register(self.client, self.options.offer)
            self.events.start()
            tasks = [asyncio.create_task(self.nodes_cache.run(), name="micro-nodes"),
                     asyncio.create_task(self.subnets_cache.run(), name="subnets"),
                     asyncio.create_task(host_mod.heartbeat(self.client, self.options.host),
                                         name="host-lease")]
            await asyncio.gather(self.nodes_cache.synced.wait(), self.subnets_cache.synced.wait())
            tasks.append(asyncio.create_task(self.pods_cache.run(), name="fargate-pods"))
            await self.pods_cache.synced.wait()
            await self.adopt()
            tasks.append(asyncio.create_task(self._relist(), name="relist"))
            tasks.append(asyncio.create_task(self._node_leases(), name="node-leases"))
            if ready is not None:
                ready()
            await until_one_ends(tasks, "a host agent task")
        finally:
            await cancel_all(tasks)
            workers = [w.task for w in self.workers.values() if w.task]
            await cancel_all(workers)
            await self.events.stop()
            if self.server is not None:
                await self.server.stop()

    async def _wait_subnets(self) -> None:
        while True:
            try:
                self.options.offer.zones = await host_mod.served_zones(self.client)
                return
            except RuntimeError as exc:
                log.warning("%s; waiting", exc)
                await asyncio.sleep(1.0)

    async def adopt(self) -> None:
        """Workers for our pods (running sandboxes are picked up by their uid), and the
        teardown of sandboxes whose pod the API no longer has."""
        known = {p["metadata"]["uid"] for p in self.pods_cache.objects.values()}
        for pod in list(self.pods_cache.objects.values()):
            if self._mine(pod):
                self._start_worker(pod)
        self._adopted.set()
        log.info("serving %d micro-nodes, %d pods of this host", len(self.nodes),
                 len(self.workers))
        sandboxes = await self.cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())
        orphans: dict[str, api_pb2.PodSandbox] = {}
        for sandbox in sandboxes.items:
            uid = sandbox.labels.get(POD_UID_LABEL)
            if uid and uid not in known:
                orphans[uid] = sandbox
        for uid, sandbox in orphans.items():
            log.info("pod %s/%s (uid %s) is gone from the API: removing its sandbox",
                     sandbox.metadata.namespace, sandbox.metadata.name, uid)
            ghost = {"metadata": {"uid": uid, "namespace": sandbox.metadata.namespace,
                                  "name": sandbox.metadata.name}, "spec": {}}
            worker = self._start_worker(ghost)
            worker.update(None)

    async def _node_leases(self) -> None:
        """Each running micro-node's Lease in kube-node-lease, renewed as a kubelet
        renews its node's: what tells the control plane the node is alive. Each node is
        renewed RENEW_SECONDS after its own last renewal (the first within a second of
        Ready), so hundreds of nodes make a steady trickle of writes, not a burst."""
        limit = asyncio.Semaphore(16)
        renewed: dict[str, float] = {}

        async def renew(name: str) -> None:
            async with limit:
                try:
                    await host_mod.renew_lease(self.client, name)
                except ApiError as exc:
                    log.debug("lease of %s not renewed: %s", name, exc)

        while True:
            names = {w.last_pod["spec"].get("nodeName") for w in list(self.workers.values())
                     if w.runtime.node_ready} - {None, ""}
            now = time.monotonic()
            due = [n for n in names
                   if n not in renewed or now - renewed[n] >= host_mod.RENEW_SECONDS]
            renewed = {n: now if n in due else renewed[n] for n in names}
            await asyncio.gather(*(renew(n) for n in due))
            await asyncio.sleep(LEASE_TICK_SECONDS)

    def _forget_removed(self, now: HostState) -> None:
        """Kept statuses of containers and sandboxes containerd no longer has."""
        for kept, prefix in ((self._statuses, "c/"), (self._sandbox_statuses, "s/")):
            for gone in [i for i in kept if prefix + i not in now.states]:
                del kept[gone]

    async def _relist(self) -> None:
        before = HostState({})
        while True:
            try:
                now = await host_state(self.cri)
                for uid in now.changed_pods(before):
                    if (worker := self.workers.get(uid)) is not None:
                        worker.wake()
                before = now
                self._forget_removed(now)
            except grpc.aio.AioRpcError as exc:
                log.warning("relisting containerd failed: %s", exc.details())
            await asyncio.sleep(RELIST_SECONDS)
