"""Small example images built offline from Debian's static binaries, pushed to the local
registry: the pause image every sandbox needs, a busybox shell, an HTTP example.

No Docker engine and no internet here, so an image is assembled the OCI way: `umoci` makes
an OCI layout (a layer from a staging directory, the image config), `skopeo` copies it to
the registry. Both steps are cached: the layout is rebuilt only when a binary or a recipe
changes, a push is skipped when the registry already holds the tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nodeless.agent.runtime.registry import has_manifest

log = logging.getLogger(__name__)

BUSYBOX = "/bin/busybox"
CATATONIT = "/usr/bin/catatonit"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECIPE_VERSION = "2"
"""Bump when a recipe below changes, so cached layouts are rebuilt."""

PAUSE_REPOSITORY, PAUSE_TAG = "nodeless/pause", "3.9-catatonit"
BUSYBOX_REPOSITORY, BUSYBOX_TAG = "library/busybox", "latest"
HTTP_REPOSITORY, HTTP_TAG = "nodeless/http-echo", "latest"
HTTP_PORT = 8080

ECHO_CGI = """#!/bin/sh
# Answers every request with who served it and what was asked.
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "hello from $(hostname)"
echo "$REQUEST_METHOD $REQUEST_URI from $REMOTE_ADDR"
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class ImageBuildError(RuntimeError):
    """umoci or skopeo failed; the message carries their output."""


@dataclass(frozen=True)
class ExampleImages:
    """References (with the registry's host:port) of the images `seed_registry` made."""

    pause: str
    busybox: str
    http: str
    http_port: int = HTTP_PORT


@dataclass
class Recipe:
    """One image: what goes in its single layer (`stage(rootfs)`) and its config."""

    repository: str
    tag: str
    inputs: tuple[str, ...]
    """Host files whose content decides the image (part of the cache key)."""
    stage: Callable[[Path], None]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    exposed_ports: list[str] = field(default_factory=list)

    def cache_key(self) -> str:
        digest = hashlib.sha256(RECIPE_VERSION.encode())
        digest.update(json.dumps([self.repository, self.tag, self.entrypoint, self.cmd,
                                  self.exposed_ports]).encode())
        for path in self.inputs:
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()


def _base_files(root: Path) -> None:
    """What every image has besides its binaries: /etc/passwd, /etc/group, /tmp."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)


def _stage_pause(root: Path) -> None:
    _base_files(root)
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy2(CATATONIT, root / "usr" / "bin" / "catatonit")


def _stage_busybox(root: Path) -> None:
    """busybox plus a symlink per applet at the path busybox itself lists (sh, ip, wget,
    nc, httpd, ...)."""
    _base_files(root)
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = root / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (root / "root").mkdir(exist_ok=True)


def _stage_http(root: Path) -> None:
    _stage_busybox(root)
    www = root / "www"
    (www / "cgi-bin").mkdir(parents=True)
    cgi = www / "cgi-bin" / "index.cgi"
    cgi.write_text(ECHO_CGI)
    cgi.chmod(0o755)


def recipes() -> list[Recipe]:
    return [
        Recipe(PAUSE_REPOSITORY, PAUSE_TAG, (CATATONIT,), _stage_pause,
               entrypoint=["/usr/bin/catatonit", "-P"]),
        Recipe(BUSYBOX_REPOSITORY, BUSYBOX_TAG, (BUSYBOX,), _stage_busybox, cmd=["sh"]),
        Recipe(HTTP_REPOSITORY, HTTP_TAG, (BUSYBOX,), _stage_http,
               entrypoint=["/usr/sbin/httpd", "-f", "-v", "-p", str(HTTP_PORT), "-h", "/www"],
               exposed_ports=[f"{HTTP_PORT}/tcp"]),
    ]


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                              f"{result.stdout}{result.stderr}")


def build_layout(recipe: Recipe, workdir: Path) -> Path:
    """The recipe's image as an OCI layout `workdir/<repo>` (tag = recipe.tag), built
    unless the cached one has the same key. Returns the layout dir."""
    layout = workdir / recipe.repository.replace("/", "_")
    stamp = layout.with_suffix(".key")
    key = recipe.cache_key()
    if layout.is_dir() and stamp.is_file() and stamp.read_text() == key:
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    image = f"{layout}:{recipe.tag}"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    with tempfile.TemporaryDirectory(dir=workdir) as staging:
        recipe.stage(Path(staging))
        _run(["umoci", "insert", "--image", image, staging, "/"])
    config = ["umoci", "config", "--image", image, "--author", "nodeless",
              "--config.env", PATH_ENV, "--config.workingdir", "/"]
    for arg in recipe.entrypoint:
        config += ["--config.entrypoint", arg]
    for arg in recipe.cmd:
        config += ["--config.cmd", arg]
    for port in recipe.exposed_ports:
        config += ["--config.exposedports", port]
    _run(config)
    _run(["umoci", "gc", "--layout", str(layout)])
    stamp.write_text(key)
    log.info("built image %s:%s in %s", recipe.repository, recipe.tag, layout)
    return layout


def push(layout: Path, recipe: Recipe, registry_addr: str) -> str:
    """Copy the layout's image to the registry (plain HTTP) unless it is there already;
    returns the reference."""
    ref = f"{registry_addr}/{recipe.repository}:{recipe.tag}"
    if has_manifest(registry_addr, recipe.repository, recipe.tag):
        return ref
    _run(["skopeo", "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false",
          f"oci:{layout}:{recipe.tag}", f"docker://{ref}"])
    log.info("pushed %s", ref)
    return ref


def seed_registry_sync(registry_addr: str, workdir: Path) -> ExampleImages:
    """Build (cached) and push the example images; blocking."""
    os.makedirs(workdir, exist_ok=True)
    refs = [push(build_layout(recipe, workdir), recipe, registry_addr)
            for recipe in recipes()]
    return ExampleImages(pause=refs[0], busybox=refs[1], http=refs[2])


async def seed_registry(registry_addr: str, workdir: Path) -> ExampleImages:
    """Make sure the registry at `registry_addr` ("127.0.0.1:PORT") holds the pause,
    busybox and HTTP example images, building them in `workdir` (a cache kept across
    runs) without any network. Returns their references."""
    return await asyncio.to_thread(seed_registry_sync, registry_addr, Path(workdir))
