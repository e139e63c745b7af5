"""examples/ work as the README's quickstart uses them, against a real `nodeless up` with
no internet: the pod, the profile and the Deployment manifests with kubectl (images from
the local registry), the EKS CLI script with the AWS CLI."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.e2e.upcluster import UpCluster, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_REGISTRY = "127.0.0.1:6445"


def manifest(up: UpCluster, name: str) -> str:
    """An example as the README says to apply it where the registry is not on its default
    port: its address swapped for the one endpoints.json names."""
    text = (EXAMPLES / name).read_text()
    return text.replace(DEFAULT_REGISTRY, up.registry)


def test_every_image_of_the_examples_is_in_the_local_registry() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.strip().startswith("image:"):
                assert line.split()[-1].startswith(DEFAULT_REGISTRY + "/"), (path, line)


def test_pod_example(up_cluster: UpCluster) -> None:
    up = up_cluster
    up.kubectl("apply", "-f", "-", input=manifest(up, "pod.yaml"))

    def output() -> str | None:
        result = up.kubectl("logs", "hello", check=False)
        return result.stdout if "tick 1" in result.stdout else None
    text = wait_for("the example pod's output", output)
    pod = up.get("pod", "hello", "default")
    assert pod is not None
    ip = pod["status"]["podIP"]
    assert pod["spec"]["nodeName"].startswith(f"fargate-ip-{ip.replace('.', '-')}.")
    assert f"hello from hello, {ip}/19" in text
    hard = min(65535, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    assert f"open files: soft 1024, hard {hard}" in text
    up.kubectl("delete", "-f", "-", input=manifest(up, "pod.yaml"))
    wait_for("the pod's node to go", lambda: up.get("node", pod["spec"]["nodeName"]) is None,
             timeout=15)


def test_profile_and_deployment_examples(up_cluster: UpCluster) -> None:
    up = up_cluster
    up.kubectl("apply", "-f", str(EXAMPLES / "fargate-profile.yaml"))
    up.wait_state("demo", "ACTIVE")
    up.kubectl("apply", "-f", "-", input=manifest(up, "web.yaml"))
    out = up.kubectl("rollout", "status", "-n", "demo", "deployment/web",
                     "--timeout=90s").stdout
    assert 'deployment "web" successfully rolled out' in out
    pods = up.items("pods", "-n", "demo", "-l", "app=web")
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == "demo"
        assert pod["metadata"]["annotations"]["CapacityProvisioned"] == "0.5vCPU 2GB"
    ips = {p["status"]["podIP"] for p in pods}

    def endpoint_ips() -> set[str] | None:
        ep = up.get("endpoints", "web", "demo") or {}
        found = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
        return found if found == ips else None
    wait_for("the Service's Endpoints to list the 3 pods", endpoint_ips, timeout=15)

    # Deleting the profile deletes the pods scheduled through it, then the profile.
    up.kubectl("delete", "-f", "-", input=manifest(up, "web.yaml"))
    up.kubectl("delete", "-f", str(EXAMPLES / "fargate-profile.yaml"), "--timeout=60s")
    wait_for("the Deployment's pods to go",
             lambda: not up.items("pods", "-n", "demo") or None, timeout=30)


def test_eks_cli_script(up_cluster: UpCluster) -> None:
    up = up_cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NODELESS_"))}
    env["NODELESS_DATA_DIR"] = str(up.data_dir)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # `aws`, as uv run
    result = subprocess.run([str(EXAMPLES / "eks-profile.sh"), "cli-demo", "cli-ns"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.split("\n")
    assert lines[0].split() == ["cli-demo", "CREATING"], result.stdout
    name, status, subnets = lines[1].split()
    private = sorted(s["id"] for s in up.vpc["subnets"] if s["private"])
    assert (name, status, sorted(subnets.split(","))) == ("cli-demo", "ACTIVE", private)
    profile = up.profile("cli-demo")
    assert profile is not None
    assert profile["spec"]["selectors"] == [{"namespace": "cli-ns"}]
    up.kubectl("delete", "fargateprofile", "cli-demo", "--timeout=60s")
