"""Defaults of apps and batch workloads, and the selector the Job strategy makes."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.resources.defaults.common import (
    Obj,
    _Ctx,
    _dict_at,
    _set_if_empty,
    _set_if_missing,
)
from nodeless.apiserver.resources.defaults.core import _pvc
from nodeless.apiserver.resources.defaults.pods import _template


def _rolling_update(spec: Obj, key: str, *, max_unavailable: Any, max_surge: Any) -> None:
    """A Deployment's strategy or a DaemonSet's updateStrategy: RollingUpdate unless told
    otherwise, and then its two budgets."""
    strategy = _dict_at(spec, key)
    _set_if_empty(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict_at(strategy, "rollingUpdate")
        _set_if_missing(rolling, "maxUnavailable", max_unavailable)
        _set_if_missing(rolling, "maxSurge", max_surge)


def _deployment(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_missing(spec, "replicas", 1)
    _rolling_update(spec, "strategy", max_unavailable="25%", max_surge="25%")
    _set_if_missing(spec, "revisionHistoryLimit", 10)
    _set_if_missing(spec, "progressDeadlineSeconds", 600)
    _template(spec, errs)
    _set_if_missing(obj, "status", {})


def _replicaset(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_missing(spec, "replicas", 1)
    _template(spec, errs)
    status = obj.setdefault("status", {})
    _set_if_missing(status, "replicas", 0)


def _daemonset(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _rolling_update(spec, "updateStrategy", max_unavailable=1, max_surge=0)
    _set_if_missing(spec, "revisionHistoryLimit", 10)
    _template(spec, errs)
    status = obj.setdefault("status", {})
    for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                "numberReady"):
        _set_if_missing(status, key, 0)


def _statefulset(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = _dict_at(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _set_if_missing(strategy, "rollingUpdate", {})
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        _set_if_missing(strategy["rollingUpdate"], "partition", 0)
    retention = _dict_at(spec, "persistentVolumeClaimRetentionPolicy")
    _set_if_empty(retention, "whenDeleted", "Retain")
    _set_if_empty(retention, "whenScaled", "Retain")
    _set_if_missing(spec, "replicas", 1)
    _set_if_missing(spec, "revisionHistoryLimit", 10)
    _template(spec, errs)
    for pvc in spec.get("volumeClaimTemplates") or ():
        if isinstance(pvc, dict):
            _pvc(pvc, ctx)
    status = obj.setdefault("status", {})
    _set_if_missing(status, "replicas", 0)
    _set_if_missing(status, "availableReplicas", 0)


# Job labels: the legacy ones are still set, next to the prefixed ones.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
MAX_INT32 = 2**31 - 1


def _job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set_if_missing(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    _set_if_missing(spec, "completionMode", "NonIndexed")
    _set_if_missing(spec, "suspend", False)
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or ():
            for pattern in (rule.get("onPodConditions") or ()) if isinstance(rule, dict) else ():
                if isinstance(pattern, dict):
                    _set_if_empty(pattern, "status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = ("Failed" if spec.get("podFailurePolicy") is not None
                                        else "TerminatingOrFailed")
    _set_if_missing(spec, "manualSelector", False)


def generate_job_selector(job: Obj) -> None:
    """What the Job strategy does once the job has a uid: the selector and pod labels.

    kube-apiserver runs it after assigning the uid and before validating; the job's own
    labels are copied from the template later, when the stored object is decoded (and
    defaulted) again, so run apply_defaults once more on the object that is stored."""
    meta = job.get("metadata") or {}
    spec = job.setdefault("spec", {})
    uid = meta.get("uid")
    if not uid or spec.get("manualSelector"):
        return
    template = spec.setdefault("template", {})
    tmeta = _dict_at(template, "metadata")
    labels = _dict_at(tmeta, "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, meta.get("name") or "")
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = _dict_at(spec, "selector")
    match_labels = _dict_at(selector, "matchLabels")
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


def _job_labels(job: Obj) -> None:
    """SetDefaults_Job: a job without labels takes its template's labels."""
    meta = job.setdefault("metadata", {})
    labels = ((job.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels")
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _job(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _job_spec(spec)
    _template(spec, errs)
    _job_labels(obj)
    generate_job_selector(obj)
    _set_if_missing(obj, "status", {})


def _cronjob(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "concurrencyPolicy", "Allow")
    _set_if_missing(spec, "suspend", False)
    _set_if_missing(spec, "successfulJobsHistoryLimit", 3)
    _set_if_missing(spec, "failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _set_if_missing(job_template, "metadata", {})
        job_spec = job_template.get("spec")
        if isinstance(job_spec, dict):
            _template(job_spec, errs)
    _set_if_missing(obj, "status", {})
