"""How every component reaches the Kubernetes API: an async lightkube client built from a
kubeconfig, the same on the embedded API server and on a real cluster.

lightkube speaks httpx; its connections go through `AiohttpTransport` here, not httpx's
own pool. httpx's pool checks every pooled connection for expiry on every request, so a
controller with dozens of requests in flight (the fargate-scheduler under a burst) spent
a third of its time there; aiohttp's connector does not, and parses HTTP in C.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.config.client_adapter import verify_cluster

DEFAULT_CONNECTIONS = 64
"""Connections a client keeps open to the API server at most."""


class _AiohttpBody(httpx2.AsyncByteStream):
    """A response body streamed from aiohttp (watches are long, chunked responses)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx2.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        self._response.release()


@functools.lru_cache(maxsize=64)
def _timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """One (immutable) timeout object per pair of values, not one per request."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """httpx's transport interface over one aiohttp session (created on first use, in
    the loop that uses it)."""

    def __init__(self, ssl_context: ssl.SSLContext, *, connections: int = DEFAULT_CONNECTIONS
                 ) -> None:
        self._ssl = ssl_context
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections,
                                             limit_per_host=self._connections)
            # httpx decodes Content-Encoding itself; aiohttp must hand the bytes over as
            # they came, and add no headers of its own.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = _timeout(timeouts.get("connect"), timeouts.get("read"))
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in request.headers.raw if k.lower() != b"host"]
        try:
            response = await self._get_session().request(
                request.method, str(request.url), headers=headers, data=body or None,
                timeout=timeout, allow_redirects=False)
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(str(exc) or "connect timed out",
                                        request=request) from exc
        except aiohttp.ClientConnectionError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx2.TransportError(str(exc), request=request) from exc
        return httpx2.Response(response.status, headers=list(response.raw_headers),
                               stream=_AiohttpBody(response), request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None


def async_client(kubeconfig: Path | str | None = None, *, field_manager: str = "nodeless",
                 connections: int = DEFAULT_CONNECTIONS) -> AsyncClient:
    """A client for `kubeconfig` (else $KUBECONFIG, else in-cluster/~/.kube/config)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    config = (KubeConfig.from_file(path) if path else KubeConfig.from_env()).get()
    assert config.user is not None
    verify = verify_cluster(config.cluster, config.user, config.abs_file, trust_env=False)
    return AsyncClient(config, field_manager=field_manager, trust_env=False,
                       transport=AiohttpTransport(verify, connections=connections))
