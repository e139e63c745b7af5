"""apps/v1 workloads: Deployment, ReplicaSet, DaemonSet, StatefulSet, templates."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import go_quote, regex_error
from nodeless.apiserver.resources.validation.context import Obj, V, _d, _l, _nonneg
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    forbidden,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import _PERCENT, _percent_re
from nodeless.apiserver.resources.validation.meta import validate_annotations, validate_labels
from nodeless.apiserver.resources.validation.pods import validate_pod_spec
from nodeless.apiserver.resources.validation.selectors import (
    selector_matches,
    selector_parses,
    validate_label_selector,
)


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: template labels, annotations and its PodSpec."""
    template = _d(template)
    meta = _d(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    spec = _d(template.get("spec"))
    errs.extend(validate_pod_spec(spec, f"{path}.spec", pod=False))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden(f"{path}.spec.ephemeralContainers",
                              "ephemeral containers not allowed in pod template"))
    return errs


def _template_labels(spec: Obj) -> Any:
    return _d(_d(spec.get("template")).get("metadata")).get("labels")


def _selector_template_errors(
    spec: Obj, kind: str, *, required_selector: bool = True, message: str = "invalid label "
                                                                              "selector"
) -> list[FieldError]:
    """Selector present, valid, non-empty, and matching the template's labels."""
    errs: list[FieldError] = []
    sel = spec.get("selector")
    if sel is None and required_selector:
        errs.append(required("spec.selector"))
    elif isinstance(sel, dict):
        errs.extend(validate_label_selector(sel, "spec.selector"))
        if not _d(sel.get("matchLabels")) and not _l(sel.get("matchExpressions")):
            errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)),
                                f"empty selector is invalid for {kind}"))
    if not selector_parses(sel):
        errs.append(invalid("spec.selector", GoValue(go_label_selector(sel)), message))
    return errs


def _template_match(spec: Obj, sel: Any, path: str = "spec.template") -> list[FieldError]:
    labels = _template_labels(spec)
    if sel is not None and selector_parses(sel) and (
            _d(sel).get("matchLabels") or _d(sel).get("matchExpressions")) and not (
            selector_matches(sel, labels)):
        return [invalid(f"{path}.metadata.labels", GoValue(go_string_map(labels)),
                        "`selector` does not match template `labels`")]
    return []


def _controller_template(spec: Obj, kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (also Deployment's): restartPolicy Always only."""
    errs = _template_match(spec, spec.get("selector"))
    errs.extend(validate_pod_template(spec.get("template"), "spec.template"))
    errs.extend(_restarts_always(spec, kind))
    return errs


def _restarts_always(spec: Obj, kind: str) -> list[FieldError]:
    """The pods of a controller that keeps them running: restartPolicy Always and no
    activeDeadlineSeconds (ReplicaSets, Deployments, DaemonSets, StatefulSets)."""
    errs: list[FieldError] = []
    template_spec = _d(_d(spec.get("template")).get("spec"))
    restart = template_spec.get("restartPolicy") or ""
    if restart != "Always":
        errs.append(unsupported("spec.template.spec.restartPolicy", restart, ("Always",)))
    if template_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        if not _percent_re.match(value):
            return [invalid(path, GoValue(go_int_or_string(value)), regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'",
                _PERCENT, "1%", "93%"))]
        return []
    return [invalid(path, value, "must be greater than or equal to 0")
            for _ in (0,) if isinstance(value, int) and value < 0]


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if _percent_re.match(value) else 0
    return value if isinstance(value, int) else 0


def _not_more_than_100(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and _percent_re.match(value) and int(value[:-1]) > 100:
        return [invalid(path, GoValue(go_int_or_string(value)), "must not be greater than 100%")]
    return []


def _deployment(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_selector_template_errors(spec, "deployment"))
    if selector_parses(spec.get("selector")):
        v.extend(_controller_template(spec, "ReplicaSet"))
    strategy = _d(spec.get("strategy"))
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            v.add(forbidden("spec.strategy.rollingUpdate",
                            "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            v.add(required("spec.strategy.rollingUpdate",
                           "this should be defaulted and never be nil"))
        else:
            p = "spec.strategy.rollingUpdate"
            v.extend(_int_or_percent(rolling.get("maxUnavailable"), f"{p}.maxUnavailable"))
            v.extend(_int_or_percent(rolling.get("maxSurge"), f"{p}.maxSurge"))
            if (_int_or_percent_value(rolling.get("maxUnavailable")) == 0
                    and _int_or_percent_value(rolling.get("maxSurge")) == 0):
                v.add(invalid(f"{p}.maxUnavailable",
                              GoValue(go_int_or_string(rolling.get("maxUnavailable"))),
                              "may not be 0 when `maxSurge` is 0"))
            v.extend(_not_more_than_100(rolling.get("maxUnavailable"), f"{p}.maxUnavailable"))
    else:
        v.add(unsupported("spec.strategy", GoValue(
            f"apps.DeploymentStrategy{{Type:{go_quote(str(kind or ''))}, "
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"), ("Recreate",
                                                                       "RollingUpdate")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        v.extend(_nonneg("spec.progressDeadlineSeconds", deadline))
        if isinstance(deadline, int) and deadline <= (spec.get("minReadySeconds") or 0):
            v.add(invalid("spec.progressDeadlineSeconds", deadline,
                          "must be greater than minReadySeconds"))
    _selector_immutable(v)


def _selector_immutable(v: V) -> None:
    """apps/v1 strategies: a controller's selector never changes."""
    if v.old is None:
        return
    sel = _d(v.obj.get("spec")).get("selector")
    if sel != _d(v.old.get("spec")).get("selector"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)), "field is immutable"))


def _replicaset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_selector_template_errors(spec, "deployment"))
    if selector_parses(spec.get("selector")):
        v.extend(_controller_template(spec, "ReplicaSet"))
    _selector_immutable(v)


def _daemonset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    sel = spec.get("selector")
    v.extend(validate_label_selector(sel, "spec.selector"))
    if (selector_parses(sel) and not selector_matches(sel, _template_labels(spec)) and (
            sel is None or _d(sel).get("matchLabels") or _d(sel).get("matchExpressions"))):
        v.add(invalid("spec.template.metadata.labels",
                      GoValue(go_string_map(_template_labels(spec))),
                      "`selector` does not match template `labels`"))
    if isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
        v.add(invalid("spec.selector", GoValue(go_label_selector(sel)),
                      "empty selector is invalid for daemonset"))
    v.extend(validate_pod_template(spec.get("template"), "spec.template"))
    v.extend(_restarts_always(spec, "DaemonSet"))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    v.extend(_nonneg("spec.templateGeneration", spec.get("templateGeneration")))
    strategy = _d(spec.get("updateStrategy"))
    kind = strategy.get("type")
    p = "spec.updateStrategy"
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            v.add(required(f"{p}.rollingUpdate"))
        else:
            rp = f"{p}.rollingUpdate"
            for key in ("maxUnavailable", "maxSurge"):
                v.extend(_int_or_percent(rolling.get(key), f"{rp}.{key}"))
            for key in ("maxUnavailable", "maxSurge"):
                v.extend(_not_more_than_100(rolling.get(key), f"{rp}.{key}"))
            has_unavailable = _int_or_percent_value(rolling.get("maxUnavailable")) != 0
            has_surge = _int_or_percent_value(rolling.get("maxSurge")) != 0
            if has_unavailable and has_surge:
                v.add(invalid(f"{rp}.maxSurge", GoValue(go_int_or_string(rolling.get("maxSurge"))),
                              "may not be set when maxUnavailable is non-zero"))
            elif not has_unavailable and not has_surge:
                v.add(required(f"{rp}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        shown = GoValue(f"apps.DaemonSetUpdateStrategy{{Type:{go_quote(str(kind or ''))}, "
                        "RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}")
        v.add(unsupported(p, shown,
                          ("RollingUpdate", "OnDelete")))
    v.extend(_nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
    _selector_immutable(v)


def _statefulset(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    policy = spec.get("podManagementPolicy") or ""
    if policy == "":
        v.add(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        v.add(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _d(spec.get("updateStrategy"))
    kind = strategy.get("type") or ""
    if kind == "":
        v.add(required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            v.add(invalid("spec.updateStrategy.rollingUpdate",
                          GoValue("&apps.RollingUpdateStatefulSetStrategy{...}"),
                          "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if isinstance(rolling, dict):
            p = "spec.updateStrategy.rollingUpdate"
            v.extend(_nonneg(f"{p}.partition", rolling.get("partition")))
            if rolling.get("maxUnavailable") is not None:
                mu = rolling["maxUnavailable"]
                v.extend(_int_or_percent(mu, f"{p}.maxUnavailable"))
                if _int_or_percent_value(mu) == 0:
                    v.add(invalid(f"{p}.maxUnavailable", GoValue(go_int_or_string(mu)),
                                  "cannot be 0"))
                v.extend(_not_more_than_100(mu, f"{p}.maxUnavailable"))
    else:
        v.add(invalid("spec.updateStrategy", GoValue(
            f"apps.StatefulSetUpdateStrategy{{Type:{go_quote(kind)}, "
            "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}"),
            "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in ("Retain", "Delete"):
                v.add(unsupported(f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                                  retention.get(key) or "", ("Retain", "Delete")))
    v.extend(_nonneg("spec.replicas", spec.get("replicas")))
    v.extend(_nonneg("spec.minReadySeconds", spec.get("minReadySeconds")))
    if isinstance(spec.get("ordinals"), dict):
        v.extend(_nonneg("spec.ordinals.start", spec["ordinals"].get("start")))
    v.extend(_selector_template_errors(spec, "statefulset", message=""))
    if selector_parses(spec.get("selector")):
        # Upstream validates only the template's metadata here, not its pod spec (a TODO
        # in ValidatePodTemplateSpecForStatefulSet): bad pod specs fail at pod creation.
        v.extend(_template_match(spec, spec.get("selector")))
        tmeta = _d(_d(spec.get("template")).get("metadata"))
        v.extend(validate_labels(tmeta.get("labels"), "spec.template.labels"))
        v.extend(validate_annotations(tmeta.get("annotations"), "spec.template.annotations"))
    v.extend(_restarts_always(spec, "StatefulSet"))
    if v.old is not None:
        old_spec = dict(_d(v.old.get("spec")))
        mutable = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                   "persistentVolumeClaimRetentionPolicy")
        if {k: x for k, x in spec.items() if k not in mutable} != {
                k: x for k, x in old_spec.items() if k not in mutable}:
            v.add(forbidden("spec", "updates to statefulset spec for fields other than "
                                    "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                    "'persistentVolumeClaimRetentionPolicy' and "
                                    "'minReadySeconds' are forbidden"))
