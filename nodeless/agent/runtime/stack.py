"""The whole runtime side of one host, started in the order it depends on itself:

    local registry -> example images pushed -> pod network (CNI files, nftables)
    -> containerd (its config names the pause image, the registry, the CNI dirs)

`nodeless up` and the test fixture both start it this way, so the two never drift.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cri_api.v1 import api_pb2

from nodeless.agent.network.podnetwork import PodNetwork
from nodeless.agent.runtime.containerd import Containerd, ContainerdConfig
from nodeless.agent.runtime.cri import CRIClient
from nodeless.agent.runtime.images import ExampleImages, seed_registry
from nodeless.agent.runtime.registry import LocalRegistry

log = logging.getLogger(__name__)


@dataclass
class RuntimeStack:
    """A running registry, pod network and containerd, under one data dir."""

    data_dir: Path
    registry: LocalRegistry
    images: ExampleImages
    network: PodNetwork
    containerd: Containerd

    @property
    def socket(self) -> str:
        """containerd's CRI socket."""
        return str(self.containerd.socket)

    @property
    def registry_address(self) -> str:
        """"127.0.0.1:PORT"."""
        return self.registry.address

    async def remove_all_sandboxes(self) -> None:
        """Stop and remove every sandbox (their containers go with them), forget their IPs.
        For a full stop; an agent restart keeps them (and adopts them)."""
        await remove_all_sandboxes(self.socket, self.network)

    async def stop(self, *, remove_sandboxes: bool = False) -> None:
        """Stop containerd and the registry, remove our firewall table and bridges.
        Without `remove_sandboxes`, containers keep running but lose their network."""
        try:
            if remove_sandboxes:
                await self.remove_all_sandboxes()
        finally:
            await self.containerd.stop()
            await self.registry.stop()
            self.network.teardown()


async def start_stack(data_dir: Path, instance: str, *, registry_port: int = 0,
                      bridge_prefix: str = "", allowed_host_tcp_ports: tuple[int, ...] = (),
                      allowed_host_udp_ports: tuple[int, ...] = ()) -> RuntimeStack:
    """Start registry (on `registry_port`, free if 0), images, pod network and containerd
    under `data_dir`: registry/, images/ (build cache), network/, containerd/.
    `instance` names this host's bridges and nftables table (unique per host)."""
    data_dir = Path(data_dir)
    registry = LocalRegistry(data_dir / "registry", port=registry_port)
    await registry.start()
    network = PodNetwork(data_dir / "network", instance=instance, bridge_prefix=bridge_prefix,
                         allowed_host_tcp_ports=allowed_host_tcp_ports,
                         allowed_host_udp_ports=allowed_host_udp_ports)
    try:
        images = await seed_registry(registry.address, data_dir / "images")
        network.setup()
        containerd = Containerd.managed(ContainerdConfig(
            state_dir=data_dir / "containerd", sandbox_image=images.pause,
            cni_bin_dir=network.plugin_dir, cni_conf_dir=network.conf_dir,
            registries=[registry.address]))
        await containerd.start()
    except BaseException:
        await registry.stop()
        with contextlib.suppress(Exception):
            network.teardown()
        raise
    return RuntimeStack(data_dir, registry, images, network, containerd)


async def remove_all_sandboxes(socket: str, network: PodNetwork) -> None:
    """Stop and remove every sandbox on `socket`, releasing their pods' IP records."""
    async with CRIClient(socket, default_timeout=60) as cri:
        listed = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())
        failed = []
        for sandbox in listed.items:
            try:
                await cri.runtime.StopPodSandbox(
                    api_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox.id))
                await cri.runtime.RemovePodSandbox(
                    api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id))
            except Exception as error:  # noqa: BLE001 - the others still go; reported below
                failed.append(f"{sandbox.id[:12]}: {error}")
                continue
            network.release(sandbox.metadata.namespace, sandbox.metadata.name)
    if failed:
        raise RuntimeError("could not remove sandboxes: " + "; ".join(failed))
