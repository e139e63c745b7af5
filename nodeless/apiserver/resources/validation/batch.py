"""batch/v1: Job (with its generated selector) and CronJob (schedule, time zone)."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import go_quote, is_dns1123_label
from nodeless.apiserver.resources.validation.context import Obj, V, _d, _nonneg
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    go_label_selector,
    go_string_map,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.selectors import (
    selector_matches,
    selector_parses,
    validate_label_selector,
)
from nodeless.apiserver.resources.validation.workloads import (
    _template_labels,
    validate_pod_template,
)

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _has_label(labels: Obj, key: str, expected: str, path: str) -> list[FieldError]:
    if key not in labels:
        return [required(f"{path}.labels[{key}]", f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(f"{path}.labels[{key}]", GoValue(go_string_map(labels)),
                        f"must be '{expected}'")]
    return []


def _generated_selector(job: Obj, prefixed: bool) -> list[FieldError]:
    spec = _d(job.get("spec"))
    meta = _d(job.get("metadata"))
    if spec.get("manualSelector") or spec.get("selector") is None:
        return []
    errs: list[FieldError] = []
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    if not uid:
        errs.append(required("metadata.uid"))
    labels = _d(_template_labels(spec))
    path = "spec.template.metadata"
    errs.extend(_has_label(labels, "controller-uid", uid, path))
    errs.extend(_has_label(labels, "job-name", name, path))
    expected = {"controller-uid": uid, "job-name": name}
    if prefixed:
        errs.extend(_has_label(labels, CONTROLLER_UID_LABEL, uid, path))
        errs.extend(_has_label(labels, JOB_NAME_LABEL, name, path))
        expected.update({CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name})
    sel = spec["selector"]
    if selector_parses(sel) and not selector_matches(sel, expected):
        errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)),
                            "`selector` not auto-generated"))
    return errs


def _job_spec(spec: Obj, path: str) -> list[FieldError]:
    """validateJobSpec: counts, modes and a pod template that never restarts Always."""
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                "ttlSecondsAfterFinished", "backoffLimitPerIndex"):
        errs.extend(_nonneg(f"{path}.{key}", spec.get(key)))
    if spec.get("maxFailedIndexes") is not None:
        errs.extend(_nonneg(f"{path}.maxFailedIndexes", spec["maxFailedIndexes"]))
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(required(f"{path}.backoffLimitPerIndex",
                                 "when maxFailedIndexes is specified"))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(unsupported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if isinstance(parallelism, int) and parallelism > 100000:
                errs.append(invalid(f"{path}.parallelism", parallelism,
                                    "must be less than or equal to 100000 when completion mode "
                                    "is Indexed"))
    if mode in (None, "NonIndexed"):
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errs.append(invalid(f"{path}.{key}", spec[key], "requires indexed completion "
                                                                "mode"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                errs.append(unsupported(f"{path}.podReplacementPolicy", replacement,
                                        ("Failed",)))
        elif replacement not in ("Failed", "TerminatingOrFailed"):
            errs.append(unsupported(f"{path}.podReplacementPolicy", replacement,
                                    ("Failed", "TerminatingOrFailed")))
    errs.extend(validate_pod_template(spec.get("template"), f"{path}.template"))
    restart = _d(_d(spec.get("template")).get("spec")).get("restartPolicy") or ""
    rp = f"{path}.template.spec.restartPolicy"
    if restart in ("Always", ""):
        errs.append(required(rp, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errs.append(unsupported(rp, restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        errs.append(invalid(rp, restart, 'only "Never" is supported when podFailurePolicy is '
                                         "specified"))
    return errs


def _job(v: V) -> None:
    job, old = v.obj, v.old
    spec = _d(job.get("spec"))
    prefixed = True
    if old is not None:
        old_labels = _d(_template_labels(_d(old.get("spec"))))
        prefixed = JOB_NAME_LABEL in old_labels and CONTROLLER_UID_LABEL in old_labels
    v.extend(_generated_selector(job, prefixed))
    v.extend(_job_spec(spec, "spec"))
    sel = spec.get("selector")
    if sel is None:
        v.add(required("spec.selector"))
    else:
        v.extend(validate_label_selector(sel, "spec.selector"))
    if sel is not None and selector_parses(sel) and (
            _d(sel).get("matchLabels") or _d(sel).get("matchExpressions")) and not (
            selector_matches(sel, _template_labels(spec))):
        v.add(invalid("spec.template.metadata.labels",
                      GoValue(go_string_map(_template_labels(spec))),
                      "`selector` does not match template `labels`"))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions:
        name = str(_d(job.get("metadata")).get("name") or "")
        hostname = f"{name}-{completions - 1}"
        if is_dns1123_label(hostname):
            v.add(invalid("metadata.name", name, "will not able to create pod with invalid DNS "
                                                 f"label: {hostname}"))
    if old is None:
        return
    old_spec = _d(old.get("spec"))
    if spec.get("completions") != old_spec.get("completions"):
        if spec.get("completionMode") == "Indexed" and spec.get("completions") is not None:
            if spec.get("completions") != spec.get("parallelism"):
                v.add(invalid("spec.completions", spec.get("completions"),
                              "can only be modified in tandem with spec.parallelism"))
        else:
            v.add(invalid("spec.completions", spec.get("completions"), "field is immutable"))
    if sel != old_spec.get("selector"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)), "field is immutable"))
    template, old_template = _d(spec.get("template")), _d(old_spec.get("template"))
    suspended_not_started = old_spec.get("suspend") and not _d(old.get("status")).get(
        "startTime")
    if suspended_not_started:
        template = _scheduling_free(template)
        old_template = _scheduling_free(old_template)
    if template != old_template:
        v.add(invalid("spec.template", GoValue("core.PodTemplateSpec{...}"),
                      "field is immutable"))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
                "successPolicy"):
        if spec.get(key) != old_spec.get(key):
            value = spec.get(key)
            shown = value if isinstance(value, str | int) or value is None else GoValue(
                "{...}")
            v.add(invalid(f"spec.{key}", shown, "field is immutable"))


def _scheduling_free(template: Obj) -> Obj:
    """A template without what a suspended, never-started Job may change."""
    out = dict(template)
    meta = dict(_d(out.get("metadata")))
    meta.pop("labels", None)
    meta.pop("annotations", None)
    out["metadata"] = meta
    spec = dict(_d(out.get("spec")))
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        spec.pop(key, None)
    affinity = dict(_d(spec.get("affinity")))
    affinity.pop("nodeAffinity", None)
    if affinity:
        spec["affinity"] = affinity
    else:
        spec.pop("affinity", None)
    out["spec"] = spec
    return out


_CRON_FIELDS = ((0, 59, None), (0, 23, None), (1, 31, None),
                (1, 12, {m: i + 1 for i, m in enumerate(
                    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                     "dec"))}),
                (0, 6, {d: i for i, d in enumerate(
                    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                     "@hourly"}


def _cron_number(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    try:
        return int(expr)
    except ValueError:
        raise ValueError(f'failed to parse int from {expr}: strconv.Atoi: parsing '
                         f'{go_quote(expr)}: invalid syntax') from None


def cron_error(schedule: str) -> str | None:
    """robfig/cron's ParseStandard error for a schedule, or None if it parses."""
    spec = schedule.strip()
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        tz, _, spec = spec.partition(" ")
        try:
            zoneinfo.ZoneInfo(tz.split("=", 1)[1])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return f"provided bad location {tz.split('=', 1)[1]}: unknown time zone " + tz.split(
                "=", 1)[1]
    if spec.startswith("@"):
        if spec in _CRON_DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            return None
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field_text, (lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        for expr in field_text.split(","):
            range_and_step = expr.split("/")
            if len(range_and_step) > 2:
                return f"too many slashes: {expr}"
            low_high = range_and_step[0].split("-")
            if len(low_high) > 2:
                return f"too many hyphens: {expr}"
            try:
                if low_high[0] in ("*", "?"):
                    start, end = lo, hi
                else:
                    start = _cron_number(low_high[0], names)
                    end = _cron_number(low_high[1], names) if len(low_high) == 2 else start
                if len(range_and_step) == 2:
                    step = _cron_number(range_and_step[1], None)
                    if step <= 0:
                        return f"step of range should be a positive number: {expr}"
            except ValueError as exc:
                return str(exc)
            if start < lo:
                return f"beginning of range ({start}) below minimum ({lo}): {expr}"
            if end > hi:
                return f"end of range ({end}) above maximum ({hi}): {expr}"
            if start > end:
                return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def _cronjob(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    old_spec = _d(v.old.get("spec")) if v.old is not None else None
    schedule = spec.get("schedule") or ""
    if not schedule:
        v.add(required("spec.schedule"))
    else:
        err = cron_error(str(schedule))
        if err:
            v.add(invalid("spec.schedule", schedule, err))
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            v.add(invalid("spec.schedule", schedule,
                          "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            v.add(invalid("spec.schedule", schedule,
                          "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    v.extend(_nonneg("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds")))
    tz = spec.get("timeZone")
    if tz is not None and (old_spec is None or old_spec.get("timeZone") != tz):
        v.extend(_time_zone(tz))
    policy = spec.get("concurrencyPolicy") or ""
    if policy == "":
        v.add(required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        v.add(unsupported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    job_template = _d(spec.get("jobTemplate"))
    job_spec = _d(job_template.get("spec"))
    v.extend(_job_spec(job_spec, "spec.jobTemplate.spec"))
    if job_spec.get("selector") is not None:
        v.add(invalid("spec.jobTemplate.spec.selector",
                      GoValue(go_label_selector(job_spec["selector"])),
                      "`selector` will be auto-generated"))
    if job_spec.get("manualSelector"):
        v.add(unsupported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    v.extend(_nonneg("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit")))
    v.extend(_nonneg("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit")))
    name = str(_d(v.obj.get("metadata")).get("name") or "")
    if v.old is None and len(name) > 52:
        v.add(invalid("metadata.name", name, "must be no more than 52 characters"))


_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}\Z")


def _time_zone(tz: Any) -> list[FieldError]:
    path = "spec.timeZone"
    if not isinstance(tz, str) or tz == "":
        return [invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [invalid(path, tz, f"unknown time zone {tz}")]
    errs = []
    if tz.lower() == "local":
        errs.append(invalid(path, tz, "timeZone must be an explicit time zone as defined in "
                                      "https://www.iana.org/time-zones"))
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errs.append(invalid(path, tz, f"unknown time zone {tz}"))
    return errs
