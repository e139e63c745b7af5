"""The webhook registered against a real API server, driven by kubectl (issue 4,
acceptance 3, webhook side): it runs as `nodeless up` runs it (WebhookComponent: watch
cache, TLS server, registration), against its own API server with the CRDs installed,
so that its failurePolicy Fail on every pod never touches other tests' servers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from nodeless.apiserver import pki
from nodeless.fargate.admission import CONFIGURATION_NAME, WebhookComponent
from nodeless.fargate.admission.cache import FargateCache
from nodeless.fargate.crds import all_crds
from nodeless.fargate.names import (
    PROFILE_ANNOTATION,
    PROFILE_FINALIZER,
    SCHEDULER_NAME,
    WEBHOOK_NAME_PROFILES,
    WEBHOOK_NAME_VALIDATE,
)
from nodeless.fargate.settings import FargateSettings
from nodeless.fargate.vpc import subnet_object
from tests.fargate.test_admission_webhook import CLUSTER, PRIVATE, PUBLIC, ROLE, VPC, LoopThread
from tests.fixtures.apiserver import RunningAPIServer, start_apiserver

NS = "fargate-apps"
ELSEWHERE = "not-fargate"


@dataclass
class Cluster:
    server: RunningAPIServer
    component: WebhookComponent

    def kubectl(self, *args: str, input: str | None = None, check: bool = True
                ) -> Any:
        return self.server.kubectl(*args, input=input, check=check)

    def get(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return result

    @property
    def cache(self) -> FargateCache:
        assert self.component.webhook is not None
        return self.component.webhook.cache

    def wait_for_cache(self, predicate: Callable[[FargateCache], bool]) -> None:
        """Until the webhook's watch has delivered what the test just wrote."""
        deadline = time.monotonic() + 10
        while not predicate(self.cache):
            assert time.monotonic() < deadline, "the webhook's cache did not catch up"
            time.sleep(0.01)

    def create_profile(self, name: str, namespace: str, *, active: bool = True) -> None:
        self.kubectl("apply", "-f", "-", input=profile_yaml(name, namespace))
        if active:
            self.kubectl("patch", "fargateprofile", name, "--subresource=status",
                         "--type=merge", "-p", '{"status": {"status": "ACTIVE"}}')
        state = "ACTIVE" if active else None
        self.wait_for_cache(lambda cache: any(
            p["metadata"]["name"] == name and (p.get("status") or {}).get("status") == state
            for p in cache.profiles))

    def delete_profile(self, name: str) -> None:
        """Delete and let go of the finalizer (no profile controller runs here)."""
        self.kubectl("delete", "fargateprofile", name, "--wait=false")
        self.kubectl("patch", "fargateprofile", name, "--type=json", "-p",
                     '[{"op": "remove", "path": "/metadata/finalizers"}]')
        self.wait_for_cache(lambda cache: all(p["metadata"]["name"] != name
                                              for p in cache.profiles))


def profile_yaml(name: str, namespace: str, extra: str = "") -> str:
    return f"""
apiVersion: fargate.nodeless.io/v1
kind: FargateProfile
metadata: {{name: {name}}}
spec:
  podExecutionRoleArn: {ROLE}
  selectors: [{{namespace: "{namespace}"}}]
{extra}"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("fargate-admission")
    server = start_apiserver(data_dir)
    loop = LoopThread()
    future = None
    try:
        server.kubectl("apply", "-f", "-", input="\n---\n".join(
            json.dumps(crd) for crd in all_crds()))
        server.kubectl("wait", "--for", "condition=established",
                       "crd/fargateprofiles.fargate.nodeless.io", "crd/subnets.fargate.nodeless.io")
        server.kubectl("apply", "-f", "-", input="\n---\n".join(
            json.dumps(subnet_object(VPC, s)) for s in VPC.subnets))
        for namespace in (NS, ELSEWHERE):
            server.kubectl("create", "namespace", namespace)
        material = pki.PKI.at(data_dir)
        from nodeless.fargate.admission import issue_serving_certificate
        cert, key = issue_serving_certificate(material, data_dir / "fargate")
        settings = FargateSettings(kubeconfig=server.kubeconfig, vpc=VPC, cluster=CLUSTER,
                                   state_dir=data_dir, webhook_cert=cert, webhook_key=key,
                                   webhook_ca=material.ca_cert)
        component = WebhookComponent(settings)
        ready = threading.Event()
        future = asyncio.run_coroutine_threadsafe(component.run(ready.set), loop.loop)
        assert ready.wait(30), future.exception(0) if future.done() else "not ready"
        yield Cluster(server, component)
    finally:
        if future is not None:
            loop.loop.call_soon_threadsafe(future.cancel)
            time.sleep(0.2)
        loop.stop()
        server.stop()


@pytest.fixture(scope="module")
def fargate(cluster: Cluster) -> Cluster:
    """A cluster whose profile `fp-apps` selects NS and is ACTIVE."""
    cluster.create_profile("fp-apps", NS)
    return cluster


def pod_yaml(name: str, spec: str = "", *, namespace: str = NS, meta: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
{meta}
spec:
  containers:
  - name: app
    image: busybox
{spec}"""


def test_registered_configurations(fargate: Cluster) -> None:
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        config = fargate.get(kind, CONFIGURATION_NAME)
        for hook in config["webhooks"]:
            assert hook["clientConfig"]["url"].startswith(fargate.component.url + "/")
            assert hook["failurePolicy"] == "Fail"


def test_kubectl_profile_gets_defaults_and_finalizer(fargate: Cluster) -> None:
    stored = fargate.get("fargateprofile", "fp-apps")
    assert stored["spec"]["clusterName"] == CLUSTER
    assert stored["spec"]["subnets"] == sorted(PRIVATE)
    assert stored["metadata"]["finalizers"] == [PROFILE_FINALIZER]
    assert stored["status"]["status"] == "ACTIVE"
    listed = fargate.kubectl("get", "fargateprofiles").stdout
    assert "fp-apps" in listed and "ACTIVE" in listed


def test_matching_pod_is_stored_for_fargate(fargate: Cluster) -> None:
    fargate.kubectl("apply", "-f", "-", input=pod_yaml("web", meta="  labels: {app: web}"))
    pod = fargate.get("pod", "web", "-n", NS)
    assert pod["spec"]["schedulerName"] == SCHEDULER_NAME
    assert pod["metadata"]["annotations"][PROFILE_ANNOTATION] == "fp-apps"
    assert pod["metadata"]["labels"] == {"app": "web"}
    run = fargate.kubectl("run", "by-run", "-n", NS, "--image=busybox", "--restart=Never")
    assert "pod/by-run created" in run.stdout
    pod = fargate.get("pod", "by-run", "-n", NS)
    assert pod["spec"]["schedulerName"] == SCHEDULER_NAME


def test_pods_outside_every_profile_are_unchanged(fargate: Cluster) -> None:
    spec = """    securityContext: {privileged: true}
  hostNetwork: true"""
    fargate.kubectl("apply", "-f", "-", input=pod_yaml("plain", spec, namespace=ELSEWHERE))
    pod = fargate.get("pod", "plain", "-n", ELSEWHERE)
    assert pod["spec"]["schedulerName"] == "default-scheduler"
    assert PROFILE_ANNOTATION not in (pod["metadata"].get("annotations") or {})
    assert pod["spec"]["hostNetwork"] is True


def test_the_webhooks_own_pods_are_let_through(fargate: Cluster) -> None:
    """Its pods must be creatable while it is down (failurePolicy Fail)."""
    meta = "  labels: {fargate.nodeless.io/component: webhook}"
    fargate.kubectl("apply", "-f", "-", input=pod_yaml("webhook-replica", meta=meta))
    pod = fargate.get("pod", "webhook-replica", "-n", NS)
    assert pod["spec"]["schedulerName"] == "default-scheduler"


VOLUMES = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gp3}
provisioner: ebs.csi.aws.com
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-ebs}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  awsElasticBlockStore: {volumeID: vol-0123}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: bound-ebs, namespace: NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: pv-ebs
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: gp3-claim, namespace: NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gp3
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: nfs-claim, namespace: NS}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  resources: {requests: {storage: 1Gi}}
""".replace("NS", NS)

C0 = "spec.containers[0]"
UNSUPPORTED = [
    # (case, pod spec lines after the first container, field, reason words)
    ("privileged", "    securityContext: {privileged: true}",
     f"{C0}.securityContext.privileged", "privileged containers are not supported"),
    ("privileged-init", """  initContainers:
  - {name: init, image: busybox, securityContext: {privileged: true}}""",
     "spec.initContainers[0].securityContext.privileged", "privileged containers"),
    ("hostNetwork", "  hostNetwork: true", "spec.hostNetwork", "host networking"),
    ("hostPID", "  hostPID: true", "spec.hostPID", "PID namespace"),
    ("hostIPC", "  hostIPC: true", "spec.hostIPC", "IPC namespace"),
    ("hostPort", "    ports: [{containerPort: 80, hostPort: 8080}]",
     f"{C0}.ports[0].hostPort", "host ports are not supported"),
    ("hostPath", "  volumes: [{name: h, hostPath: {path: /var/run}}]",
     "spec.volumes[0].hostPath", "hostPath volumes are not supported"),
    ("ebs-volume", "  volumes: [{name: e, awsElasticBlockStore: {volumeID: vol-1}}]",
     "spec.volumes[0].awsElasticBlockStore", "EBS volumes are not supported"),
    ("ebs-bound-claim", "  volumes: [{name: d, persistentVolumeClaim: {claimName: bound-ebs}}]",
     "spec.volumes[0].persistentVolumeClaim.claimName",
     'claim "bound-ebs" is bound to volume "pv-ebs", an EBS volume'),
    ("ebs-class-claim", "  volumes: [{name: d, persistentVolumeClaim: {claimName: gp3-claim}}]",
     "spec.volumes[0].persistentVolumeClaim.claimName",
     'StorageClass "gp3" provisions EBS volumes (ebs.csi.aws.com)'),
    ("gpu", "    resources: {limits: {nvidia.com/gpu: 1}}",
     f"{C0}.resources.limits[nvidia.com/gpu]", "GPUs are not supported"),
    ("extended-resource", "    resources: {limits: {example.com/dongle: 2}}",
     f"{C0}.resources.limits[example.com/dongle]", "resource example.com/dongle is not"),
]


@pytest.fixture(scope="module")
def volumes(fargate: Cluster) -> Cluster:
    fargate.kubectl("apply", "-f", "-", input=VOLUMES)
    return fargate


@pytest.mark.parametrize(("case", "spec", "field", "reason"), UNSUPPORTED,
                         ids=[c[0] for c in UNSUPPORTED])
def test_unsupported_pod_is_denied_by_kubectl(volumes: Cluster, case: str, spec: str,
                                              field: str, reason: str) -> None:
    name = f"bad-{case.lower()}"
    result = volumes.kubectl("apply", "-f", "-", input=pod_yaml(name, spec), check=False)
    assert result.returncode != 0
    assert (f'admission webhook "{WEBHOOK_NAME_VALIDATE}" denied the request: '
            f"Pod not supported on Fargate: {field}: ") in result.stderr, result.stderr
    assert reason in result.stderr
    assert volumes.kubectl("get", "pod", name, "-n", NS, check=False).returncode != 0


def test_daemonset_pod_is_denied(volumes: Cluster) -> None:
    meta = """  ownerReferences:
  - {apiVersion: apps/v1, kind: DaemonSet, name: log-agent, controller: true,
     uid: 6d9c1a35-6f6b-4d4f-9d55-1a2b3c4d5e6f}"""
    result = volumes.kubectl("apply", "-f", "-", input=pod_yaml("ds-pod", meta=meta),
                             check=False)
    assert result.returncode != 0
    assert ('Pod not supported on Fargate: metadata.ownerReferences[0]: DaemonSet pods are '
            'not supported (owner DaemonSet "log-agent")') in result.stderr


def test_supported_claims_pass(volumes: Cluster) -> None:
    spec = "  volumes: [{name: d, persistentVolumeClaim: {claimName: nfs-claim}}]"
    volumes.kubectl("apply", "-f", "-", input=pod_yaml("with-nfs", spec))
    pod = volumes.get("pod", "with-nfs", "-n", NS)
    assert pod["spec"]["schedulerName"] == SCHEDULER_NAME


def test_every_violation_in_one_message(volumes: Cluster) -> None:
    spec = """    securityContext: {privileged: true}
  hostPID: true
  volumes: [{name: h, hostPath: {path: /}}]"""
    result = volumes.kubectl("apply", "-f", "-", input=pod_yaml("many", spec), check=False)
    for field in ("spec.hostPID", f"{C0}.securityContext.privileged",
                  "spec.volumes[0].hostPath"):
        assert f"{field}: " in result.stderr


@pytest.mark.parametrize(("case", "extra", "words"), [
    ("public-subnet", f"  subnets: [{PUBLIC}]",
     f"spec.subnets: subnet {PUBLIC} is a public subnet"),
    ("bad-role", "  podExecutionRoleArn: arn:aws:iam::12:role/x",
     "spec.podExecutionRoleArn: podExecutionRoleArn 'arn:aws:iam::12:role/x' is not an IAM "
     "role ARN"),
    ("six-selectors", "  selectors: [{namespace: a}, {namespace: b}, {namespace: c}, "
     "{namespace: d}, {namespace: e}, {namespace: f}]",
     "spec.selectors: a Fargate profile may have at most 5 selectors"),
])
def test_bad_profile_is_denied_naming_its_rule(fargate: Cluster, case: str, extra: str,
                                               words: str) -> None:
    manifest = profile_yaml(f"bad-{case}", "x")
    if "podExecutionRoleArn" in extra or "selectors" in extra:
        key = extra.split(":")[0]
        manifest = "\n".join(line for line in manifest.splitlines()
                             if not line.startswith(key))
    result = fargate.kubectl("apply", "-f", "-", input=manifest + "\n" + extra, check=False)
    assert result.returncode != 0
    assert f'admission webhook "{WEBHOOK_NAME_PROFILES}" denied the request: ' \
        in result.stderr, result.stderr
    assert words in result.stderr
    assert "(InvalidParameterException)" in result.stderr


def test_profile_spec_updates_are_refused(fargate: Cluster) -> None:
    result = fargate.kubectl("patch", "fargateprofile", "fp-apps", "--type=merge", "-p",
                             '{"spec": {"selectors": [{"namespace": "other"}]}}', check=False)
    assert result.returncode != 0
    assert "spec: Fargate profiles are immutable" in result.stderr
    fargate.kubectl("label", "fargateprofile", "fp-apps", "team=platform")  # metadata is fine
    again = fargate.kubectl("apply", "-f", "-", input=profile_yaml("fp-apps", NS))
    assert "unchanged" in again.stdout or "configured" in again.stdout


def test_one_profile_change_at_a_time(fargate: Cluster) -> None:
    fargate.create_profile("still-creating", "batch", active=False)
    try:
        result = fargate.kubectl("apply", "-f", "-", input=profile_yaml("next", "jobs"),
                                 check=False)
        assert result.returncode != 0
        assert "Error from server (Conflict)" in result.stderr
        assert ("currently has Fargate profile still-creating in status CREATING"
                in result.stderr)
    finally:
        fargate.delete_profile("still-creating")


def test_deleting_profile_stops_matching(fargate: Cluster) -> None:
    fargate.kubectl("create", "namespace", "fleeting")
    fargate.create_profile("short-lived", "fleeting")
    fargate.kubectl("run", "before", "-n", "fleeting", "--image=busybox")
    assert fargate.get("pod", "before", "-n", "fleeting")["spec"]["schedulerName"] \
        == SCHEDULER_NAME
    fargate.kubectl("delete", "fargateprofile", "short-lived", "--wait=false")
    fargate.wait_for_cache(lambda cache: all(
        (p["metadata"].get("deletionTimestamp") or p["metadata"]["name"] != "short-lived")
        for p in cache.profiles))
    fargate.kubectl("run", "after", "-n", "fleeting", "--image=busybox")
    assert fargate.get("pod", "after", "-n", "fleeting")["spec"]["schedulerName"] \
        == "default-scheduler"
    fargate.kubectl("patch", "fargateprofile", "short-lived", "--type=json", "-p",
                    '[{"op": "remove", "path": "/metadata/finalizers"}]')
    fargate.wait_for_cache(lambda cache: all(p["metadata"]["name"] != "short-lived"
                                             for p in cache.profiles))


def test_the_cache_was_kept_by_watches(fargate: Cluster) -> None:
    """Every change above reached the webhook as a watch event: one list per type."""
    assert fargate.cache.relists == 2
