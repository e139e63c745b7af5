"""The FargateProfile controller: drives each profile through EKS's states.

Level-triggered, like every controller of ours: a watch only says *which* profile to look
at; `reconcile` reads it afresh, compares with what should be, and takes the next step,
so a missed event, a restart or a second run of the same step is harmless.

    (no status) -> CREATING -> ACTIVE          subnets exist, are private, in the VPC
                            -> CREATE_FAILED   a health issue names the subnet and the rule
    deletionTimestamp -> DELETING -> (pods annotated with the profile deleted) -> gone
                      -> DELETE_FAILED         a pod could not be deleted; retried

The finalizer `fargate.nodeless.io/profile-cleanup` is what keeps a deleted profile
around until its pods are gone; the controller adds it to profiles that lack it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx  # the HTTP library lightkube uses: its errors are what it raises
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from nodeless.aiotasks import cancel_all, until_one_ends
from nodeless.fargate.names import (
    API_VERSION,
    PROFILE_ANNOTATION,
    PROFILE_FINALIZER,
    ProfileStatus,
)
from nodeless.fargate.profiles import rules
from nodeless.fargate.resources import FargateProfile, Subnet
from nodeless.fargate.settings import FargateSettings
from nodeless.workqueue import WorkQueue

log = logging.getLogger(__name__)

COMPONENT = "fargate-profile-controller"
EVENT_NAMESPACE = "default"
"""Where Events about cluster-scoped objects go, as kube's event recorder puts them."""
FORCE_DELETE_AFTER = 30.0
"""Seconds past a pod's grace period after which it is deleted with grace 0 (what kube's
pod GC does to pods no kubelet will finish), so a lost host cannot pin a profile."""
POLL_WHILE_DELETING = 1.0

# Health issue codes, in the style of EKS's (its nodegroup issues name subnets this way).
SUBNET_NOT_FOUND = "Ec2SubnetNotFound"
SUBNET_INVALID = "Ec2SubnetInvalidConfiguration"
INVALID_SPEC = "InvalidParameter"
POD_DELETION_FAILED = "PodDeletionFailed"


# ------------------------------------------------------------------ the controller


@dataclass
class Result:
    """What a reconcile asks for: look again after `requeue_after` seconds, or not."""

    requeue_after: float | None = None


class ProfileController:
    """Watches FargateProfiles and reconciles each by name (see the module docstring)."""

    def __init__(self, client: AsyncClient, settings: FargateSettings, *,
                 activation_delay: float = 0.0, workers: int = 2,
                 force_delete_after: float = FORCE_DELETE_AFTER) -> None:
        self.client = client
        self.settings = settings
        self.activation_delay = activation_delay
        """Seconds a profile stays CREATING (EKS takes minutes; 0 by default)."""
        self.workers = workers
        self.force_delete_after = force_delete_after
        self.queue = WorkQueue()
        self._synced = asyncio.Event()
        self._creating_since: dict[str, float] = {}
        """When this process made a profile CREATING (timestamps in the API have whole
        seconds; after a restart they are all there is)."""

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until cancelled; `ready` once the first listing is queued."""
        tasks = [asyncio.create_task(self._watch(), name="profiles-watch")]
        tasks += [asyncio.create_task(self._worker(), name=f"profiles-worker-{i}")
                  for i in range(self.workers)]
        try:
            synced = asyncio.ensure_future(self._synced.wait())
            done, _ = await asyncio.wait([synced, *tasks], return_when=asyncio.FIRST_COMPLETED)
            synced.cancel()
            for task in tasks:
                if task in done:
                    task.result()  # raises what stopped it
                    raise RuntimeError(f"{task.get_name()} ended")
            if ready:
                ready()
            await until_one_ends(tasks, "the profile controller's tasks")
        finally:
            await cancel_all(tasks)
            self.queue.close()

    # ---- informer: list, then watch from the list's resourceVersion ------------------

    async def _watch(self) -> None:
        failures = 0
        while True:
            try:
                listing = self.client.list(FargateProfile)
                async for profile in listing:
                    self.queue.add(profile["metadata"]["name"])
                version = listing.resourceVersion if _listed(listing) else None
                self._synced.set()
                failures = 0
                async for _type, profile in self.client.watch(
                        FargateProfile, resource_version=version):
                    self.queue.add(profile["metadata"]["name"])
            except asyncio.CancelledError:
                raise
            except (ApiError, httpx.HTTPError, OSError) as exc:
                # 410 Gone (compacted) and dropped connections alike: list again.
                failures += 1
                delay = min(30.0, 0.2 * 2 ** min(failures, 8))
                log.warning("watching fargateprofiles failed (%s); listing again in %.1fs",
                            _describe(exc), delay)
                await asyncio.sleep(delay)

    async def _worker(self) -> None:
        while True:
            name = await self.queue.get()
            try:
                result = await self.reconcile(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried; none stops the worker
                delay = self.queue.retry(name)
                log.warning("fargateprofile %s: %s; retrying in %.1fs", name,
                            _describe(exc), delay, exc_info=not _expected(exc))
            else:
                self.queue.forget(name)
                if result.requeue_after is not None:
                    self.queue.add_after(name, result.requeue_after)
            finally:
                self.queue.done(name)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result:
        """Take the next step for profile `name`; idempotent."""
        try:
            profile = _plain(await self.client.get(FargateProfile, name))
        except ApiError as exc:
            if exc.status.code == 404:
                self._creating_since.pop(name, None)
                return Result()  # gone: nothing left to do
            raise
        meta = profile["metadata"]
        if meta.get("deletionTimestamp"):
            return await self._reconcile_deletion(profile)
        if PROFILE_FINALIZER not in (meta.get("finalizers") or []):
            await self._patch(profile, {"metadata": {
                "finalizers": [*(meta.get("finalizers") or []), PROFILE_FINALIZER]}})
            return Result(requeue_after=0)
        state = (profile.get("status") or {}).get("status")
        if not state:
            await self._set_status(profile, {
                "status": ProfileStatus.CREATING.value,
                "fargateProfileArn": self.settings.profile_arn(name, meta["uid"]),
                "createdAt": meta.get("creationTimestamp") or _now(),
                "observedGeneration": meta.get("generation", 1),
                "health": {"issues": []},
            })
            self._creating_since[name] = time.monotonic()
            await self._event(profile, "Normal", "Creating",
                              f"Fargate profile {name} is being created")
            return Result(requeue_after=self.activation_delay)
        if state == ProfileStatus.CREATING:
            return await self._activate(profile)
        return Result()  # ACTIVE and CREATE_FAILED are final until the profile is deleted

    async def _activate(self, profile: dict[str, Any]) -> Result:
        name = profile["metadata"]["name"]
        if self.activation_delay > 0:
            started = self._creating_since.get(name)
            since = (time.monotonic() - started if started is not None
                     else _age((profile.get("status") or {}).get("createdAt")))
            if since < self.activation_delay:
                return Result(requeue_after=self.activation_delay - since)
        self._creating_since.pop(name, None)
        subnets = {s["metadata"]["name"]: _plain(s) async for s in self.client.list(Subnet)}
        issues = profile_issues(profile, subnets, self.settings)
        status = dict(profile.get("status") or {})
        status["observedGeneration"] = profile["metadata"].get("generation", 1)
        status["health"] = {"issues": issues}
        if issues:
            status["status"] = ProfileStatus.CREATE_FAILED.value
            await self._set_status(profile, status)
            await self._event(profile, "Warning", "CreateFailed", "; ".join(
                i["message"] for i in issues))
            log.info("fargateprofile %s: CREATE_FAILED: %s", name, issues[0]["message"])
        else:
            status["status"] = ProfileStatus.ACTIVE.value
            await self._set_status(profile, status)
            await self._event(profile, "Normal", "Active", f"Fargate profile {name} is active")
            log.info("fargateprofile %s: ACTIVE", name)
        return Result()

    async def _reconcile_deletion(self, profile: dict[str, Any]) -> Result:
        meta = profile["metadata"]
        name = meta["name"]
        if PROFILE_FINALIZER not in (meta.get("finalizers") or []):
            return Result()  # not ours to hold (or already released)
        state = (profile.get("status") or {}).get("status")
        if state not in (ProfileStatus.DELETING, ProfileStatus.DELETE_FAILED):
            profile = await self._set_status(profile, {
                **(profile.get("status") or {}), "status": ProfileStatus.DELETING.value})
            await self._event(profile, "Normal", "Deleting",
                              f"Fargate profile {name} is being deleted with its pods")
        remaining, failures = await self._delete_pods(name)
        if failures:
            reason = "; ".join(failures)
            if state != ProfileStatus.DELETE_FAILED or _issue_message(profile) != reason:
                await self._set_status(profile, {
                    **(profile.get("status") or {}),
                    "status": ProfileStatus.DELETE_FAILED.value,
                    "health": {"issues": [{"code": POD_DELETION_FAILED, "message": reason,
                                           "resourceIds": []}]}})
                await self._event(profile, "Warning", "DeleteFailed", reason)
            raise PodDeletionFailed(reason)
        if state == ProfileStatus.DELETE_FAILED:
            profile = await self._set_status(profile, {
                **(profile.get("status") or {}), "status": ProfileStatus.DELETING.value,
                "health": {"issues": []}})
        if remaining:
            return Result(requeue_after=POLL_WHILE_DELETING)
        finalizers = [f for f in meta.get("finalizers") or [] if f != PROFILE_FINALIZER]
        try:
            await self._patch(profile, {"metadata": {"finalizers": finalizers or None}})
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            return Result()  # someone else released it
        await self._event(profile, "Normal", "Deleted",
                          f"Fargate profile {name}: its pods are gone; deleted")
        log.info("fargateprofile %s: deleted", name)
        return Result()

    async def _delete_pods(self, profile: str) -> tuple[int, list[str]]:
        """Delete every pod scheduled through `profile`, in every namespace; returns how
        many are still there and why any could not be deleted."""
        remaining, failures = 0, []
        try:
            pods = [pod async for pod in self.client.list(Pod, namespace="*")]
        except ApiError as exc:
            return 0, [f"the pods of profile {profile} could not be listed: "
                       f"{exc.status.message or exc.status.reason}"]
        for pod in pods:
            meta = pod.metadata
            if meta is None or (meta.annotations or {}).get(PROFILE_ANNOTATION) != profile:
                continue
            remaining += 1
            grace: int | None = None
            if meta.deletionTimestamp is not None:
                overdue = (datetime.now(UTC) - meta.deletionTimestamp).total_seconds()
                if overdue < self.force_delete_after:
                    continue  # already terminating, within its grace period
                grace = 0
            try:
                await self.client.delete(Pod, meta.name or "", namespace=meta.namespace,
                                         grace_period=grace)
            except ApiError as exc:
                if exc.status.code == 404:
                    remaining -= 1
                    continue
                failures.append(f"pod {meta.namespace}/{meta.name} could not be deleted: "
                                f"{exc.status.message or exc.status.reason}")
        return remaining, failures

    # ---- writes ---------------------------------------------------------------------

    async def _patch(self, profile: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch pinned to the resourceVersion we read: a lost race is a 409 and a
        retry, never a step taken on a stale view."""
        patch = {**patch, "metadata": {**patch.get("metadata", {}),
                                       "resourceVersion": profile["metadata"]["resourceVersion"]}}
        return _plain(await self.client.patch(FargateProfile, profile["metadata"]["name"], patch,
                                              patch_type=PatchType.MERGE))

    async def _set_status(self, profile: dict[str, Any], status: dict[str, Any]
                          ) -> dict[str, Any]:
        body = {"metadata": {"resourceVersion": profile["metadata"]["resourceVersion"]},
                "status": status}
        return _plain(await self.client.patch(FargateProfile.Status, profile["metadata"]["name"],
                                              body, patch_type=PatchType.MERGE))

    async def _event(self, profile: Mapping[str, Any], type_: str, reason: str,
                     message: str) -> None:
        """Record an Event on the profile; losing one is logged, never fatal."""
        meta = profile["metadata"]
        now = _now()
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}",
                         "namespace": EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": API_VERSION, "kind": "FargateProfile",
                               "name": meta["name"], "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message[:1024], "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT, "reportingInstance": COMPONENT,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self.client.create(codecs.from_dict(event))
        except (ApiError, httpx.HTTPError) as exc:
            log.warning("event %s on fargateprofile %s not recorded: %s", reason,
                        meta["name"], _describe(exc))


class PodDeletionFailed(Exception):
    """Some pods of a deleted profile could not be deleted (retried with backoff)."""


# ------------------------------------------------------------------ validation


def profile_issues(profile: Mapping[str, Any], subnets: Mapping[str, Mapping[str, Any]],
                   settings: FargateSettings) -> list[dict[str, Any]]:
    """Why `profile` cannot become ACTIVE, as EKS health issues; empty when it can.

    Subnets are checked one by one so each issue names its subnet; the other rules are
    the shared ones (`rules.check_spec`), for profiles that came in by a door without
    the profile webhook (e.g. a cluster where it is not installed).
    """
    spec = profile.get("spec") or {}
    vpc_id = settings.vpc.id
    issues = []
    for sid in spec.get("subnets") or []:
        subnet = subnets.get(sid)
        subnet_spec = (subnet or {}).get("spec") or {}
        if subnet is None:
            issues.append(_issue(SUBNET_NOT_FOUND, (
                f"subnet {sid} does not exist: a profile's subnets must be subnets of the "
                f"cluster's VPC {vpc_id}"), sid))
        elif subnet_spec.get("vpcId") != vpc_id:
            issues.append(_issue(SUBNET_INVALID, (
                f"subnet {sid} is in VPC {subnet_spec.get('vpcId')}, not the cluster's VPC "
                f"{vpc_id}: a profile's subnets must be in the cluster's VPC"), sid))
        elif not subnet_spec.get("private", True):
            issues.append(_issue(SUBNET_INVALID, (
                f"subnet {sid} is a public subnet: Fargate profiles accept only private "
                "subnets (no route to an internet gateway)"), sid))
    if issues:
        return issues
    try:
        rules.check_spec(profile["metadata"]["name"], spec, cluster=settings.cluster,
                         subnets=subnets, vpc_id=vpc_id)
    except rules.RuleError as exc:
        ids = [s for s in spec.get("subnets") or [] if s in exc.message]
        return [_issue(INVALID_SPEC, f"{exc.field or 'spec'}: {exc.message}",
                       *ids)]
    return []


def _issue(code: str, message: str, *resource_ids: str) -> dict[str, Any]:
    return {"code": code, "message": message, "resourceIds": list(resource_ids)}


def _issue_message(profile: Mapping[str, Any]) -> str:
    issues = ((profile.get("status") or {}).get("health") or {}).get("issues") or []
    return "; ".join(str(i.get("message", "")) for i in issues)


# ------------------------------------------------------------------ helpers


def _plain(obj: Any) -> dict[str, Any]:
    """A lightkube generic object as a plain dict (metadata included)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _listed(listing: Any) -> bool:
    try:
        return bool(listing.resourceVersion)
    except Exception:  # lightkube raises NotReadyError for an empty first page
        return False


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status.code} {exc.status.reason}: {exc.status.message}"
    return f"{type(exc).__name__}: {exc}"


def _expected(exc: BaseException) -> bool:
    """Failures worth one log line, not a traceback: races, outages, our own refusals."""
    return isinstance(exc, ApiError | httpx.HTTPError | OSError | PodDeletionFailed)

