"""Deployments through kubectl against `nodeless up` (issue 7, acceptance 1): rollout
status, a rolling `set image` watched so that never more than maxSurge extra pods exist,
history and undo, restart, pause and resume, scale to 0 and back, delete, and a Recreate
rollout that never has old and new pods together.

The pods are real: `nodeless up` with its host agent (tests/e2e/upcluster.py, a random
test VPC) runs each on its own Fargate micro-node, in the namespace `default` that the
profile fp-default selects, from images of nodeless's local registry. The pods are small
(0.25 vCPU, 0.5 GB) and stop on SIGTERM at once, so a rollout is timed by the controllers
and the agent's pod start, not by grace periods.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from tests.cli.test_up_down import nodeless
from tests.controllers.test_workloads import wait
from tests.e2e.upcluster import UpCluster, start, stop
from tests.fixtures.apiserver import KUBECTL

NS = "default"
ROLLOUT_TIMEOUT = 150
"""Seconds for one rollout: pods start in about 2 s each, far slower on a busy machine."""
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
"""The container's command: idles, and exits on SIGTERM (PID 1 ignores it otherwise)."""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    cluster = start(tmp_path_factory.mktemp("controllers-up") / "data")
    try:
        yield cluster
    finally:
        stop(cluster)


@pytest.fixture(scope="module")
def images(up: UpCluster) -> dict[str, str]:
    """Three distinct image references for `set image`: the registry's http-echo and
    busybox, and busybox copied to a tag of its own."""
    busybox = up.image("library/busybox:latest")
    third = up.image("library/busybox:rollout-3")
    subprocess.run(["skopeo", "copy", "--quiet", "--insecure-policy", "--src-tls-verify=false",
                    "--dest-tls-verify=false", f"docker://{busybox}", f"docker://{third}"],
                   check=True, capture_output=True, timeout=60)
    return {"1": up.image("nodeless/http-echo:latest"), "2": busybox, "3": third}


def deployment(name: str, replicas: int, image: str, **extra: Any) -> str:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 5,
                         "containers": [{"name": "c", "image": image, "command": SLEEPER,
                                         "resources": {"requests": {"cpu": "250m",
                                                                    "memory": "512Mi"}}}]}},
                     **extra}}
    return json.dumps(body)


def rollout_status(up: UpCluster, name: str) -> str:
    """`kubectl rollout status` with room for a busy machine (Cluster.kubectl allows 60 s)."""
    env = {**os.environ, "KUBECONFIG": str(up.data_dir / "kubeconfig")}
    result = subprocess.run([KUBECTL, "rollout", "status", "-n", NS, f"deploy/{name}",
                             f"--timeout={ROLLOUT_TIMEOUT}s"], capture_output=True, text=True,
                            env=env, timeout=ROLLOUT_TIMEOUT + 30)
    assert result.returncode == 0, f"rollout of {name}: {result.stdout}{result.stderr}"
    return result.stdout


def json_of(up: UpCluster, *args: str) -> Any:
    return json.loads(up.kubectl("get", *args, "-o", "json").stdout)


def test_status_lists_the_controllers(up: UpCluster) -> None:
    status = nodeless("status", "--data-dir", str(up.data_dir))
    assert "controllers: ready" in status.stdout, status.stdout


class PodCounter:
    """Watches the pods of `app` and records the most not-terminating ones at once.
    Returns once the watch has listed the `already` pods running now."""

    def __init__(self, up: UpCluster, app: str, already: int) -> None:
        self.up, self.app = up, app
        self.most = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait(lambda: self.most >= already or self.error, what=f"the watch of {app}")
        assert self.error is None, self.error

    def _run(self) -> None:
        try:
            self._watch()
        except BaseException as error:  # reported by stop()
            self.error = error

    def _watch(self) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(self.up.data_dir / "kubeconfig"),
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
        assert self.error is None, f"the pod watch failed: {self.error!r}"
        return self.most


def live_pods(up: UpCluster, app: str) -> list[dict[str, Any]]:
    return [p for p in json_of(up, "pods", "-n", NS, "-l", f"app={app}")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def test_deployment_lifecycle_with_kubectl(up: UpCluster, images: dict[str, str]) -> None:
    up.kubectl("apply", "-n", NS, "-f", "-", input=deployment("web", 3, images["1"], strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    out = rollout_status(up, "web")
    assert 'deployment "web" successfully rolled out' in out
    first_rs = json_of(up, "rs", "-n", NS, "-l", "app=web")["items"]
    assert len(first_rs) == 1
    assert first_rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = live_pods(up, "web")
    assert len(pods) == 3
    for pod in pods:  # run by the host agent, each on its own micro-node
        assert pod["spec"]["schedulerName"] == "fargate-scheduler"
        assert pod["spec"]["nodeName"].startswith("fargate-ip-"), pod["spec"]["nodeName"]
        assert pod["status"]["phase"] == "Running"

    counter = PodCounter(up, "web", already=3)
    up.kubectl("set", "image", "-n", NS, "deploy/web", f"c={images['2']}")
    rollout_status(up, "web")
    most = counter.stop()
    assert 3 <= most <= 4, f"{most} pods at once with replicas 3 and maxSurge 1"
    # Every old pod goes. Once in a full CI run (1 of 4), one old pod was still live (no
    # deletionTimestamp) just after `rollout status` had returned: a lag under load
    # whose cause is still to be found, so the check allows a few seconds and, on
    # failure, says which pods remained and in what state.
    def only_new_image() -> bool:
        return {p["spec"]["containers"][0]["image"] for p in live_pods(up, "web")} == \
            {images["2"]}

    try:
        wait(only_new_image, 10.0, "the old pods to go")
    except AssertionError:
        raise AssertionError([(p["metadata"]["name"], p["status"].get("phase"),
                               p["spec"]["containers"][0]["image"],
                               p["metadata"].get("ownerReferences"))
                              for p in live_pods(up, "web")]) from None
    history = up.kubectl("rollout", "history", "-n", NS, "deploy/web").stdout
    assert "1" in history and "2" in history

    up.kubectl("rollout", "undo", "-n", NS, "deploy/web")
    rollout_status(up, "web")
    d = json_of(up, "deploy", "web", "-n", NS)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == images["1"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rs = json_of(up, "rs", "-n", NS, "-l", "app=web")["items"]
    assert len(rs) == 2  # the first ReplicaSet came back as revision 3
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"

    up.kubectl("rollout", "restart", "-n", NS, "deploy/web")
    rollout_status(up, "web")
    assert len(json_of(up, "rs", "-n", NS, "-l", "app=web")["items"]) == 3

    up.kubectl("rollout", "pause", "-n", NS, "deploy/web")
    up.kubectl("set", "image", "-n", NS, "deploy/web", f"c={images['3']}")
    time.sleep(1)
    assert len(json_of(up, "rs", "-n", NS, "-l", "app=web")["items"]) == 3  # paused
    up.kubectl("rollout", "resume", "-n", NS, "deploy/web")
    rollout_status(up, "web")
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(up, "web")} == {images["3"]}

    up.kubectl("scale", "-n", NS, "deploy/web", "--replicas=0")
    wait(lambda: not json_of(up, "pods", "-n", NS, "-l", "app=web")["items"],
         timeout=ROLLOUT_TIMEOUT, what="scale to 0")
    up.kubectl("scale", "-n", NS, "deploy/web", "--replicas=3")
    rollout_status(up, "web")
    assert len(json_of(up, "pods", "-n", NS, "-l", "app=web")["items"]) == 3

    up.kubectl("delete", "-n", NS, "deploy/web")
    wait(lambda: not json_of(up, "rs", "-n", NS, "-l", "app=web")["items"]
         and not json_of(up, "pods", "-n", NS, "-l", "app=web")["items"],
         timeout=ROLLOUT_TIMEOUT, what="delete to cascade")


def test_recreate_strategy_replaces_all_at_once(up: UpCluster, images: dict[str, str]) -> None:
    up.kubectl("apply", "-n", NS, "-f", "-",
               input=deployment("batch", 2, images["1"], strategy={"type": "Recreate"}))
    rollout_status(up, "batch")
    counter = PodCounter(up, "batch", already=2)
    up.kubectl("set", "image", "-n", NS, "deploy/batch", f"c={images['2']}")
    rollout_status(up, "batch")
    assert counter.stop() == 2  # never old and new together
    up.kubectl("delete", "-n", NS, "deploy/batch")
    wait(lambda: not json_of(up, "pods", "-n", NS, "-l", "app=batch")["items"],
         timeout=ROLLOUT_TIMEOUT, what="the Recreate pods to go")
