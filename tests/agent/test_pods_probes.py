"""Probes against real local servers: httpGet, tcpSocket, exec; thresholds and gating."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from nodeless.agent.pods.probes import ProbeManager, run_probe
from tests.fixtures.apiserver import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def http_port() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    state: dict[str, Any] = {"healthy": True, "seen": []}

    async def health(request: web.Request) -> web.Response:
        state["seen"].append(dict(request.headers))
        return web.Response(status=200 if state["healthy"] else 503, text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/healthz")

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://example.invalid/")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response()

    app = web.Application()
    app.add_routes([web.get("/healthz", health), web.get("/fail", fail),
                    web.get("/redirect", redirect), web.get("/away", away),
                    web.get("/slow", slow)])
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield port, state
    await runner.cleanup()


CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 0}],
             "env": [{"name": "FILE", "value": "/nonexistent"}]}


def with_port(port: int) -> dict[str, Any]:
    return {**CONTAINER, "ports": [{"name": "http", "containerPort": port}]}


@pytest.mark.parametrize(("path", "ok", "message"), [
    ("/healthz", True, "ok"),
    ("/fail", False, "HTTP probe failed with statuscode: 500"),
    ("/redirect", True, "ok"),
    ("/away", True, "Probe terminated redirects, Response body: 302: Found"),
])
async def test_http_get(http_port: tuple[int, dict[str, Any]], path: str, ok: bool,
                        message: str) -> None:
    port, state = http_port
    result = await run_probe({"httpGet": {"path": path, "port": "http",
                                          "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
                             with_port(port), pod_ip="127.0.0.1", container_id="c1",
                             timeout=2, exec_sync=None)
    assert result == (ok, message)
    if path == "/healthz":
        assert state["seen"][0]["User-Agent"].startswith("kube-probe/")
        assert state["seen"][0]["X-Probe"] == "1"


async def test_http_timeout(http_port: tuple[int, dict[str, Any]]) -> None:
    port, _ = http_port
    start = time.monotonic()
    ok, message = await run_probe({"httpGet": {"path": "/slow", "port": port}}, CONTAINER,
                                  pod_ip="127.0.0.1", container_id="c1", timeout=0.5,
                                  exec_sync=None)
    assert not ok and "context deadline exceeded" in message
    assert time.monotonic() - start < 2


async def test_tcp_socket() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await run_probe({"tcpSocket": {"port": port}}, CONTAINER, pod_ip="127.0.0.1",
                               container_id="c", timeout=1, exec_sync=None) == (True, "")
    finally:
        server.close()
        await server.wait_closed()
    ok, message = await run_probe({"tcpSocket": {"port": port}}, CONTAINER,
                                  pod_ip="127.0.0.1", container_id="c", timeout=1,
                                  exec_sync=None)
    assert not ok and message.startswith(f"dial tcp 127.0.0.1:{port}: connect: ")


async def local_exec(container_id: str, cmd: list[str], timeout: float) -> tuple[int, bytes]:
    """ExecSync run on the host instead of in a container: the same contract."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out


async def test_exec_expands_static_env_and_reports_output() -> None:
    ok, out = await run_probe({"exec": {"command": ["sh", "-c", "echo checking $(FILE); "
                                                    "test -e $(FILE)"]}},
                              CONTAINER, pod_ip="", container_id="c", timeout=2,
                              exec_sync=local_exec)
    assert (ok, out) == (False, "checking /nonexistent\n")
    ok, _ = await run_probe({"exec": {"command": ["true"]}}, CONTAINER, pod_ip="",
                            container_id="c", timeout=2, exec_sync=local_exec)
    assert ok
    ok, out = await run_probe({"exec": {"command": ["sleep", "5"]}}, CONTAINER, pod_ip="",
                              container_id="c", timeout=0.3, exec_sync=local_exec)
    assert not ok and "timed out" in out


async def wait_for(predicate: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_readiness_thresholds_and_startup_gating(
        http_port: tuple[int, dict[str, Any]]) -> None:
    port, state = http_port
    container = {"name": "app",
                 "startupProbe": {"exec": {"command": ["test", "-e", "/tmp"]},
                                  "periodSeconds": 0.05},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": port},
                                    "periodSeconds": 0.05, "successThreshold": 2,
                                    "failureThreshold": 2}}
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [container]}}
    changes: list[tuple[str, str, bool]] = []
    events: list[tuple[str, str, str]] = []
    manager = ProbeManager(pod, exec_sync=local_exec, pod_ip="127.0.0.1",
                           on_change=lambda n, k, r: changes.append((n, k, r)),
                           on_event=lambda *e: events.append(e))
    manager.start()
    try:
        await asyncio.sleep(0.2)
        assert manager.ready("app") is None and changes == []     # no container yet
        manager.set_container("app", "c1", running=True, started_at=time.time())
        await wait_for(lambda: manager.ready("app") is True)
        assert changes == [("app", "startup", True), ("app", "readiness", True)]
        assert manager.started("app") is True
        assert len(state["seen"]) >= 2             # two successes before ready
        state["healthy"] = False
        await wait_for(lambda: manager.ready("app") is False)
        assert changes[-1] == ("app", "readiness", False)
        assert events[0] == ("Warning", "Unhealthy",
                             "Readiness probe failed: HTTP probe failed with statuscode: 503")
        # A new container instance starts over: not started, not ready until probed.
        state["healthy"] = True
        manager.set_container("app", "c2", running=True, started_at=time.time())
        await wait_for(lambda: manager.ready("app") is True)
    finally:
        await manager.stop()


async def test_liveness_failure_asks_for_a_restart_once_then_holds() -> None:
    container = {"name": "app",
                 "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 0.05,
                                   "failureThreshold": 3, "initialDelaySeconds": 0.2}}
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [container]}}
    changes: list[tuple[str, str, bool]] = []
    calls: list[float] = []

    async def counting_exec(cid: str, cmd: list[str], timeout: float) -> tuple[int, bytes]:
        calls.append(time.monotonic())
        return await local_exec(cid, cmd, timeout)

    manager = ProbeManager(pod, exec_sync=counting_exec,
                           on_change=lambda n, k, r: changes.append((n, k, r)))
    manager.start()
    started = time.monotonic()
    manager.set_container("app", "c1", running=True, started_at=time.time())
    try:
        await wait_for(lambda: changes == [("app", "liveness", False)])
        assert manager.live("app") is False
        assert calls[0] - started >= 0.19           # initialDelaySeconds
        assert len(calls) == 3                      # failureThreshold failures in a row
        await asyncio.sleep(0.3)
        assert len(calls) == 3                      # on hold until a new container
        manager.set_container("app", "c2", running=True, started_at=time.time())
        await wait_for(lambda: len(calls) > 3)
    finally:
        await manager.stop()


async def test_probes_stop_for_a_deleted_pod_and_exited_never_container() -> None:
    container = {"name": "app", "livenessProbe": {"exec": {"command": ["true"]},
                                                  "periodSeconds": 0.05}}
    pod = {"metadata": {"uid": "u"}, "spec": {"restartPolicy": "Never",
                                               "containers": [container]}}
    manager = ProbeManager(pod, exec_sync=local_exec, on_change=lambda *a: None)
    manager.start()
    manager.set_container("app", "c1", running=False, exited=True)
    try:
        await wait_for(lambda: all(w.task.done() for w in manager._workers))
    finally:
        await manager.stop()


async def test_grpc_health_check() -> None:
    """A real gRPC server answering grpc.health.v1.Health/Check (SERVING, then NOT_SERVING)."""
    import grpc

    serving = {"": 1}

    async def check(request: bytes, context: Any) -> bytes:
        service = request[2:].decode() if request else ""
        return b"\x08" + bytes([serving.get(service, 3)])

    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=lambda b: b, response_serializer=lambda b: b)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        probe = {"grpc": {"port": port}}
        assert await run_probe(probe, CONTAINER, pod_ip="127.0.0.1", container_id="c",
                               timeout=2, exec_sync=None) == (True, "")
        serving[""] = 2
        assert await run_probe(probe, CONTAINER, pod_ip="127.0.0.1", container_id="c",
                               timeout=2, exec_sync=None) == \
            (False, "service unhealthy (responded with 'NOT_SERVING')")
        ok, _ = await run_probe({"grpc": {"port": port, "service": "other"}}, CONTAINER,
                                pod_ip="127.0.0.1", container_id="c", timeout=2,
                                exec_sync=None)
        assert not ok
    finally:
        await server.stop(None)
