"""A CRI v1 client: containerd's RuntimeService and ImageService over its unix socket.

One grpc.aio channel per containerd. gRPC reconnects a channel by itself; what we add is
that a call made while containerd is restarting waits for it (wait_for_ready, bounded by
the call's timeout) instead of failing at once, and a reconnect backoff short enough that
"containerd is back" means "the client works" within a second, not gRPC's default minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from cri_api.v1 import api_pb2, api_pb2_grpc

DEFAULT_TIMEOUT = 120.0
"""Seconds a call may take, waiting for containerd included, when the caller gives none.
Generous: PullImage of a big image and RunPodSandbox under load are slow but not hung."""

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class CRIUnavailable(RuntimeError):
    """containerd's CRI did not answer in time."""


IDEMPOTENT = frozenset({
    "Version", "Status", "ListPodSandbox", "PodSandboxStatus", "ListContainers",
    "ContainerStatus", "ContainerStats", "ListContainerStats", "PodSandboxStats",
    "ListPodSandboxStats", "StopPodSandbox", "RemovePodSandbox", "StopContainer",
    "RemoveContainer", "UpdateContainerResources", "ListImages", "ImageStatus", "PullImage",
    "RemoveImage", "ImageFsInfo",
})
"""CRI calls safe to send again (CRI defines stop/remove as idempotent; the rest read).
Run/Create/Start/Exec are not: after UNAVAILABLE the caller must look before retrying
(a call containerd refused as "not initialized" never ran: those are retried always)."""


def not_serving(error: grpc.aio.AioRpcError) -> bool:
    """containerd is away (UNAVAILABLE) or up but its CRI still recovering the sandboxes
    it had ("server is not initialized yet", which 1.6 sends with code UNKNOWN)."""
    return error.code() == grpc.StatusCode.UNAVAILABLE or (
        error.code() == grpc.StatusCode.UNKNOWN
        and "not initialized" in (error.details() or ""))


class _WaitForContainerd(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Every unary call waits for the channel to be ready, with a default deadline; a call
    containerd refused while recovering is sent again, and so is an idempotent call cut by
    containerd going away (UNAVAILABLE)."""

    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    client_call_details: Any, request: Any) -> Any:
        timeout = client_call_details.timeout or self.default_timeout
        method = client_call_details.method
        method = (method.decode() if isinstance(method, bytes) else method).rsplit("/", 1)[-1]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            details = client_call_details._replace(
                wait_for_ready=True if client_call_details.wait_for_ready is None
                else client_call_details.wait_for_ready,
                timeout=max(deadline - loop.time(), 0.001))
            call = await continuation(details, request)
            try:
                return await call
            except grpc.aio.AioRpcError as error:
                never_ran = error.code() == grpc.StatusCode.UNKNOWN and not_serving(error)
                retry = never_ran or (method in IDEMPOTENT and not_serving(error))
                if not retry or loop.time() + 0.1 >= deadline:
                    raise
            await asyncio.sleep(0.1)


class CRIClient:
    """`runtime` (RuntimeServiceStub) and `images` (ImageServiceStub) on `socket_path`.

    Create it inside the event loop that uses it; `await close()` when done."""

    def __init__(self, socket_path: str, *, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = str(socket_path)
        self.channel = grpc.aio.insecure_channel(
            f"unix://{self.socket_path}", options=CHANNEL_OPTIONS,
            interceptors=[_WaitForContainerd(default_timeout)])
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)

    async def version(self, timeout: float = 5.0) -> api_pb2.VersionResponse:
        return await self.runtime.Version(api_pb2.VersionRequest(), timeout=timeout)

    async def wait_ready(self, timeout: float = 30.0) -> api_pb2.VersionResponse:
        """Until CRI answers Version; raises CRIUnavailable after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Exception | None = None
        while (left := deadline - loop.time()) > 0:
            try:
                return await self.version(timeout=min(left, 2.0))
            except grpc.aio.AioRpcError as error:
                last = error
                if not (not_serving(error)
                        or error.code() == grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            await asyncio.sleep(0.05)
        detail = last.details() if isinstance(last, grpc.aio.AioRpcError) else last
        raise CRIUnavailable(f"containerd CRI on {self.socket_path} did not answer within "
                             f"{timeout:.0f}s: {detail}")

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> CRIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
