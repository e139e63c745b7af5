"""Job: runs pods until `completions` succeed (at most `parallelism` at once), fails the
Job once failures pass `backoffLimit` or it has been active longer than
`activeDeadlineSeconds`, and deletes it `ttlSecondsAfterFinished` after it finished.

Failed pods are replaced after an exponential backoff (10 s, 20 s, ... 6 min in kube;
`backoff_base` is configurable). With restartPolicy OnFailure the kubelet restarts
containers in place, so container restarts count as failures too. Succeeded and failed
pods are counted from the pods the Job owns, and the counts never go down.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from nodeless.controllers import api
from nodeless.controllers.base import Controller, is_not_found, status_patch
from nodeless.controllers.expectations import Expectations
from nodeless.controllers.informer import Obj, SharedInformers, key_of
from nodeless.controllers.objects import (
    condition,
    controller_ref,
    deletion_rank,
    is_active,
    is_deleting,
    is_ready,
    is_terminal,
    now,
    parse_time,
    phase,
    restarts,
    rfc3339,
)

MAX_BACKOFF = 360.0


def finished(job: Obj) -> str | None:
    """"Complete" or "Failed" once the Job is over."""
    for kind in ("Complete", "Failed"):
        c = condition(job, kind)
        if c is not None and c.get("status") == "True":
            return kind
    return None


class JobController(Controller):
    name = "job"
    workers = 4

    def __init__(self, client: Any, informers: SharedInformers, *,
                 backoff_base: float = 10.0) -> None:
        super().__init__(client, informers)
        self.jobs = informers.get(Job)
        self.pods = informers.get(Pod)
        self.backoff_base = backoff_base
        self.expectations = Expectations()
        self.events = api.EventRecorder(client, "job-controller")
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.expectations.forget(key_of(old))
        self.enqueue(key_of(new or old))  # type: ignore[arg-type]

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        job = self.jobs.get(key)
        return key if job is not None and job["metadata"]["uid"] == ref.get("uid") else None

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = self._owner_key(pod)
        if key is None:
            return
        self.expectations.observe_pod(key, old, new)
        self.enqueue(key)

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.forget(key)
            return
        if finished(job):
            await self._expire(job)
            return
        if is_deleting(job):
            return
        spec = job["spec"]
        namespace = job["metadata"]["namespace"]
        pods = await api.claim(self.client, Pod, job, self.pods.list(namespace),
                               spec.get("selector"))
        old = job.get("status") or {}
        active = [p for p in pods if is_active(p)]
        succeeded = max(int(old.get("succeeded") or 0),
                        sum(phase(p) == "Succeeded" for p in pods))
        failed_pods = [p for p in pods if phase(p) == "Failed"]
        failed = max(int(old.get("failed") or 0), len(failed_pods))
        start = old.get("startTime") or rfc3339()
        conditions = list(old.get("conditions") or [])
        status: Obj = {"startTime": start}
        template_spec = (spec.get("template") or {}).get("spec") or {}
        on_failure = template_spec.get("restartPolicy") == "OnFailure"
        backoff_limit = int(spec.get("backoffLimit", 6))
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))

        failure: tuple[str, str] | None = None
        retries = failed + (sum(restarts(p) for p in active) if on_failure else 0)
        if retries > backoff_limit:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time(start)
        if failure is None and deadline is not None and started is not None:
            left = started.timestamp() + int(deadline) - now().timestamp()
            if left <= 0:
                failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
            else:
                self.queue.add_after(key, left + 0.1)

        complete = False
        if failure is None:
            complete = (succeeded >= int(completions) if completions is not None
                        else succeeded > 0 and not active)
        if failure is not None or complete or spec.get("suspend"):
            await self._delete(key, job, active)
            active = []
        elif self.expectations.satisfied(key):
            if completions is None:
                want = 0 if succeeded > 0 else parallelism
                want = len(active) if succeeded > 0 else want
            else:
                want = max(0, min(int(completions) - succeeded, parallelism))
            if len(active) > want:
                await self._delete(key, job, sorted(active, key=deletion_rank)[
                    :len(active) - want])
            elif len(active) < want:
                wait = self._backoff_left(failed_pods, failed)
                if wait > 0:
                    self.queue.add_after(key, wait)
                else:
                    await self._create(key, job, want - len(active))

        stamp = rfc3339()
        if failure is not None:
            for kind in ("FailureTarget", "Failed"):
                conditions.append({"type": kind, "status": "True", "reason": failure[0],
                                   "message": failure[1], "lastProbeTime": stamp,
                                   "lastTransitionTime": stamp})
            self.events.event(job, "Warning", failure[0], failure[1])
        elif complete:
            for kind in ("SuccessCriteriaMet", "Complete"):
                conditions.append({"type": kind, "status": "True",
                                   "reason": "CompletionsReached",
                                   "message": "Reached expected number of succeeded pods",
                                   "lastProbeTime": stamp, "lastTransitionTime": stamp})
            status["completionTime"] = stamp
            self.events.event(job, "Normal", "Completed", "Job completed")
        status.update({"active": len(active), "ready": sum(is_ready(p) for p in active),
                       "succeeded": succeeded, "failed": failed,
                       "terminating": sum(is_deleting(p) and not is_terminal(p) for p in pods)})
        status = {k: v for k, v in status.items() if v or k == "ready"}
        if conditions:
            status["conditions"] = conditions
        if old.get("uncountedTerminatedPods") is not None:
            status["uncountedTerminatedPods"] = old["uncountedTerminatedPods"]
        body = status_patch(old, status)
        if body is not None:
            await api.patch(self.client, Job.Status, job, {"status": body})
        if (failure or complete) and spec.get("ttlSecondsAfterFinished") is not None:
            self.queue.add_after(key, float(spec["ttlSecondsAfterFinished"]) + 0.1)

    def _backoff_left(self, failed_pods: list[Obj], failed: int) -> float:
        """Seconds until a failed pod may be replaced: base * 2^(failures-1) after the
        last failure."""
        if not failed_pods or not failed:
            return 0.0
        last = max((_finished_at(p) for p in failed_pods), default=0.0)
        delay = min(MAX_BACKOFF, self.backoff_base * 2 ** (failed - 1))
        return last + delay - now().timestamp()

    async def _create(self, key: str, job: Obj, count: int) -> None:
        self.expectations.expect_creations(key, count)
        template = job["spec"].get("template") or {}

        async def one() -> None:
            try:
                pod = await api.create_pod(self.client, api.pod_from_template(
                    template, job, generate_name=f"{job['metadata']['name']}-"))
                self.events.event(job, "Normal", "SuccessfulCreate",
                                  f"Created pod: {pod['metadata']['name']}")
            except ApiError as exc:
                self.expectations.creation_observed(key)
                self.events.event(job, "Warning", "FailedCreate",
                                  f"Error creating: {exc.status.message}")
                raise

        await asyncio.gather(*(one() for _ in range(count)))

    async def _delete(self, key: str, job: Obj, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in pods})

        async def one(pod: Obj) -> None:
            try:
                await self.client.delete(Pod, pod["metadata"]["name"],
                                         namespace=pod["metadata"]["namespace"])
            except ApiError as exc:
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if not is_not_found(exc):
                    raise

        await asyncio.gather(*(one(p) for p in pods))

    async def _expire(self, job: Obj) -> None:
        """ttlSecondsAfterFinished: delete the finished Job (and, through the garbage
        collector, its pods) once the time is up."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None or is_deleting(job):
            return
        kind = finished(job)
        done_at = parse_time((job.get("status") or {}).get("completionTime")) or parse_time(
            (condition(job, kind or "Failed") or {}).get("lastTransitionTime"))
        left = (done_at.timestamp() + int(ttl) - now().timestamp()) if done_at else 0
        if left > 0:
            self.queue.add_after(key_of(job), left + 0.1)
            return
        try:
            await self.client.delete(Job, job["metadata"]["name"],
                                     namespace=job["metadata"]["namespace"],
                                     cascade=CascadeType.FOREGROUND)
        except ApiError as exc:
            if not is_not_found(exc):
                raise


def _finished_at(pod: Obj) -> float:
    latest = 0.0
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        t = parse_time(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t:
            latest = max(latest, t.timestamp())
    if not latest:
        created = parse_time(pod["metadata"].get("creationTimestamp"))
        latest = created.timestamp() if created else 0.0
    return latest
