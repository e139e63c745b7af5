"""Fargate profiles through `nodeless up`, as a user meets them: the real CLI on free
ports, kubectl, boto3 and the AWS CLI with the files nodeless writes (issue 4,
acceptance 1 (the live states), 3 and 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeless.fargate.names import HOST_LABEL
from tests.cli.test_up_down import free_port, nodeless
from tests.fixtures.apiserver import KUBECTL

ROLE = "arn:aws:iam::000000000000:role/pods"


class Cluster:
    """One `nodeless up --detach` for the module; kubectl and AWS clients for it."""

    def __init__(self, data_dir: Path, port: int, eks_port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.eks_port = eks_port

    def kubectl(self, *args: str, input: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.data_dir / "kubeconfig")}
        result = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                                env=env, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def aws_env(self) -> dict[str, str]:
        """Only the files nodeless wrote: no AWS_* setting of the machine leaks in
        (AWS_CA_BUNDLE, for one, would override the CA bundle of the config file)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_CONFIG_FILE"] = str(self.data_dir / "aws" / "config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.data_dir / "aws" / "credentials")
        return env

    def eks(self) -> Any:
        from unittest import mock

        import boto3

        with mock.patch.dict(os.environ, self.aws_env(), clear=True):
            return boto3.session.Session().client("eks")

    def profile(self, name: str) -> dict[str, Any] | None:
        result = self.kubectl("get", "fargateprofile", name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_state(self, name: str, wanted: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while True:
            p = self.profile(name)
            state = ((p or {}).get("status") or {}).get("status") if p else "GONE"
            if state == wanted:
                return
            assert time.monotonic() < deadline, f"{name} is {state}, not {wanted}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("fargate-up") / "data"
    c = Cluster(data_dir, free_port(), free_port())
    # A short activation delay, so that CREATING can be seen with describe as well. No host
    # agent: pods here are placed on a registered test host, and their images (nginx) are
    # not pulled; tests/e2e runs pods with the agent.
    started = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", str(c.port),
                       "--eks-port", str(c.eks_port), "--profile-activation-delay", "0.5",
                       "--no-agent")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield c
    finally:
        nodeless("down", "--data-dir", str(data_dir))


def test_default_profile_and_endpoints(cluster: Cluster) -> None:
    # `up --detach` returns once fp-default is ACTIVE: a first `kubectl run` lands on it.
    fp = cluster.profile("fp-default")
    assert fp is not None and fp["status"]["status"] == "ACTIVE"
    assert [s["namespace"] for s in fp["spec"]["selectors"]] == ["default", "kube-system"]
    subnets = json.loads(cluster.kubectl("get", "subnets", "-o", "json").stdout)["items"]
    private = sorted(s["metadata"]["name"] for s in subnets if s["spec"]["private"])
    assert len(subnets) == 3 and len(private) == 2
    assert sorted(fp["spec"]["subnets"]) == private
    vpc = yaml.safe_load((cluster.data_dir / "vpc.yaml").read_text())
    assert vpc["cidr"] == "10.0.0.0/16"

    endpoints = json.loads((cluster.data_dir / "endpoints.json").read_text())
    assert endpoints["eks"] == f"https://127.0.0.1:{cluster.eks_port}"
    shown = nodeless("status", "--data-dir", str(cluster.data_dir))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in ("apiserver", "fargate-setup", "fargate-profiles", "fargate-webhook",
                 "eks-api"):
        assert f"{name}: ready" in shown.stdout
    listed = nodeless("profile", "list", "--data-dir", str(cluster.data_dir))
    assert listed.returncode == 0 and "fp-default" in listed.stdout, listed.stderr
    # The components use a token of their own, not the admin's.
    own = yaml.safe_load((cluster.data_dir / "fargate" / "kubeconfig").read_text())
    admin = yaml.safe_load((cluster.data_dir / "kubeconfig").read_text())
    assert own["users"][0]["name"] == "system:nodeless:fargate"
    assert own["users"][0]["user"]["token"] != admin["users"][0]["user"]["token"]


def test_kubectl_run_in_default_runs_on_fargate(cluster: Cluster) -> None:
    cluster.kubectl("run", "web", "--image=nginx")
    pod = json.loads(cluster.kubectl("get", "pod", "web", "-o", "json").stdout)
    assert pod["spec"]["schedulerName"] == "fargate-scheduler"
    assert pod["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == "fp-default"

    cluster.kubectl("create", "namespace", "elsewhere")
    cluster.kubectl("run", "web", "-n", "elsewhere", "--image=nginx")
    other = json.loads(cluster.kubectl("get", "pod", "web", "-n", "elsewhere", "-o",
                                       "json").stdout)
    assert other["spec"]["schedulerName"] == "default-scheduler"
    assert "eks.amazonaws.com/fargate-profile" not in (
        other["metadata"].get("annotations") or {})
    # Unsupported specs pass where no profile selects the pod.
    cluster.kubectl("run", "host", "-n", "elsewhere", "--image=nginx",
                    "--overrides", json.dumps({"spec": {"hostNetwork": True}}))


UNSUPPORTED = [
    ("privileged", {"containers": [{"name": "c", "image": "nginx",
                                    "securityContext": {"privileged": True}}]},
     "spec.containers[0].securityContext.privileged"),
    ("host-network", {"hostNetwork": True}, "spec.hostNetwork"),
    ("host-port", {"containers": [{"name": "c", "image": "nginx",
                                   "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
     "spec.containers[0].ports[0].hostPort"),
    ("host-pid", {"hostPID": True}, "spec.hostPID"),
    ("host-ipc", {"hostIPC": True}, "spec.hostIPC"),
    ("host-path", {"volumes": [{"name": "v", "hostPath": {"path": "/etc"}}]},
     "spec.volumes[0].hostPath"),
    ("ebs", {"volumes": [{"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1"}}]},
     "spec.volumes[0].awsElasticBlockStore"),
    ("gpu", {"containers": [{"name": "c", "image": "nginx",
                             "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
     "spec.containers[0].resources.limits[nvidia.com/gpu]"),
]


@pytest.mark.parametrize(("name", "spec", "field"), UNSUPPORTED,
                         ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_pod_is_denied_naming_the_field(cluster: Cluster, name: str,
                                                    spec: dict[str, Any], field: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert "denied the request" in result.stderr and field in result.stderr, result.stderr
    assert "Pod not supported on Fargate" in result.stderr


def test_daemonset_pod_is_denied(cluster: Cluster) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "agent", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                              "name": "logs", "uid": "1234"}]},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and "metadata.ownerReferences[0]" in result.stderr


def test_profile_lifecycle_with_boto3(cluster: Cluster) -> None:
    """CREATING -> ACTIVE -> DELETING -> gone, seen through the EKS API and kubectl;
    deleting the profile deletes the pods scheduled through it (and only those)."""
    eks = cluster.eks()
    created = eks.create_fargate_profile(
        clusterName="nodeless", fargateProfileName="apps", podExecutionRoleArn=ROLE,
        selectors=[{"namespace": "apps", "labels": {"tier": "web"}}])["fargateProfile"]
    assert created["status"] == "CREATING"
    seen = [eks.describe_fargate_profile(clusterName="nodeless", fargateProfileName="apps")
            ["fargateProfile"]["status"]]
    deadline = time.monotonic() + 15
    while seen[-1] != "ACTIVE":
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
        seen.append(eks.describe_fargate_profile(
            clusterName="nodeless", fargateProfileName="apps")["fargateProfile"]["status"])
    assert seen[0] == "CREATING" and set(seen) == {"CREATING", "ACTIVE"}
    listed = cluster.kubectl("get", "fargateprofiles").stdout
    assert "apps" in listed and "fp-default" in listed and "ACTIVE" in listed

    cluster.kubectl("create", "namespace", "apps")
    cluster.kubectl("run", "front", "-n", "apps", "--image=nginx", "--labels=tier=web")
    cluster.kubectl("run", "back", "-n", "apps", "--image=nginx", "--labels=tier=db")
    front = json.loads(cluster.kubectl("get", "pod", "front", "-n", "apps", "-o",
                                       "json").stdout)
    assert front["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == "apps"

    deleted = eks.delete_fargate_profile(clusterName="nodeless", fargateProfileName="apps")
    assert deleted["fargateProfile"]["status"] == "DELETING"
    deadline = time.monotonic() + 15
    while True:
        try:
            state = eks.describe_fargate_profile(
                clusterName="nodeless", fargateProfileName="apps")["fargateProfile"]["status"]
        except eks.exceptions.ResourceNotFoundException as e:
            assert "apps" in str(e)
            break
        assert state == "DELETING"
        assert time.monotonic() < deadline, "profile not gone"
        time.sleep(0.1)
    pods = cluster.kubectl("get", "pods", "-n", "apps", "-o", "name").stdout.split()
    assert pods == ["pod/back"]
    events = cluster.kubectl("get", "events", "-n", "default", "--field-selector",
                             "involvedObject.name=apps", "-o", "json").stdout
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert reasons == ["Creating", "Active", "Deleting", "Deleted"]


def test_profile_lifecycle_with_the_aws_cli(cluster: Cluster) -> None:
    aws = str(Path(KUBECTL).with_name("aws"))

    def run(*args: str) -> dict[str, Any]:
        result = subprocess.run([aws, "eks", *args, "--cluster-name", "nodeless",
                                 "--output", "json"], capture_output=True, text=True,
                                env=cluster.aws_env(), timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    created = run("create-fargate-profile", "--fargate-profile-name", "cli",
                  "--pod-execution-role-arn", ROLE, "--selectors", "namespace=cli")
    assert created["fargateProfile"]["status"] == "CREATING"
    cluster.wait_state("cli", "ACTIVE")
    assert "cli" in run("list-fargate-profiles")["fargateProfileNames"]
    assert run("delete-fargate-profile", "--fargate-profile-name", "cli"
               )["fargateProfile"]["status"] == "DELETING"
    cluster.wait_state("cli", "GONE")


def test_profile_created_with_kubectl(cluster: Cluster) -> None:
    """The CRD is a door of its own: the same states, with no EKS API involved."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fargate.nodeless.io/v1", "kind": "FargateProfile",
        "metadata": {"name": "batch"},
        "spec": {"podExecutionRoleArn": ROLE, "selectors": [{"namespace": "batch"}]}}))
    cluster.wait_state("batch", "ACTIVE")
    cluster.kubectl("create", "namespace", "batch")
    cluster.kubectl("run", "job", "-n", "batch", "--image=busybox")
    job = json.loads(cluster.kubectl("get", "pod", "job", "-n", "batch", "-o", "json").stdout)
    assert job["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == "batch"
    cluster.kubectl("delete", "fargateprofile", "batch", "--wait=true")
    assert cluster.profile("batch") is None
    assert cluster.kubectl("get", "pods", "-n", "batch", "-o", "name").stdout.strip() == ""


def test_scheduler_binds_pods_on_micro_nodes_and_releases_them(cluster: Cluster) -> None:
    """Issue 5, acceptance 2, through `nodeless up` and kubectl: webhook, scheduler (a
    child process of `nodeless up`) and a registered test host (no containers)."""
    import asyncio

    from nodeless.kube import async_client
    from tests.fargate.hosts_helper import register_test_host

    async def register() -> None:
        client = async_client(cluster.data_dir / "kubeconfig")
        try:
            await register_test_host(client, "host-1", cpu="16", memory="64Gi")
        finally:
            await client.close()

    asyncio.run(register())
    shown = nodeless("status", "--data-dir", str(cluster.data_dir))
    assert "fargate-scheduler: ready" in shown.stdout, shown.stdout
    big = {"spec": {"containers": [{"name": "big", "image": "nginx", "resources": {
        "requests": {"cpu": "1", "memory": "8Gi"}}}]}}
    cluster.kubectl("run", "big", "--image=nginx", "--overrides", json.dumps(big))
    for name in ("small-1", "small-2"):
        cluster.kubectl("run", name, "--image=nginx")
    names = ("big", "small-1", "small-2")

    def pods() -> dict[str, dict[str, Any]]:
        listed = json.loads(cluster.kubectl("get", "pods", "-o", "json").stdout)["items"]
        return {p["metadata"]["name"]: p for p in listed if p["metadata"]["name"] in names}

    deadline = time.monotonic() + 30
    while not all(p["spec"].get("nodeName") for p in pods().values()):
        assert time.monotonic() < deadline, {n: p["spec"].get("nodeName")
                                             for n, p in pods().items()}
        time.sleep(0.2)
    bound = pods()
    import ipaddress

    private = {s["metadata"]["name"]: s["spec"]["cidrBlock"] for s in json.loads(
        cluster.kubectl("get", "subnets", "-o", "json").stdout)["items"] if s["spec"]["private"]}
    ips = set()
    for name, pod in bound.items():
        node = json.loads(cluster.kubectl("get", "node", pod["spec"]["nodeName"], "-o",
                                          "json").stdout)
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        assert node["metadata"]["name"] == f"fargate-ip-{ip.replace('.', '-')}" \
                                           ".us-east-1.compute.internal"
        assert node["metadata"]["labels"]["eks.amazonaws.com/compute-type"] == "fargate"
        assert {"key": "eks.amazonaws.com/compute-type", "value": "fargate",
                "effect": "NoSchedule"} in node["spec"]["taints"]
        subnets = [ipaddress.ip_network(cidr) for cidr in private.values()
                   if ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)]
        assert len(subnets) == 1, f"{ip} is in no private subnet of {private}"
        subnet = subnets[0]
        assert ipaddress.ip_address(ip) not in (
            [subnet.network_address + i for i in range(4)] + [subnet.broadcast_address])
        ips.add(ip)
        annotations = pod["metadata"]["annotations"]
        if name == "big":  # 1 vCPU + 8 GB + 256 MB overhead -> 2 vCPU 9 GB
            assert annotations["CapacityProvisioned"] == "2vCPU 9GB"
            assert node["status"]["capacity"]["cpu"] == "2"
            assert node["status"]["capacity"]["memory"] == "9Gi"
        else:
            assert annotations["CapacityProvisioned"] == "0.25vCPU 0.5GB"
        events = json.loads(cluster.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name}",
            "-o", "json").stdout)["items"]
        assert any(e["reason"] == "Scheduled" and pod["spec"]["nodeName"] in e["message"]
                   for e in events), events
    assert len(ips) == 3

    for name in names:
        cluster.kubectl("delete", "pod", name, "--grace-period=0", "--force", "--wait=false")
    nodes = {p["spec"]["nodeName"] for p in bound.values()}
    deadline = time.monotonic() + 30
    while True:
        left = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        held = [n["metadata"]["name"] for n in left if n["metadata"]["name"] in nodes]
        # An address is held by the micro-node that carries it (named after it).
        taken = [n["metadata"]["name"] for n in left if any(
            a["type"] == "InternalIP" and a["address"] in ips
            for a in n["status"].get("addresses") or [])]
        host = json.loads(cluster.kubectl("get", "fargatehost", "host-1", "-o", "json").stdout)
        # Its totals come down to what other pods' micro-nodes on it hold.
        others = [n for n in left
                  if (n["metadata"].get("labels") or {}).get(HOST_LABEL) == "host-1"
                  and n["metadata"]["name"] not in nodes]
        reserved = (((host.get("status") or {}).get("allocated") or {}).get("pods") or 0
                    ) - len(others)
        if not held and not taken and not reserved:
            break
        assert time.monotonic() < deadline, (held, taken, reserved)
        time.sleep(0.3)


def test_scheduler_process_goes_with_nodeless_up(tmp_path: Path) -> None:
    """The scheduler runs as a child of `nodeless up`: `down` stops it, and it does not
    outlive a `nodeless up` killed with SIGKILL."""
    import signal

    def children() -> list[int]:
        found = subprocess.run(
            ["pgrep", "-f", f"nodeless.fargate.(scheduler|admission).*{tmp_path}"],
            capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    for stop in ("down", "kill"):
        data_dir = tmp_path / stop
        started = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port",
                           str(free_port()), "--eks-port", "0", "--no-agent")
        assert started.returncode == 0, started.stdout + started.stderr
        running = [p for p in children() if str(data_dir) in Path(
            f"/proc/{p}/cmdline").read_text()]
        assert len(running) == 2, running  # the scheduler and the webhook
        if stop == "down":
            assert nodeless("down", "--data-dir", str(data_dir)).returncode == 0
        else:
            pid = int((data_dir / "nodeless.pid").read_text())
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        for child in running:
            while Path(f"/proc/{child}").exists() and \
                    "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
                assert time.monotonic() < deadline, f"child {child} survived `{stop}`"
                time.sleep(0.1)


def test_a_pod_created_once_fp_default_is_active_goes_to_fargate(tmp_path: Path) -> None:
    """A client that waits for fp-default to be ACTIVE (not for `nodeless up` to return)
    and then creates a pod gets it mutated: the webhook is registered before the profile
    controller may make a profile ACTIVE."""
    data_dir = tmp_path / "data"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodeless.cli.main", "up", "--data-dir", str(data_dir),
         "--port", str(port), "--eks-port", "0", "--no-agent", "--no-controllers"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = Cluster(data_dir, port, 0)
        deadline = time.monotonic() + 90
        while not (data_dir / "kubeconfig").exists() or ((
                (c.profile("fp-default") if (data_dir / "kubeconfig").exists() else None)
                or {}).get("status") or {}).get("status") != "ACTIVE":
            assert proc.poll() is None, "nodeless up exited"
            assert time.monotonic() < deadline, "fp-default did not become ACTIVE"
            time.sleep(0.05)
        c.kubectl("run", "early", "--image=busybox", "--restart=Never")
        pod = json.loads(c.kubectl("get", "pod", "early", "-o", "json").stdout)
        assert pod["spec"]["schedulerName"] == "fargate-scheduler", pod["spec"]
        assert pod["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == \
            "fp-default"
    finally:
        proc.terminate()
        proc.wait(30)
