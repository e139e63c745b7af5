"""Restart decisions, the start order of init containers and sidecars, CrashLoopBackOff."""

from __future__ import annotations

from typing import Any

import pytest
from cri_api.v1 import api_pb2

from nodeless.agent.pods.containers import HASH_ANNOTATION, container_hash
from nodeless.agent.pods.restarts import (
    CrashLoopBackoff,
    Kill,
    Plan,
    grace_period,
    plan,
    should_restart,
)

RUNNING, EXITED, CREATED = api_pb2.CONTAINER_RUNNING, api_pb2.CONTAINER_EXITED, \
    api_pb2.CONTAINER_CREATED


def cs(state: int, exit_code: int = 0, cid: str = "") -> api_pb2.ContainerStatus:
    return api_pb2.ContainerStatus(id=cid, state=state, exit_code=exit_code)


def make_pod(policy: str = "Always", inits: list[dict[str, Any]] | None = None,
             containers: list[str] = ("app",), deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "shop", "uid": "u-1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"restartPolicy": policy, "initContainers": inits or [],
                     "containers": [{"name": n} for n in containers]}}


@pytest.mark.parametrize(("policy", "status", "sidecar", "expected"), [
    ("Always", None, False, True),
    ("Never", None, False, True),
    ("Never", cs(RUNNING), False, False),
    ("Never", cs(CREATED), False, True),
    ("Always", cs(EXITED, 0), False, True),
    ("OnFailure", cs(EXITED, 0), False, False),
    ("OnFailure", cs(EXITED, 1), False, True),
    ("Never", cs(EXITED, 1), False, False),
    ("Never", cs(EXITED, 0), True, True),      # a sidecar always restarts
])
def test_should_restart(policy: str, status: Any, sidecar: bool, expected: bool) -> None:
    c = {"name": "app", **({"restartPolicy": "Always"} if sidecar else {})}
    assert should_restart(make_pod(policy), c, status) is expected


def test_nothing_restarts_while_the_pod_is_deleted() -> None:
    assert not should_restart(make_pod(deleting=True), {"name": "app"}, None)


def test_init_containers_run_one_at_a_time_then_containers() -> None:
    p = make_pod(inits=[{"name": "one"}, {"name": "two"}], containers=["a", "b"])
    assert plan(p, {}).start_init == ["one"]
    assert plan(p, {"one": cs(RUNNING)}).start_init == []
    assert plan(p, {"one": cs(EXITED, 0)}).start_init == ["two"]
    done = plan(p, {"one": cs(EXITED, 0), "two": cs(EXITED, 0)})
    assert done.initialized and done.start == ["a", "b"]
    retry = plan(p, {"one": cs(EXITED, 1)})
    assert retry.start_init == ["one"] and not retry.kill_pod


def test_failed_init_container_fails_a_never_pod() -> None:
    p = make_pod("Never", inits=[{"name": "one"}])
    result = plan(p, {"one": cs(EXITED, 2)})
    assert result.kill_pod and result.failed_init == "one" and not result.start


def test_sidecar_must_start_before_the_next_init_container() -> None:
    p = make_pod(inits=[{"name": "proxy", "restartPolicy": "Always",
                         "startupProbe": {"tcpSocket": {"port": 15000}}}, {"name": "migrate"}])
    assert plan(p, {}).start_init == ["proxy"]
    waiting = plan(p, {"proxy": cs(RUNNING)}, startup=lambda n: None)
    assert waiting.start_init == [] and not waiting.initialized
    assert plan(p, {"proxy": cs(RUNNING)}, startup=lambda n: True).start_init == ["migrate"]
    failed = plan(p, {"proxy": cs(RUNNING, cid="s1")}, startup=lambda n: False)
    assert failed.start_init == ["proxy"]
    assert failed.kill == [Kill("proxy", "s1", "Init container proxy failed startup probe",
                                "StartupProbe")]
    after = plan(p, {"proxy": cs(RUNNING), "migrate": cs(EXITED, 0)}, startup=lambda n: True)
    assert after.initialized and after.start == ["app"]
    # A sidecar that dies after initialization is restarted; the init is not rerun.
    later = plan(p, {"proxy": cs(EXITED, 137), "migrate": cs(EXITED, 0), "app": cs(RUNNING)})
    assert later.start_init == ["proxy"] and later.start == [] and later.initialized


def test_running_containers_killed_on_failed_probes_or_changed_image() -> None:
    app = {"name": "app", "image": "busybox:1", "livenessProbe": {"exec": {}},
           "startupProbe": {"exec": {}}}
    p = make_pod()
    p["spec"]["containers"] = [app]
    running = api_pb2.ContainerStatus(id="c1", state=RUNNING,
                                      annotations={HASH_ANNOTATION: container_hash(app)})
    assert plan(p, {"app": running}) == Plan(initialized=True)
    live = plan(p, {"app": running}, liveness=lambda n: False)
    assert live.kill == [Kill("app", "c1", "Container app failed liveness probe, will be "
                              "restarted", "LivenessProbe")] and live.start == ["app"]
    start = plan(p, {"app": running}, startup=lambda n: False)
    assert start.kill[0].message == "Container app failed startup probe, will be restarted"
    p["spec"]["restartPolicy"] = "Never"
    never = plan(p, {"app": running}, liveness=lambda n: False)
    assert never.kill[0].message == "Container app failed liveness probe" and not never.start
    p["spec"]["containers"] = [{**app, "image": "busybox:2"}]
    changed = plan(p, {"app": running})
    assert changed.kill[0].message == "Container app definition changed, will be restarted"
    assert changed.start == ["app"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_crash_loop_back_off_doubles_to_five_minutes_and_resets() -> None:
    clock = Clock()
    backoff = CrashLoopBackoff(clock=clock)
    p, c = make_pod(), {"name": "app"}
    waits = []
    for _ in range(8):
        finished = clock.now                      # the container exits at once
        message = backoff.check(p, c, finished)
        waited = 0
        while message is not None:
            waits.append(message) if waited == 0 else None
            clock.now += 1
            waited += 1
            message = backoff.check(p, c, finished)
        waits.append(waited)
    assert waits[0] == 0                          # the first restart is immediate
    assert waits[1] == "back-off 10s restarting failed container=app pod=web_shop(u-1)"
    assert [w for w in waits if isinstance(w, int)] == [0, 10, 20, 40, 80, 160, 300, 300]
    assert "back-off 5m0s restarting" in waits[-2]
    # Ten minutes of running after the last restart: back to 10 s.
    clock.now += 601
    assert backoff.check(p, c, clock.now) is None          # restart at once, window reset
    assert backoff.check(p, c, clock.now) == \
        "back-off 10s restarting failed container=app pod=web_shop(u-1)"


def test_back_off_is_per_container_and_forgotten_with_the_pod() -> None:
    clock = Clock()
    backoff = CrashLoopBackoff(clock=clock)
    p = make_pod(containers=["a", "b"])
    assert backoff.check(p, {"name": "a"}, clock.now) is None
    assert backoff.check(p, {"name": "a"}, clock.now) is not None
    assert backoff.check(p, {"name": "b"}, clock.now) is None
    assert backoff.retry_at(p, {"name": "a"}, clock.now) == clock.now + 10
    backoff.forget_pod("u-1")
    assert backoff.check(p, {"name": "a"}, clock.now) is None


@pytest.mark.parametrize(("meta", "spec", "container", "reason", "expected"), [
    ({}, {"terminationGracePeriodSeconds": 30}, {}, "", 30),
    ({"deletionGracePeriodSeconds": 5}, {"terminationGracePeriodSeconds": 30}, {}, "", 5),
    ({"deletionGracePeriodSeconds": 0}, {"terminationGracePeriodSeconds": 30}, {}, "", 2),
    ({}, {"terminationGracePeriodSeconds": 30},
     {"livenessProbe": {"terminationGracePeriodSeconds": 7}}, "LivenessProbe", 7),
    ({}, {"terminationGracePeriodSeconds": 30},
     {"livenessProbe": {"terminationGracePeriodSeconds": 7}}, "", 30),
    ({}, {}, {}, "", 2),
])
def test_grace_period(meta: dict[str, Any], spec: dict[str, Any], container: dict[str, Any],
                      reason: str, expected: int) -> None:
    pod = {"metadata": meta, "spec": spec}
    assert grace_period(pod, {"name": "app", **container}, reason) == expected
