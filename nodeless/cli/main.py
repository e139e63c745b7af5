"""`nodeless up / down / status`: one machine's control plane as one command.

A data dir holds one instance. Who runs it is decided by an flock on DATA_DIR/nodeless.lock
held for the life of the process, not by the pid file alone: the kernel drops the lock
when the process dies (even as an unreaped zombie, even after SIGKILL), so a stale pid
file or a recycled pid can never make us refuse to start or signal a stranger.
"""

from __future__ import annotations

import asyncio
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from nodeless.apiserver.config import APIServerConfig
from nodeless.apiserver.pki import PKI, ensure_pki, write_atomic
from nodeless.apiserver.tokens import ensure_tokens
from nodeless.cli.kubeconfig import write_kubeconfig
from nodeless.cli.supervisor import APIServerComponent, Component, ComponentFailed, supervise

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
    timeout: Annotated[float, typer.Option(help="Seconds --detach waits for /readyz.")] = 60.0,
) -> None:
    """Start nodeless on this machine: the control plane and the components it runs."""
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
    if detach:
        _up_detached(config, paths, timeout)
    else:
        raise typer.Exit(_up_foreground(config, paths))


def components(config: APIServerConfig) -> list[Component]:
    """What `up` runs, in start order; later issues append theirs here."""
    return [APIServerComponent(config)]


def _check_free(config: APIServerConfig, paths: Paths) -> None:
    """Refuse early and clearly, before touching any file of a running instance."""
    holder = _lock_holder(paths)
    if holder is not None:
        pid = f" (pid {holder})" if holder else ""
        raise _fail(f"nodeless is already running on {paths.dir}{pid}; see `nodeless status`")
    if _port_in_use(config.host, config.port):
        raise _fail(f"port {config.port} on {config.host} is already in use; choose --port")


def _prepare(config: APIServerConfig, paths: Paths) -> tuple[PKI, str]:
    """PKI, admin token, kubeconfig and endpoints.json: everything a client needs."""
    pki = ensure_pki(config.data_dir, extra_sans=config.extra_sans)
    token = ensure_tokens(config.data_dir)
    url = _url(config)
    write_kubeconfig(config.data_dir, url, pki.ca_pem(), token, cluster=config.cluster_name)
    endpoints = {
        "kubernetes": url,
        "eks": None,
        "cluster": config.cluster_name,
        "region": config.region,
    }
    write_atomic(paths.endpoints, (json.dumps(endpoints, indent=2) + "\n").encode(), 0o644)
    return pki, token


def _up_foreground(config: APIServerConfig, paths: Paths) -> int:
    lock = _try_lock(paths)
    if lock is None:
        _check_free(config, paths)  # explains who holds it
        raise _fail(f"nodeless is already running on {paths.dir}")
    try:
        if _port_in_use(config.host, config.port):
            raise _fail(f"port {config.port} on {config.host} is already in use; choose --port")
        _setup_logging(paths, detached=os.environ.get(DETACHED_ENV) == "1")
        _prepare(config, paths)
        run = {
            "pid": os.getpid(),
            "url": _url(config),
            "port": config.port,
            "store": config.store,
            "etcd_endpoints": config.etcd_endpoints if config.store == "etcd" else [],
            "started_at": time.time(),
            "components": [c.name for c in components(config)],
        }
        write_atomic(paths.run, json.dumps(run, indent=2).encode(), 0o644)
        write_atomic(paths.pid, f"{os.getpid()}\n".encode(), 0o644)
        try:
            return asyncio.run(_run(config, paths))
        except KeyboardInterrupt:  # Ctrl-C before the loop's own handler was installed
            return 130
        finally:
            for f in (paths.pid, paths.run):
                f.unlink(missing_ok=True)
    finally:
        lock.close()


async def _run(config: APIServerConfig, paths: Paths) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop)

    def ready() -> None:
        log.info("nodeless is up at %s; export KUBECONFIG=%s", _url(config), paths.kubeconfig)

    try:
        await supervise(components(config), stop, on_ready=ready)
    except ComponentFailed as e:
        log.error("%s", e, exc_info=e.cause)
        return 1
    log.info("nodeless stopped")
    return 0


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("%s received, shutting down", sig.name)
    stop.set()


def _up_detached(config: APIServerConfig, paths: Paths, timeout: float) -> None:
    """Re-exec `up` in a new session with output to the log file; wait for /readyz."""
    _check_free(config, paths)
    pki, token = _prepare(config, paths)
    offset = paths.log.stat().st_size if paths.log.exists() else 0
    argv = [
        sys.executable, "-m", "nodeless.cli.main", "up",
        "--data-dir", str(config.data_dir),
        "--port", str(config.port),
        "--store", config.store,
        "--region", config.region,
        "--cluster", config.cluster_name,
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
            if ok:
                break
            if time.monotonic() > deadline:
                _terminate(proc)
                _print_tail(paths.log, offset)
                raise _fail(f"nodeless was not ready within {timeout:.0f}s; stopped it")
            time.sleep(0.1)
    proc.returncode = 0  # it lives on without us; silence Popen's "still running" warning
    dd = "" if paths.dir == _data_dir(None) else f" --data-dir {paths.dir}"
    out.print(
        f"[bold green]nodeless is up[/] at {_url(config)} (pid {proc.pid}, store {config.store})",
        highlight=False,
    )
    out.print(f"kubeconfig: {paths.kubeconfig}", highlight=False)
    out.print(f"  export KUBECONFIG={paths.kubeconfig}\n  kubectl get ns", highlight=False)
    out.print(f"logs: {paths.log}    stop: nodeless down{dd}", highlight=False)


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
    table.add_row("components", ", ".join(run.get("components", [])))
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
