"""Printers of apps, batch, autoscaling and policy kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nodeless.apiserver.resources.tables.common import (
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _NAME,
    Obj,
    RowFn,
    _age,
    _bool_ptr,
    _Col,
    _containers,
    _format_labels,
    _format_selector,
    _get,
    _int_or_string,
    _name,
    _parse_time,
    _quantity,
    _selector_string,
    _since,
    human_duration,
)


def _replicas(obj: Obj) -> int:
    """spec.replicas, defaulted to 1 as the v1 defaulting does."""
    value = _get(obj, "spec", "replicas")
    return 1 if value is None else value


def _deployment(d: Obj, now: datetime) -> list[Any]:
    status = d.get("status") or {}
    names, images = _containers(_get(d, "spec", "template", "spec"))
    selector = _selector_string(_get(d, "spec", "selector"))
    return [
        _name(d), f"{status.get('readyReplicas') or 0}/{_replicas(d)}",
        status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0,
        _age(d, now), names, images, "<invalid>" if selector is None else selector,
    ]


def _replicaset(rs: Obj, now: datetime) -> list[Any]:
    status = rs.get("status") or {}
    names, images = _containers(_get(rs, "spec", "template", "spec"))
    return [
        _name(rs), _replicas(rs), status.get("replicas") or 0,
        status.get("readyReplicas") or 0, _age(rs, now), names, images,
        _format_selector(_get(rs, "spec", "selector")),
    ]


def _daemonset(ds: Obj, now: datetime) -> list[Any]:
    status = ds.get("status") or {}
    pod_spec = _get(ds, "spec", "template", "spec")
    names, images = _containers(pod_spec)
    return [
        _name(ds), status.get("desiredNumberScheduled") or 0,
        status.get("currentNumberScheduled") or 0, status.get("numberReady") or 0,
        status.get("updatedNumberScheduled") or 0, status.get("numberAvailable") or 0,
        _format_labels(_get(pod_spec, "nodeSelector")), _age(ds, now), names, images,
        _format_selector(_get(ds, "spec", "selector")),
    ]


def _statefulset(sts: Obj, now: datetime) -> list[Any]:
    names, images = _containers(_get(sts, "spec", "template", "spec"))
    ready = _get(sts, "status", "readyReplicas", default=0)
    return [_name(sts), f"{ready}/{_replicas(sts)}", _age(sts, now), names, images]


def _controllerrevision(cr: Obj, now: datetime) -> list[Any]:
    controller = "<none>"
    for ref in _get(cr, "metadata", "ownerReferences", default=[]):
        if ref.get("controller"):
            group = ref.get("apiVersion", "").rpartition("/")[0]
            kind = f"{ref.get('kind', '')}.{group}" if group else ref.get("kind", "")
            controller = f"{kind.lower()}/{ref.get('name', '')}" if kind else ref.get("name", "")
            break
    return [_name(cr), controller, cr.get("revision") or 0, _age(cr, now)]


def _job_condition(job: Obj, type_: str) -> bool:
    for c in _get(job, "status", "conditions", default=[]):
        if c.get("type") == type_:
            return bool(c.get("status") == "True")
    return False


def _job(job: Obj, now: datetime) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start = _parse_time(status.get("startTime"))
    end = _parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration((end or now) - start)
    if _job_condition(job, "Complete"):
        state = "Complete"
    elif _job_condition(job, "Failed"):
        state = "Failed"
    elif _get(job, "metadata", "deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(job, "Suspended"):
        state = "Suspended"
    elif _job_condition(job, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_get(spec, "template", "spec"))
    return [
        _name(job), state, completions, duration, _age(job, now), names, images,
        _format_selector(spec.get("selector")),
    ]


def _cronjob(cj: Obj, now: datetime) -> list[Any]:
    spec = cj.get("spec") or {}
    last = _get(cj, "status", "lastScheduleTime")
    job_spec = _get(spec, "jobTemplate", "spec", default={})
    names, images = _containers(_get(job_spec, "template", "spec"))
    return [
        _name(cj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
        _bool_ptr(spec.get("suspend")), len(_get(cj, "status", "active", default=[])),
        "<none>" if last is None else _since(last, now), _age(cj, now), names, images,
        _format_selector(job_spec.get("selector")),
    ]


def _hpa_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    if not specs:
        return "<none>"
    shown = []
    for i, spec in enumerate(specs):
        kind = spec.get("type")
        current_status = statuses[i] if i < len(statuses) else {}
        if kind in ("External", "Object", "Pods"):
            source = spec.get(kind[0].lower() + kind[1:]) or {}
            target = source.get("target") or {}
            current = _get(current_status, kind[0].lower() + kind[1:])
            if kind == "Pods":
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "averageValue"), missing="<nil>")
                shown.append(f"{value}/{_quantity(target.get('averageValue'), '<nil>')}")
            elif target.get("averageValue") is not None:
                value = _quantity(_get(current, "current", "averageValue"), "<unknown>")
                shown.append(f"{value}/{_quantity(target['averageValue'])} (avg)")
            else:
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "value"), missing="<nil>")
                shown.append(f"{value}/{_quantity(target.get('value'), '<nil>')}")
        elif kind in ("Resource", "ContainerResource"):
            key = "resource" if kind == "Resource" else "containerResource"
            source = spec.get(key) or {}
            target = source.get("target") or {}
            current = _get(current_status, key)
            if target.get("averageValue") is not None:
                value = "<unknown>" if current is None else _quantity(
                    _get(current, "current", "averageValue"), missing="<nil>")
                shown.append(f"{source.get('name', '')}: {value}/"
                             f"{_quantity(target['averageValue'])}")
            else:
                utilization = _get(current, "current", "averageUtilization")
                value = "<unknown>" if utilization is None else f"{utilization}%"
                goal = target.get("averageUtilization")
                shown.append(f"{source.get('name', '')}: {value}/"
                             f"{'<auto>' if goal is None else f'{goal}%'}")
        else:
            shown.append("<unknown type>")
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _hpa(hpa: Obj, now: datetime) -> list[Any]:
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [
        _name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _hpa_metrics(spec.get("metrics") or [], _get(hpa, "status", "currentMetrics") or []),
        "<unset>" if minimum is None else str(minimum), spec.get("maxReplicas") or 0,
        _get(hpa, "status", "currentReplicas", default=0), _age(hpa, now),
    ]


def _pdb(pdb: Obj, now: datetime) -> list[Any]:
    spec = pdb.get("spec") or {}
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(pdb), "N/A" if min_available is None else _int_or_string(min_available),
        "N/A" if max_unavailable is None else _int_or_string(max_unavailable),
        _get(pdb, "status", "disruptionsAllowed", default=0), _age(pdb, now),
    ]

PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {
    ("apps", "deployments"): ((
        _NAME,
        _Col("Ready", "Number of the pod with ready state"),
        _Col("Up-to-date", "@apps.v1.DeploymentStatus.updatedReplicas"),
        _Col("Available", "@apps.v1.DeploymentStatus.availableReplicas"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.DeploymentSpec.selector", priority=1),
    ), _deployment),
    ("apps", "replicasets"): ((
        _NAME,
        _Col("Desired", "@apps.v1.ReplicaSetSpec.replicas", type="integer"),
        _Col("Current", "@apps.v1.ReplicaSetStatus.replicas", type="integer"),
        _Col("Ready", "@apps.v1.ReplicaSetStatus.readyReplicas", type="integer"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.ReplicaSetSpec.selector", priority=1),
    ), _replicaset),
    ("apps", "daemonsets"): ((
        _NAME,
        _Col("Desired", "@apps.v1.DaemonSetStatus.desiredNumberScheduled", type="integer"),
        _Col("Current", "@apps.v1.DaemonSetStatus.currentNumberScheduled", type="integer"),
        _Col("Ready", "@apps.v1.DaemonSetStatus.numberReady", type="integer"),
        _Col("Up-to-date", "@apps.v1.DaemonSetStatus.updatedNumberScheduled", type="integer"),
        _Col("Available", "@apps.v1.DaemonSetStatus.numberAvailable", type="integer"),
        _Col("Node Selector", "@core.v1.PodSpec.nodeSelector"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@apps.v1.DaemonSetSpec.selector", priority=1),
    ), _daemonset),
    ("apps", "statefulsets"): ((
        _NAME, _Col("Ready", "Number of the pod with ready state"), _AGE, _CONTAINERS, _IMAGES,
    ), _statefulset),
    ("apps", "controllerrevisions"): ((
        _NAME, _Col("Controller", "Controller of the object"),
        _Col("Revision", "@apps.v1.ControllerRevision.revision"), _AGE,
    ), _controllerrevision),
    ("batch", "jobs"): ((
        _NAME,
        _Col("Status", "Status of the job."),
        _Col("Completions", "@batch.v1.JobStatus.succeeded"),
        _Col("Duration", "Time required to complete the job."),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@batch.v1.JobSpec.selector", priority=1),
    ), _job),
    ("batch", "cronjobs"): ((
        _NAME,
        _Col("Schedule", "@batch.v1.CronJobSpec.schedule"),
        _Col("Timezone", "@batch.v1.CronJobSpec.timeZone"),
        _Col("Suspend", "@batch.v1.CronJobSpec.suspend", type="boolean"),
        _Col("Active", "@batch.v1.CronJobStatus.active", type="integer"),
        _Col("Last Schedule", "@batch.v1.CronJobStatus.lastScheduleTime"),
        _AGE, _CONTAINERS, _IMAGES,
        _Col("Selector", "@batch.v1.JobSpec.selector", priority=1),
    ), _cronjob),
    ("autoscaling", "horizontalpodautoscalers"): ((
        _NAME,
        _Col("Reference", "@autoscaling.v2.HorizontalPodAutoscalerSpec.scaleTargetRef"),
        _Col("Targets", "@autoscaling.v2.HorizontalPodAutoscalerSpec.metrics"),
        _Col("MinPods", "@autoscaling.v2.HorizontalPodAutoscalerSpec.minReplicas"),
        _Col("MaxPods", "@autoscaling.v2.HorizontalPodAutoscalerSpec.maxReplicas"),
        _Col("Replicas", "@autoscaling.v2.HorizontalPodAutoscalerStatus.currentReplicas"),
        _AGE,
    ), _hpa),
    ("policy", "poddisruptionbudgets"): ((
        _NAME,
        _Col("Min Available", "The minimum number of pods that must be available."),
        _Col("Max Unavailable", "The maximum number of pods that may be unavailable."),
        _Col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this "
             "time.", type="integer"),
        _AGE,
    ), _pdb),
}
