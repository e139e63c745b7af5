"""`nodeless up / down / status`: one machine's control plane as one command.

A data dir holds one instance. Who runs it is decided by an flock on DATA_DIR/nodeless.lock
held for the life of the process, not by the pid file alone: the kernel drops the lock
when the process dies (even as an unreaped zombie, even after SIGKILL), so a stale pid
file or a recycled pid can never make us refuse to start or signal a stranger.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import http.client
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from nodeless import aiotasks
from nodeless.apiserver.config import APIServerConfig
from nodeless.apiserver.pki import PKI, ensure_pki, write_atomic
from nodeless.apiserver.tokens import ensure_tokens
from nodeless.cli.fargate import app as fargate_app
from nodeless.cli.kubeconfig import write_kubeconfig
from nodeless.cli.profile import profile_app
from nodeless.cli.supervisor import APIServerComponent, Component, run_until_signalled
from nodeless.fargate.settings import FargateSettings

log = logging.getLogger("nodeless")

DEFAULT_DATA_DIR = Path("~/.local/share/nodeless")
DETACHED_ENV = "NODELESS_DETACHED"
"""Set in the re-executed child of `up --detach`: its stderr already is the log file."""

app = typer.Typer(
    name="nodeless",
    help="Serverless pods on one machine: the AWS Fargate model, Kubernetes API included.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


app.add_typer(fargate_app, name="fargate")  # nodeless fargate run: the components alone
app.add_typer(profile_app, name="profile")  # the EKS API's thin client


class Store(enum.StrEnum):
    sqlite = "sqlite"
    etcd = "etcd"


DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="NODELESS_DATA_DIR",
        help="State of this instance (default ~/.local/share/nodeless).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class UpOptions:
    """What `up` runs besides the API server (its flags beyond APIServerConfig)."""

    eks_port: int | None = 6444
    """None: no EKS-compatible API."""
    webhook_port: int = 0
    """0: a free port, chosen at each start (the webhook registers wherever it listens)."""
    default_profile: bool = True
    profile_activation_delay: float = 0.0
    recreate_pending_pods: bool = True
    """Recreate controller-owned pods left Pending because they predate their profile."""
    agent: bool = True
    """Run the local registry and a host agent (containerd): this machine runs pods."""
    registry_port: int = 6445
    controllers: bool = True
    """Run the workload controllers (off where kube-controller-manager runs them)."""


@dataclass(frozen=True)
class Paths:
    """Files of one data dir; the single place that names them."""

    dir: Path

    @property
    def lock(self) -> Path:
        return self.dir / "nodeless.lock"

    @property
    def pid(self) -> Path:
        return self.dir / "nodeless.pid"

    @property
    def run(self) -> Path:
        """What the running instance serves (url, store, start time), for `status`."""
        return self.dir / "run.json"

    @property
    def log(self) -> Path:
        return self.dir / "nodeless.log"

    @property
    def endpoints(self) -> Path:
        return self.dir / "endpoints.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"


def _data_dir(value: Path | None) -> Path:
    return (value or DEFAULT_DATA_DIR).expanduser().resolve()


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


# --------------------------------------------------------------------------- up


@app.command()
def up(
    data_dir: DataDirOpt = None,
    port: Annotated[int, typer.Option(help="HTTPS port of the API server.")] = 6443,
    store: Annotated[Store, typer.Option(help="Where objects are kept.")] = Store.sqlite,
    etcd_endpoints: Annotated[
        str | None,
        typer.Option(help="Comma-separated etcd URLs (with --store etcd).", show_default=False),
    ] = None,
    region: Annotated[str, typer.Option(help="AWS region the cluster claims.")] = "us-east-1",
    cluster: Annotated[str, typer.Option(help="Cluster name.")] = "nodeless",
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; return once ready.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds --detach waits for every component to be ready.")
    ] = 60.0,
    eks_port: Annotated[
        int, typer.Option(help="HTTPS port of the EKS-compatible API (boto3, aws CLI); 0: off.")
    ] = 6444,
    webhook_port: Annotated[
        int, typer.Option(help="Port of the Fargate admission webhook; 0: a free one.")
    ] = 0,
    default_profile: Annotated[
        bool,
        typer.Option(
            "--default-profile/--no-default-profile",
            help="Create the Fargate profile fp-default (namespaces default, kube-system) "
            "on first start, as `eksctl create cluster --fargate` does.",
        ),
    ] = True,
    profile_activation_delay: Annotated[
        float,
        typer.Option(help="Seconds a new Fargate profile stays CREATING (EKS takes minutes)."),
    ] = 0.0,
    recreate_pending_pods: Annotated[
        bool,
        typer.Option(
            "--recreate-pending-pods/--no-recreate-pending-pods",
            help="Delete Pending pods owned by a controller that were created before their "
            "Fargate profile was ACTIVE, so they come back on Fargate (EKS leaves them).",
        ),
    ] = True,
    agent: Annotated[
        bool,
        typer.Option(
            "--agent/--no-agent",
            help="Run a host agent (containerd, pod networking) and a local registry, so "
            "pods run on this machine; --no-agent runs the control plane only.",
        ),
    ] = True,
    registry_port: Annotated[
        int, typer.Option(help="Port of the local OCI registry (127.0.0.1); 0: a free one, "
                          "the previous start's if it is still free.")
    ] = 6445,
    controllers: Annotated[
        bool,
        typer.Option(
            "--controllers/--no-controllers",
            help="Run the workload controllers (Deployment, ReplicaSet, Job, DaemonSet, "
            "Endpoints, garbage collector, namespaces), as kube-controller-manager does.",
        ),
    ] = True,
) -> None:
    """Start nodeless on this machine: the control plane and the components it runs.

    The cluster's VPC comes from DATA_DIR/vpc.yaml (written with 10.0.0.0/16, two private
    subnets and one public on first start; edit it and restart to change it)."""
    options = UpOptions(
        eks_port=eks_port or None,
        webhook_port=webhook_port,
        default_profile=default_profile,
        profile_activation_delay=profile_activation_delay,
        recreate_pending_pods=recreate_pending_pods,
        agent=agent,
        registry_port=registry_port,
        controllers=controllers,
    )
    config = APIServerConfig(
        data_dir=_data_dir(data_dir),
        port=port,
        store=store.value,
        cluster_name=cluster,
        region=region,
    )
    if etcd_endpoints:
        config.etcd_endpoints = [e.strip() for e in etcd_endpoints.split(",") if e.strip()]
    paths = Paths(config.data_dir)
    paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _lock_holder(paths) is None:  # endpoints.json is the previous start's
        options = _keep_registry_port(options, paths)
    if detach:
        _up_detached(config, options, paths, timeout)
    else:
        raise typer.Exit(_up_foreground(config, options, paths))


def components(config: APIServerConfig, options: UpOptions | None = None) -> list[Component]:
    """What `up` runs, in start order; later issues append theirs here. Call after
    `_prepare` (the Fargate components get their credentials from the data dir)."""
    from nodeless.fargate.components import fargate_components

    options = options or UpOptions()
    settings = fargate_settings(config, options)
    parts: list[Component] = [
        APIServerComponent(config),
        *fargate_components(settings, activation_delay=options.profile_activation_delay),
        *_workload_controllers(config, options),
    ]
    if options.agent:
        parts += data_path_components(config, settings, options)
    return parts


def data_path_components(config: APIServerConfig, settings: FargateSettings,
                         options: UpOptions) -> list[Component]:
    """The local registry and the host agent; endpoints.json learns where they are."""
    from nodeless.agent.component import AgentComponent, RegistryComponent

    paths = Paths(config.data_dir)
    registry = RegistryComponent(config.data_dir, port=options.registry_port)
    agent = AgentComponent(config.data_dir, kubeconfig=settings.kubeconfig, registry=registry)
    assert settings.kubeconfig is not None

    def publish(ready: RegistryComponent) -> None:
        endpoints = json.loads(paths.endpoints.read_text())
        endpoints["registry"] = ready.registry.address if ready.registry else None
        endpoints["containerd"] = str(agent.containerd_socket)
        write_atomic(paths.endpoints, (json.dumps(endpoints, indent=2) + "\n").encode(),
                     0o644)

    registry.on_ready = publish
    return [registry, agent]


def _workload_controllers(config: APIServerConfig, options: UpOptions) -> list[Component]:
    """The workload controllers (issue 7), a child process with its own kubeconfig."""
    if not options.controllers:
        return []
    from nodeless.apiserver.pki import PKI
    from nodeless.controllers.component import controllers_component, prepare_kubeconfig

    ca_pem = PKI.at(config.data_dir).ca_cert.read_bytes()
    return [controllers_component(prepare_kubeconfig(config.data_dir, _url(config), ca_pem))]


def fargate_settings(config: APIServerConfig, options: UpOptions) -> FargateSettings:
    """The Fargate components' settings for this data dir (writes their token,
    kubeconfig and certificates; reads DATA_DIR/vpc.yaml)."""
    from nodeless.fargate.components import prepare_local

    return prepare_local(
        config.data_dir,
        _url(config),
        cluster=config.cluster_name,
        region=config.region,
        webhook_port=options.webhook_port,
        eks_port=options.eks_port,
        default_profile=options.default_profile,
        recreate_pending_pods=options.recreate_pending_pods,
    )


def _eks_url(options: UpOptions) -> str | None:
    """Where the EKS-compatible API listens (None: it is off)."""
    return None if options.eks_port is None else f"https://127.0.0.1:{options.eks_port}"


def _check_free(config: APIServerConfig, options: UpOptions, paths: Paths) -> None:
    """Refuse early and clearly, before touching any file of a running instance."""
    holder = _lock_holder(paths)
    if holder is not None:
        pid = f" (pid {holder})" if holder else ""
        raise _fail(f"nodeless is already running on {paths.dir}{pid}; see `nodeless status`")
    _check_ports(config, options)


def _check_ports(config: APIServerConfig, options: UpOptions) -> None:
    ports = [(config.port, "--port")]
    if _eks_url(options):
        ports.append((options.eks_port or 0, "--eks-port"))
    if options.webhook_port:
        ports.append((options.webhook_port, "--webhook-port"))
    if options.agent and options.registry_port:
        ports.append((options.registry_port, "--registry-port"))
    for port, flag in ports:
        if _port_in_use(config.host, port):
            raise _fail(f"port {port} on {config.host} is already in use; choose {flag}")


def _prepare(config: APIServerConfig, options: UpOptions, paths: Paths) -> tuple[PKI, str]:
    """PKI, admin token, kubeconfig and endpoints.json: everything a client needs."""
    pki = ensure_pki(config.data_dir, extra_sans=config.extra_sans)
    token = ensure_tokens(config.data_dir)
    url = _url(config)
    write_kubeconfig(config.data_dir, url, pki.ca_pem(), token, cluster=config.cluster_name)
    endpoints = {
        "kubernetes": url,
        "eks": _eks_url(options),
        "cluster": config.cluster_name,
        "region": config.region,
    }
    write_atomic(paths.endpoints, (json.dumps(endpoints, indent=2) + "\n").encode(), 0o644)
    return pki, token


def _keep_registry_port(options: UpOptions, paths: Paths) -> UpOptions:
    """With --registry-port 0, take the port of the previous start again while it is free:
    pods keep the image references they were created with (`127.0.0.1:PORT/...`), and
    those whose policy pulls again at a restart (`:latest`) would fail on a new port."""
    if not options.agent or options.registry_port:
        return options
    previous = str(_read_json(paths.endpoints).get("registry") or "")
    host, _, port = previous.rpartition(":")
    if host == "127.0.0.1" and port.isdigit() and not _port_in_use(host, int(port)):
        return replace(options, registry_port=int(port))
    return options


def _up_foreground(config: APIServerConfig, options: UpOptions, paths: Paths) -> int:
    lock = _try_lock(paths)
    if lock is None:
        _check_free(config, options, paths)  # explains who holds it
        raise _fail(f"nodeless is already running on {paths.dir}")
    try:
        _check_ports(config, options)
        _setup_logging(paths, detached=os.environ.get(DETACHED_ENV) == "1")
        _prepare(config, options, paths)
        try:
            parts = components(config, options)
        except ValueError as e:  # e.g. a broken DATA_DIR/vpc.yaml
            raise _fail(str(e)) from None
        run: dict[str, Any] = {
            "pid": os.getpid(),
            "url": _url(config),
            "port": config.port,
            "store": config.store,
            "etcd_endpoints": config.etcd_endpoints if config.store == "etcd" else [],
            "started_at": time.time(),
            "components": {c.name: "starting" for c in parts},
            "ready": False,
        }
        write_atomic(paths.run, json.dumps(run, indent=2).encode(), 0o644)
        write_atomic(paths.pid, f"{os.getpid()}\n".encode(), 0o644)
        try:
            return aiotasks.run(_run(config, paths, parts, run))
        except KeyboardInterrupt:  # Ctrl-C before the loop's own handler was installed
            return 130
        finally:
            for f in (paths.pid, paths.run):
                f.unlink(missing_ok=True)
    finally:
        lock.close()


async def _run(config: APIServerConfig, paths: Paths, parts: list[Component],
               run: dict[str, Any]) -> int:
    def component_ready(name: str) -> None:
        run["components"][name] = "ready"
        write_atomic(paths.run, json.dumps(run, indent=2).encode(), 0o644)

    def ready() -> None:
        run["ready"] = True
        write_atomic(paths.run, json.dumps(run, indent=2).encode(), 0o644)
        log.info("nodeless is up at %s; export KUBECONFIG=%s", _url(config), paths.kubeconfig)

    code = await run_until_signalled(parts, on_ready=ready, on_component_ready=component_ready)
    if code == 0:
        log.info("nodeless stopped")
    return code


def _up_detached(config: APIServerConfig, options: UpOptions, paths: Paths,
                 timeout: float) -> None:
    """Re-exec `up` in a new session with output to the log file; wait until every
    component is ready (and fp-default ACTIVE, so a first `kubectl run` lands on it)."""
    _check_free(config, options, paths)
    pki, token = _prepare(config, options, paths)
    offset = paths.log.stat().st_size if paths.log.exists() else 0
    argv = [
        sys.executable, "-m", "nodeless.cli.main", "up",
        "--data-dir", str(config.data_dir),
        "--port", str(config.port),
        "--store", config.store,
        "--region", config.region,
        "--cluster", config.cluster_name,
        "--eks-port", str(options.eks_port or 0),
        "--webhook-port", str(options.webhook_port),
        "--default-profile" if options.default_profile else "--no-default-profile",
        "--profile-activation-delay", str(options.profile_activation_delay),
        "--controllers" if options.controllers else "--no-controllers",
        "--agent" if options.agent else "--no-agent",
        "--registry-port", str(options.registry_port),
        "--recreate-pending-pods" if options.recreate_pending_pods
        else "--no-recreate-pending-pods",
    ]  # fmt: skip
    if config.store == "etcd":
        argv += ["--etcd-endpoints", ",".join(config.etcd_endpoints)]
    with _open_log(paths) as logf:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, DETACHED_ENV: "1"},
        )
    deadline = time.monotonic() + timeout
    with err.status(f"starting nodeless on {_url(config)} ..."):
        while True:
            code = proc.poll()
            if code is not None:
                _print_tail(paths.log, offset)
                raise _fail(f"nodeless exited with code {code} before it was ready")
            ok, _ = readyz(_url(config), pki.ca_cert, token)
            if ok and _read_json(paths.run).get("ready") is True:
                break
            if time.monotonic() > deadline:
                _terminate(proc)
                _print_tail(paths.log, offset)
                raise _fail(f"nodeless was not ready within {timeout:.0f}s; stopped it")
            time.sleep(0.1)
        if options.default_profile:
            _wait_default_profile(config, paths, pki.ca_cert, token, deadline)
    proc.returncode = 0  # it lives on without us; silence Popen's "still running" warning
    dd = "" if paths.dir == _data_dir(None) else f" --data-dir {paths.dir}"
    out.print(
        f"[bold green]nodeless is up[/] at {_url(config)} (pid {proc.pid}, store {config.store})",
        highlight=False,
    )
    out.print(f"kubeconfig: {paths.kubeconfig}", highlight=False)
    out.print(f"  export KUBECONFIG={paths.kubeconfig}\n  kubectl get ns", highlight=False)
    eks = _read_json(paths.endpoints).get("eks")
    if eks:
        aws = paths.dir / "aws"
        out.print(f"EKS API: {eks}\n  export AWS_CONFIG_FILE={aws / 'config'} "
                  f"AWS_SHARED_CREDENTIALS_FILE={aws / 'credentials'}", highlight=False)
    out.print(f"logs: {paths.log}    stop: nodeless down{dd}", highlight=False)


def _wait_default_profile(config: APIServerConfig, paths: Paths, ca: Path, token: str,
                          deadline: float) -> None:
    """Until fp-default is ACTIVE; a warning, not a failure, if it is not by `deadline`
    (it may have been deleted by the user, which is their right)."""
    from nodeless.fargate.components import DEFAULT_PROFILE, default_profile_marker
    from nodeless.fargate.names import API_VERSION

    path = f"/apis/{API_VERSION}/fargateprofiles/{DEFAULT_PROFILE}"
    state = "?"
    while time.monotonic() < deadline:
        code, body = _get_json(_url(config), path, ca, token)
        if code == 404 and default_profile_marker(paths.dir).exists():
            return  # deleted by the user after an earlier start: not ours to wait for
        state = str(((body or {}).get("status") or {}).get("status") or "?")
        if state in ("ACTIVE", "CREATE_FAILED"):
            if state != "ACTIVE":
                err.print(f"[yellow]warning:[/] {DEFAULT_PROFILE} is {state}; "
                          f"see kubectl describe fargateprofile {DEFAULT_PROFILE}")
            return
        time.sleep(0.05)
    err.print(f"[yellow]warning:[/] {DEFAULT_PROFILE} is not ACTIVE yet ({state})")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------- down


@app.command()
def down(
    data_dir: DataDirOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before SIGKILL.")] = 30.0,
) -> None:
    """Stop nodeless cleanly (SIGTERM, then SIGKILL after --timeout)."""
    paths = Paths(_data_dir(data_dir))
    holder = _lock_holder(paths)
    if holder is None:
        _clean_run_files(paths)
        out.print(f"nodeless is not running on {paths.dir}", highlight=False)
        return
    if not holder:
        raise _fail(f"nodeless holds {paths.lock} but wrote no pid file; is it still starting?")
    os.kill(holder, signal.SIGTERM)
    with err.status(f"stopping nodeless (pid {holder}) ..."):
        stopped = _wait_unlocked(paths, timeout)
        if not stopped:
            err.print(f"still running after {timeout:.0f}s; sending SIGKILL", highlight=False)
            _kill_hard(holder)
            stopped = _wait_unlocked(paths, 10.0)
    if not stopped:
        raise _fail(f"pid {holder} survived SIGKILL")
    _clean_run_files(paths)
    out.print(f"nodeless stopped (pid {holder})", highlight=False)


def _kill_hard(pid: int) -> None:
    """SIGKILL the whole session a detached instance leads (it may have children),
    but only the process itself when it shares a group with a shell."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _wait_unlocked(paths: Paths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _lock_holder(paths) is None:
            return True
        time.sleep(0.1)
    return _lock_holder(paths) is None


def _clean_run_files(paths: Paths) -> None:
    """Only called when nobody holds the lock, so these files are stale."""
    for f in (paths.pid, paths.run):
        f.unlink(missing_ok=True)


# ----------------------------------------------------------------------- status


@app.command()
def status(data_dir: DataDirOpt = None) -> None:
    """Show what runs. Exit code: 0 ready, 1 not running, 2 running but not ready."""
    paths = Paths(_data_dir(data_dir))
    holder = _lock_holder(paths)
    if holder is None:
        out.print(f"nodeless is [bold]not running[/] on {paths.dir}", highlight=False)
        raise typer.Exit(1)
    run = _read_json(paths.run)
    url = str(run.get("url", ""))
    ready, detail = False, "unknown"
    ca, token = PKI.at(paths.dir).ca_cert, _kubeconfig_token(paths.kubeconfig)
    if url and ca.exists() and token:
        ready, detail = readyz(url, ca, token)
    started = run.get("started_at")
    table = Table(title="nodeless", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", "[green]running[/]" if ready else "[yellow]running, not ready[/]")
    table.add_row("pid", str(holder or run.get("pid", "?")))
    table.add_row("url", url or "?")
    store = str(run.get("store", "?"))
    if run.get("etcd_endpoints"):
        store += f" ({', '.join(run['etcd_endpoints'])})"
    table.add_row("store", store)
    if isinstance(started, int | float):
        table.add_row("uptime", _duration(time.time() - started))
    table.add_row("readyz", ("ok" if ready else "not ready: ") + ("" if ready else detail))
    parts = run.get("components") or {}
    if isinstance(parts, list):  # written by an older nodeless
        parts = dict.fromkeys(parts, "?")
    table.add_row("components", "\n".join(
        f"{name}: " + ("[green]ready[/]" if state == "ready" else f"[yellow]{state}[/]")
        for name, state in parts.items()))
    endpoints = _read_json(paths.endpoints)
    if eks := endpoints.get("eks"):
        table.add_row("eks api", str(eks))
    if registry := endpoints.get("registry"):
        table.add_row("registry", str(registry))
    if "host-agent" in parts:
        from nodeless.agent.component import (
            LAPTOP_OVERCOMMIT_CPU,
            LAPTOP_OVERCOMMIT_MEMORY,
            LAPTOP_PODS,
        )
        table.add_row("host", f"this machine offers cpu x{LAPTOP_OVERCOMMIT_CPU:g} and "
                      f"memory x{LAPTOP_OVERCOMMIT_MEMORY:g} its own, up to {LAPTOP_PODS} "
                      "micro-nodes: overcommitted, so a laptop runs hundreds of small pods "
                      "(a production host agent offers x1, Fargate's guarantee)")
    table.add_row("kubeconfig", str(paths.kubeconfig))
    table.add_row("log", str(paths.log))
    out.print(table)
    raise typer.Exit(0 if ready else 2)


# ---------------------------------------------------------------------- helpers


def readyz(url: str, ca_file: Path, token: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET /readyz verifying TLS against our CA, as a client would; (ok, reason)."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    ctx = ssl.create_default_context(cafile=str(ca_file))
    conn = http.client.HTTPSConnection(host.strip("[]"), int(port), timeout=timeout, context=ctx)
    try:
        conn.request("GET", "/readyz", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body = resp.read(512).decode(errors="replace").strip()
        return resp.status == 200, f"HTTP {resp.status} {body}".strip()
    except (OSError, http.client.HTTPException) as e:
        return False, str(e) or type(e).__name__
    finally:
        conn.close()


def _get_json(url: str, path: str, ca_file: Path, token: str,
              timeout: float = 2.0) -> tuple[int, dict[str, Any] | None]:
    """GET `path` as the admin; (status, JSON body), (0, None) if unreachable."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    ctx = ssl.create_default_context(cafile=str(ca_file))
    conn = http.client.HTTPSConnection(host.strip("[]"), int(port), timeout=timeout, context=ctx)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        try:
            body = json.loads(resp.read())
        except ValueError:
            body = None
        return resp.status, body if isinstance(body, dict) else None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


def _url(config: APIServerConfig) -> str:
    host = config.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{config.port}"


def _try_lock(paths: Paths) -> IO[str] | None:
    """The instance lock, held until the returned file is closed; None if taken."""
    f = open(paths.lock, "a")  # noqa: SIM115 - lives as long as the instance
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def _lock_holder(paths: Paths) -> int | None:
    """None if no instance runs; else its pid from the pid file (0 if not written yet)."""
    if not paths.lock.exists():
        return None
    lock = _try_lock(paths)
    if lock is not None:
        lock.close()
        return None
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return 0


def _port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _kubeconfig_token(path: Path) -> str | None:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
        return str(config["users"][0]["user"]["token"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m) + [f"{s}s"]
    return " ".join(parts[:2])


@contextlib.contextmanager
def _open_log(paths: Paths) -> Iterator[IO[bytes]]:
    fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as f:
        yield f


def _print_tail(log_path: Path, offset: int, lines: int = 40) -> None:
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return
    tail = text.splitlines()[-lines:]
    if tail:
        err.rule(f"last lines of {log_path}")
        err.print("\n".join(tail), highlight=False, markup=False)
        err.rule()


def _setup_logging(paths: Paths, *, detached: bool) -> None:
    """Detached: stderr is the log file already. Foreground: the terminal and the file."""
    fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for chatty in ("httpx", "httpx2", "httpcore", "botocore"):  # a line per request
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if detached:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(handler)
        return
    root.addHandler(RichHandler(console=err, show_path=False, rich_tracebacks=True))
    file_handler = logging.FileHandler(paths.log)
    file_handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(file_handler)


if __name__ == "__main__":
    app()
