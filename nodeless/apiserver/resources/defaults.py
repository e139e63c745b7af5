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
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from nodeless.apiserver import errors
from nodeless.apiserver.resources.registry import ResourceType

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------
# resource.Quantity


class QuantityError(ValueError):
    """A quantity kube-apiserver cannot decode (it answers 400 before validation)."""


QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_MESSAGE = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_QUANTITY_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXP = {0: "", **{v: k for k, v in _BINARY_SUFFIXES.items()}}
_NANO = Fraction(1, 10**9)
_MILLI = Fraction(1, 1000)


def parse_quantity(value: Any) -> tuple[Fraction, str]:
    """(exact value, format) of a quantity string or JSON number.

    The format is "DecimalSI", "BinarySI" or "DecimalExponent", as the suffix says; like
    kube, non-zero values are rounded up (away from zero) to the nanounit."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(QUANTITY_MESSAGE)
    text = repr(value) if isinstance(value, float) else str(value)
    m = _QUANTITY_RE.match(text)
    if not m or not (m.group(2) or m.group(3)):
        raise QuantityError(QUANTITY_MESSAGE)
    sign, whole, frac, suffix = m.groups()
    digits = (whole or "") + (frac or "")
    amount = Fraction(int(digits or "0"), 10 ** len(frac or ""))
    if suffix in _DECIMAL_SUFFIXES:
        fmt, amount = "DecimalSI", amount * Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        fmt, amount = "BinarySI", amount * 2 ** _BINARY_SUFFIXES[suffix]
    elif suffix[:1] in ("e", "E"):
        try:
            exp = int(suffix[1:])
        except ValueError:
            raise QuantityError(QUANTITY_MESSAGE) from None
        fmt, amount = "DecimalExponent", amount * Fraction(10) ** exp
    else:
        raise QuantityError("unable to parse quantity's suffix")
    if sign == "-":
        amount = -amount
    return _round_up(amount, _NANO), fmt


def _round_up(amount: Fraction, unit: Fraction) -> Fraction:
    """Round away from zero to a multiple of unit, as inf.RoundUp does."""
    units = amount / unit
    if units.denominator == 1:
        return amount
    whole = -((-abs(units.numerator)) // units.denominator)
    return Fraction(whole if amount > 0 else -whole) * unit


def format_quantity(amount: Fraction, fmt: str = "DecimalSI") -> str:
    """The canonical string of a quantity (resource.Quantity.String())."""
    if amount == 0:
        return "0"
    if fmt == "BinarySI" and (abs(amount) < 1024 or amount.denominator != 1):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        mantissa, exp = int(amount), 0
        while mantissa % 1024 == 0 and exp < 60:
            mantissa //= 1024
            exp += 10
        return f"{mantissa}{_BINARY_BY_EXP[exp]}"
    # Decimal: mantissa * 10**exp with exp a multiple of 3 and no trailing factors of 1000.
    exp = 0
    scaled = amount
    while scaled.denominator != 1:
        scaled *= 10
        exp -= 1
    value = int(scaled)
    while value % 10 == 0:
        value //= 10
        exp += 1
    while exp % 3:
        value *= 10
        exp -= 1
    if fmt == "DecimalExponent":
        return f"{value}e{exp}" if exp else str(value)
    suffix = _DECIMAL_BY_EXP.get(exp)
    if suffix is None:
        return f"{value}e{exp}"
    return f"{value}{suffix}"


def canonical_quantity(value: Any, *, milli: bool = False) -> str:
    """Canonical form of a quantity; milli=True rounds up to 1m as ResourceLists do."""
    amount, fmt = parse_quantity(value)
    if milli:
        amount = _round_up(amount, _MILLI)
    return format_quantity(amount, fmt)


def _resource_list(owner: Obj, key: str, errs: list[str]) -> None:
    """Canonicalize a ResourceList (SetDefaults_ResourceList rounds up to milli)."""
    rl = owner.get(key)
    if not isinstance(rl, dict):
        return
    for name, q in rl.items():
        try:
            rl[name] = canonical_quantity(q, milli=True)
        except QuantityError as exc:
            errs.append(str(exc))


def _quantity_field(owner: Obj, key: str, errs: list[str]) -> None:
    if key in owner and owner[key] is not None:
        try:
            owner[key] = canonical_quantity(owner[key])
        except QuantityError as exc:
            errs.append(str(exc))


# --------------------------------------------------------------------------------------
# image references (docker/distribution reference grammar, as ParseImageName uses it)

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z"
)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}\Z")


def image_tag(image: str) -> str | None:
    """The tag ParseImageName reports: "latest" without tag or digest, None if unparseable."""
    if not image or _IDENTIFIER_RE.match(image):
        return None
    m = _REFERENCE_RE.match(image)
    if not m:
        return None
    if m.group("tag"):
        return m.group("tag")
    return None if m.group("digest") else "latest"


def default_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, IfNotPresent otherwise."""
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


# --------------------------------------------------------------------------------------
# pod specs


def _set_if_missing(d: Obj, key: str, value: Any) -> None:
    if d.get(key) is None:
        d[key] = value


def _set_if_empty(d: Obj, key: str, value: Any) -> None:
    if not d.get(key):
        d[key] = value


def _dict_at(d: Obj, key: str) -> Obj:
    """The object at d[key], made an empty one first if it is missing or not an object."""
    value = d.get(key)
    if not isinstance(value, dict):
        value = d[key] = {}
    return value


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        _set_if_empty(probe, key, value)
    _handler_http(probe.get("httpGet"))
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        _set_if_missing(grpc, "service", "")


def _handler_http(http: Any) -> None:
    if isinstance(http, dict):
        _set_if_empty(http, "path", "/")
        _set_if_empty(http, "scheme", "HTTP")


def _field_ref(ref: Any) -> None:
    if isinstance(ref, dict):
        _set_if_empty(ref, "apiVersion", "v1")


def _resource_field_ref(ref: Any, errs: list[str]) -> None:
    if isinstance(ref, dict):
        # A zero Quantity is still serialized: the divisor shows as "0".
        ref["divisor"] = ref.get("divisor") if ref.get("divisor") is not None else "0"
        _quantity_field(ref, "divisor", errs)


def _container(c: Any, errs: list[str]) -> None:
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = default_pull_policy(c.get("image") or "")
    _set_if_empty(c, "terminationMessagePath", "/dev/termination-log")
    _set_if_empty(c, "terminationMessagePolicy", "File")
    resources = _dict_at(c, "resources")
    _resource_list(resources, "limits", errs)
    _resource_list(resources, "requests", errs)
    for port in c.get("ports") or ():
        if isinstance(port, dict):
            _set_if_empty(port, "protocol", "TCP")
    for env in c.get("env") or ():
        value_from = env.get("valueFrom") if isinstance(env, dict) else None
        if isinstance(value_from, dict):
            _field_ref(value_from.get("fieldRef"))
            _resource_field_ref(value_from.get("resourceFieldRef"), errs)
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for key in ("postStart", "preStop"):
            handler = lifecycle.get(key)
            if isinstance(handler, dict):
                _handler_http(handler.get("httpGet"))


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def _downward_items(source: Obj, errs: list[str]) -> None:
    for item in source.get("items") or ():
        if isinstance(item, dict):
            _field_ref(item.get("fieldRef"))
            _resource_field_ref(item.get("resourceFieldRef"), errs)


def _volume(v: Any, errs: list[str]) -> None:
    if not isinstance(v, dict):
        return
    if not any(v.get(k) is not None for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    empty_dir = v.get("emptyDir")
    if isinstance(empty_dir, dict):
        _quantity_field(empty_dir, "sizeLimit", errs)
    host_path = v.get("hostPath")
    if isinstance(host_path, dict):
        _set_if_missing(host_path, "type", "")
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = v.get(key)
        if isinstance(source, dict):
            _set_if_missing(source, "defaultMode", 420)
    downward = v.get("downwardAPI")
    if isinstance(downward, dict):
        _downward_items(downward, errs)
    projected = v.get("projected")
    if isinstance(projected, dict):
        for source in projected.get("sources") or ():
            if not isinstance(source, dict):
                continue
            if isinstance(source.get("downwardAPI"), dict):
                _downward_items(source["downwardAPI"], errs)
            token = source.get("serviceAccountToken")
            if isinstance(token, dict):
                _set_if_missing(token, "expirationSeconds", 3600)
    iscsi = v.get("iscsi")
    if isinstance(iscsi, dict):
        _set_if_empty(iscsi, "iscsiInterface", "default")
    rbd = v.get("rbd")
    if isinstance(rbd, dict):
        _set_if_empty(rbd, "pool", "rbd")
        _set_if_empty(rbd, "user", "admin")
        _set_if_empty(rbd, "keyring", "/etc/ceph/keyring")
    azure = v.get("azureDisk")
    if isinstance(azure, dict):
        _set_if_missing(azure, "cachingMode", "ReadWrite")
        _set_if_missing(azure, "kind", "Shared")
        _set_if_missing(azure, "fsType", "ext4")
        _set_if_missing(azure, "readOnly", False)
    scaleio = v.get("scaleIO")
    if isinstance(scaleio, dict):
        _set_if_empty(scaleio, "storageMode", "ThinProvisioned")
        _set_if_empty(scaleio, "fsType", "xfs")
    image = v.get("image")
    if isinstance(image, dict) and not image.get("pullPolicy"):
        image["pullPolicy"] = ("Always" if image_tag(image.get("reference") or "") == "latest"
                               else "IfNotPresent")
    ephemeral = v.get("ephemeral")
    if isinstance(ephemeral, dict) and isinstance(ephemeral.get("volumeClaimTemplate"), dict):
        template = ephemeral["volumeClaimTemplate"]
        spec = template.get("spec")
        if isinstance(spec, dict):
            _pvc_spec(spec, errs)


def _requests_from_limits(c: Any) -> None:
    """SetDefaults_Pod: a limit without a request is also the request (pods only)."""
    if not isinstance(c, dict):
        return
    resources = c.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    requests = _dict_at(resources, "requests")
    for name, value in resources["limits"].items():
        requests.setdefault(name, value)


def pod_spec_defaults(spec: Obj, *, pod: bool, errs: list[str] | None = None) -> None:
    """Default a PodSpec; pod=True adds what only Pods get (SetDefaults_Pod)."""
    errs = [] if errs is None else errs
    containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
    init_containers = [c for c in spec.get("initContainers") or () if isinstance(c, dict)]
    if pod:
        for c in containers + init_containers:
            _requests_from_limits(c)
        _set_if_missing(spec, "enableServiceLinks", True)
        if spec.get("hostNetwork"):
            for c in containers + init_containers:
                for port in c.get("ports") or ():
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    _set_if_empty(spec, "dnsPolicy", "ClusterFirst")
    _set_if_empty(spec, "restartPolicy", "Always")
    _set_if_missing(spec, "securityContext", {})
    _set_if_missing(spec, "terminationGracePeriodSeconds", 30)
    _set_if_empty(spec, "schedulerName", "default-scheduler")
    # v1 conversion keeps the deprecated serviceAccount in step with serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for v in spec.get("volumes") or ():
        _volume(v, errs)
    for c in init_containers + containers:
        _container(c, errs)
    for ec in spec.get("ephemeralContainers") or ():
        _container(ec, errs)
    _resource_list(spec, "overhead", errs)
    if isinstance(spec.get("resources"), dict):
        _resource_list(spec["resources"], "limits", errs)
        _resource_list(spec["resources"], "requests", errs)


def _template(owner: Obj, errs: list[str]) -> None:
    """A PodTemplateSpec inside a controller: PodSpec defaults, never Pod-only ones."""
    template = owner.get("template")
    if not isinstance(template, dict):
        return
    _set_if_missing(template, "metadata", {})
    spec = _dict_at(template, "spec")
    pod_spec_defaults(spec, pod=False, errs=errs)


# Priority admission: the built-in classes; other classes are looked up by admission.
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000,
                           "system-cluster-critical": 2000000000}
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300


def pod_admission_defaults(pod: Obj) -> None:
    """What the ServiceAccount, Priority and DefaultTolerationSeconds plugins set on create."""
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
    spec["serviceAccount"] = spec["serviceAccountName"]
    class_name = spec.get("priorityClassName") or ""
    if spec.get("priority") is None:
        if not class_name:
            spec["priority"] = 0
        elif class_name in SYSTEM_PRIORITY_CLASSES:
            spec["priority"] = SYSTEM_PRIORITY_CLASSES[class_name]
    if spec.get("preemptionPolicy") is None and (
            not class_name or class_name in SYSTEM_PRIORITY_CLASSES):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    tolerates = {NOT_READY_TAINT: False, UNREACHABLE_TAINT: False}
    for t in tolerations:
        if not isinstance(t, dict) or t.get("effect") not in (None, "", "NoExecute"):
            continue
        for taint in tolerates:
            if t.get("key") in (None, "", taint):
                tolerates[taint] = True
    added = [{"key": taint, "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}
             for taint, ok in tolerates.items() if not ok]
    if added:
        spec["tolerations"] = tolerations + added


class _Ctx:
    """One apply_defaults call: decode errors found so far, and create or update."""

    __slots__ = ("errs", "create")

    def __init__(self, create: bool | None) -> None:
        self.errs: list[str] = []
        self.create = create

    def is_create(self, obj: Obj) -> bool:
        """Unless told, an object without a uid is new: only stored objects have one."""
        if self.create is not None:
            return self.create
        return not (obj.get("metadata") or {}).get("uid")


def _pod(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = _dict_at(obj, "spec")
    pod_spec_defaults(spec, pod=True, errs=errs)
    if ctx.is_create(obj):
        pod_admission_defaults(obj)


# --------------------------------------------------------------------------------------
# workloads


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


# --------------------------------------------------------------------------------------
# core


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def _service(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        client_ip = config.get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_if_empty(spec, "type", "ClusterIP")
    svc_type = spec["type"]
    for port in spec.get("ports") or ():
        if not isinstance(port, dict):
            continue
        _set_if_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = svc_type in ("LoadBalancer", "NodePort") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible:
        _set_if_empty(spec, "externalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        _set_if_missing(spec, "internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        _set_if_missing(spec, "allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        _service_ip_fields(spec)
    status = obj.setdefault("status", {})
    load_balancer = status.setdefault("loadBalancer", {})
    if svc_type == "LoadBalancer":
        for ingress in load_balancer.get("ingress") or ():
            if isinstance(ingress, dict) and ingress.get("ip"):
                _set_if_missing(ingress, "ipMode", "VIP")


def _service_ip_fields(spec: Obj) -> None:
    """clusterIP/clusterIPs kept in step, and the families of a single-stack IPv4 cluster."""
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = spec.get("clusterIPs") or []
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = cluster_ips = [cluster_ip]
    elif cluster_ips and not cluster_ip and isinstance(cluster_ips, list):
        spec["clusterIP"] = cluster_ip = cluster_ips[0]
    headless = cluster_ip == "None"
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = ("RequireDualStack" if headless and not spec.get("selector")
                                  else "SingleStack")
    if not spec.get("ipFamilies"):
        first = cluster_ips[0] if cluster_ips and not headless else ""
        spec["ipFamilies"] = ["IPv6" if _is_ipv6(str(first)) else "IPv4"]


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace(obj: Obj, ctx: _Ctx) -> None:
    meta = obj.setdefault("metadata", {})
    if meta.get("name"):
        labels = _dict_at(meta, "labels")
        labels[NAMESPACE_NAME_LABEL] = meta["name"]
    if ctx.is_create(obj):
        spec = _dict_at(obj, "spec")
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = spec["finalizers"] = []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Active")


def _secret(obj: Obj, ctx: _Ctx) -> None:
    _set_if_empty(obj, "type", "Opaque")
    # v1 -> internal conversion merges stringData into data; stringData is never stored.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict_at(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _node(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    _resource_list(status, "capacity", errs)
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])
    _resource_list(status, "allocatable", errs)


def _pvc_spec(spec: Obj, errs: list[str]) -> None:
    _set_if_missing(spec, "volumeMode", "Filesystem")
    resources = spec.get("resources")
    if isinstance(resources, dict):
        _resource_list(resources, "limits", errs)
        _resource_list(resources, "requests", errs)


def _pvc(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = _dict_at(obj, "spec")
    _pvc_spec(spec, errs)
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Pending")
    _resource_list(status, "capacity", errs)
    _resource_list(status, "allocatedResources", errs)


def _pv(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = obj.setdefault("spec", {})
    _set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set_if_missing(spec, "volumeMode", "Filesystem")
    _resource_list(spec, "capacity", errs)
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict):
        _set_if_missing(host_path, "type", "")
    status = obj.setdefault("status", {})
    _set_if_empty(status, "phase", "Pending")


def _endpoints(obj: Obj, ctx: _Ctx) -> None:
    for subset in obj.get("subsets") or ():
        for port in (subset.get("ports") or ()) if isinstance(subset, dict) else ():
            if isinstance(port, dict):
                _set_if_empty(port, "protocol", "TCP")


def _resource_quota(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    if isinstance(obj.get("spec"), dict):
        _resource_list(obj["spec"], "hard", errs)
    if isinstance(obj.get("status"), dict):
        _resource_list(obj["status"], "hard", errs)
        _resource_list(obj["status"], "used", errs)


def _limit_range(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    for item in (obj.get("spec") or {}).get("limits") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "Container":
            default = item.setdefault("default", {})
            default_request = item.setdefault("defaultRequest", {})
            for name, value in (item.get("max") or {}).items():
                default.setdefault(name, value)
            for name, value in default.items():
                default_request.setdefault(name, value)
            for name, value in (item.get("min") or {}).items():
                default_request.setdefault(name, value)
            if not default:
                del item["default"]
            if not default_request:
                del item["defaultRequest"]
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _resource_list(item, key, errs)


def _pod_template(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    _template(obj, errs)


# --------------------------------------------------------------------------------------
# other groups


def _scaling_rules(rules: Any, defaults: Obj) -> Obj:
    out = dict(defaults)
    if isinstance(rules, dict):
        for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
            if rules.get(key) is not None:
                out[key] = rules[key]
    return out


_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _hpa(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    _set_if_missing(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)
    _set_if_missing(obj, "status", {"desiredReplicas": 0})


def _network_policy(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or ():
            for port in (rule.get("ports") or ()) if isinstance(rule, dict) else ():
                if isinstance(port, dict):
                    _set_if_missing(port, "protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _ingress_class(obj: Obj, ctx: _Ctx) -> None:
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        _set_if_missing(params, "scope", "Cluster")


def _endpoint_slice(obj: Obj, ctx: _Ctx) -> None:
    for port in obj.get("ports") or ():
        if isinstance(port, dict):
            _set_if_missing(port, "name", "")
            _set_if_missing(port, "protocol", "TCP")


def _storage_class(obj: Obj, ctx: _Ctx) -> None:
    _set_if_missing(obj, "reclaimPolicy", "Delete")
    _set_if_missing(obj, "volumeBindingMode", "Immediate")


def _priority_class(obj: Obj, ctx: _Ctx) -> None:
    _set_if_missing(obj, "preemptionPolicy", "PreemptLowerPriority")


RBAC_GROUP = "rbac.authorization.k8s.io"


def _role_binding(obj: Obj, ctx: _Ctx) -> None:
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict):
        _set_if_empty(role_ref, "apiGroup", RBAC_GROUP)
    for subject in obj.get("subjects") or ():
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = RBAC_GROUP
            elif subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""


def _webhooks(obj: Obj, mutating: bool) -> None:
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        _set_if_missing(hook, "failurePolicy", "Fail")
        _set_if_missing(hook, "matchPolicy", "Equivalent")
        _set_if_missing(hook, "namespaceSelector", {})
        _set_if_missing(hook, "objectSelector", {})
        _set_if_missing(hook, "timeoutSeconds", 10)
        if mutating:
            _set_if_missing(hook, "reinvocationPolicy", "Never")
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                _set_if_missing(rule, "scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            _set_if_missing(service, "port", 443)


def _crd(obj: Obj, ctx: _Ctx) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.get("names")
    if isinstance(names, dict):
        if not names.get("singular"):
            names["singular"] = str(names.get("kind") or "").lower()
        if not names.get("listKind") and names.get("kind"):
            names["listKind"] = f"{names['kind']}List"
    conversion = spec.get("conversion")
    if not isinstance(conversion, dict):
        spec["conversion"] = {"strategy": "None"}
    else:
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            _set_if_missing(service, "port", 443)
    status = _dict_at(obj, "status")
    if not status.get("storedVersions"):
        for version in spec.get("versions") or ():
            if isinstance(version, dict) and version.get("storage"):
                status["storedVersions"] = [version.get("name")]
                break


# --------------------------------------------------------------------------------------
# the table

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
