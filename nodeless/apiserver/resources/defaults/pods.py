"""Defaults of pods and pod specs: containers, volumes, probes, the admission defaults."""

from __future__ import annotations

import re
from typing import Any

from nodeless.apiserver.resources.defaults.common import (
    Obj,
    _Ctx,
    _dict_at,
    _set_if_empty,
    _set_if_missing,
)
from nodeless.apiserver.resources.defaults.core import _pvc_spec
from nodeless.apiserver.resources.defaults.quantities import _quantity_field, _resource_list

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


def _pod(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    spec = _dict_at(obj, "spec")
    pod_spec_defaults(spec, pod=True, errs=errs)
    if ctx.is_create(obj):
        pod_admission_defaults(obj)


def _pod_template(obj: Obj, ctx: _Ctx) -> None:
    errs = ctx.errs
    _template(obj, errs)
