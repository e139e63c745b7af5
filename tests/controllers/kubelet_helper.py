"""A stand-in kubelet for the controller tests, until the host agent (issue 6) lands.

It does through the API exactly what a kubelet (and, for unscheduled pods, a default
scheduler) would do, and nothing else: registers an ordinary Node (Ready, no taints
unless asked), binds Pending pods of the default scheduler in its namespaces to that
node through `pods/binding`, writes the status of pods bound to it (Running with an IP,
Ready after `ready_after` seconds, or a container that exits with 0 or 1 for Jobs), and
finishes graceful deletions of its pods (delete with grace 0, as a kubelet does once the
containers have stopped). Nothing runs: no container, no network.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

Outcome = Callable[[dict[str, Any]], str]
"""pod -> "run" (Running, Ready), "wait" (Running, never Ready), "succeed" (exit 0),
"fail" (exit 1)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeKubelet:
    api_client: Any
    node: str
    namespaces: set[str] | None = None
    """Pending pods of these namespaces (None: all) are bound to this node (the default
    scheduler's part; nodeless runs none)."""
    outcome: Outcome = lambda pod: "run"  # noqa: E731
    ready_after: float = 0.0
    subnet: str = "10.244.7.0/24"
    taints: list[dict[str, str]] = field(default_factory=list)
    node_labels: dict[str, str] = field(default_factory=dict)
    bind: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ips: dict[str, str] = field(default_factory=dict)
    _next_ip: int = 2
    _timers: list[threading.Timer] = field(default_factory=list)
    started: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.core = kubernetes.client.CoreV1Api(self.api_client)

    # ---- the node ----------------------------------------------------------------

    def register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {
                    "kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                    **self.node_labels}},
                "spec": {"taints": self.taints or None}}
        try:
            self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.core.patch_node_status(self.node, {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "stand-in kubelet is posting ready status",
                            "lastHeartbeatTime": _now(), "lastTransitionTime": _now()}],
            "addresses": [{"type": "Hostname", "address": self.node}],
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})

    # ---- the loop ----------------------------------------------------------------

    def start(self) -> FakeKubelet:
        self.register()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{self.node}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for pod in self.core.list_pod_for_all_namespaces().to_dict()["items"]:
                    self._handle(pod)
            except ApiException:
                pass
            except Exception:  # noqa: BLE001 - a test helper keeps going; tests see effects
                pass
            self._stop.wait(0.1)

    def _handle(self, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        name, namespace = meta["name"], meta["namespace"]
        node = spec.get("node_name")
        if not node:
            wanted = self.namespaces is None or namespace in self.namespaces
            if (self.bind and wanted and not meta.get("deletion_timestamp")
                    and spec.get("scheduler_name", "default-scheduler") == "default-scheduler"):
                self._bind(namespace, name, meta["uid"])
            return
        if node != self.node:
            return
        if meta.get("deletion_timestamp"):
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            return
        uid = meta["uid"]
        if uid in self.started or status.get("phase") in ("Succeeded", "Failed"):
            return
        self.started.add(uid)
        self._start(pod)

    def _bind(self, namespace: str, name: str, uid: str) -> None:
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}}
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)

    def _ip(self, uid: str) -> str:
        if uid not in self._ips:
            net = ipaddress.ip_network(self.subnet)
            self._ips[uid] = str(net[self._next_ip])
            self._next_ip += 1
        return self._ips[uid]

    def _start(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        outcome = self.outcome(pod)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        ip = self._ip(meta["uid"])
        started = _now()
        if outcome in ("succeed", "fail"):
            code = 0 if outcome == "succeed" else 1
            statuses = [{"name": c, "ready": False, "restartCount": 0, "image": "busybox",
                         "imageID": "", "started": False,
                         "state": {"terminated": {"exitCode": code, "reason": "Completed"
                                                  if code == 0 else "Error",
                                                  "startedAt": started,
                                                  "finishedAt": _now()}}}
                        for c in containers]
            self._write(meta, {"phase": "Succeeded" if code == 0 else "Failed",
                               "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
                               "startTime": started, "containerStatuses": statuses,
                               "conditions": [{"type": "Ready", "status": "False",
                                               "reason": "PodCompleted",
                                               "lastTransitionTime": _now()}]})
            return
        self._write(meta, self._running(containers, ip, started, ready=False))
        if outcome == "run":
            def ready() -> None:
                self._write(meta, self._running(containers, ip, started, ready=True))

            if self.ready_after > 0:
                timer = threading.Timer(self.ready_after, ready)
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
            else:
                ready()

    @staticmethod
    def _running(containers: list[str], ip: str, started: str, *, ready: bool) -> dict[str, Any]:
        state = "True" if ready else "False"
        return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
                "startTime": started,
                "conditions": [{"type": t, "status": state if t in ("Ready", "ContainersReady")
                                else "True", "lastTransitionTime": _now()}
                               for t in ("Initialized", "Ready", "ContainersReady",
                                         "PodScheduled")],
                "containerStatuses": [{"name": c, "ready": ready, "restartCount": 0,
                                       "image": "busybox", "imageID": "", "started": True,
                                       "state": {"running": {"startedAt": started}}}
                                      for c in containers]}

    def _write(self, meta: dict[str, Any], status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"],
                                                  {"status": status})

    def wait_until(self, check: Callable[[], bool], timeout: float = 30.0,
                   what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)
