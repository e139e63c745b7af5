"""Validation of built-in objects with kube-apiserver v1.37's rules and messages.

Clients, scripts and tests match on kube's error text (`spec.containers[0].image:
Required value`), so every message here is the one kube-apiserver produces for the same
object: the same field path, the same `field.ErrorType`, the same detail, and the bad
value printed the way Go's `field.Error.ErrorBody` prints it (`%q` for strings, `%#v`
for maps, slices and structs, e.g. `map[string]string{"app":"web"}`).

`validate(rt, obj, old)` runs after defaulting, like kube's strategies' Validate and
ValidateUpdate: object metadata first, then the kind's own rules from a table keyed by
(group, kind), then (on update) what may not change. Kinds without a table entry get
metadata validation only. Errors keep kube's order; duplicates are dropped as
`ErrorList.ToAggregate` drops them.

The rules live in one module per topic: `field` (field errors, printed as Go prints
them), `context` (the validation context), `formats`, `meta`, `selectors`, `quantities`,
`volumes`, `containers`, `pods`, `workloads`, `batch`, `services`, `config`, `cluster`,
`rbac` and `apiextensions`; this module holds the table and the entry point.
"""

from __future__ import annotations

from collections.abc import Callable

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import (
    byte_len,
    go_quote,
    go_string_slice,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    max_len_chars,
    regex_error,
)
from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.resources.validation.apiextensions import _crd, _crd_name
from nodeless.apiserver.resources.validation.batch import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    _cronjob,
    _job,
    cron_error,
)
from nodeless.apiserver.resources.validation.cluster import _lease, _namespace, _node, _pvc
from nodeless.apiserver.resources.validation.config import MAX_SECRET_SIZE, _configmap, _secret
from nodeless.apiserver.resources.validation.context import Obj, V, _d
from nodeless.apiserver.resources.validation.field import (
    OMIT,
    GoValue,
    KubeFieldError,
    duplicate,
    forbidden,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    go_value,
    invalid,
    not_found,
    required,
    too_long,
    too_many,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import (
    is_config_map_key,
    is_path_segment_name,
    is_relaxed_env_var_name,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
)
from nodeless.apiserver.resources.validation.meta import (
    NAME_RULES,
    TOTAL_ANNOTATION_SIZE_LIMIT,
    NameFn,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from nodeless.apiserver.resources.validation.pods import (
    _pod,
    validate_pod_spec,
    validate_tolerations,
)
from nodeless.apiserver.resources.validation.quantities import validate_resource_requirements
from nodeless.apiserver.resources.validation.rbac import RBAC_GROUP, _binding, _rules
from nodeless.apiserver.resources.validation.selectors import (
    selector_matches,
    selector_parses,
    validate_label_selector,
)
from nodeless.apiserver.resources.validation.services import _endpoints, _service
from nodeless.apiserver.resources.validation.workloads import (
    _daemonset,
    _deployment,
    _replicaset,
    _statefulset,
    validate_pod_template,
)

# Kinds validated with apimachinery's ObjectMeta rules only (no core finalizer-name rule).
_GENERIC_META = {("apiextensions.k8s.io", "CustomResourceDefinition"),
                 ("coordination.k8s.io", "Lease")}


Validator = Callable[[V], None]

VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "ConfigMap"): _configmap,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Endpoints"): _endpoints,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("coordination.k8s.io", "Lease"): _lease,
    (RBAC_GROUP, "Role"): lambda v: _rules(v, True),
    (RBAC_GROUP, "ClusterRole"): lambda v: _rules(v, False),
    (RBAC_GROUP, "RoleBinding"): lambda v: _binding(v, True),
    (RBAC_GROUP, "ClusterRoleBinding"): lambda v: _binding(v, False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def name_rule(rt: ResourceType, obj: Obj) -> NameFn:
    """How this kind's metadata.name is validated."""
    if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        return _crd_name(obj)
    return NAME_RULES.get((rt.group, rt.kind), name_is_dns_subdomain)


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out = []
    for e in errs:
        text = str(e)
        if text not in seen:
            seen.add(text)
            out.append(e)
    return out


def validate(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """The field errors kube-apiserver reports for obj (old set on update), in its order."""
    if not isinstance(obj, dict):
        return [invalid("", GoValue(repr(obj)), "must be an object")]
    v = V(rt, obj, old)
    meta = _d(obj.get("metadata"))
    core = not rt.is_custom and (rt.group, rt.kind) not in _GENERIC_META
    if old is None:
        v.extend(validate_object_meta(meta, namespaced=rt.namespaced,
                                      name_fn=name_rule(rt, obj), core=core))
    else:
        v.extend(validate_object_meta_update(meta, _d(old.get("metadata")), core=core))
        if (rt.group, rt.kind) in (("", "Pod"),):
            # ValidatePodUpdate re-runs the create-time metadata rules on the new pod.
            v.extend(validate_object_meta(meta, namespaced=rt.namespaced,
                                          name_fn=name_rule(rt, obj), core=core))
    fn = VALIDATORS.get((rt.group, rt.kind))
    if fn is not None and not rt.is_custom:
        fn(v)
    return _dedupe(v.errs)


__all__ = [
    # the entry point and its tables
    "validate", "VALIDATORS", "Validator", "NAME_RULES", "NameFn", "name_rule", "V", "Obj",
    # field errors, printed as Go prints them
    "KubeFieldError", "GoValue", "OMIT", "go_value", "go_quote", "go_string_map",
    "go_string_slice", "go_label_selector", "go_int_or_string", "required", "invalid",
    "unsupported", "forbidden", "duplicate", "not_found", "too_long", "too_many",
    # string formats
    "byte_len", "max_len_chars", "regex_error", "is_dns1123_label", "is_dns1123_subdomain",
    "is_dns1035_label", "is_qualified_name", "is_label_value", "is_config_map_key",
    "is_valid_port_num", "is_valid_port_name", "is_path_segment_name",
    "is_relaxed_env_var_name", "is_valid_ip", "name_is_dns_subdomain", "name_is_dns_label",
    "name_is_dns1035_label",
    # reusable validators
    "validate_labels", "validate_annotations", "validate_object_meta",
    "validate_object_meta_update", "TOTAL_ANNOTATION_SIZE_LIMIT", "validate_label_selector",
    "selector_parses", "selector_matches", "validate_resource_requirements",
    "validate_tolerations", "validate_pod_spec", "validate_pod_template", "cron_error",
    "JOB_NAME_LABEL", "CONTROLLER_UID_LABEL", "MAX_SECRET_SIZE", "RBAC_GROUP",
]
