"""deploy/ for real clusters: the manifests are what the code renders, they apply, and
the same components run from them against a second, separately started API server
standing in for a foreign cluster (issue 4, acceptance 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.test_up_down import NODELESS, free_port
from tests.fixtures.apiserver import RunningAPIServer, start_apiserver
from tools import render_deploy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROLE = "arn:aws:iam::000000000000:role/pods"


def test_deploy_files_are_rendered_from_the_code() -> None:
    """`python tools/render_deploy.py` rewrites them; run it after changing crds.py."""
    for path, text in render_deploy.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run tools/render_deploy.py"


def test_rbac_is_least_privilege() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "fargate.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    pods = next(r for r in role["rules"] if r["resources"] == ["pods"])
    assert sorted(pods["verbs"]) == ["delete", "get", "list", "watch"]
    assert not any("customresourcedefinitions" in r["resources"] for r in role["rules"])
    secrets = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert not secrets


def test_tls_material_for_the_webhook_service(tmp_path: Path) -> None:
    from cryptography import x509

    secret_path, hooks_path = render_deploy.tls(tmp_path / "out")
    secret = yaml.safe_load(secret_path.read_text())
    assert secret["type"] == "kubernetes.io/tls"
    import base64

    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "nodeless-fargate-webhook.nodeless-fargate.svc" in names.get_values_for_type(
        x509.DNSName)
    for config in yaml.safe_load_all(hooks_path.read_text()):
        for hook in config["webhooks"]:
            assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    server = start_apiserver(tmp_path_factory.mktemp("foreign"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fargate_run(foreign: RunningAPIServer, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[subprocess.Popen[str]]:
    """deploy/crds.yaml and deploy/fargate.yaml applied with kubectl, then the
    components as deploy/ runs them (`nodeless fargate run`), from outside the cluster."""
    foreign.kubectl("apply", "-f", str(DEPLOY / "crds.yaml"))
    foreign.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                    "crd/fargateprofiles.fargate.nodeless.io", "crd/subnets.fargate.nodeless.io")
    applied = foreign.kubectl("apply", "-f", str(DEPLOY / "fargate.yaml")).stdout
    assert "deployment.apps/nodeless-fargate created" in applied
    assert "clusterrole.rbac.authorization.k8s.io/nodeless-fargate created" in applied

    state = tmp_path_factory.mktemp("fargate-state")
    log = (state / "run.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NODELESS_", "KUBECONFIG"))}
    # --webhook-url: the configurations name that URL (behind a Service or a proxy it
    # is not where the webhook listens; here it is the same place).
    port = free_port()
    proc = subprocess.Popen(
        [*NODELESS, "fargate", "run", "--kubeconfig", str(foreign.kubeconfig),
         "--state-dir", str(state), "--no-install-crds", "--no-eks-api",
         "--webhook-port", str(port), "--webhook-url", f"https://127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while "the Fargate components are running" not in (state / "run.log").read_text():
            assert proc.poll() is None, (state / "run.log").read_text()
            assert time.monotonic() < deadline, (state / "run.log").read_text()
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def test_components_run_against_a_foreign_cluster(foreign: RunningAPIServer,
                                                  fargate_run: subprocess.Popen[str]) -> None:
    subnets = json.loads(foreign.kubectl("get", "subnets", "-o", "json").stdout)["items"]
    assert len(subnets) == 3
    hooks = json.loads(foreign.kubectl("get", "mutatingwebhookconfiguration",
                                       "nodeless-fargate", "-o", "json").stdout)
    assert all(h["clientConfig"]["url"].startswith("https://127.0.0.1:")
               for h in hooks["webhooks"])
    # No default profile on a real cluster unless asked for.
    assert foreign.kubectl("get", "fargateprofiles", "-o", "name").stdout.strip() == ""

    foreign.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fargate.nodeless.io/v1", "kind": "FargateProfile",
        "metadata": {"name": "team-a"},
        "spec": {"podExecutionRoleArn": ROLE, "selectors": [{"namespace": "team-a"}]}}))
    deadline = time.monotonic() + 15
    while foreign.kubectl("get", "fargateprofile", "team-a", "-o",
                          "jsonpath={.status.status}").stdout != "ACTIVE":
        assert time.monotonic() < deadline, "team-a not ACTIVE"
        time.sleep(0.1)

    foreign.kubectl("create", "namespace", "team-a")
    foreign.kubectl("run", "app", "-n", "team-a", "--image=nginx")
    pod = json.loads(foreign.kubectl("get", "pod", "app", "-n", "team-a", "-o",
                                     "json").stdout)
    assert pod["spec"]["schedulerName"] == "fargate-scheduler"
    assert pod["metadata"]["annotations"]["eks.amazonaws.com/fargate-profile"] == "team-a"

    denied = foreign.kubectl("run", "priv", "-n", "team-a", "--image=nginx", "--overrides",
                             json.dumps({"spec": {"containers": [{
                                 "name": "priv", "image": "nginx",
                                 "securityContext": {"privileged": True}}]}}), check=False)
    assert denied.returncode != 0
    assert "spec.containers[0].securityContext.privileged" in denied.stderr

    foreign.kubectl("run", "plain", "--image=nginx")  # `default` is in no profile here
    plain = json.loads(foreign.kubectl("get", "pod", "plain", "-o", "json").stdout)
    assert plain["spec"]["schedulerName"] == "default-scheduler"

    foreign.kubectl("delete", "fargateprofile", "team-a", "--wait=true", "--timeout=20s")
    assert foreign.kubectl("get", "pods", "-n", "team-a", "-o", "name").stdout.strip() == ""

    fargate_run.send_signal(signal.SIGTERM)
    assert fargate_run.wait(20) == 0


def test_webhook_service_flag() -> None:
    from nodeless.cli.fargate import _parse_service

    assert _parse_service("ns/svc") == ("ns", "svc", 443)
    assert _parse_service("ns/svc:8443") == ("ns", "svc", 8443)
    for bad in ("svc", "ns/", "/svc", "ns/svc:https"):
        with pytest.raises(ValueError, match="--webhook-service"):
            _parse_service(bad)
