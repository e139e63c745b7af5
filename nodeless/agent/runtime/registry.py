"""A local OCI registry (Debian's `docker-registry`, the CNCF distribution) on loopback.

containerd pulls every image through CRI, including the pause image and the examples; a
registry on 127.0.0.1 lets that path be the real one (manifests, digests, the shared
content store) on a machine with no internet. containerd reaches it over plain HTTP via a
`hosts.toml` the containerd config points at (see containerd.py).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from nodeless.agent.runtime.process import free_port, spawn, tail, terminate

log = logging.getLogger(__name__)

REGISTRY_BINARY = "/usr/bin/docker-registry"


class RegistryError(RuntimeError):
    """The registry did not start or died."""


def registry_config(storage_dir: Path, address: str) -> str:
    """The registry's YAML config: filesystem storage, HTTP on `address` only, no debug
    listener (its default would be another TCP port)."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage_dir}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        "http:\n"
        f"  addr: {address}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )


@dataclass
class LocalRegistry:
    """Runs `docker-registry` with storage under `data_dir`, on 127.0.0.1:`port` (a free
    port if 0). `address` is "127.0.0.1:PORT", the host part of image references."""

    data_dir: Path
    port: int = 0
    binary: str = REGISTRY_BINARY
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "registry.log"

    async def start(self, timeout: float = 20.0) -> None:
        if not self.port:
            self.port = free_port()
        storage = self.data_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "config.yml"
        config.write_text(registry_config(storage, self.address))
        self._proc = await spawn([self.binary, "serve", str(config)], self.log_file)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await asyncio.to_thread(registry_answers, self.address):
            if self._proc.returncode is not None:
                raise RegistryError(
                    f"docker-registry exited with code {self._proc.returncode}:\n"
                    f"{tail(self.log_file)}")
            if loop.time() > deadline:
                await self.stop()
                raise RegistryError(f"docker-registry did not answer on {self.address} "
                                    f"within {timeout:.0f}s:\n{tail(self.log_file)}")
            await asyncio.sleep(0.05)
        log.info("local registry serving on %s (storage %s)", self.address, storage)

    async def stop(self) -> None:
        if self._proc is not None:
            await terminate(self._proc, "docker-registry", 10.0)
            self._proc = None

    async def wait(self) -> int:
        """Until the registry exits (for a supervisor that treats that as a failure)."""
        assert self._proc is not None, "registry not started"
        return await self._proc.wait()


def registry_answers(address: str) -> bool:
    """True once the registry serves the v2 API root."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def has_manifest(address: str, repository: str, tag: str) -> bool:
    """Whether `address/repository:tag` exists (HEAD on the manifest)."""
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
