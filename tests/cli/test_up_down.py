"""`nodeless up --detach / status / down` as a user runs them: real processes, real TLS."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from typer.testing import CliRunner

from nodeless.cli.main import app

_script = Path(sys.executable).with_name("nodeless")
NODELESS = [str(_script)] if _script.exists() else [sys.executable, "-m", "nodeless.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nodeless(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODELESS_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [*NODELESS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def get(url: str, ca: Path, token: str | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "data"
    yield d
    if (d / "nodeless.pid").exists():  # never leak a server, whatever the test did
        nodeless("down", "--data-dir", str(d), "--timeout", "10")


def test_up_detach_status_down(data_dir: Path) -> None:
    port = free_port()
    dd = ["--data-dir", str(data_dir)]
    eks_port = free_port()  # not the default 6444: another instance may hold it
    # The whole thing, host agent and registry included (on a free port, not 6445).
    agent = ("--registry-port", "0", "--timeout", "120")
    started = nodeless("up", "--detach", *dd, "--port", str(port), "--eks-port", str(eks_port),
                       *agent, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    kubeconfig = data_dir / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in started.stdout

    url = f"https://127.0.0.1:{port}"
    endpoints = json.loads((data_dir / "endpoints.json").read_text())
    registry = endpoints.pop("registry")
    assert registry.startswith("127.0.0.1:") and registry != "127.0.0.1:6445"
    assert endpoints == {"kubernetes": url, "eks": f"https://127.0.0.1:{eks_port}",
                         "cluster": "nodeless", "region": "us-east-1",
                         "containerd": str(data_dir / "agent" / "containerd" /
                                           "containerd.sock")}  # fmt: skip
    kc = yaml.safe_load(kubeconfig.read_text())
    token = kc["users"][0]["user"]["token"]
    ca = data_dir / "pki" / "ca.crt"

    status, body = get(f"{url}/readyz", ca, token)
    assert status == 200, body

    # The official client, configured only by the kubeconfig, trusts the server.
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        request = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        assert api.call_api(*request).status == 200

    # Once the API is served, it is served only to authenticated clients.
    if get(f"{url}/api/v1/namespaces", ca, token)[0] == 200:
        assert get(f"{url}/api/v1/namespaces", ca, None)[0] == 401

    shown = nodeless("status", *dd)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    pid = int((data_dir / "nodeless.pid").read_text())
    assert str(pid) in shown.stdout and url in shown.stdout and "sqlite" in shown.stdout
    assert "registry: ready" in shown.stdout and "host-agent: ready" in shown.stdout
    assert registry in shown.stdout and "overcommitted" in shown.stdout

    again = nodeless("up", "--detach", *dd, "--port", str(free_port()))
    assert again.returncode != 0
    assert "already running" in again.stderr
    again_fg = nodeless("up", *dd, "--port", str(free_port()))
    assert again_fg.returncode != 0 and "already running" in again_fg.stderr
    assert json.loads((data_dir / "endpoints.json").read_text())["kubernetes"] == url

    stopped = nodeless("down", *dd)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped (pid {pid})" in stopped.stdout
    assert not (data_dir / "nodeless.pid").exists()
    assert not Path(endpoints["containerd"]).exists()  # the agent took containerd along
    with pytest.raises(urllib.error.URLError):
        get(f"{url}/readyz", ca, token)
    assert "SIGTERM received" in (data_dir / "nodeless.log").read_text()

    assert nodeless("status", *dd).returncode == 1
    assert "not running" in nodeless("down", *dd).stdout

    # A restart on the same data dir keeps the CA and the admin token.
    ca_pem = ca.read_bytes()
    restarted = nodeless("up", "--detach", *dd, "--port", str(port), "--eks-port",
                         str(eks_port), *agent, timeout=180)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert ca.read_bytes() == ca_pem
    assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"] == token
    assert get(f"{url}/readyz", ca, token)[0] == 200
    # --registry-port 0 takes the previous port again: pods' image references stay valid.
    assert json.loads((data_dir / "endpoints.json").read_text())["registry"] == registry
    assert nodeless("down", *dd).returncode == 0


def test_foreground_stops_on_sigterm(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODELESS_")}
    proc = subprocess.Popen(
        [*NODELESS, "up", "--data-dir", str(data_dir), "--port", str(port),
         "--eks-port", str(free_port()), "--registry-port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        ca, deadline = data_dir / "pki" / "ca.crt", time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            token_file = data_dir / "kubeconfig"
            if ca.exists() and token_file.exists():
                token = yaml.safe_load(token_file.read_text())["users"][0]["user"]["token"]
                try:
                    if get(f"https://127.0.0.1:{port}/readyz", ca, token)[0] == 200:
                        break
                except urllib.error.URLError:
                    pass
            assert time.monotonic() < deadline, "not ready in 60s"
            time.sleep(0.1)
        assert (data_dir / "nodeless.pid").read_text().strip() == str(proc.pid)
        proc.send_signal(signal.SIGTERM)  # while the registry and the agent may start
        assert proc.wait(60) == 0
        assert not (data_dir / "nodeless.pid").exists()
        left = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True,
                              text=True).stdout
        assert left == "", f"processes of the instance outlived it: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_up_refuses_a_taken_port(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", str(port))
    assert result.returncode != 0
    assert "already in use" in result.stderr
    assert not (data_dir / "nodeless.pid").exists()


def test_up_refuses_a_taken_registry_port(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        result = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port",
                          str(free_port()), "--eks-port", "0", "--registry-port", str(taken))
    assert result.returncode != 0
    assert f"port {taken} on 127.0.0.1 is already in use; choose --registry-port" \
        in result.stderr
    assert not (data_dir / "nodeless.pid").exists()


def test_status_and_down_when_nothing_runs(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "not running" in result.output
    result = runner.invoke(app, ["down", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "not running" in result.output


def test_data_dir_from_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["status"], env={"NODELESS_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1 and str(tmp_path) in result.output


def test_objects_survive_down_and_up(tmp_path: Path) -> None:
    """SQLite: what was stored, with its uid and resourceVersion, is there after
    `nodeless down` and `nodeless up` on the same data dir."""
    data_dir = tmp_path / "persist"
    port, eks_port = str(free_port()), str(free_port())
    # The control plane alone (--no-agent): what is kept is the store's business.
    up = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", port,
                  "--eks-port", eks_port, "--no-agent")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        api = client.CoreV1Api(config.new_client_from_config(str(data_dir / "kubeconfig")))
        for i in range(3):
            api.create_namespaced_config_map("default", {
                "metadata": {"name": f"kept-{i}"}, "data": {"i": str(i)}})
        api.patch_namespaced_config_map("kept-0", "default", {"data": {"i": "changed"}})
        before = {c.metadata.name: (c.metadata.uid, c.metadata.resource_version, c.data)
                  for c in api.list_namespaced_config_map("default").items}
        assert nodeless("down", "--data-dir", str(data_dir)).returncode == 0
        up = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", port,
                      "--eks-port", eks_port, "--no-agent")
        assert up.returncode == 0, up.stdout + up.stderr
        api = client.CoreV1Api(config.new_client_from_config(str(data_dir / "kubeconfig")))
        after = {c.metadata.name: (c.metadata.uid, c.metadata.resource_version, c.data)
                 for c in api.list_namespaced_config_map("default").items}
        assert after == before
        assert before["kept-0"][2] == {"i": "changed"}
    finally:
        nodeless("down", "--data-dir", str(data_dir))
