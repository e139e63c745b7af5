"""fargate-scheduler benchmark (not a test): pods/s from creation to bound, end to end.

Starts a real `nodeless up` (API server, admission webhook, profile controller,
fargate-scheduler) in a temp dir, registers one large test host (no agent: nothing runs
the pods, which is not what is measured), waits for `fp-default` to be ACTIVE, then
creates --count pods in the namespace `default` through --clients concurrent creators.
Every pod goes through the mutating webhook (schedulerName, profile annotation), the
scheduler (size, IP, host reservation, Node, annotation, binding, Event) and is seen
bound by a watch. Latency is from the moment its create request was sent to the moment
the watch showed it bound; throughput is pods / (last bound - first create sent). The
CPU time each process spent per pod over the same span is printed too: on a machine
shared with other work it says what pods/s cannot (the API server runs in the `nodeless
up` process; the webhook, the scheduler and the controllers in its children).

    uv run python bench/scheduler.py [--count 2000] [--clients 32] [--repeat 5] [--keep]
                                     [--backlog]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import yaml  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.common import Up, percentile  # noqa: E402
from nodeless import aiotasks  # noqa: E402
from tests.fargate.hosts_helper import register_test_host, renew_test_host  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(pid: int, module: str) -> int:
    """The child process of `pid` running `module` (0 if none)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid and \
                    module.encode() in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except (OSError, ValueError, IndexError):
            continue
    return 0


class CPUMeter:
    """CPU seconds of `nodeless up`, its children and this client over a span."""

    def __init__(self, up_pid: int) -> None:
        self.pids = {"nodeless up": up_pid,
                     "fargate-scheduler": _child(up_pid, "nodeless.fargate.scheduler"),
                     "fargate-webhook": _child(up_pid, "nodeless.fargate.admission"),
                     "controllers": _child(up_pid, "nodeless.controllers"),
                     "bench client": os.getpid()}
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {name: _cpu_seconds(pid) if pid else 0.0 for name, pid in self.pids.items()}

    def per_pod(self, pods: int) -> str:
        end = self._now()
        return "   ".join(f"{name} {(end[name] - self.start[name]) * 1000 / max(pods, 1):.1f}"
                          for name in self.pids) + " ms/pod"


def _request_counts(up: Up) -> Counter[str]:
    """The API server's request counter (apiserver_request_total) by verb and resource."""
    text = subprocess.run(["kubectl", "--kubeconfig", str(up.dir / "kubeconfig"), "get",
                           "--raw", "/metrics"], capture_output=True, text=True,
                          check=True).stdout
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                counts[f"{sample.labels['verb']} {sample.labels['resource']}"] += \
                    int(sample.value)
    return counts


def _requests_per_pod(up: Up, before: Counter[str], pods: int) -> str:
    """What the API server served per pod over the span, busiest first: the cost model."""
    served = _request_counts(up) - before
    return "  ".join(f"{what} {n / max(pods, 1):.2f}" for what, n in served.most_common(12))


def _pod(name: str) -> bytes:
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "scheduler"}},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"}}}]}})


class LoadClient:
    """The load generator's own HTTP (aiohttp with the kubeconfig's token and CA): it
    shares the 2 cores with what it measures, so it spends as little as it can per pod
    (a typed client costs about a millisecond of CPU per pod more)."""

    def __init__(self, kubeconfig: Path, connections: int) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.url = cluster["server"]
        context = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=connections + 2),
            headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}",
                     "Content-Type": "application/json"})

    async def create_pod(self, name: str) -> None:
        async with self.session.post(f"{self.url}/api/v1/namespaces/default/pods",
                                     data=_pod(name)) as response:
            if response.status != 201:
                raise RuntimeError(f"creating {name}: {response.status} "
                                   f"{await response.text()}")

    async def watch_bound(self, bound: dict[str, float], count: int, ready: asyncio.Event
                          ) -> None:
        """Record when each bench pod is first seen bound, until `count` are."""
        # Bound pods only (a field selector): one event per pod, not one per change.
        url = (f"{self.url}/api/v1/namespaces/default/pods?watch=true&"
               "labelSelector=bench%3Dscheduler&fieldSelector=spec.nodeName%21%3D&"
               "timeoutSeconds=3600")
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=None)
                                    ) as response:
            ready.set()
            async for line in response.content:
                pod = orjson.loads(line)["object"]
                name = pod["metadata"]["name"]
                if pod["spec"].get("nodeName") and name not in bound:
                    bound[name] = time.perf_counter()
                    if len(bound) >= count:
                        return

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Run:
    pods_per_s: float
    p50_ms: float
    p99_ms: float
    bound: int


async def run(args: argparse.Namespace) -> Run:
    up = Up("bench-scheduler-", ["--no-agent"])
    print(f"nodeless up:     {up.dir}", flush=True)
    try:
        client = await up.client()
        if not args.backlog:
            await register_test_host(client, "bench-host", cpu="1000", memory="4000Gi",
                                     pods=args.count + 100)
            await asyncio.sleep(1.0)  # let the scheduler's host pool see the host

        async def heartbeat() -> None:  # what the host agent does: keep the host alive
            while True:
                await asyncio.sleep(10)
                await renew_test_host(client, "bench-host")

        beat = asyncio.create_task(heartbeat())
        sent: dict[str, float] = {}
        bound: dict[str, float] = {}
        done = asyncio.Event()

        load = LoadClient(up.dir / "kubeconfig", args.clients)
        ready = asyncio.Event()
        watch_task = asyncio.create_task(load.watch_bound(bound, args.count, ready))
        watch_task.add_done_callback(lambda _: done.set())
        await ready.wait()
        names = [f"bench-{i:05d}" for i in range(args.count)]
        queue = list(reversed(names))

        async def creator() -> None:
            while queue:
                name = queue.pop()
                sent[name] = time.perf_counter()
                await load.create_pod(name)

        meter = CPUMeter(up.proc.pid)
        before_requests = _request_counts(up)
        started = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(args.clients)))
        created = time.perf_counter()
        creation_rate, creation_time = args.count / (created - started), created - started
        if args.backlog:
            # Scheduling alone: every pod is Pending (no host yet); the host joining is
            # what releases them, through the host pool's change notice.
            await asyncio.sleep(2.0)
            print(f"backlog:         {args.count} pods created in {created - started:.2f}s; "
                  "registering the host")
            meter = CPUMeter(up.proc.pid)
            before_requests = _request_counts(up)
            started = time.perf_counter()
            sent = dict.fromkeys(sent, started)
            await register_test_host(client, "bench-host", cpu="1000", memory="4000Gi",
                                     pods=args.count + 100)
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            print(f"timeout: {len(bound)} of {args.count} bound after {args.timeout:.0f}s")
        cpu = meter.per_pod(len(bound))
        watch_task.cancel()
        beat.cancel()
        await load.close()
        latencies = [bound[n] - sent[n] for n in bound] or [0.0]
        last = max(bound.values()) if bound else time.perf_counter()
        result = Run(len(bound) / (last - started), statistics.median(latencies) * 1000,
                     percentile(latencies, 0.99) * 1000, len(bound))
        print(f"pods:            {len(bound)} of {args.count} bound "
              f"({args.clients} concurrent creators)")
        print(f"creation:        {creation_rate:7.1f} pods/s ({creation_time:.2f}s)")
        what = "host joins -> bound" if args.backlog else "create -> bound"
        print(f"{what + ':':<17}{result.pods_per_s:7.1f} pods/s "
              f"({last - started:.2f}s end to end)")
        print(f"latency:         p50 {result.p50_ms:7.0f} ms   p99 {result.p99_ms:7.0f} ms   "
              f"max {max(latencies) * 1000:7.0f} ms")
        print(f"cpu:             {cpu}")
        print(f"requests/pod:    {_requests_per_pod(up, before_requests, len(bound))}")
        await client.close()
        return result
    finally:
        up.stop(args.keep)


async def repeat(args: argparse.Namespace) -> None:
    """--repeat runs, each on a fresh `nodeless up`; then the medians (one run on this
    2-core machine varies by about 15%)."""
    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"--- run {i + 1} of {args.repeat}", flush=True)
        runs.append(await run(args))
    if args.repeat > 1:
        print(f"=== median of {args.repeat} runs: "
              f"{statistics.median(r.pods_per_s for r in runs):.1f} pods/s "
              f"(runs: {', '.join(f'{r.pods_per_s:.1f}' for r in runs)}), "
              f"p50 {statistics.median(r.p50_ms for r in runs):.0f} ms, "
              f"p99 {statistics.median(r.p99_ms for r in runs):.0f} ms, "
              f"{min(r.bound for r in runs)} of {args.count} bound in the worst run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32,
                        help="concurrent creators: the pods are created at once")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs, each on a fresh nodeless up; prints the medians")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and log")
    parser.add_argument("--backlog", action="store_true",
                        help="create every pod first, then register the host: measures "
                             "scheduling alone (latency from the host joining)")
    aiotasks.run(repeat(parser.parse_args()))


if __name__ == "__main__":
    main()
