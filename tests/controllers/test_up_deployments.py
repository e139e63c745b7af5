"""Deployments through kubectl against `nodeless up` (issue 7, acceptance 1): rollout
status, a rolling `set image` watched so that never more than maxSurge extra pods exist,
history and undo, restart, pause and resume, scale to 0 and back, and delete.

Pods are bound and marked Ready by the stand-in kubelet (kubelet_helper.py) in a
namespace without a Fargate profile (`--no-default-profile`, `--no-agent`), so that
rollouts are timed by the controllers alone. Acceptance 7 (Deployments on Fargate
micro-nodes, run by the host agent) is tests/e2e/test_up_pods.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.cli.test_up_down import free_port, nodeless
from tests.controllers.kubelet_helper import FakeKubelet
from tests.controllers.test_workloads import deployment, wait
from tests.fixtures.apiserver import KUBECTL

NS = "apps"


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.kubeconfig = data_dir / "kubeconfig"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                                env=env, timeout=90)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = tmp_path_factory.mktemp("controllers-up") / "data"
    started = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", str(free_port()),
                       "--eks-port", "0", "--no-default-profile", "--no-agent")
    assert started.returncode == 0, started.stdout + started.stderr
    cluster = Up(data_dir)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cluster.kubeconfig),
                                       client_configuration=configuration)
    helper = FakeKubelet(kubernetes.client.ApiClient(configuration), "worker-up",
                         namespaces={NS}).start()
    try:
        cluster.kubectl("create", "namespace", NS)
        yield cluster
    finally:
        helper.stop()
        nodeless("down", "--data-dir", str(data_dir))


def test_status_lists_the_controllers(up: Up) -> None:
    status = nodeless("status", "--data-dir", str(up.data_dir))
    assert "controllers: ready" in status.stdout, status.stdout


class PodCounter:
    """Watches the pods of `app` and records the most not-terminating ones at once."""

    def __init__(self, up: Up, app: str) -> None:
        self.up, self.app = up, app
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(self.up.kubeconfig),
                                           client_configuration=configuration)
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))
        live: dict[str, bool] = {}
        while not self._stop.is_set():
            stream = kubernetes.watch.Watch().stream(
                core.list_namespaced_pod, NS, label_selector=f"app={self.app}",
                timeout_seconds=2)
            for event in stream:
                pod = event["object"]
                name = pod.metadata.name
                if event["type"] == "DELETED" or pod.metadata.deletion_timestamp:
                    live.pop(name, None)
                else:
                    live[name] = True
                self.most = max(self.most, len(live))
                if self._stop.is_set():
                    break

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.most


def test_deployment_lifecycle_with_kubectl(up: Up) -> None:
    up.kubectl("apply", "-n", NS, "-f", "-", input=deployment("web", 3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    out = up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out
    first_rs = up.json("rs", "-n", NS, "-l", "app=web")["items"]
    assert len(first_rs) == 1
    assert first_rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    counter = PodCounter(up, "web")
    time.sleep(0.5)
    up.kubectl("set", "image", "-n", NS, "deploy/web", "c=busybox:2")
    up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s")
    most = counter.stop()
    assert 3 <= most <= 4, f"{most} pods at once with replicas 3 and maxSurge 1"
    images = {p["spec"]["containers"][0]["image"] for p in up.json("pods", "-n", NS, "-l",
                                                                    "app=web")["items"]
              if not p["metadata"].get("deletionTimestamp")}
    assert images == {"busybox:2"}
    history = up.kubectl("rollout", "history", "-n", NS, "deploy/web").stdout
    assert "1" in history and "2" in history

    up.kubectl("rollout", "undo", "-n", NS, "deploy/web")
    up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s")
    d = up.json("deploy", "web", "-n", NS)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rs = up.json("rs", "-n", NS, "-l", "app=web")["items"]
    assert len(rs) == 2  # the first ReplicaSet came back as revision 3
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"

    up.kubectl("rollout", "restart", "-n", NS, "deploy/web")
    up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s")
    assert len(up.json("rs", "-n", NS, "-l", "app=web")["items"]) == 3

    up.kubectl("rollout", "pause", "-n", NS, "deploy/web")
    up.kubectl("set", "image", "-n", NS, "deploy/web", "c=busybox:3")
    time.sleep(1)
    assert len(up.json("rs", "-n", NS, "-l", "app=web")["items"]) == 3  # paused: no rollout
    up.kubectl("rollout", "resume", "-n", NS, "deploy/web")
    up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s")

    up.kubectl("scale", "-n", NS, "deploy/web", "--replicas=0")
    wait(lambda: not [p for p in up.json("pods", "-n", NS, "-l", "app=web")["items"]],
         what="scale to 0")
    up.kubectl("scale", "-n", NS, "deploy/web", "--replicas=3")
    up.kubectl("rollout", "status", "-n", NS, "deploy/web", "--timeout=60s")
    assert len(up.json("pods", "-n", NS, "-l", "app=web")["items"]) == 3

    up.kubectl("delete", "-n", NS, "deploy/web")
    wait(lambda: not up.json("rs", "-n", NS, "-l", "app=web")["items"]
         and not up.json("pods", "-n", NS, "-l", "app=web")["items"], what="delete to cascade")


def test_recreate_strategy_replaces_all_at_once(up: Up) -> None:
    up.kubectl("apply", "-n", NS, "-f", "-",
               input=deployment("batch", 2, strategy={"type": "Recreate"}))
    up.kubectl("rollout", "status", "-n", NS, "deploy/batch", "--timeout=60s")
    counter = PodCounter(up, "batch")
    time.sleep(0.5)
    up.kubectl("set", "image", "-n", NS, "deploy/batch", "c=busybox:2")
    up.kubectl("rollout", "status", "-n", NS, "deploy/batch", "--timeout=60s")
    assert counter.stop() == 2  # never old and new together
