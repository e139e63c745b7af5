"""Images through CRI, as kubelet's image manager pulls them.

One containerd content store serves every micro-node of the host, so the second pod of
an image starts without pulling (an image cache Fargate lacks). `imagePullPolicy` is
honoured (Always, IfNotPresent, Never; `:latest` or no tag defaults to Always), the pod's
`imagePullSecrets` (kubernetes.io/dockerconfigjson or dockercfg) become CRI AuthConfig
for the registry they name, and a failed pull backs off (ErrImagePull, then
ImagePullBackOff) per image, 10 s doubling to 300 s, as kubelet does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from cri_api.v1 import api_pb2
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Secret

if TYPE_CHECKING:
    from nodeless.agent.agent import Agent
    from nodeless.agent.podworker import PodWorker

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
DOCKER_HUB = "docker.io"
USER_CACHE_LIMIT = 1024
"""Image IDs whose user is remembered (a host runs far fewer distinct images)."""


class ImageError(Exception):
    def __init__(self, reason: str, message: str, retry_after: float = 10.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


def registry_of(image: str) -> str:
    """The registry host an image reference names (`docker.io` when none)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def pull_policy(container: dict[str, Any]) -> str:
    if policy := container.get("imagePullPolicy"):
        return str(policy)
    image = str(container.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def auths_from_secret(secret: dict[str, Any]) -> dict[str, api_pb2.AuthConfig]:
    """registry -> credentials from a dockerconfigjson/dockercfg Secret."""
    data = secret.get("data") or {}
    raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
    if not raw:
        return {}
    try:
        parsed = json.loads(base64.b64decode(raw))
    except (ValueError, TypeError):
        return {}
    entries = parsed.get("auths", parsed) if isinstance(parsed, dict) else {}
    found: dict[str, api_pb2.AuthConfig] = {}
    for server, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = DOCKER_HUB
        username, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth") and not username:
            with_colon = base64.b64decode(entry["auth"]).decode(errors="replace")
            username, _, password = with_colon.partition(":")
        found[host] = api_pb2.AuthConfig(username=username, password=password,
                                         server_address=host,
                                         identity_token=entry.get("identitytoken", ""))
    return found


@dataclass
class _Backoff:
    delay: float
    until: float
    message: str


class ImagePuller:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._backoff: dict[str, _Backoff] = {}
        self._pulls: dict[str, asyncio.Future[str]] = {}
        self._users: dict[str, tuple[int | None, str]] = {}

    async def ensure(self, pod: dict[str, Any], container: dict[str, Any],
                     worker: PodWorker) -> str:
        """The image's reference in containerd, pulled if the policy says so."""
        image = str(container.get("image") or "")
        policy = pull_policy(container)
        path = field_path(pod, container["name"])
        # Always pulls whatever is present: asking containerd first would be a wasted call.
        present = None if policy == "Always" else await self._present(image)
        if policy == "Never":
            if present is None:
                raise ImageError("ErrImageNeverPull",
                                 f'Container image "{image}" is not present with pull policy '
                                 "of Never")
            return present
        if policy == "IfNotPresent" and present is not None:
            await self.agent.events.pod(pod, "Normal", "Pulled", f'Container image "{image}" '
                                        "already present on machine", field_path=path)
            return present
        if (backoff := self._backoff.get(image)) and backoff.until > time.monotonic():
            raise ImageError("ImagePullBackOff", f'Back-off pulling image "{image}"',
                             retry_after=backoff.until - time.monotonic())
        await self.agent.events.pod(pod, "Normal", "Pulling", f'Pulling image "{image}"',
                                    field_path=path)
        started = time.monotonic()
        try:
            ref = await self._pull_once(image, await self._auth(pod, image))
        except ImageError as exc:
            previous = self._backoff.get(image)
            delay = min(BACKOFF_MAX, previous.delay * 2) if previous else BACKOFF_START
            self._backoff[image] = _Backoff(delay, time.monotonic() + delay, str(exc))
            exc.retry_after = delay
            await self.agent.events.pod(pod, "Warning", "Failed", f"Failed to pull image "
                                        f'"{image}": {exc}', field_path=path)
            raise
        self._backoff.pop(image, None)
        await self.agent.events.pod(
            pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in '
            f"{time.monotonic() - started:.3f}s", field_path=path)
        return ref

    async def user_of(self, image_ref: str) -> tuple[int | None, str]:
        """The image's configured user (uid or name), for runAsNonRoot. Kept per image ID
        (`sha256:...`, what `ensure` returns): an image's config never changes."""
        if (known := self._users.get(image_ref)) is not None:
            return known
        response = await self.agent.cri.images.ImageStatus(api_pb2.ImageStatusRequest(
            image=api_pb2.ImageSpec(image=image_ref)))
        if not response.HasField("image"):
            return None, ""
        image = response.image
        user = (image.uid.value if image.HasField("uid") else None, image.username)
        if image_ref.startswith("sha256:") and len(self._users) < USER_CACHE_LIMIT:
            self._users[image_ref] = user
        return user

    async def _present(self, image: str) -> str | None:
        response = await self.agent.cri.images.ImageStatus(api_pb2.ImageStatusRequest(
            image=api_pb2.ImageSpec(image=image)))
        return response.image.id if response.HasField("image") and response.image.id else None

    async def _pull_once(self, image: str, auth: api_pb2.AuthConfig | None) -> str:
        """Concurrent pulls of one image are one pull."""
        if (running := self._pulls.get(image)) is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pulls[image] = future
        try:
            request = api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image))
            if auth is not None:
                request.auth.CopyFrom(auth)
            try:
                response = await self.agent.cri.images.PullImage(request)
            except grpc.aio.AioRpcError as exc:
                raise ImageError("ErrImagePull", exc.details() or str(exc.code())) from None
            future.set_result(response.image_ref)
            return str(response.image_ref)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody logs it
            raise
        finally:
            del self._pulls[image]

    async def _auth(self, pod: dict[str, Any], image: str) -> api_pb2.AuthConfig | None:
        registry = registry_of(image)
        namespace = pod["metadata"]["namespace"]
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            secret = await _get_secret(self.agent.client, namespace, ref.get("name", ""))
            if secret is not None and (auth := auths_from_secret(secret).get(registry)):
                return auth
        return None


async def _get_secret(client: AsyncClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        secret = await client.get(Secret, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None  # kubelet warns and pulls without it
        raise
    return secret.to_dict()


def field_path(pod: dict[str, Any], name: str) -> str:
    """How Events name a container: `spec.containers{name}`."""
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        if any(c["name"] == name for c in spec.get(kind) or []):
            return f"spec.{kind}{{{name}}}"
    return ""
