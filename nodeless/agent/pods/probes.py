"""Liveness, readiness and startup probes as kubelet's prober workers run them.

One asyncio task per (container, probe kind). A probe waits initialDelaySeconds after
the container started, runs every periodSeconds with timeoutSeconds, and flips its
result only after successThreshold successes or failureThreshold failures in a row.
Readiness starts as failure, liveness as success, startup as unknown; liveness and
readiness wait until the startup probe has succeeded. A failed liveness or startup
probe puts the worker on hold until the container is replaced (the worker restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from nodeless.agent.pods.env import expand, lookup_in
from nodeless.agent.pods.podutil import Container, Pod, all_containers, go_quote, is_sidecar

log = logging.getLogger(__name__)

KINDS = ("startup", "liveness", "readiness")
USER_AGENT = "kube-probe/1.37"
MAX_BODY = 10 * 1024

ExecSync = Callable[[str, list[str], float], Awaitable[tuple[int, bytes]]]
"""(container id, command, timeout s) -> (exit code, output): CRI ExecSync."""
OnChange = Callable[[str, str, bool], Any]
"""(container name, kind, result): a probe's result changed (may return an awaitable)."""
OnEvent = Callable[[str, str, str], Any]
"""(event type, reason, message) kubelet would record: Unhealthy, ProbeWarning."""


class ProbeError(Exception):
    """The prober itself failed (not the probe): the result is thrown away."""


@dataclass
class ProbeSpec:
    handler: Mapping[str, Any]
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Mapping[str, Any]) -> ProbeSpec:
        return cls(probe, float(probe.get("initialDelaySeconds", 0)),
                   float(probe.get("periodSeconds") or 10), float(probe.get("timeoutSeconds") or 1),
                   int(probe.get("successThreshold") or 1), int(probe.get("failureThreshold") or 3))


def _port(port: Any, container: Container) -> int:
    """A probe port by number or by the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        value = int(port)
    else:
        named = [p for p in container.get("ports") or [] if p.get("name") == port]
        if not named:
            raise ProbeError(f"couldn't find port: {port} in {container.get('name')}")
        value = int(named[0]["containerPort"])
    if not 0 < value < 65536:
        raise ProbeError(f"invalid port number: {value}")
    return value


def _static_env(container: Container) -> dict[str, str]:
    return {e["name"]: str(e.get("value") or "") for e in container.get("env") or []
            if "valueFrom" not in e}


async def run_probe(handler: Mapping[str, Any], container: Container, *, pod_ip: str,
                    container_id: str, timeout: float, exec_sync: ExecSync | None,
                    session: aiohttp.ClientSession | None = None) -> tuple[bool, str]:
    """Run one probe once: (success, output or failure message)."""
    if "exec" in handler:
        if exec_sync is None:
            raise ProbeError("exec probes need an ExecSync")
        look = lookup_in(_static_env(container))
        cmd = [expand(str(a), look) for a in handler["exec"].get("command") or []]
        try:
            code, output = await asyncio.wait_for(exec_sync(container_id, cmd, timeout),
                                                  timeout + 1)
        except TimeoutError:
            return False, f"command {go_quote(' '.join(cmd))} timed out"
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return code == 0, text
    if "httpGet" in handler:
        return await _http_probe(handler["httpGet"], container, pod_ip, timeout, session)
    if "tcpSocket" in handler:
        h = handler["tcpSocket"]
        host, port = h.get("host") or pod_ip, _port(h.get("port"), container)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            return False, f"dial tcp {host}:{port}: connect: {reason}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, ""
    if "grpc" in handler:
        return await _grpc_probe(handler["grpc"], pod_ip, timeout)
    raise ProbeError("missing probe handler")


async def _http_probe(h: Mapping[str, Any], container: Container, pod_ip: str, timeout: float,
                      session: aiohttp.ClientSession | None) -> tuple[bool, str]:
    scheme = (h.get("scheme") or "HTTP").lower()
    host = h.get("host") or pod_ip
    port = _port(h.get("port"), container)
    path = h.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    netloc = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{netloc}:{port}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for item in h.get("httpHeaders") or []:
        if item.get("name", "").lower() == "host":
            headers["Host"] = item.get("value", "")
        else:
            headers[item.get("name", "")] = item.get("value", "")
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        async with session.get(url, headers=headers, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=timeout),
                               ssl=ctx if scheme == "https" else None) as resp:
            body = (await resp.content.read(MAX_BODY)).decode(errors="replace")
            if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                location = resp.headers["Location"]
                target = aiohttp.client.URL(url).join(aiohttp.client.URL(location))
                if target.host != host:
                    return True, f"Probe terminated redirects, Response body: {body}"
                return await _http_probe({**h, "path": target.raw_path_qs,
                                          "port": target.port}, container, pod_ip, timeout,
                                         session)
            if 200 <= resp.status < 400:
                return True, body
            return False, f"HTTP probe failed with statuscode: {resp.status}"
    except TimeoutError:
        return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                       "awaiting headers)")
    except aiohttp.ClientError as e:
        return False, f'Get "{url}": {e}'
    finally:
        if own:
            await session.close()


def _encode_health_request(service: str) -> bytes:
    data = service.encode()
    return (b"\x0a" + _varint(len(data)) + data) if data else b""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def _grpc_probe(h: Mapping[str, Any], pod_ip: str, timeout: float) -> tuple[bool, str]:
    """grpc.health.v1.Health/Check on the pod IP; SERVING (1) is success."""
    import grpc

    target = f"{pod_ip}:{int(h.get('port', 0))}"
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        try:
            reply = await call(_encode_health_request(h.get("service") or ""), timeout=timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"timeout: health rpc did not complete within {timeout:g}s"
            return False, f"failed to connect service {target!r} within {timeout:g}s: {e.details()}"
    status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
    if status == 1:
        return True, ""
    names = {0: "UNKNOWN", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    return False, f"service unhealthy (responded with {names.get(status, status)!r})"


# --- the manager -----------------------------------------------------------------------

@dataclass
class _Container:
    container_id: str = ""
    running: bool = False
    started_at: float = 0.0
    exited: bool = False


@dataclass
class _Worker:
    name: str
    kind: str
    spec: ProbeSpec
    container: Container
    task: asyncio.Task[None] | None = None
    container_id: str = ""
    last: bool | None = None
    run: int = 0
    on_hold: bool = False
    trigger: asyncio.Event = field(default_factory=asyncio.Event)


class ProbeManager:
    """The probes of one pod. The worker tells it about containers (`set_container`) and
    the pod IP (`pod_ip`, settable once the sandbox has one); it reads results back with
    `started`/`ready`/`live` (for status.ContainerInfo and restarts.plan) and gets
    `on_change` calls: liveness or startup False means restart the container. `session`:
    an aiohttp session shared by every pod's HTTP probes (else one of its own)."""

    def __init__(self, pod: Pod, *, exec_sync: ExecSync | None, on_change: OnChange,
                 on_event: OnEvent | None = None, pod_ip: str = "",
                 clock: Callable[[], float] = time.time, first_jitter: bool = False,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.pod = pod
        self.exec_sync = exec_sync
        self.on_change = on_change
        self.on_event = on_event
        self.pod_ip = pod_ip
        self.clock = clock
        self.first_jitter = first_jitter
        self._containers: dict[str, _Container] = {}
        self._results: dict[tuple[str, str], bool | None] = {}
        self._ids: dict[tuple[str, str], str] = {}
        self._workers: list[_Worker] = []
        self._session = session
        self._own_session = session is None
        for c in all_containers(pod):
            for kind in KINDS:
                probe = c.get(f"{kind}Probe")
                if probe:
                    self._workers.append(_Worker(c.get("name", ""), kind, ProbeSpec.of(probe), c))

    def start(self) -> None:
        """Start one task per probe (idempotent)."""
        for w in self._workers:
            if w.task is None:
                w.task = asyncio.get_running_loop().create_task(
                    self._loop(w), name=f"probe {w.kind} {w.name}")

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers if w.task]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for w in self._workers:
            w.task = None
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def set_pod(self, pod: Pod) -> None:
        """The latest pod object (deletionTimestamp stops liveness and startup probes)."""
        self.pod = pod

    def set_container(self, name: str, container_id: str, *, running: bool,
                      started_at: float = 0.0, exited: bool = False) -> None:
        """The current instance of a container: id, running, start time (unix s)."""
        self._containers[name] = _Container(container_id, running, started_at, exited)
        for w in self._workers:
            if w.name == name:
                w.trigger.set()

    def _result(self, name: str, kind: str) -> bool | None:
        cur = self._containers.get(name)
        return self._results.get((name, kind)) if cur and cur.container_id and \
            self._ids.get((name, kind)) == cur.container_id else None

    def started(self, name: str) -> bool | None:
        """Startup probe result for the current instance (None: no probe or no result)."""
        return self._result(name, "startup")

    def ready(self, name: str) -> bool | None:
        """Readiness probe result for the current instance (None: no probe or no result)."""
        return self._result(name, "readiness")

    def live(self, name: str) -> bool | None:
        """Liveness probe result for the current instance (None: no probe or no result)."""
        return self._result(name, "liveness")

    def _has(self, name: str, kind: str) -> bool:
        return any(w.name == name and w.kind == kind for w in self._workers)

    def _is_started(self, name: str) -> bool:
        if not self._has(name, "startup"):
            return True
        return self.started(name) is True

    async def _set(self, w: _Worker, value: bool | None, *, notify: bool = True) -> None:
        key = (w.name, w.kind)
        changed = self._results.get(key) != value or self._ids.get(key) != w.container_id
        self._results[key] = value
        self._ids[key] = w.container_id
        if changed and notify and value is not None:
            result = self.on_change(w.name, w.kind, value)
            if asyncio.iscoroutine(result):
                await result

    async def _loop(self, w: _Worker) -> None:
        if self.first_jitter:
            await asyncio.sleep(random.random() * w.spec.period)
        while True:
            try:
                keep = await self._tick(w)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("probe %s of %s failed unexpectedly", w.kind, w.name)
                keep = True
            if not keep:
                return
            w.trigger.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.trigger.wait(), w.spec.period)

    async def _tick(self, w: _Worker) -> bool:
        """One doProbe: False ends the worker."""
        cur = self._containers.get(w.name)
        if cur is None or not cur.container_id:
            return True
        if w.container_id != cur.container_id:
            w.container_id = cur.container_id
            w.on_hold, w.last, w.run = False, None, 0
            initial = {"readiness": False, "liveness": True, "startup": None}[w.kind]
            await self._set(w, initial, notify=False)
        if w.on_hold:
            return True
        if not cur.running:
            await self._set(w, False, notify=w.kind == "readiness")
            policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
            return not (cur.exited and policy == "Never" and not is_sidecar(w.container))
        if (self.pod.get("metadata") or {}).get("deletionTimestamp") and \
                w.kind in ("liveness", "startup"):
            await self._set(w, True, notify=False)
            return False
        if self.clock() - cur.started_at < w.spec.initial_delay:
            return True
        if self._is_started(w.name):
            if w.kind == "startup":
                return True
        elif w.kind != "startup":
            return True
        try:
            if self._session is None and "httpGet" in w.spec.handler:
                self._session = aiohttp.ClientSession()
            ok, output = await run_probe(w.spec.handler, w.container, pod_ip=self.pod_ip,
                                         container_id=cur.container_id,
                                         timeout=w.spec.timeout, exec_sync=self.exec_sync,
                                         session=self._session)
        except ProbeError as e:
            log.warning("probe %s of %s: %s", w.kind, w.name, e)
            return True
        if not ok and self.on_event:
            self.on_event("Warning", "Unhealthy", f"{w.kind.capitalize()} probe failed: {output}")
        if w.last is ok:
            w.run += 1
        else:
            w.last, w.run = ok, 1
        if (not ok and w.run < w.spec.failure_threshold) or \
                (ok and w.run < w.spec.success_threshold):
            return True
        await self._set(w, ok)
        if not ok and w.kind in ("liveness", "startup"):
            w.on_hold, w.run = True, 0
        return True
