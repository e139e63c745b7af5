"""Pod startup benchmark (not a test): creation -> Running through the host agent, against
the raw CRI floor, and the memory each running pod costs.

Starts a real `nodeless up` (API server, Fargate components, controllers, local registry,
host agent with its containerd) in a temp dir, warms the image cache (one busybox pod to
Running, then deleted), then for each N in --counts:

- floor: N sandboxes + containers started directly on the agent's containerd (CRI
  RunPodSandbox + CreateContainer + StartContainer, busybox `sleep 3600`), all N at once
  as the agent gets them (or --floor-concurrency callers), each sandbox on the agent's
  pod network (an IP record from the top of the private subnets, which the scheduler
  allocates from the bottom).
  Latency is RunPodSandbox sent -> StartContainer answered. Then all removed.
- end to end: N pods (busybox `sleep 3600`, small requests, imagePullPolicy
  IfNotPresent unless --pull-policy Always) created in `default` through
  --clients concurrent creators; every pod goes through admission, the fargate-scheduler
  (micro-node, IP, binding) and the agent. Latency is from the moment its create request
  was sent to the moment a watch showed it phase Running with its container running.
  Throughput is N / (last Running - first create sent).
- memory: RSS (and PSS) of the agent process, of its containerd, and of the
  containerd-shim processes, just before the N pods are created and once all run;
  (with - before) / N is the cost of one running pod.

Then the pods are deleted and the run waits until pods and micro-nodes are gone.

    uv run python bench/startup.py [--counts 50,200] [--clients 16] [--keep]
                                   [--py-spy DIR]   # flame graphs of agent and API server
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cri_api.v1 import api_pb2  # noqa: E402
from lightkube import AsyncClient  # noqa: E402
from lightkube.core.exceptions import ApiError  # noqa: E402
from lightkube.resources.core_v1 import Node, Pod  # noqa: E402

from bench.common import Up, percentile  # noqa: E402
from nodeless.agent.network.podnetwork import PodNetwork  # noqa: E402
from nodeless.agent.runtime.cri import CRIClient  # noqa: E402
from nodeless.agent.wiring import instance_id  # noqa: E402
from nodeless.kube import async_client  # noqa: E402

LABELS = {"bench": "startup"}
PRIVATE_SUBNETS = ("10.0.0.0/19", "10.0.32.0/19")
"""The private subnets of the vpc.yaml `nodeless up` writes on first start."""
FLOOR_NAMESPACE = "bench-floor"
MiB = 1024 * 1024


@dataclass
class Latencies:
    values: list[float]
    elapsed: float

    @property
    def p50(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def p99(self) -> float:
        return percentile(self.values, 0.99) if self.values else float("nan")

    @property
    def rate(self) -> float:
        return len(self.values) / self.elapsed if self.elapsed else float("nan")

    def line(self, what: str) -> str:
        return (f"{what:<12} p50 {self.p50 * 1000:7.0f} ms   p99 {self.p99 * 1000:7.0f} ms   "
                f"max {max(self.values, default=float('nan')) * 1000:7.0f} ms   "
                f"{self.rate:6.1f} pods/s ({len(self.values)} in {self.elapsed:.2f}s)")


# ---- processes and their memory ---------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes, from smaps_rollup; (0, 0) for a process that is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


@dataclass
class Processes:
    agent: int
    containerd: int
    socket: str

    def shims(self) -> list[int]:
        """The shims of this containerd (`-address <its socket>`; shims re-parent)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                args = _cmdline(int(entry.name))
                if args and args[0].endswith("containerd-shim-runc-v2") and \
                        self.socket in args:
                    found.append(int(entry.name))
        return found

    def sample(self) -> dict[str, tuple[int, int, int]]:
        """(RSS, PSS, process count) of the agent, containerd and all shims."""
        shims = self.shims()
        totals = [_memory(p) for p in shims]
        return {"agent": (*_memory(self.agent), 1),
                "containerd": (*_memory(self.containerd), 1),
                "shims": (sum(t[0] for t in totals), sum(t[1] for t in totals), len(shims))}


def find_processes(up_pid: int, socket: str) -> Processes:
    agent = next((p for p in _children(up_pid) if "nodeless.agent" in _cmdline(p)), None)
    if agent is None:
        raise RuntimeError("no `python -m nodeless.agent` child of `nodeless up`")
    containerd = next((p for p in _children(agent)
                       if Path(_cmdline(p)[0] or "x").name == "containerd"), None)
    if containerd is None:
        raise RuntimeError(f"no containerd child of the agent (pid {agent})")
    return Processes(agent, containerd, socket)


# ---- nodeless up ------------------------------------------------------------------------

# ---- end to end -------------------------------------------------------------------------

PULL_POLICY = "IfNotPresent"
"""Started from the image cache, as the floor is; --pull-policy Always adds a registry
round trip per pod (the default of a `:latest` image)."""


def _pod(name: str, image: str) -> Pod:
    return Pod.from_dict({  # type: ignore[no-any-return]
        "metadata": {"name": name, "namespace": "default", "labels": dict(LABELS)},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": image, "command": ["sleep", "3600"],
                                 "imagePullPolicy": PULL_POLICY,
                                 "resources": {"requests": {"cpu": "100m",
                                                            "memory": "64Mi"}}}]}})


def _running(pod: Pod) -> bool:
    status = pod.status
    if status is None or status.phase != "Running":
        return False
    return any(c.state and c.state.running for c in status.containerStatuses or [])


class Watch:
    """One watch on the bench's pods: when each was first seen Running, and its node."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.running: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self.expected = 0
        self.all_running = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(ready))
        await ready.wait()
        await asyncio.sleep(0.5)  # the watch request is in flight; let it be served

    async def _run(self, ready: asyncio.Event) -> None:
        stream = self.client.watch(Pod, namespace="default", labels=LABELS)
        ready.set()
        async for kind, pod in stream:
            name = pod.metadata.name
            if pod.spec.nodeName:
                self.nodes[name] = pod.spec.nodeName
            if kind != "DELETED" and name not in self.running and _running(pod):
                self.running[name] = time.perf_counter()
                if self.expected and len(self.running) >= self.expected:
                    self.all_running.set()

    def reset(self, expected: int) -> None:
        self.running.clear()
        self.nodes.clear()
        self.expected = expected
        self.all_running.clear()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _create_all(kubeconfig: Path, names: list[str], image: str, clients: int
                      ) -> dict[str, float]:
    sent: dict[str, float] = {}
    queue = list(reversed(names))
    creators = [async_client(kubeconfig) for _ in range(clients)]

    async def creator(c: AsyncClient) -> None:
        while queue:
            name = queue.pop()
            sent[name] = time.perf_counter()
            await c.create(_pod(name, image))

    try:
        await asyncio.gather(*(creator(c) for c in creators))
    finally:
        for c in creators:
            await c.close()
    return sent


async def _delete_all(client: AsyncClient, names: list[str], nodes: set[str],
                      timeout: float) -> float:
    """Delete the pods; seconds until pods and their micro-nodes are gone from the API."""
    started = time.perf_counter()
    limit = asyncio.Semaphore(16)

    async def delete(name: str) -> None:
        async with limit:
            try:
                await client.delete(Pod, name, namespace="default")
            except ApiError as exc:
                if exc.status.code != 404:
                    raise

    await asyncio.gather(*(delete(n) for n in names))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = [p async for p in client.list(Pod, namespace="default", labels=LABELS)]
        left = {n.metadata.name for n in [x async for x in client.list(Node)]} & nodes
        if not pods and not left:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"pods or micro-nodes still there {timeout:.0f}s after deletion")


async def end_to_end(up: Up, client: AsyncClient, watch: Watch, count: int, clients: int,
                     image: str, timeout: float, prefix: str) -> Latencies:
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    watch.reset(count)
    began = time.perf_counter()
    sent = await _create_all(up.dir / "kubeconfig", names, image, clients)
    try:
        await asyncio.wait_for(watch.all_running.wait(), timeout)
    except TimeoutError:
        print(f"  timeout: {len(watch.running)} of {count} Running after {timeout:.0f}s")
    running = dict(watch.running)
    last = max(running.values(), default=time.perf_counter())
    return Latencies([running[n] - sent[n] for n in running if n in sent], last - began)


async def warm_up(up: Up, client: AsyncClient, watch: Watch, image: str) -> None:
    """One pod of the image to Running (containerd pulls it), then gone."""
    started = time.perf_counter()
    result = await end_to_end(up, client, watch, 1, 1, image, 120, "warm")
    if not result.values:
        raise RuntimeError(f"the warm-up pod did not run; see {up.log} (--keep)")
    await _delete_all(client, ["warm-0000"], set(watch.nodes.values()), 120)
    print(f"warm-up:     one pod Running in {result.values[0]:.2f}s, deleted "
          f"({time.perf_counter() - started:.1f}s in all)", flush=True)


# ---- the raw CRI floor ------------------------------------------------------------------

def _floor_ips(count: int, taken: set[str]) -> list[tuple[str, str]]:
    """(ip, subnet) from the top of the private subnets, skipping addresses in use."""
    found: list[tuple[str, str]] = []
    for cidr in PRIVATE_SUBNETS:
        subnet = ipaddress.ip_network(cidr)
        address = subnet.broadcast_address - 1
        while address > subnet.network_address + 3 and len(found) < count:
            if str(address) not in taken:
                found.append((str(address), cidr))
            address -= 1
    if len(found) < count:
        raise RuntimeError(f"not {count} free addresses in {PRIVATE_SUBNETS}")
    return found


async def floor(up: Up, client: AsyncClient, count: int, clients: int, image: str
                ) -> Latencies:
    """RunPodSandbox + CreateContainer + StartContainer for `count` pods, then removed."""
    taken = set()
    async for node in client.list(Node):
        for address in (node.status.addresses if node.status else None) or []:
            taken.add(address.address)
    state_dir = (up.dir / "agent").resolve()
    network = PodNetwork(state_dir=state_dir / "network", instance=instance_id(state_dir))
    log_root = up.dir / "bench-floor-logs"
    names = [f"floor-{i:04d}" for i in range(count)]
    addresses = dict(zip(names, _floor_ips(count, taken), strict=True))
    sandboxes: dict[str, str] = {}
    latencies: list[float] = []
    queue = list(reversed(names))
    cri = CRIClient(up.endpoints["containerd"])

    async def start(name: str) -> None:
        uid = str(uuid.uuid4())
        ip, subnet = addresses[name]
        network.assign(FLOOR_NAMESPACE, name, ip, subnet, uid=uid)
        logs = log_root / name
        logs.mkdir(parents=True, exist_ok=True)
        config = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, namespace=FLOOR_NAMESPACE, uid=uid),
            hostname=name, log_directory=str(logs), labels={"bench": "startup-floor"},
            linux=api_pb2.LinuxPodSandboxConfig(
                security_context=api_pb2.LinuxSandboxSecurityContext(
                    namespace_options=api_pb2.NamespaceOption(
                        network=api_pb2.POD, pid=api_pb2.CONTAINER, ipc=api_pb2.POD))))
        began = time.perf_counter()
        sandbox = await cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config))
        sandboxes[name] = sandbox.pod_sandbox_id
        container = await cri.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox.pod_sandbox_id, sandbox_config=config,
            config=api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name="app"),
                image=api_pb2.ImageSpec(image=image), command=["sleep", "3600"],
                log_path="app/0.log",
                linux=api_pb2.LinuxContainerConfig(resources=api_pb2.LinuxContainerResources(
                    cpu_period=100_000, cpu_quota=25_000, cpu_shares=256,
                    memory_limit_in_bytes=512 * MiB)))))
        await cri.runtime.StartContainer(api_pb2.StartContainerRequest(
            container_id=container.container_id))
        latencies.append(time.perf_counter() - began)

    async def caller() -> None:
        while queue:
            await start(queue.pop())

    try:
        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    finally:
        limit = asyncio.Semaphore(clients)

        async def remove(name: str, sandbox_id: str) -> None:
            async with limit:
                await cri.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(
                    pod_sandbox_id=sandbox_id))
                await cri.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(
                    pod_sandbox_id=sandbox_id))

        await asyncio.gather(*(remove(n, s) for n, s in sandboxes.items()))
        for name in names:
            network.release(FLOOR_NAMESPACE, name)
        shutil.rmtree(log_root, ignore_errors=True)
        await cri.close()
    return Latencies(latencies, elapsed)


# ---- profiling --------------------------------------------------------------------------

def start_py_spy(directory: Path, pids: dict[str, int], label: str
                 ) -> list[subprocess.Popen[bytes]]:
    """`py-spy record` of each process into DIR/<name>-<label>.svg (a flame graph)."""
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "200",
                              "--output", str(directory / f"{name}-{label}.svg")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def stop_py_spy(recorders: list[subprocess.Popen[bytes]]) -> None:
    for recorder in recorders:
        recorder.send_signal(signal.SIGINT)
    for recorder in recorders:
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()


# ---- the run ----------------------------------------------------------------------------

@dataclass
class Row:
    count: int
    e2e: Latencies
    floor: Latencies
    per_pod: dict[str, tuple[float, float]]
    """component -> (RSS delta per pod, PSS delta per pod) in bytes."""
    shims: int


def _per_pod(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]],
             count: int) -> dict[str, tuple[float, float]]:
    return {k: ((after[k][0] - before[k][0]) / count, (after[k][1] - before[k][1]) / count)
            for k in after}


async def run(args: argparse.Namespace) -> None:
    up = Up("bench-startup-", ["--registry-port", "0"], start_timeout=180,
              stop_timeout=600, wait_for_containerd=True)
    rows: list[Row] = []
    try:
        client = await up.client()
        image = f"{up.endpoints['registry']}/library/busybox:latest"
        watch = Watch(client)
        await watch.start()
        await warm_up(up, client, watch, image)
        procs = find_processes(up.proc.pid, up.endpoints["containerd"])
        for count in args.counts:
            print(f"--- {count} pods: {args.clients} concurrent creators; CRI floor "
                  f"{args.floor_concurrency or count} concurrent callers", flush=True)
            low = await floor(up, client, count, args.floor_concurrency or count, image)
            print(low.line("CRI floor:"), flush=True)
            await asyncio.sleep(2.0)  # let the agent's relist see the floor go
            before = procs.sample()
            recorders = start_py_spy(args.py_spy, {"agent": procs.agent,
                                                   "apiserver": up.proc.pid},
                                     str(count)) if args.py_spy else []
            try:
                e2e = await end_to_end(up, client, watch, count, args.clients, image,
                                       args.timeout, f"pod{count}")
            finally:
                stop_py_spy(recorders)
            print(e2e.line("end to end:"), flush=True)
            await asyncio.sleep(1.0)  # statuses written, events flushed
            after = procs.sample()
            per_pod = _per_pod(before, after, count)
            for name, (rss, pss) in per_pod.items():
                print(f"{name + ':':<12} RSS {before[name][0] / MiB:7.1f} -> "
                      f"{after[name][0] / MiB:7.1f} MiB ({after[name][2]} processes)   "
                      f"{rss / MiB:5.2f} MiB/pod   (PSS {pss / MiB:5.2f} MiB/pod)")
            rows.append(Row(count, e2e, low, per_pod, after["shims"][2]))
            took = await _delete_all(client, [f"pod{count}-{i:04d}" for i in range(count)],
                                     set(watch.nodes.values()), args.timeout)
            print(f"deleted:     pods and micro-nodes gone in {took:.1f}s", flush=True)
        await watch.stop()
        await client.close()
    finally:
        up.stop(args.keep)
    _summary(rows)


def _summary(rows: list[Row]) -> None:
    print()
    print("  pods | e2e p50 | e2e p99 | e2e/s | floor p50 | floor p99 | floor/s | ratio "
          "| agent MiB/pod | containerd MiB/pod | shims MiB/pod (PSS)")
    for r in rows:
        ratio = r.e2e.p50 / r.floor.p50
        print(f"  {r.count:4d} | {r.e2e.p50 * 1000:5.0f}ms | {r.e2e.p99 * 1000:5.0f}ms | "
              f"{r.e2e.rate:5.1f} | {r.floor.p50 * 1000:7.0f}ms | {r.floor.p99 * 1000:7.0f}ms | "
              f"{r.floor.rate:7.1f} | {ratio:5.2f} | {r.per_pod['agent'][0] / MiB:13.2f} | "
              f"{r.per_pod['containerd'][0] / MiB:18.2f} | {r.per_pod['shims'][0] / MiB:5.2f} "
              f"({r.per_pod['shims'][1] / MiB:.2f})")
    if rows:
        big = max(rows, key=lambda r: r.count)
        checks = [
            ("p50 within 2x the floor", all(r.e2e.p50 <= 2 * r.floor.p50 for r in rows)),
            (f"p99 under 3 s at {big.count} pods", big.e2e.p99 < 3.0),
            ("agent memory under 2 MiB per pod",
             all(r.per_pod["agent"][0] < 2 * MiB for r in rows)),
        ]
        print("targets: " + "; ".join(f"{what}: {'met' if ok else 'MISSED'}"
                                      for what, ok in checks))


def main() -> None:
    global PULL_POLICY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")],
                        default=[50, 200], help="pods per round, comma separated")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent creators of the end-to-end pods")
    parser.add_argument("--floor-concurrency", type=int, default=0, metavar="K",
                        help="concurrent CRI callers of the floor; 0 (default): all N at "
                             "once, as the agent gets them")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and log")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="record flame graphs of the agent and the API server process "
                             "during each end-to-end round (needs py-spy in the venv)")
    parser.add_argument("--pull-policy", choices=["IfNotPresent", "Always"],
                        default=PULL_POLICY, help="imagePullPolicy of the pods")
    if os.geteuid() != 0:
        parser.error("the host agent runs containerd: run as root")
    args = parser.parse_args()
    PULL_POLICY = args.pull_policy
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
