"""The API server's client for node agents: `kubectl logs` goes API server -> agent.

kube-apiserver reaches a kubelet at the node's address and daemon port over HTTPS,
authenticating with its own client certificate (`--kubelet-client-certificate`) and, by
default, not verifying the kubelet's serving certificate. nodeless does the same, with
one difference: a Fargate micro-node's address is its pod's IP, which only the pod
answers on, so the agent that runs it names its own endpoint in the node annotation
`KUBELET_ENDPOINT_ANNOTATION`; nodes without it (ordinary kubelets) are reached at
InternalIP:daemonEndpoints.kubeletEndpoint.Port.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from nodeless.apiserver import errors, pki

KUBELET_ENDPOINT_ANNOTATION = "node.nodeless.io/kubelet-endpoint"
CLIENT_NAME = "kube-apiserver-kubelet-client"
CONNECT_TIMEOUT = 5.0


def kubelet_url(node: Mapping[str, Any]) -> str:
    """The agent's base URL for this node, or BadRequest naming what is missing."""
    meta = node.get("metadata") or {}
    if endpoint := (meta.get("annotations") or {}).get(KUBELET_ENDPOINT_ANNOTATION):
        return str(endpoint).rstrip("/")
    status = node.get("status") or {}
    port = (((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
            .get("Port"))
    address = next((a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP"), None)
    if not port or not address:
        raise errors.BadRequest(
            f"node {meta.get('name')!r} has no kubelet endpoint: no "
            f"{KUBELET_ENDPOINT_ANNOTATION} annotation, InternalIP or daemon port")
    host = f"[{address}]" if ":" in str(address) else address
    return f"https://{host}:{port}"


def ensure_client_certificate(material: pki.PKI) -> tuple[Path, Path]:
    """The API server's kubelet client certificate (system:masters, as kube-apiserver's
    is), issued by the cluster CA once and again near expiry."""
    return pki.ensure_leaf(material, material.dir / CLIENT_NAME, CLIENT_NAME, [],
                           organizations=["system:masters"])


class KubeletClient:
    """Opens streams on agents; one connection pool for the server's lifetime."""

    def __init__(self, cert: Path, key: Path) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # kube-apiserver's default, see the docstring
        context.load_cert_chain(cert, key)
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context, limit=256),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
                auto_decompress=False)
        return self._session

    async def container_logs(self, node: Mapping[str, Any], namespace: str, pod: str,
                             container: str, query: Mapping[str, str]
                             ) -> aiohttp.ClientResponse:
        """The agent's open response for kubelet's /containerLogs; the caller streams
        and releases it. A refusal by the agent becomes the APIError it names."""
        url = (f"{kubelet_url(node)}/containerLogs/{quote(namespace)}/{quote(pod)}/"
               f"{quote(container)}")
        try:
            response = await self._client().get(url, params=dict(query))
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.ServiceUnavailable(
                f"the node agent of {(node.get('metadata') or {}).get('name')} did not "
                f"answer: {exc}") from exc
        if response.status != 200:
            text = (await response.text(errors="replace")).strip()
            response.release()
            raise errors.APIError(text or f"node agent answered {response.status}",
                                  code=response.status, reason=_REASONS.get(
                                      response.status, "InternalError"))
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            503: "ServiceUnavailable"}


def log_container(pod: Mapping[str, Any], requested: str | None) -> str:
    """The container `kubectl logs` means, checked as kube-apiserver checks it."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name")
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if not requested:
        if len(containers) != 1:
            message = (f"a container name must be specified for pod {name}, choose one of: "
                   f"[{' '.join(containers)}]")
            if inits:
                message += f" or one of the init containers: [{' '.join(inits)}]"
            raise errors.BadRequest(message)
        requested = containers[0]
    elif requested not in (*containers, *inits, *ephemeral):
        raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
    if not spec.get("nodeName"):
        raise errors.BadRequest(f"pod {name} does not have a host assigned")
    return requested
