"""The pod status kubelet would write: phase, conditions, container statuses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cri_api.v1 import api_pb2

from nodeless.agent.pods.status import ContainerInfo, pod_phase, pod_status

NOW = dt.datetime(2026, 11, 23, 15, 0, 0, tzinfo=dt.UTC)
T0 = int(dt.datetime(2026, 11, 23, 14, 0, 0, tzinfo=dt.UTC).timestamp() * 1e9)
SEC = 10**9


def make_pod(containers: list[dict[str, Any]] | None = None, *,
             inits: list[dict[str, Any]] | None = None, policy: str = "Always",
             status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 1},
        "spec": {"restartPolicy": policy,
                 "containers": containers or [{"name": "app", "image": "busybox"}], **spec},
        "status": status or {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
            {"type": "PodScheduled", "status": "True",
             "lastTransitionTime": "2026-11-23T13:59:59Z"}]}}
    if inits:
        p["spec"]["initContainers"] = inits
    return p


def sandbox(ip: str = "10.0.1.23") -> api_pb2.PodSandboxStatus:
    return api_pb2.PodSandboxStatus(id="sb1", state=api_pb2.SANDBOX_READY,
                                    network=api_pb2.PodSandboxNetworkStatus(ip=ip))


def cri(name: str, state: int, *, cid: str = "c1", created: int = T0, restarts: int = 0,
        exit_code: int = 0, reason: str = "", finished: int = 0,
        mounts: list[api_pb2.Mount] | None = None, log_path: str = "",
        annotations: dict[str, str] | None = None) -> api_pb2.ContainerStatus:
    return api_pb2.ContainerStatus(
        id=cid, metadata=api_pb2.ContainerMetadata(name=name, attempt=restarts),
        state=state, created_at=created, started_at=created + SEC,
        finished_at=finished or (created + 5 * SEC if state == api_pb2.CONTAINER_EXITED else 0),
        exit_code=exit_code, reason=reason,
        image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"),
        image_ref="docker.io/library/busybox@sha256:feed",
        annotations={"io.kubernetes.container.restartCount": str(restarts),
                     **(annotations or {})},
        mounts=mounts or [], log_path=log_path)


RUN, EXIT, CREATED = (api_pb2.CONTAINER_RUNNING, api_pb2.CONTAINER_EXITED,
                      api_pb2.CONTAINER_CREATED)


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_bound_pod_before_its_sandbox() -> None:
    s = pod_status(make_pod(), sandbox=None, containers={}, host_ips=["10.0.1.23"], now=NOW)
    assert s["phase"] == "Pending"
    assert s["containerStatuses"] == [{
        "name": "app", "image": "busybox", "imageID": "", "lastState": {}, "ready": False,
        "restartCount": 0, "started": False, "state": {"waiting": {"reason":
                                                                   "ContainerCreating"}}}]
    assert [c["type"] for c in s["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert cond(s, "PodReadyToStartContainers")["status"] == "False"
    assert cond(s, "Initialized")["status"] == "True"
    assert cond(s, "Ready") == {"type": "Ready", "status": "False",
                                "reason": "ContainersNotReady",
                                "message": "containers with unready status: [app]",
                                "lastProbeTime": None,
                                "lastTransitionTime": "2026-11-23T15:00:00Z",
                                "observedGeneration": 1}
    assert cond(s, "PodScheduled")["lastTransitionTime"] == "2026-11-23T13:59:59Z"  # kept
    assert s["hostIP"] == "10.0.1.23" and s["hostIPs"] == [{"ip": "10.0.1.23"}]
    assert "podIP" not in s
    assert s["startTime"] == "2026-11-23T15:00:00Z" and s["qosClass"] == "BestEffort"
    assert s["observedGeneration"] == 1


def test_running_pod() -> None:
    p = make_pod()
    first = pod_status(p, sandbox=sandbox(), containers={"app": ContainerInfo([cri("app", RUN)])},
                       host_ips=["10.0.1.23"], now=NOW)
    assert first["phase"] == "Running"
    assert first["podIP"] == "10.0.1.23" and first["podIPs"] == [{"ip": "10.0.1.23"}]
    status = first["containerStatuses"][0]
    assert status == {"name": "app", "image": "docker.io/library/busybox:latest",
                      "imageID": "docker.io/library/busybox@sha256:feed",
                      "containerID": "containerd://c1", "lastState": {}, "ready": True,
                      "started": True, "restartCount": 0,
                      "state": {"running": {"startedAt": "2026-11-23T14:00:01Z"}}}
    assert all(c["status"] == "True" for c in first["conditions"])
    # A later sync keeps transition times and startTime of what did not change.
    p["status"] = first
    later = pod_status(p, sandbox=sandbox(), containers={"app": ContainerInfo([cri("app", RUN)])},
                       now=NOW + dt.timedelta(minutes=5))
    assert later["conditions"] == first["conditions"]
    assert later["startTime"] == first["startTime"]


def test_readiness_and_startup_probes_gate_ready_and_started() -> None:
    c = {"name": "app", "readinessProbe": {"tcpSocket": {"port": 80}},
         "startupProbe": {"tcpSocket": {"port": 80}}}
    p = make_pod([c])

    def one(info: ContainerInfo) -> dict[str, Any]:
        return pod_status(p, sandbox=sandbox(), containers={"app": info},
                          now=NOW)["containerStatuses"][0]

    running = [cri("app", RUN)]
    assert (one(ContainerInfo(running))["started"], one(ContainerInfo(running))["ready"]) == \
        (False, False)
    assert one(ContainerInfo(running, started=True))["ready"] is False
    s = one(ContainerInfo(running, started=True, ready=True))
    assert (s["started"], s["ready"]) == (True, True)


def test_crash_loop() -> None:
    p = make_pod()
    exited_now = cri("app", EXIT, cid="c3", created=T0 + 60 * SEC, restarts=2, exit_code=1,
                     reason="Error")
    exited_before = cri("app", EXIT, cid="c2", created=T0, restarts=1, exit_code=1,
                        reason="Error")
    info = ContainerInfo([exited_before, exited_now],
                         waiting=("CrashLoopBackOff", "back-off 20s restarting failed "
                                  "container=app pod=web_shop(u-1)"))
    s = pod_status(p, sandbox=sandbox(), containers={"app": info}, now=NOW)
    assert s["phase"] == "Running"
    st = s["containerStatuses"][0]
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": "back-off 20s restarting failed "
                                                  "container=app pod=web_shop(u-1)"}}
    assert st["lastState"] == {"terminated": {
        "exitCode": 1, "reason": "Error", "startedAt": "2026-11-23T14:01:01Z",
        "finishedAt": "2026-11-23T14:01:05Z", "containerID": "containerd://c3"}}
    assert st["restartCount"] == 2 and st["ready"] is False


def test_image_pull_errors_show_as_waiting_reasons() -> None:
    info = ContainerInfo(waiting=("ErrImagePull", 'failed to pull image "nope"'))
    s = pod_status(make_pod(), sandbox=sandbox(), containers={"app": info}, now=NOW)
    assert s["phase"] == "Pending"
    assert s["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ErrImagePull", "message": 'failed to pull image "nope"'}}


@pytest.mark.parametrize(("policy", "exit_code", "waiting", "phase", "ready_reason"), [
    ("Never", 0, None, "Succeeded", "PodCompleted"),
    ("Never", 1, None, "Failed", "PodFailed"),
    ("OnFailure", 0, None, "Succeeded", "PodCompleted"),
    ("OnFailure", 1, ("CrashLoopBackOff", "back-off"), "Running", "ContainersNotReady"),
    ("Always", 0, ("CrashLoopBackOff", "back-off"), "Running", "ContainersNotReady"),
])
def test_phase_by_restart_policy(policy: str, exit_code: int, waiting: Any, phase: str,
                                 ready_reason: str) -> None:
    info = ContainerInfo([cri("app", EXIT, exit_code=exit_code,
                              reason="Completed" if exit_code == 0 else "Error")],
                         waiting=waiting)
    s = pod_status(make_pod(policy=policy), sandbox=sandbox(), containers={"app": info},
                   now=NOW)
    assert s["phase"] == phase
    assert cond(s, "ContainersReady")["reason"] == ready_reason


def test_terminal_phase_is_kept() -> None:
    p = make_pod(policy="Never", status={"phase": "Succeeded"})
    s = pod_status(p, sandbox=None, containers={}, now=NOW)
    assert s["phase"] == "Succeeded"


def test_init_containers() -> None:
    inits = [{"name": "migrate", "image": "busybox"}]
    p = make_pod(inits=inits)
    s = pod_status(p, sandbox=sandbox(), containers={"migrate": ContainerInfo(
        [cri("migrate", RUN, cid="i1")])}, now=NOW)
    assert s["phase"] == "Pending"
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert s["initContainerStatuses"][0]["state"]["running"]
    assert cond(s, "Initialized")["message"] == "containers with incomplete status: [migrate]"
    done = pod_status(p, sandbox=sandbox(), containers={
        "migrate": ContainerInfo([cri("migrate", EXIT, cid="i1", reason="Completed")]),
        "app": ContainerInfo([cri("app", RUN, created=T0 + 10 * SEC)])}, now=NOW)
    assert done["phase"] == "Running"
    assert done["initContainerStatuses"][0]["ready"] is True
    assert done["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert cond(done, "Initialized")["status"] == "True"
    failed = pod_status(make_pod(inits=inits, policy="Never"), sandbox=sandbox(), containers={
        "migrate": ContainerInfo([cri("migrate", EXIT, exit_code=3, reason="Error")])}, now=NOW)
    assert failed["phase"] == "Failed"


def test_native_sidecar() -> None:
    inits = [{"name": "proxy", "image": "busybox", "restartPolicy": "Always",
              "readinessProbe": {"tcpSocket": {"port": 15000}}}]
    p = make_pod(inits=inits)
    starting = pod_status(p, sandbox=sandbox(), containers={
        "proxy": ContainerInfo([cri("proxy", RUN, cid="s1")])}, now=NOW)
    assert starting["phase"] == "Pending"
    assert starting["initContainerStatuses"][0]["started"] is True
    assert cond(starting, "Initialized")["status"] == "True"
    both = {"proxy": ContainerInfo([cri("proxy", RUN, cid="s1")], ready=False),
            "app": ContainerInfo([cri("app", RUN, created=T0 + SEC)])}
    s = pod_status(p, sandbox=sandbox(), containers=both, now=NOW)
    assert s["phase"] == "Running"
    assert cond(s, "ContainersReady")["message"] == "containers with unready status: [proxy]"
    both["proxy"].ready = True
    s = pod_status(p, sandbox=sandbox(), containers=both, now=NOW)
    assert cond(s, "Ready")["status"] == "True"
    # The pod completes when its main container does, whatever the sidecar does.
    done = pod_status(make_pod(inits=inits, policy="Never"), sandbox=sandbox(), containers={
        "proxy": ContainerInfo([cri("proxy", EXIT, cid="s1", exit_code=137, reason="Error")]),
        "app": ContainerInfo([cri("app", EXIT, reason="Completed")])}, now=NOW, terminal=True)
    assert done["phase"] == "Succeeded"


def test_termination_messages(tmp_path: Path) -> None:
    msg = tmp_path / "tlog"
    msg.write_text("x" * 5000 + "the end")
    mount = api_pb2.Mount(container_path="/dev/termination-log", host_path=str(msg))
    ann = {"io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
           "io.kubernetes.container.terminationMessagePolicy": "File"}
    info = ContainerInfo([cri("app", EXIT, exit_code=137, reason="OOMKilled", mounts=[mount],
                              annotations=ann)])
    s = pod_status(make_pod(policy="Never"), sandbox=sandbox(), containers={"app": info},
                   now=NOW)
    term = s["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    assert len(term["message"]) == 4096 and term["message"].endswith("the end")
    # FallbackToLogsOnError: an empty file and a failure give the log's tail.
    msg.write_text("")
    log = tmp_path / "0.log"
    log.write_text("2026-11-23T14:00:01.1Z stdout F starting\n"
                   "2026-11-23T14:00:02.1Z stderr P fatal: \n"
                   "2026-11-23T14:00:02.2Z stderr F disk full\n")
    ann["io.kubernetes.container.terminationMessagePolicy"] = "FallbackToLogsOnError"
    info = ContainerInfo([cri("app", EXIT, exit_code=1, reason="Error", mounts=[mount],
                              annotations=ann, log_path=str(log))])
    s = pod_status(make_pod(policy="Never"), sandbox=sandbox(), containers={"app": info},
                   now=NOW)
    assert s["containerStatuses"][0]["state"]["terminated"]["message"] == \
        "starting\nfatal: disk full\n"


def test_readiness_gates() -> None:
    p = make_pod(readinessGates=[{"conditionType": "example.com/lb"}])
    s = pod_status(p, sandbox=sandbox(), containers={"app": ContainerInfo([cri("app", RUN)])},
                   now=NOW)
    assert cond(s, "Ready")["reason"] == "ReadinessGatesNotReady"
    assert cond(s, "Ready")["message"] == \
        'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    p["status"]["conditions"].append({"type": "example.com/lb", "status": "True"})
    s = pod_status(p, sandbox=sandbox(), containers={"app": ContainerInfo([cri("app", RUN)])},
                   now=NOW)
    assert cond(s, "Ready")["status"] == "True"
    assert cond(s, "example.com/lb") == {"type": "example.com/lb", "status": "True"}


def test_containers_sorted_by_name_and_volume_mounts_reported() -> None:
    p = make_pod([{"name": "zeta", "volumeMounts": [{"name": "cfg", "mountPath": "/c",
                                                     "readOnly": True}]}, {"name": "alpha"}])
    s = pod_status(p, sandbox=None, containers={}, now=NOW)
    assert [c["name"] for c in s["containerStatuses"]] == ["alpha", "zeta"]
    assert s["containerStatuses"][1]["volumeMounts"] == [
        {"name": "cfg", "mountPath": "/c", "readOnly": True, "recursiveReadOnly": "Disabled"}]


def test_phase_pending_when_a_container_never_started() -> None:
    p = make_pod([{"name": "a"}, {"name": "b"}])
    statuses = [{"name": "a", "state": {"running": {}}},
                {"name": "b", "state": {"waiting": {"reason": "ContainerCreating"}}}]
    assert pod_phase(p, statuses) == "Pending"


def test_a_running_container_gone_from_the_runtime_shows_stopped() -> None:
    """After the runtime lost a running container (a host reboot), kubelet does not send
    the pod back to Pending: lastState says so and the restart is counted."""
    p = make_pod()
    p["status"] = pod_status(p, sandbox=sandbox(), now=NOW,
                             containers={"app": ContainerInfo([cri("app", RUN, restarts=1)])})
    s = pod_status(p, sandbox=sandbox(), containers={}, now=NOW)
    st = s["containerStatuses"][0]
    assert st["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert st["lastState"]["terminated"]["exitCode"] == 137
    assert st["restartCount"] == 2
    assert s["phase"] == "Running"


def test_by_container_groups_newest_first() -> None:
    from nodeless.agent.pods.status import by_container
    a1, a2 = cri("app", EXIT, cid="a1", created=T0), cri("app", RUN, cid="a2", created=T0 + SEC)
    b = cri("side", RUN, cid="b")
    grouped = by_container([a1, b, a2])
    assert [s.id for s in grouped["app"]] == ["a2", "a1"]
    assert [s.id for s in grouped["side"]] == ["b"]
