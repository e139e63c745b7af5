"""Admission webhook benchmark (not a test): issue 4, acceptance 6.

1. The webhook alone: AdmissionReviews of a realistic, defaulted pod that matches a
   profile, POSTed over HTTPS by 16 concurrent clients (one keep-alive connection each,
   as kube-apiserver's pool holds them), to /mutate-pods and /validate-pods.
2. Through the API server: pod creates via the API (16 clients) with the webhooks
   registered (pods matching a profile; pods outside every profile) and without them,
   so the webhook's cost shows as a ratio.

The webhook, the API server and the load generator each run in their own process (this
machine has two cores, so they compete: the figures are for the whole machine). Prints
reviews/s (or creates/s), p50 and p99 per run and the medians over --repeat runs.

    uv run python bench/admission.py [--count 3000] [--clients 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodeless.apiserver import pki  # noqa: E402
from nodeless.fargate.admission import (  # noqa: E402
    CONFIGURATION_NAME,
    AdmissionWebhook,
    FargateCache,
    WebhookComponent,
    WebhookServer,
    issue_serving_certificate,
    register_webhooks,
    server_ssl_context,
    webhook_configurations,
)
from nodeless.fargate.crds import all_crds  # noqa: E402
from nodeless.fargate.settings import FargateSettings  # noqa: E402
from nodeless.fargate.vpc import default_vpc, subnet_object  # noqa: E402
from nodeless.kube import async_client  # noqa: E402

KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
CLUSTER = "nodeless"
VPC = default_vpc(CLUSTER, "us-east-1")
ROLE = "arn:aws:iam::000000000000:role/nodeless-pod-execution-role"


@dataclass
class Run:
    what: str
    per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms: dict[str, float] | None = None
    """CPU time per request of each server process (user + system)."""


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _profile(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "fargate.nodeless.io/v1", "kind": "FargateProfile",
            "metadata": {"name": name},
            "spec": {"podExecutionRoleArn": ROLE, "selectors": [{"namespace": namespace}]}}


def _pod(name: str, namespace: str) -> dict[str, Any]:
    """A pod as kube-apiserver sends it to webhooks: defaulted, a sidecar, probes."""
    container = {
        "name": "app", "image": "registry.local/shop/web:1.4.2",
        "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
        "env": [{"name": "MODE", "value": "production"}, {"name": "LOG", "value": "json"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                      "limits": {"cpu": "1", "memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                           "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1,
                           "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
    }
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app": "web", "tier": "frontend", "version": "1.4.2"},
                     "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {
            "containers": [container, {**container, "name": "proxy", "ports": [],
                                       "image": "registry.local/proxy:2"}],
            "volumes": [{"name": "config", "configMap": {"name": "web", "defaultMode": 420}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
    }


# ---- child processes ------------------------------------------------------------------


def _serve_webhook_alone(conn: Connection, directory: str) -> None:
    """The webhook with a fixed cache (one matching ACTIVE profile) and no API."""
    async def main() -> None:
        material = pki.ensure_pki(Path(directory))
        cert, key = issue_serving_certificate(material, Path(directory) / "webhook")
        cache = FargateCache()
        profile = _profile("fp-bench", "bench-*")
        profile["status"] = {"status": "ACTIVE"}
        profile["spec"]["subnets"] = [s.id for s in VPC.private_subnets()]
        cache.set_profiles([profile, {**_profile("fp-other", "other"),
                                      "status": {"status": "ACTIVE"}}])
        cache.set_subnets(subnet_object(VPC, s) for s in VPC.subnets)
        webhook = AdmissionWebhook(cache, cluster=CLUSTER, vpc_id=VPC.id)
        webhook.ready = True
        server = WebhookServer(webhook, "127.0.0.1", 0, server_ssl_context(cert, key))
        await server.start()
        conn.send((server.url, str(material.ca_cert)))
        await asyncio.Event().wait()
    asyncio.run(main())


def _serve_apiserver(conn: Connection, directory: str) -> None:
    from tests.fixtures.apiserver import start_apiserver

    server = start_apiserver(Path(directory))
    conn.send((server.url, server.token, str(server.kubeconfig), str(server.ca_file)))
    while True:
        time.sleep(3600)


def _serve_webhook_component(conn: Connection, directory: str, kubeconfig: str) -> None:
    """The webhook as `nodeless up` runs it; the parent registers it (or not)."""
    async def main() -> None:
        material = pki.PKI.at(Path(directory))
        cert, key = issue_serving_certificate(material, Path(directory) / "fargate")
        settings = FargateSettings(kubeconfig=Path(kubeconfig), vpc=VPC, cluster=CLUSTER,
                                   webhook_cert=cert, webhook_key=key,
                                   webhook_ca=material.ca_cert, register_webhooks=False)
        component = WebhookComponent(settings)
        ready = asyncio.Event()
        task = asyncio.create_task(component.run(ready.set))
        await ready.wait()
        conn.send(component.url)
        await task
    asyncio.run(main())


def _start(target: Any, *args: Any) -> tuple[multiprocessing.process.BaseProcess, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    if not parent.poll(60):
        proc.terminate()
        raise RuntimeError(f"{target.__name__} did not start")
    return proc, parent.recv()


# ---- load -----------------------------------------------------------------------------


async def _load(url: str, bodies: list[bytes], clients: int, context: ssl.SSLContext,
                headers: dict[str, str], expect: int) -> tuple[float, list[float]]:
    """POST every body, `clients` at a time, each client on its own connection."""
    latencies: list[float] = []
    queue = list(reversed(bodies))

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1, ssl=context)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            async with session.get(url.rsplit("/", 1)[0] + "/healthz") as warm:
                await warm.read()  # the TLS handshake is not part of the figure
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(url, data=body) as resp:
                    payload = await resp.read()
                    if resp.status != expect:
                        raise RuntimeError(f"{resp.status}: {payload[:300]!r}")
                latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - began, latencies


def _print(run: Run, rep: int, unit: str) -> None:
    cpu = "  ".join(f"{k} {v:.2f}" for k, v in (run.cpu_ms or {}).items())
    print(f"  {run.what:30} run {rep + 1}: {run.per_s:6.0f} {unit}  p50 {run.p50_ms:6.2f} ms"
          f"  p99 {run.p99_ms:6.2f} ms  CPU ms/request: {cpu}", flush=True)


def _run(what: str, elapsed: float, latencies: list[float]) -> Run:
    return Run(what, len(latencies) / elapsed, statistics.median(latencies) * 1000,
               _percentile(latencies, 0.99) * 1000)


def _review(path: str, pod: dict[str, Any]) -> bytes:
    return orjson.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod, "oldObject": None, "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        }})


async def bench_alone(args: argparse.Namespace, results: dict[str, list[Run]]) -> None:
    directory = tempfile.mkdtemp(prefix="bench-webhook-")
    proc, (url, ca) = _start(_serve_webhook_alone, directory)
    try:
        context = ssl.create_default_context(cafile=ca)
        headers = {"Content-Type": "application/json"}
        for rep in range(args.repeat):
            for path in ("/mutate-pods", "/validate-pods"):
                bodies = [_review(path, _pod(f"web-{i}", "bench-shop"))
                          for i in range(args.count)]
                cpu = _cpu_seconds(proc.pid)
                elapsed, latencies = await _load(url + path, bodies, args.clients, context,
                                                 headers, 200)
                run = _run(f"webhook {path}", elapsed, latencies)
                run.cpu_ms = {"webhook": (_cpu_seconds(proc.pid) - cpu) * 1000 / args.count}
                results.setdefault(run.what, []).append(run)
                _print(run, rep, "reviews/s")
    finally:
        proc.terminate()
        shutil.rmtree(directory, ignore_errors=True)


def _kubectl(kubeconfig: str, *args: str, input: str | None = None) -> None:
    subprocess.run([KUBECTL, *args], input=input, text=True, check=True, capture_output=True,
                   env={**os.environ, "KUBECONFIG": kubeconfig})


async def bench_apiserver(args: argparse.Namespace, results: dict[str, list[Run]]) -> None:
    directory = tempfile.mkdtemp(prefix="bench-admission-api-")
    api, (api_url, token, kubeconfig, ca) = _start(_serve_apiserver, directory)
    hook: multiprocessing.process.BaseProcess | None = None
    try:
        _kubectl(kubeconfig, "apply", "-f", "-",
                 input="\n---\n".join(json.dumps(c) for c in all_crds()))
        _kubectl(kubeconfig, "wait", "--for", "condition=established",
                 "crd/fargateprofiles.fargate.nodeless.io", "crd/subnets.fargate.nodeless.io")
        _kubectl(kubeconfig, "apply", "-f", "-", input="\n---\n".join(
            json.dumps(subnet_object(VPC, s)) for s in VPC.subnets))
        _kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(_profile("fp-bench",
                                                                         "bench-*")))
        _kubectl(kubeconfig, "patch", "fargateprofile", "fp-bench", "--subresource=status",
                 "--type=merge", "-p", '{"status": {"status": "ACTIVE"}}')
        hook, hook_url = _start(_serve_webhook_component, directory, kubeconfig)
        client = async_client(kubeconfig)
        configurations = webhook_configurations(hook_url, Path(ca).read_bytes())
        context = ssl.create_default_context(cafile=ca)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        modes = [("API, no webhook", False, "bench"), ("API + webhook, Fargate pod", True,
                                                       "bench"),
                 ("API + webhook, other pod", True, "plain")]
        for rep in range(args.repeat):
            for what, registered, prefix in modes:
                if registered:
                    await register_webhooks(client, configurations)
                else:
                    for kind in ("mutatingwebhookconfiguration",
                                 "validatingwebhookconfiguration"):
                        _kubectl(kubeconfig, "delete", kind, CONFIGURATION_NAME,
                                 "--ignore-not-found")
                await asyncio.sleep(0.3)  # the API server's configuration cache follows
                namespace = f"{prefix}-{rep}-{len(results.get(what, []))}-" \
                            f"{'on' if registered else 'off'}"
                _kubectl(kubeconfig, "create", "namespace", namespace)
                bodies = [orjson.dumps(_pod(f"web-{i}", namespace)) for i in range(args.count)]
                before = {"apiserver": _cpu_seconds(api.pid), "webhook": _cpu_seconds(hook.pid)}
                elapsed, latencies = await _load(
                    f"{api_url}/api/v1/namespaces/{namespace}/pods", bodies, args.clients,
                    context, headers, 201)
                run = _run(what, elapsed, latencies)
                run.cpu_ms = {name: (_cpu_seconds(pid) - before[name]) * 1000 / args.count
                              for name, pid in (("apiserver", api.pid), ("webhook", hook.pid))}
                results.setdefault(what, []).append(run)
                _print(run, rep, "creates/s")
        await client.close()
    finally:
        if hook is not None:
            hook.terminate()
        api.terminate()
        shutil.rmtree(directory, ignore_errors=True)


async def bench(args: argparse.Namespace) -> None:
    results: dict[str, list[Run]] = {}
    print("webhook alone (direct HTTPS AdmissionReviews)")
    await bench_alone(args, results)
    if not args.alone_only:
        print("through the API server (pod creates)")
        await bench_apiserver(args, results)
    print(f"\nmedians over {args.repeat} run(s), {args.count} requests each, {args.clients} "
          f"concurrent clients, {os.cpu_count()} cores")
    print(f"{'':30} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}  CPU ms/request")
    medians: dict[str, float] = {}
    for what, runs in results.items():
        medians[what] = statistics.median(r.per_s for r in runs)
        cpu = "  ".join(f"{k} {statistics.median((r.cpu_ms or {})[k] for r in runs):.2f}"
                        for k in runs[0].cpu_ms or {})
        print(f"{what:30} {medians[what]:7.0f} {statistics.median(r.p50_ms for r in runs):7.2f} "
              f"{statistics.median(r.p99_ms for r in runs):7.2f}  {cpu}")
    base = medians.get("API, no webhook")
    if base:
        for what in ("API + webhook, Fargate pod", "API + webhook, other pod"):
            if what in medians:
                print(f"ratio creates/s {what!r} / no webhook: {medians[what] / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--alone-only", action="store_true",
                        help="Only the webhook alone, not through the API server.")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
