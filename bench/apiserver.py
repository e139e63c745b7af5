"""API server write and watch benchmark (not a test).

For each store (SQLite, etcd) it starts a real `nodeless up` process, then creates
5,000 ConfigMaps and 5,000 Pods through 16 concurrent HTTPS clients (one keep-alive
connection each) while one watcher follows the namespace. It prints writes/s and p50/p99
write latency per run, the median over --repeat runs, and the SQLite/etcd ratio.

Watch delivery latency is measured from the moment the write request was sent to the
moment its watch event arrived, so it includes the write itself: an upper bound.

    uv run python bench/apiserver.py [--count 5000] [--clients 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.apiserver import free_port  # noqa: E402
from tests.fixtures.etcd import start_etcd  # noqa: E402


@dataclass
class RunResult:
    store: str
    kind: str
    writes_per_s: float
    p50_ms: float
    p99_ms: float
    watch_p99_ms: float
    watch_seen: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    """A `nodeless up` process in the foreground, on a free port, in a temp dir."""

    def __init__(self, store: str, etcd_endpoint: str | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{store}-"))
        self.port = free_port()
        args = [sys.executable, "-m", "nodeless.cli.main", "up", "--data-dir", str(self.dir),
                "--port", str(self.port), "--store", store, "--eks-port", "0", "--no-agent"]
        if etcd_endpoint:
            args += ["--etcd-endpoints", etcd_endpoint]
        with open(self.dir / "bench.log", "wb") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                                         stderr=log)
        self.url = f"https://127.0.0.1:{self.port}"
        self.token = ""

    async def wait_ready(self) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            tokens = self.dir / "tokens.csv"
            if tokens.exists() and (self.dir / "pki" / "ca.crt").exists():
                self.token = tokens.read_text().splitlines()[0].split(",")[0]
                try:
                    async with aiohttp.ClientSession() as s, s.get(
                            self.url + "/readyz", ssl=self.ssl()) as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "bench.log").read_text()[-2000:])
            await asyncio.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.crt"))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _body(kind: str, name: str) -> bytes:
    if kind == "configmaps":
        return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": name, "labels": {"bench": "yes"}},
                             "data": {"key": "value", "other": "x" * 64}})
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{
            "name": "app", "image": "nginx:1.27",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "MODE", "value": "bench"}],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
        }]},
    })


async def run_once(server: Server, kind: str, namespace: str, count: int, clients: int
                   ) -> RunResult:
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients + 1, ssl=server.ssl())
    sent: dict[str, float] = {}
    watch_latency: list[float] = []
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.post(f"{server.url}/api/v1/namespaces", data=orjson.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
                ) as r:
            assert r.status == 201, await r.text()
        watch_ready = asyncio.Event()

        async def watcher() -> None:
            url = (f"{server.url}/api/v1/namespaces/{namespace}/{kind}?watch=true"
                   f"&resourceVersion=0&timeoutSeconds=600")
            async with aiohttp.ClientSession(headers=headers) as ws, ws.get(
                    url, ssl=server.ssl(), timeout=aiohttp.ClientTimeout(total=None)) as resp:
                watch_ready.set()
                async for line in resp.content:
                    event = orjson.loads(line)
                    name = event["object"]["metadata"]["name"]
                    if name in sent:
                        watch_latency.append(time.perf_counter() - sent[name])
                        if len(watch_latency) >= count:
                            return

        watch_task = asyncio.create_task(watcher())
        await watch_ready.wait()
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        url = f"{server.url}/api/v1/namespaces/{namespace}/{kind}"

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                name = f"obj-{i}"
                body = _body(kind, name)
                started = time.perf_counter()
                sent[name] = started
                async with session.post(url, data=body) as resp:
                    await resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"{resp.status}: {await resp.text()}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
        try:
            await asyncio.wait_for(watch_task, 30)
        except TimeoutError:
            watch_task.cancel()
    return RunResult(
        store="", kind=kind, writes_per_s=count / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        watch_p99_ms=_percentile(watch_latency, 0.99) * 1000 if watch_latency else float("nan"),
        watch_seen=len(watch_latency),
    )


async def bench(args: argparse.Namespace) -> None:
    etcd = start_etcd(Path(tempfile.mkdtemp(prefix="bench-etcd-")))
    results: dict[tuple[str, str], list[RunResult]] = {}
    try:
        for store in args.stores:
            server = Server(store, etcd.endpoint if store == "etcd" else None)
            try:
                await server.wait_ready()
                for rep in range(args.repeat):
                    for kind in ("configmaps", "pods"):
                        r = await run_once(server, kind, f"bench-{kind}-{rep}", args.count,
                                           args.clients)
                        r.store = store
                        results.setdefault((store, kind), []).append(r)
                        print(f"  {store:6} {kind:10} run {rep + 1}: {r.writes_per_s:7.0f} "
                              f"writes/s  p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
                              f"watch p99 {r.watch_p99_ms:6.1f} ms  "
                              f"({r.watch_seen}/{args.count} events)", flush=True)
            finally:
                server.stop()
    finally:
        etcd.stop()
    print(f"\nmedians over {args.repeat} run(s), {args.count} creates, {args.clients} clients, "
          f"{os.cpu_count()} cores")
    print(f"{'store':6} {'kind':10} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'watch p99 ms':>13}")
    medians: dict[tuple[str, str], float] = {}
    for (store, kind), runs in results.items():
        w = statistics.median(r.writes_per_s for r in runs)
        medians[(store, kind)] = w
        print(f"{store:6} {kind:10} {w:9.0f} {statistics.median(r.p50_ms for r in runs):8.1f} "
              f"{statistics.median(r.p99_ms for r in runs):8.1f} "
              f"{statistics.median(r.watch_p99_ms for r in runs):13.1f}")
    for kind in ("configmaps", "pods"):
        if ("sqlite", kind) in medians and ("etcd", kind) in medians:
            print(f"ratio sqlite/etcd writes/s ({kind}): "
                  f"{medians[('sqlite', kind)] / medians[('etcd', kind)]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "etcd"])
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
