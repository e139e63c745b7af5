"""The agent's HTTPS endpoint, kubelet's port: what the API server asks a node for.

Only `/containerLogs/{namespace}/{pod}/{container}` (what `kubectl logs` becomes) and
`/healthz` are served. Every request must present a client certificate signed by the
cluster CA: the API server's kubelet client certificate, as a kubelet requires with
`--client-ca-file`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from nodeless.agent.logs import LogError, LogOptions, stream_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogTarget:
    path: Path
    running: Callable[[], bool]


class LogLocator(Protocol):
    def locate(self, namespace: str, pod: str, container: str, previous: bool) -> LogTarget:
        """The file of the run asked for, or LogError with what kubelet would say."""
        ...


def tls_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=str(client_ca))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def build_app(locator: LogLocator) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def container_logs(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            options = LogOptions.from_query(dict(request.query))
            target = locator.locate(m["namespace"], m["pod"], m["container"],
                                    options.previous)
        except LogError as exc:
            return web.Response(status=exc.code, text=str(exc))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            async for chunk in stream_log(target.path, options, target.running):
                await response.write(chunk)
        except (ConnectionResetError, FileNotFoundError):
            pass  # the client went away, or the pod's logs were removed with it
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    return app


class AgentServer:
    """Serves `build_app` on host:port with TLS; `port` is known once started."""

    def __init__(self, locator: LogLocator | None, host: str, port: int,
                 context: ssl.SSLContext) -> None:
        self.locator, self.host, self.port, self.context = locator, host, port, context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        assert self.locator is not None, "the agent sets itself as the locator"
        self._runner = web.AppRunner(build_app(self.locator), access_log=None,
                                     handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.context,
                           reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("agent endpoint on https://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"
