"""What `nodeless up` runs of the data path: the local registry and one host agent.

The registry (Debian's docker-registry on loopback) is seeded with the pause image and
the example images, built offline, so a machine with no internet runs pods. Their OCI
layouts are built once per machine, in a cache shared by every data dir. The agent
runs as a child process: it supervises containerd, which must not die with a hiccup of
the control plane's process (and the reverse).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nodeless.agent.runtime.images import ExampleImages, seed_registry_sync
from nodeless.agent.runtime.registry import LocalRegistry
from nodeless.apiserver import pki as pki_mod
from nodeless.cli.child import ChildProcessComponent

LAPTOP_OVERCOMMIT_CPU = 32.0
LAPTOP_OVERCOMMIT_MEMORY = 8.0
"""`nodeless up` offers this machine's cores and memory times these, so a laptop runs
hundreds of the smallest pods (0.25 vCPU, 0.5 GB); `nodeless status` says so. A
production host agent offers 1.0: Fargate's guarantee."""
LAPTOP_PODS = 512


def image_cache_dir() -> Path:
    """Where the example images' OCI layouts are kept for every data dir of this user:
    $XDG_CACHE_HOME/nodeless/images (~/.cache/nodeless/images). A fresh data dir then
    only pushes them: building takes umoci 0.5 s on an idle machine, several on a busy one."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nodeless" / "images"


def seed_from_cache(registry_addr: str, cache: Path) -> ExampleImages:
    """Build (if the cache lacks them) and push the example images, holding the cache's
    lock: two `nodeless up` starting at once must not rebuild one layout together."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return seed_registry_sync(registry_addr, cache)


@dataclass
class RegistryComponent:
    """Starts the registry, seeds it, then is ready; a registry that exits fails it."""

    data_dir: Path
    port: int = 0
    name: str = "registry"
    build_dir: Path | None = None
    """The image build cache; default `image_cache_dir()`, else (not writable)
    DATA_DIR/registry/build."""
    images: ExampleImages | None = None
    registry: LocalRegistry | None = field(default=None, repr=False)
    on_ready: Callable[[RegistryComponent], None] | None = field(default=None, repr=False)

    async def run(self, ready: Callable[[], None]) -> None:
        self.registry = LocalRegistry(self.data_dir / "registry", port=self.port)
        await self.registry.start()
        try:
            self.images = await asyncio.to_thread(self._seed, self.registry.address)
            if self.on_ready:
                self.on_ready(self)
            ready()
            code = await self.registry.wait()
            raise RuntimeError(f"docker-registry exited with code {code}")
        finally:
            await asyncio.shield(self.registry.stop())

    def _seed(self, address: str) -> ExampleImages:
        if self.build_dir is not None:
            return seed_from_cache(address, self.build_dir)
        try:
            return seed_from_cache(address, image_cache_dir())
        except OSError:  # a read-only or full home: build in the data dir
            return seed_from_cache(address, self.data_dir / "registry" / "build")


@dataclass
class AgentComponent:
    """The host agent as a child process, configured once the registry is seeded."""

    data_dir: Path
    kubeconfig: Path
    registry: RegistryComponent
    host_name: str = ""
    name: str = "host-agent"
    stop_timeout: float = 20.0

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "agent"

    @property
    def containerd_socket(self) -> Path:
        """Where the agent's containerd listens (endpoints.json names it)."""
        return self.state_dir / "containerd" / "containerd.sock"

    async def run(self, ready: Callable[[], None]) -> None:
        images = self.registry.images
        assert images is not None and self.registry.registry is not None, \
            "the registry component runs first"
        material = pki_mod.PKI.at(self.data_dir)
        cert, key = pki_mod.ensure_leaf(material, self.state_dir / "tls" / "agent",
                                        "nodeless-agent", ["127.0.0.1", "localhost"])
        args = ["--state-dir", str(self.state_dir), "--kubeconfig", str(self.kubeconfig),
                "--pause-image", images.pause, "--registry", self.registry.registry.address,
                "--overcommit-cpu", str(LAPTOP_OVERCOMMIT_CPU),
                "--overcommit-memory", str(LAPTOP_OVERCOMMIT_MEMORY),
                "--pods", str(LAPTOP_PODS), "--listen", "127.0.0.1:0",
                "--tls-cert", str(cert), "--tls-key", str(key),
                "--client-ca", str(material.ca_cert), "--stop-pods-on-exit", "--notify-ready"]
        if self.host_name:
            args += ["--host-name", self.host_name]
        child = ChildProcessComponent(name=self.name, module="nodeless.agent", args=args,
                                      stop_timeout=self.stop_timeout)
        await child.run(ready)
