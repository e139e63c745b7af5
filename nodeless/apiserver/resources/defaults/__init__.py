"""Defaulting of built-in objects, as kube-apiserver v1.37 does it on decode.

Clients compare what they sent with what they get back (kubectl diff, server-side apply,
controllers that hash their pod templates), so the defaulted object must be field for
field the one kube-apiserver returns. The rules follow kubernetes' `pkg/apis/*/v1/
defaults.go` and the generated defaulters that walk into nested types, plus what the
serializer and the default admission plugins visibly add:

- Go serializes non-pointer structs even when empty (`resources: {}`, `status: {}`) and
  every `resource.Quantity` in canonical form (`0.5` -> `500m`, `1024Mi` -> `1Gi`);
- the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins fill in
  `serviceAccountName`, `priority`/`preemptionPolicy` and the not-ready/unreachable
  tolerations of every new pod;
- the Job strategy generates the selector and the `batch.kubernetes.io/*` labels once
  the job has a uid; the Namespace strategy adds the `kubernetes` finalizer.

One table maps (group, kind) to its defaulter; everything mutates the dict in place.
Objects that already carry `metadata.uid` are updates: the create-only parts (admission
defaults, namespace finalizer) are skipped for them, as kube-apiserver skips them.

The defaulters live in one module per topic: `quantities` (resource.Quantity), `pods`
(pod specs and the pod admission defaults), `workloads` (apps and batch), `core` (the
other core/v1 kinds) and `others` (the other groups); this module holds the table.
"""

from __future__ import annotations

from collections.abc import Callable

from nodeless.apiserver import errors
from nodeless.apiserver.resources.defaults.common import Obj, _Ctx
from nodeless.apiserver.resources.defaults.core import (
    NAMESPACE_NAME_LABEL,
    _endpoints,
    _limit_range,
    _namespace,
    _node,
    _pv,
    _pvc,
    _resource_quota,
    _secret,
    _service,
)
from nodeless.apiserver.resources.defaults.others import (
    RBAC_GROUP,
    _crd,
    _endpoint_slice,
    _hpa,
    _ingress_class,
    _network_policy,
    _priority_class,
    _role_binding,
    _storage_class,
    _webhooks,
)
from nodeless.apiserver.resources.defaults.pods import (
    DEFAULT_TOLERATION_SECONDS,
    NOT_READY_TAINT,
    SYSTEM_PRIORITY_CLASSES,
    UNREACHABLE_TAINT,
    _pod,
    _pod_template,
    default_pull_policy,
    image_tag,
    pod_admission_defaults,
    pod_spec_defaults,
)
from nodeless.apiserver.resources.defaults.quantities import (
    QUANTITY_MESSAGE,
    QUANTITY_REGEX,
    QuantityError,
    canonical_quantity,
    format_quantity,
    parse_quantity,
)
from nodeless.apiserver.resources.defaults.workloads import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    MAX_INT32,
    _cronjob,
    _daemonset,
    _deployment,
    _job,
    _replicaset,
    _statefulset,
    generate_job_selector,
)
from nodeless.apiserver.resources.registry import ResourceType

__all__ = [
    # the entry point and its table
    "apply_defaults", "DEFAULTERS", "Defaulter", "Obj",
    # resource.Quantity
    "QuantityError", "QUANTITY_REGEX", "QUANTITY_MESSAGE", "parse_quantity", "format_quantity",
    "canonical_quantity",
    # pods
    "image_tag", "default_pull_policy", "pod_spec_defaults", "pod_admission_defaults",
    "SYSTEM_PRIORITY_CLASSES", "NOT_READY_TAINT", "UNREACHABLE_TAINT",
    "DEFAULT_TOLERATION_SECONDS",
    # workloads and the rest
    "generate_job_selector", "JOB_NAME_LABEL", "CONTROLLER_UID_LABEL", "LEGACY_JOB_NAME_LABEL",
    "LEGACY_CONTROLLER_UID_LABEL", "MAX_INT32", "NAMESPACE_NAME_LABEL", "RBAC_GROUP",
]

Defaulter = Callable[[Obj, _Ctx], None]

DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): _pod_template,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "Node"): _node,
    ("", "PersistentVolume"): _pv,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Endpoints"): _endpoints,
    ("", "ResourceQuota"): _resource_quota,
    ("", "LimitRange"): _limit_range,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    (RBAC_GROUP, "RoleBinding"): _role_binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _role_binding,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        lambda obj, ctx: _webhooks(obj, True),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        lambda obj, ctx: _webhooks(obj, False),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def apply_defaults(rt: ResourceType, obj: Obj, *, create: bool | None = None) -> None:
    """Default obj in place, as kube-apiserver does when it decodes a request body.

    create=True adds what only new objects get (admission defaults of pods, the namespace
    finalizer); None guesses from `metadata.uid`, which only stored objects have.
    Raises BadRequest, with the decoder's message, for a quantity kube could not decode.
    Custom resources are defaulted from their schema elsewhere; nothing happens here."""
    fn = DEFAULTERS.get((rt.group, rt.kind))
    if fn is None or not isinstance(obj, dict):
        return
    ctx = _Ctx(create)
    fn(obj, ctx)
    errs = ctx.errs
    if errs:
        raise errors.BadRequest(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {errs[0]}')
