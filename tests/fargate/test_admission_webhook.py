"""The admission webhook alone: real HTTPS requests carrying AdmissionReviews, as
kube-apiserver sends them, against a webhook whose cache is set by the test.

Covers the mutation, every kind of pod Fargate cannot run, the profile rules, malformed
reviews, and fuzzing (never a 500, never a dropped connection).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jsonpatch
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightkube import ApiError
from lightkube.models.meta_v1 import Status

from nodeless.apiserver import pki
from nodeless.fargate.admission import (
    AdmissionWebhook,
    FargateCache,
    Reflector,
    ServiceRef,
    WebhookServer,
    issue_serving_certificate,
    server_ssl_context,
    webhook_configurations,
)
from nodeless.fargate.admission import cache as cache_module
from nodeless.fargate.admission.review import pointer
from nodeless.fargate.names import (
    API_VERSION,
    GROUP,
    PROFILE_ANNOTATION,
    PROFILE_FINALIZER,
    PROFILE_LABEL,
    SCHEDULER_NAME,
    VERSION,
    WEBHOOK_NAME_MUTATE,
    WEBHOOK_NAME_PROFILES,
    WEBHOOK_NAME_VALIDATE,
)
from nodeless.fargate.vpc import default_vpc, subnet_object

T = TypeVar("T")

CLUSTER = "nodeless"
VPC = default_vpc(CLUSTER, "us-east-1")
PRIVATE = [s.id for s in VPC.private_subnets()]
PUBLIC = next(s.id for s in VPC.subnets if not s.private)
ROLE = "arn:aws:iam::000000000000:role/nodeless-pod-execution-role"


class LoopThread:
    """An event loop in a daemon thread, so blocking test code can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()
        return self.run(call())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def active_profile(name: str, *selectors: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "FargateProfile", "metadata": {"name": name},
            "spec": {"podExecutionRoleArn": ROLE, "subnets": PRIVATE,
                     "selectors": list(selectors)},
            "status": {"status": "ACTIVE"}}


PROFILES = [
    active_profile("fp-default", {"namespace": "default"}, {"namespace": "kube-system"}),
    active_profile("web", {"namespace": "prod", "labels": {"app": "web"}}),
]


class FakeVolumes:
    """Claims, volumes and classes the EBS check reads, without an API server."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, dict[str, Any]] = {}
        self.fail = False

    async def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        if self.fail:
            raise ConnectionError("API unreachable")
        return self.claims.get((namespace, name))

    async def volume(self, name: str) -> Mapping[str, Any] | None:
        return self.volumes.get(name)

    async def storage_class(self, name: str) -> Mapping[str, Any] | None:
        return self.classes.get(name)


VOLUMES = FakeVolumes()
VOLUMES.classes = {"gp2": {"provisioner": "kubernetes.io/aws-ebs"},
                   "gp3": {"provisioner": "ebs.csi.aws.com"},
                   "efs": {"provisioner": "efs.csi.aws.com"}}
VOLUMES.volumes = {"pv-ebs": {"spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}}},
                   "pv-ebs-csi": {"spec": {"csi": {"driver": "ebs.csi.aws.com",
                                                   "volumeHandle": "vol-2"}}},
                   "pv-nfs": {"spec": {"nfs": {"server": "10.0.0.9", "path": "/"}}}}
VOLUMES.claims = {
    ("default", "bound-ebs"): {"spec": {"volumeName": "pv-ebs"}},
    ("default", "bound-ebs-csi"): {"spec": {"volumeName": "pv-ebs-csi"}},
    ("default", "bound-nfs"): {"spec": {"volumeName": "pv-nfs", "storageClassName": "gp3"}},
    ("default", "pending-gp3"): {"spec": {"storageClassName": "gp3"}},
    ("default", "pending-gp2-annotation"): {
        "metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "gp2"}},
        "spec": {}},
    ("default", "pending-efs"): {"spec": {"storageClassName": "efs"}},
}


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def webhook(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[AdmissionWebhook, httpx.Client]]:
    """The webhook over TLS on a free port, and a client trusting its CA."""
    directory: Path = tmp_path_factory.mktemp("webhook")
    material = pki.ensure_pki(directory)
    cert, key = issue_serving_certificate(material, directory / "webhook")
    cache = FargateCache()
    hook = AdmissionWebhook(cache, cluster=CLUSTER, vpc_id=VPC.id, volumes=VOLUMES)
    hook.ready = True

    def fill() -> None:
        cache.set_profiles(PROFILES)
        cache.set_subnets(subnet_object(VPC, s) for s in VPC.subnets)
    loop.call(fill)
    server = WebhookServer(hook, "127.0.0.1", 0, server_ssl_context(cert, key))
    loop.run(server.start())
    trust = ssl.create_default_context(cafile=str(material.ca_cert))
    with httpx.Client(base_url=server.url, verify=trust, timeout=10) as client:
        yield hook, client
    loop.run(server.stop())


@pytest.fixture
def client(webhook: tuple[AdmissionWebhook, httpx.Client]) -> httpx.Client:
    return webhook[1]


def review(obj: dict[str, Any] | None, *, kind: tuple[str, str, str] = ("", "v1", "Pod"),
           operation: str = "CREATE", namespace: str = "default",
           old: dict[str, Any] | None = None) -> dict[str, Any]:
    group, version, kind_name = kind
    resource = "pods" if kind_name == "Pod" else kind_name.lower() + "s"
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind_name},
        "resource": {"group": group, "version": version, "resource": resource},
        "operation": operation, "userInfo": {"username": "admin"},
        "object": obj, "oldObject": old, "dryRun": False,
    }
    if kind_name == "Pod":
        request["namespace"] = namespace
    name = ((obj or old or {}).get("metadata") or {}).get("name")
    if name:
        request["name"] = name
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a review; check the answer is a well-formed v1 response to it."""
    r = client.post(path, content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    return dict(answer["response"])


def patched(obj: dict[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    """The object after the response's patch, applied as kube-apiserver applies it."""
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.JsonPatch(ops).apply(obj, in_place=False)
    return result


def pod(namespace: str = "default", labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": namespace}
    if labels:
        meta["labels"] = labels
    body = {"containers": [{"name": "app", "image": "busybox"}], "schedulerName":
            "default-scheduler", **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


# ---- mutation -------------------------------------------------------------------------


def test_matching_pod_is_sent_to_fargate(client: httpx.Client) -> None:
    obj = pod()
    response = post(client, "/mutate-pods", review(obj))
    assert response["allowed"] is True
    out = patched(obj, response)
    assert out["spec"]["schedulerName"] == SCHEDULER_NAME
    assert out["metadata"]["annotations"] == {PROFILE_ANNOTATION: "fp-default"}
    assert out["spec"]["containers"] == obj["spec"]["containers"]


def test_mutation_keeps_other_annotations_and_escapes_the_key(client: httpx.Client) -> None:
    obj = pod("prod", {"app": "web"})
    obj["metadata"]["annotations"] = {"keep": "me", "a/b~c": "x"}
    response = post(client, "/mutate-pods", review(obj, namespace="prod"))
    ops = orjson.loads(base64.b64decode(response["patch"]))
    assert {"op": "add", "path": "/metadata/annotations/eks.amazonaws.com~1fargate-profile",
            "value": "web"} in ops
    out = patched(obj, response)
    assert out["metadata"]["annotations"] == {"keep": "me", "a/b~c": "x",
                                              PROFILE_ANNOTATION: "web"}
    assert out["spec"]["schedulerName"] == SCHEDULER_NAME


def test_mutation_without_scheduler_name_or_metadata(client: httpx.Client) -> None:
    obj = pod()
    del obj["spec"]["schedulerName"]
    out = patched(obj, post(client, "/mutate-pods", review(obj)))
    assert out["spec"]["schedulerName"] == SCHEDULER_NAME
    bare: dict[str, Any] = {"spec": {"containers": []}}
    out = patched(bare, post(client, "/mutate-pods", review(bare)))
    assert out["metadata"]["annotations"][PROFILE_ANNOTATION] == "fp-default"


def test_mutation_is_idempotent(client: httpx.Client) -> None:
    obj = pod()
    once = patched(obj, post(client, "/mutate-pods", review(obj)))
    again = post(client, "/mutate-pods", review(once))
    assert again["allowed"] is True and "patch" not in again


def test_the_choosing_label_picks_the_profile(client: httpx.Client) -> None:
    obj = pod(labels={PROFILE_LABEL: "web"})  # web does not select "default"
    response = post(client, "/mutate-pods", review(obj))
    assert response["allowed"] is True and "patch" not in response


@pytest.mark.parametrize(("namespace", "labels"), [
    ("staging", {}), ("prod", {"app": "db"}), ("prod", {}),
])
def test_non_matching_pods_pass_untouched(client: httpx.Client, namespace: str,
                                          labels: dict[str, str]) -> None:
    obj = pod(namespace, labels, hostNetwork=True)
    for path in ("/mutate-pods", "/validate-pods"):
        response = post(client, path, review(obj, namespace=namespace))
        assert response == {"uid": response["uid"], "allowed": True}


def test_other_operations_are_not_reviewed(client: httpx.Client) -> None:
    obj = pod(hostNetwork=True)
    for op in ("UPDATE", "DELETE", "CONNECT"):
        for path in ("/mutate-pods", "/validate-pods"):
            assert post(client, path, review(obj, operation=op, old=obj))["allowed"] is True


# ---- validation -----------------------------------------------------------------------

C0 = "spec.containers[0]"
UNSUPPORTED: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, pod spec fields, field named, words of the reason)
    ("privileged container",
     {"containers": [{"name": "a", "securityContext": {"privileged": True}}]},
     f"{C0}.securityContext.privileged", "privileged containers are not supported"),
    ("privileged init container",
     {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}]},
     "spec.initContainers[0].securityContext.privileged", "privileged"),
    ("privileged ephemeral container",
     {"ephemeralContainers": [{"name": "e", "securityContext": {"privileged": True}}]},
     "spec.ephemeralContainers[0].securityContext.privileged", "privileged"),
    ("hostNetwork", {"hostNetwork": True}, "spec.hostNetwork", "host networking"),
    ("hostPID", {"hostPID": True}, "spec.hostPID", "PID namespace"),
    ("hostIPC", {"hostIPC": True}, "spec.hostIPC", "IPC namespace"),
    ("hostPort",
     {"containers": [{"name": "a", "ports": [{"containerPort": 80},
                                             {"containerPort": 443, "hostPort": 443}]}]},
     f"{C0}.ports[1].hostPort", "host ports are not supported"),
    ("hostPort of a sidecar",
     {"initContainers": [{"name": "s", "restartPolicy": "Always",
                          "ports": [{"containerPort": 9000, "hostPort": 9000}]}]},
     "spec.initContainers[0].ports[0].hostPort", "host ports"),
    ("hostPath volume", {"volumes": [{"name": "h", "hostPath": {"path": "/var/run"}}]},
     "spec.volumes[0].hostPath", "hostPath volumes are not supported"),
    ("EBS volume",
     {"volumes": [{"name": "e", "awsElasticBlockStore": {"volumeID": "vol-1"}}]},
     "spec.volumes[0].awsElasticBlockStore", "EBS volumes are not supported"),
    ("EBS CSI inline volume",
     {"volumes": [{"name": "e", "csi": {"driver": "ebs.csi.aws.com"}}]},
     "spec.volumes[0].csi.driver", "EBS"),
    ("claim bound to an EBS volume",
     {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "bound-ebs"}}]},
     "spec.volumes[0].persistentVolumeClaim.claimName", 'bound to volume "pv-ebs"'),
    ("claim bound to an EBS CSI volume",
     {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "bound-ebs-csi"}}]},
     "spec.volumes[0].persistentVolumeClaim.claimName", "CSI driver ebs.csi.aws.com"),
    ("claim of an EBS CSI class",
     {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "pending-gp3"}}]},
     "spec.volumes[0].persistentVolumeClaim.claimName",
     'StorageClass "gp3" provisions EBS volumes (ebs.csi.aws.com)'),
    ("claim of the in-tree EBS class (beta annotation)",
     {"volumes": [{"name": "d", "persistentVolumeClaim": {
         "claimName": "pending-gp2-annotation"}}]},
     "spec.volumes[0].persistentVolumeClaim.claimName", "kubernetes.io/aws-ebs"),
    ("generic ephemeral EBS volume",
     {"volumes": [{"name": "d", "ephemeral": {"volumeClaimTemplate": {"spec": {
         "storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]}}}}]},
     "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.storageClassName", "EBS"),
    ("GPU limit",
     {"containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
     f"{C0}.resources.limits[nvidia.com/gpu]", "GPUs are not supported"),
    ("GPU request of an init container",
     {"initContainers": [{"name": "i", "resources": {"requests": {"amd.com/gpu": "1"}}}]},
     "spec.initContainers[0].resources.requests[amd.com/gpu]", "GPUs"),
    ("extended resource",
     {"containers": [{"name": "a", "resources": {"limits": {"example.com/dongle": "1"}}}]},
     f"{C0}.resources.limits[example.com/dongle]", "resource example.com/dongle is not"),
    ("hugepages", {"containers": [{"name": "a", "resources": {
        "requests": {"hugepages-2Mi": "64Mi", "memory": "64Mi"}}}]},
     f"{C0}.resources.requests[hugepages-2Mi]", "hugepages-2Mi"),
    ("pod-level GPU", {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
     "spec.resources.limits[nvidia.com/gpu]", "GPUs"),
]


@pytest.mark.parametrize(("case", "spec", "field", "reason"), UNSUPPORTED,
                         ids=[c[0] for c in UNSUPPORTED])
def test_unsupported_pod_is_denied_naming_the_field(client: httpx.Client, case: str,
                                                    spec: dict[str, Any], field: str,
                                                    reason: str) -> None:
    response = post(client, "/validate-pods", review(pod(**spec)))
    assert response["allowed"] is False, case
    status = response["status"]
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    message = status["message"]
    assert message.startswith(f"Pod not supported on Fargate: {field}: "), message
    assert reason in message
    assert 'Fargate profile "fp-default" selects this pod' in message
    assert status["details"]["causes"][0]["field"] == field
    # The mutating webhook leaves refusing to the validating one.
    assert post(client, "/mutate-pods", review(pod(**spec)))["allowed"] is True


def test_daemonset_pods_are_denied(client: httpx.Client) -> None:
    obj = pod()
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "1"},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluent-bit", "uid": "2",
         "controller": True}]
    status = post(client, "/validate-pods", review(obj))["status"]
    assert status["message"].startswith(
        'Pod not supported on Fargate: metadata.ownerReferences[1]: DaemonSet pods are not '
        'supported (owner DaemonSet "fluent-bit")')


def test_every_violation_is_reported(client: httpx.Client) -> None:
    obj = pod(hostNetwork=True, hostPID=True,
              containers=[{"name": "a", "securityContext": {"privileged": True},
                           "resources": {"limits": {"nvidia.com/gpu": "1"},
                                         "requests": {"nvidia.com/gpu": "1"}}}],
              volumes=[{"name": "h", "hostPath": {"path": "/"}},
                       {"name": "d", "persistentVolumeClaim": {"claimName": "bound-ebs"}}])
    status = post(client, "/validate-pods", review(obj))["status"]
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["spec.hostNetwork", "spec.hostPID",
                      f"{C0}.securityContext.privileged",
                      f"{C0}.resources.limits[nvidia.com/gpu]",  # once, not per requests
                      "spec.volumes[0].hostPath",
                      "spec.volumes[1].persistentVolumeClaim.claimName"]
    for field in fields:
        assert field in status["message"]


@pytest.mark.parametrize("spec", [
    {"containers": [{"name": "a", "securityContext": {"privileged": False},
                     "ports": [{"containerPort": 80, "hostPort": 0}],
                     "resources": {"requests": {"cpu": "1", "memory": "1Gi",
                                                "ephemeral-storage": "1Gi"}}}]},
    {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "bound-nfs"}}]},
    {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "pending-efs"}}]},
    {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "not-there-yet"}}]},
    {"volumes": [{"name": "d", "nfs": {"server": "fs", "path": "/"}},
                 {"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "x"}}]},
], ids=["plain", "claim-bound-to-nfs", "claim-of-efs-class", "claim-missing", "volumes"])
def test_supported_fargate_pods_are_allowed(client: httpx.Client, spec: dict[str, Any]
                                            ) -> None:
    response = post(client, "/validate-pods", review(pod(**spec)))
    assert response["allowed"] is True and "warnings" not in response


def test_claim_lookups_that_fail_warn_instead_of_refusing(
        client: httpx.Client, loop: LoopThread) -> None:
    obj = pod(volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "bound-ebs"}}])
    loop.call(lambda: setattr(VOLUMES, "fail", True))
    try:
        response = post(client, "/validate-pods", review(obj))
    finally:
        loop.call(lambda: setattr(VOLUMES, "fail", False))
    assert response["allowed"] is True
    assert "was not checked for EBS" in response["warnings"][0]


def test_pod_naming_the_fargate_scheduler_is_checked_without_a_profile(
        client: httpx.Client) -> None:
    obj = pod("staging", schedulerName=SCHEDULER_NAME, hostIPC=True)
    response = post(client, "/validate-pods", review(obj, namespace="staging"))
    assert response["allowed"] is False
    assert f"the pod names the {SCHEDULER_NAME}" in response["status"]["message"]


# ---- profiles -------------------------------------------------------------------------

PROFILE_KIND = (GROUP, VERSION, "FargateProfile")


def new_profile(name: str = "kubectl-made", **spec: Any) -> dict[str, Any]:
    body = {"podExecutionRoleArn": ROLE, "selectors": [{"namespace": "batch"}], **spec}
    return {"apiVersion": API_VERSION, "kind": "FargateProfile", "metadata": {"name": name},
            "spec": body}


def test_profile_mutation_fills_defaults_and_finalizer(client: httpx.Client) -> None:
    obj = new_profile()
    response = post(client, "/mutate-fargateprofiles", review(obj, kind=PROFILE_KIND))
    out = patched(obj, response)
    assert out["spec"]["clusterName"] == CLUSTER
    assert out["spec"]["subnets"] == sorted(PRIVATE)
    assert out["spec"]["selectors"] == [{"namespace": "batch"}]
    assert out["metadata"]["finalizers"] == [PROFILE_FINALIZER]
    again = post(client, "/mutate-fargateprofiles", review(out, kind=PROFILE_KIND))
    assert "patch" not in again
    obj["metadata"]["finalizers"] = ["other/finalizer"]
    out = patched(obj, post(client, "/mutate-fargateprofiles", review(obj, kind=PROFILE_KIND)))
    assert out["metadata"]["finalizers"] == ["other/finalizer", PROFILE_FINALIZER]


def test_profile_mutation_leaves_bad_specs_to_validation(client: httpx.Client) -> None:
    obj = new_profile(subnets=[PUBLIC])
    out = patched(obj, post(client, "/mutate-fargateprofiles", review(obj, kind=PROFILE_KIND)))
    assert out["spec"] == obj["spec"]  # unchanged; the finalizer is still added
    assert out["metadata"]["finalizers"] == [PROFILE_FINALIZER]


def test_profile_update_keeps_what_create_filled_in(client: httpx.Client) -> None:
    stored = new_profile(clusterName=CLUSTER, subnets=PRIVATE)
    replacement = new_profile()  # `kubectl replace -f` of the original manifest
    response = post(client, "/mutate-fargateprofiles",
                    review(replacement, kind=PROFILE_KIND, operation="UPDATE", old=stored))
    out = patched(replacement, response)
    assert out["spec"] == stored["spec"]
    valid = post(client, "/validate-fargateprofiles",
                 review(out, kind=PROFILE_KIND, operation="UPDATE", old=stored))
    assert valid["allowed"] is True


BAD_PROFILES: list[tuple[str, dict[str, Any], str, str]] = [
    ("public subnet", new_profile(subnets=[PUBLIC]), "spec.subnets", "public subnet"),
    ("foreign subnet", new_profile(subnets=["subnet-0123"]), "spec.subnets",
     "not a subnet of the cluster's VPC"),
    ("role ARN", new_profile(podExecutionRoleArn="role/x"), "spec.podExecutionRoleArn",
     "not an IAM role ARN"),
    ("no selectors", new_profile(selectors=[]), "spec.selectors", "at least one selector"),
    ("six selectors", new_profile(selectors=[{"namespace": f"n{i}"} for i in range(6)]),
     "spec.selectors", "at most 5 selectors"),
    ("six labels", new_profile(selectors=[{"namespace": "n", "labels": {
        f"k{i}": "v" for i in range(6)}}]), "spec.selectors[0].labels", "at most 5"),
    ("selector without namespace", new_profile(selectors=[{"labels": {"a": "b"}}]),
     "spec.selectors[0].namespace", "needs a namespace"),
    ("other cluster", new_profile(clusterName="prod-eks"), "spec.clusterName",
     "does not name this cluster"),
    ("name", new_profile("Bad_Name"), "metadata.name", "fargateProfileName"),
    ("selectors not a list", new_profile(selectors=1), "spec.selectors", "must be a list"),
    ("label values not strings", new_profile(selectors=[{"namespace": "n", "labels": {
        "a": 1}}]), "spec.selectors[0].labels", "must map strings to strings"),
    ("no spec", {"apiVersion": API_VERSION, "kind": "FargateProfile",
                 "metadata": {"name": "x"}}, "spec", "needs a spec"),
]


@pytest.mark.parametrize(("case", "obj", "field", "words"), BAD_PROFILES,
                         ids=[c[0] for c in BAD_PROFILES])
def test_bad_profile_is_denied_naming_its_rule(client: httpx.Client, case: str,
                                               obj: dict[str, Any], field: str,
                                               words: str) -> None:
    response = post(client, "/validate-fargateprofiles", review(obj, kind=PROFILE_KIND))
    assert response["allowed"] is False, case
    message = response["status"]["message"]
    assert message.startswith(f"{field}: "), message
    assert words in message
    assert message.endswith("(InvalidParameterException)")


def test_cluster_wide_profile_rules(client: httpx.Client, loop: LoopThread,
                                    webhook: tuple[AdmissionWebhook, httpx.Client]) -> None:
    cache = webhook[0].cache
    exists = post(client, "/validate-fargateprofiles",
                  review(new_profile("web"), kind=PROFILE_KIND))["status"]
    assert "already exists with name: web" in exists["message"]
    creating = {**new_profile("still-creating"), "status": {"status": "CREATING"}}
    loop.call(lambda: cache.set_profiles([*PROFILES, creating]))
    try:
        status = post(client, "/validate-fargateprofiles",
                      review(new_profile("next"), kind=PROFILE_KIND))["status"]
        assert status["code"] == 409 and status["reason"] == "Conflict"
        assert "still-creating in status CREATING" in status["message"]
        assert status["message"].endswith("(ResourceInUseException)")
        many = [active_profile(f"p{i}", {"namespace": f"n{i}"}) for i in range(10)]
        loop.call(lambda: cache.set_profiles(many))
        status = post(client, "/validate-fargateprofiles",
                      review(new_profile("eleventh"), kind=PROFILE_KIND))["status"]
        assert "(ResourceLimitExceededException)" in status["message"]
    finally:
        loop.call(lambda: cache.set_profiles(PROFILES))
    ok = post(client, "/validate-fargateprofiles",
              review(new_profile(clusterName=CLUSTER, subnets=PRIVATE), kind=PROFILE_KIND))
    assert ok["allowed"] is True


def test_profile_spec_is_immutable(client: httpx.Client) -> None:
    old = active_profile("web", {"namespace": "prod"})
    new = active_profile("web", {"namespace": "prod"}, {"namespace": "more"})
    response = post(client, "/validate-fargateprofiles",
                    review(new, kind=PROFILE_KIND, operation="UPDATE", old=old))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("spec: Fargate profiles are immutable")
    labels_only = {**old, "metadata": {"name": "web", "labels": {"team": "a"}}}
    assert post(client, "/validate-fargateprofiles",
                review(labels_only, kind=PROFILE_KIND, operation="UPDATE",
                       old=old))["allowed"] is True


# ---- malformed input ------------------------------------------------------------------

PATHS = ["/mutate-pods", "/validate-pods", "/mutate-fargateprofiles",
         "/validate-fargateprofiles"]


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"42", b'"review"', b"{}", b'{"request": null}',
    b'{"request": {}}', b'{"request": {"uid": 7}}', b'{"request": {"uid": ""}}',
    b"{" * 5000, b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
], ids=lambda b: b[:24].decode())
@pytest.mark.parametrize("path", PATHS)
def test_reviews_without_uid_are_400(client: httpx.Client, path: str, body: bytes) -> None:
    r = client.post(path, content=body)
    assert r.status_code == 400
    status = r.json()
    assert status["kind"] == "Status" and status["code"] == 400
    assert status["message"].startswith("malformed AdmissionReview: ")


def _envelope(**request: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", **request}}


@pytest.mark.parametrize(("case", "body", "words"), [
    ("wrong review version", {**_envelope(), "apiVersion": "admission.k8s.io/v2"},
     "expected an AdmissionReview"),
    ("wrong review kind", {**_envelope(), "kind": "Pod"}, "expected an AdmissionReview"),
    ("no kind", _envelope(operation="CREATE", object={}), "request.kind is missing"),
    ("object not an object", _envelope(kind={"group": "", "version": "v1", "kind": "Pod"},
                                       operation="CREATE", object=[1]),
     "request.object is not an object"),
    ("old object not an object",
     _envelope(kind={"group": "", "version": "v1", "kind": "Pod"}, operation="CREATE",
               object={}, oldObject="x"), "request.oldObject"),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("path", PATHS)
def test_malformed_reviews_are_denied_clearly(client: httpx.Client, path: str, case: str,
                                              body: dict[str, Any], words: str) -> None:
    response = post(client, path, body)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"].startswith("malformed AdmissionReview: ")
    assert words in response["status"]["message"]


def test_wrong_kinds_are_denied(client: httpx.Client) -> None:
    deployment = review({"metadata": {"name": "d"}}, kind=("apps", "v1", "Deployment"))
    for path in PATHS:
        response = post(client, path, deployment)
        assert response["allowed"] is False
        assert "not Deployment of apps/v1" in response["status"]["message"]
    as_pod = post(client, "/validate-fargateprofiles", review(pod()))
    assert "reviews FargateProfile objects, not Pod of v1" in as_pod["status"]["message"]


def test_missing_object_is_denied(client: httpx.Client) -> None:
    for path in PATHS:
        kind = ("", "v1", "Pod") if "pods" in path else PROFILE_KIND
        response = post(client, path, review(None, kind=kind))
        assert response["allowed"] is (path == "/mutate-fargateprofiles")


def test_huge_body_is_refused(client: httpx.Client) -> None:
    obj = pod()
    obj["metadata"]["annotations"] = {"big": "x" * (9 * 1024 * 1024)}
    r = client.post("/validate-pods", content=orjson.dumps(review(obj)))
    assert r.status_code == 413
    assert "larger than" in r.json()["message"]
    assert post(client, "/mutate-pods", review(pod()))["allowed"] is True  # still serving


def test_v1beta1_reviews_are_answered_in_kind(client: httpx.Client) -> None:
    body = review(pod())
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    r = client.post("/mutate-pods", content=orjson.dumps(body))
    assert r.json()["apiVersion"] == "admission.k8s.io/v1beta1"
    assert r.json()["response"]["allowed"] is True


def test_health_and_wrong_methods(client: httpx.Client) -> None:
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").status_code == 200
    assert client.get("/mutate-pods").status_code == 405
    assert client.post("/elsewhere", content=b"{}").status_code == 404


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
POD_WORDS = ["metadata", "spec", "labels", "annotations", "namespace", "name", "containers",
             "initContainers", "ephemeralContainers", "securityContext", "privileged",
             "ports", "hostPort", "resources", "limits", "requests", "nvidia.com/gpu", "cpu",
             "volumes", "hostPath", "persistentVolumeClaim", "claimName", "ephemeral",
             "volumeClaimTemplate", "storageClassName", "csi", "driver", "ownerReferences",
             "kind", "DaemonSet", "hostNetwork", "schedulerName", "app", "selectors",
             "subnets", "podExecutionRoleArn", "clusterName", "finalizers",
             "deletionTimestamp", "status", "bound-ebs", PROFILE_ANNOTATION, PROFILE_LABEL]
structured = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(POD_WORDS), st.text(max_size=6)),
                        children, max_size=5)),
    max_leaves=30)
kinds = st.sampled_from([("", "v1", "Pod"), PROFILE_KIND, ("apps", "v1", "DaemonSet")])
operations = st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "", "create"])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), obj=structured, old=structured, kind=kinds,
       operation=operations,
       namespace=st.one_of(st.sampled_from(["default", "prod", ""]), st.text(max_size=5)))
def test_fuzzed_reviews_never_fail(client: httpx.Client, path: str, obj: Any, old: Any,
                                   kind: tuple[str, str, str], operation: str,
                                   namespace: str) -> None:
    body = review(None, kind=kind, operation=operation, namespace=namespace)
    body["request"]["object"] = obj
    body["request"]["oldObject"] = old
    r = client.post(path, content=json.dumps(body))  # orjson stops at 64-bit integers
    assert r.status_code == 200, r.text
    response = r.json()["response"]
    assert response["uid"] == body["request"]["uid"]
    if not response["allowed"]:
        assert response["status"]["message"]
        assert "webhook failed on this request" not in response["status"]["message"]
    if "patch" in response and isinstance(obj, dict):
        patched(obj, response)  # every patch applies to the object it was made for


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), body=st.one_of(
    st.binary(max_size=64), structured.map(json.dumps),
    structured.map(lambda v: json.dumps({"request": v})),
    structured.map(lambda v: json.dumps({"apiVersion": "admission.k8s.io/v1",
                                           "kind": "AdmissionReview",
                                           "request": {"uid": "u", "kind": v}}))))
def test_fuzzed_bodies_never_fail(client: httpx.Client, path: str, body: bytes | str) -> None:
    r = client.post(path, content=body)
    assert r.status_code in (200, 400), r.text
    assert r.json()


# ---- configurations and the watch -----------------------------------------------------


def test_webhook_configurations() -> None:
    mutating, validating = webhook_configurations("https://127.0.0.1:9443/", b"PEM")
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    hooks = {h["name"]: h for h in mutating["webhooks"] + validating["webhooks"]}
    assert set(hooks) == {WEBHOOK_NAME_MUTATE, WEBHOOK_NAME_VALIDATE, WEBHOOK_NAME_PROFILES,
                          "mutate.fargateprofiles.fargate.nodeless.io"}
    pods_hook = hooks[WEBHOOK_NAME_MUTATE]
    assert pods_hook["clientConfig"] == {"url": "https://127.0.0.1:9443/mutate-pods",
                                         "caBundle": base64.b64encode(b"PEM").decode()}
    assert pods_hook["rules"][0]["resources"] == ["pods"]
    assert pods_hook["rules"][0]["operations"] == ["CREATE"]
    assert pods_hook["objectSelector"]["matchExpressions"][0]["operator"] == "NotIn"
    profiles_hook = hooks[WEBHOOK_NAME_PROFILES]
    assert profiles_hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert profiles_hook["rules"][0]["apiGroups"] == [GROUP]
    for hook in hooks.values():
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
    in_cluster = webhook_configurations(ServiceRef("nodeless-system", "fargate-webhook"))
    assert in_cluster[1]["webhooks"][0]["clientConfig"] == {"service": {
        "namespace": "nodeless-system", "name": "fargate-webhook", "port": 443,
        "path": "/validate-pods"}}


def test_pointer_escapes_rfc6901() -> None:
    assert pointer("metadata", "annotations", "a/b~c") == "/metadata/annotations/a~1b~0c"


class FakeListing:
    def __init__(self, items: list[dict[str, Any]], version: str) -> None:
        self.items, self.resourceVersion = items, version

    async def __aiter__(self) -> Any:
        for item in self.items:
            yield item


class FakeClient:
    """lightkube's list/watch, scripted: the first watch fails with 410 Gone after one
    event, the second delivers one more and then blocks."""

    def __init__(self) -> None:
        self.lists = 0
        self.watched_from: list[str | None] = []
        self.items = [{"metadata": {"name": "a"}}]

    def list(self, res: Any) -> FakeListing:
        self.lists += 1
        return FakeListing(list(self.items), str(self.lists * 10))

    async def watch(self, res: Any, resource_version: str | None = None,
                    server_timeout: float | None = None) -> Any:
        self.watched_from.append(resource_version)
        if len(self.watched_from) == 1:
            yield "ADDED", {"metadata": {"name": "b"}}
            self.items = [{"metadata": {"name": "b"}}, {"metadata": {"name": "c"}}]
            raise ApiError(status=Status(code=410, message="too old resource version"))
        yield "DELETED", {"metadata": {"name": "b"}}
        await asyncio.Event().wait()


async def test_reflector_relists_on_410() -> None:
    seen: list[list[str]] = []
    client = FakeClient()
    reflector = Reflector(client, type("Res", (), {}),  # type: ignore[arg-type]
                          lambda objs: seen.append(sorted(objs)))
    task = asyncio.create_task(reflector.run())
    try:
        async with asyncio.timeout(5):
            while len(seen) < 4:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert client.watched_from == ["10", "20"]  # each watch starts at its list's version
    assert seen == [["a"], ["a", "b"], ["b", "c"], ["c"]]
    assert reflector.relists == 2


async def test_reflector_resyncs_a_quiet_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A watch that stays silent (perhaps a dead connection) is replaced by a fresh list."""
    monkeypatch.setattr(cache_module, "RESYNC", 0.05)
    client = FakeClient()
    reflector = Reflector(client, type("Res", (), {}),  # type: ignore[arg-type]
                          lambda objs: None)
    task = asyncio.create_task(reflector.run())
    try:
        async with asyncio.timeout(5):
            while reflector.relists < 4:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
