"""Assembling one agent: network, containerd, CRI client, TLS endpoint, the Agent.

Kept apart from `agent.py` so tests can build an Agent on a containerd and network of
their own (the runtime fixture) while `python -m nodeless.agent` builds all of it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from nodeless.agent.agent import Agent, AgentOptions
from nodeless.agent.host import HostOffer
from nodeless.agent.network.podnetwork import PodNetwork
from nodeless.agent.runtime.containerd import Containerd, ContainerdConfig
from nodeless.agent.runtime.cri import CRIClient
from nodeless.agent.runtime.stack import remove_all_sandboxes
from nodeless.agent.server import AgentServer, tls_context
from nodeless.apiserver import pki
from nodeless.kube import async_client

log = logging.getLogger(__name__)

DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


@dataclass
class AgentSetup:
    state_dir: Path
    offer: HostOffer
    kubeconfig: Path | None = None
    containerd_socket: Path | None = None
    pause_image: str | None = None
    registries: list[str] = field(default_factory=list)
    listen_host: str = "127.0.0.1"
    listen_port: int = 10250
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    stop_pods_on_exit: bool = False
    """On a clean stop, remove every sandbox and the pod network (`nodeless down`); a
    kubelet's default, and a killed agent's, is to leave pods running for adoption."""


def instance_id(state_dir: Path) -> str:
    """Names of bridges and the nftables table derive from this: one per state dir."""
    return hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


def serving_material(setup: AgentSetup) -> tuple[Path, Path]:
    """The given certificate, else one from a CA of the agent's own (the API server does
    not verify kubelets' serving certificates by default)."""
    if setup.tls_cert and setup.tls_key:
        return setup.tls_cert, setup.tls_key
    own = pki.ensure_pki(setup.state_dir / "tls", extra_sans=[setup.offer.address])
    return own.server_cert, own.server_key


def client_ca_file(setup: AgentSetup) -> Path:
    """The CA that signs the API server's client certificate: the cluster CA of the
    kubeconfig unless given."""
    if setup.client_ca:
        return setup.client_ca
    config = (KubeConfig.from_file(setup.kubeconfig) if setup.kubeconfig
              else KubeConfig.from_env()).get()
    cluster = config.cluster
    if cluster.certificate_auth:
        return Path(config.abs_file(cluster.certificate_auth))
    if not cluster.certificate_auth_data:
        raise RuntimeError("the kubeconfig names no cluster CA: pass --client-ca")
    path = setup.state_dir / "client-ca.crt"
    path.write_bytes(base64.b64decode(cluster.certificate_auth_data))
    return path


def build_agent(setup: AgentSetup, client: AsyncClient, cri: CRIClient, network: PodNetwork
                ) -> Agent:
    cert, key = serving_material(setup)
    server = AgentServer(None, setup.listen_host, setup.listen_port,
                         tls_context(cert, key, client_ca_file(setup)))
    options = AgentOptions(host=setup.offer.name, address=setup.offer.address,
                           state_dir=setup.state_dir, offer=setup.offer)
    return Agent(client, cri, network, options, server=server)


async def run_agent(setup: AgentSetup, ready: Callable[[], None] | None = None) -> None:
    setup.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    network = PodNetwork(setup.state_dir / "network", instance=instance_id(setup.state_dir))
    network.setup()
    if setup.containerd_socket is not None:
        containerd = await Containerd.attach(setup.containerd_socket)
    else:
        containerd = Containerd.managed(ContainerdConfig(
            state_dir=setup.state_dir / "containerd",
            sandbox_image=setup.pause_image or DEFAULT_PAUSE_IMAGE,
            cni_bin_dir=network.plugin_dir, cni_conf_dir=network.conf_dir,
            registries=setup.registries))
        await containerd.start()
    client = async_client(setup.kubeconfig, field_manager="nodeless-agent")
    cri = CRIClient(str(containerd.socket))
    try:
        await build_agent(setup, client, cri, network).run(ready)
    finally:
        await cri.close()
        await client.close()
        if setup.stop_pods_on_exit:
            try:
                await remove_all_sandboxes(str(containerd.socket), network)
                network.teardown()
            except Exception as exc:  # containerd gone: what is left is adopted next time
                log.warning("pods not stopped on exit: %s", exc)
        with contextlib.suppress(Exception):
            if containerd.owned:
                await containerd.stop()
