"""A real EKS API for tests: an API server with nodeless's CRDs and the default VPC's
Subnet objects, and the EksApiComponent serving HTTPS on a free loopback port in a
thread of its own, so blocking clients (boto3, the AWS CLI, kubectl) can drive it.

No profile controller runs here: a created profile stays CREATING (no status), which is
the state the "one change at a time" rule needs. `set_status` and `finish_deletion`
stand in for the controller where a test needs its later states.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeless.apiserver import pki
from nodeless.fargate import crds, vpc
from nodeless.fargate.eksapi import EksApiComponent
from nodeless.fargate.eksapi.credentials import config_path, credentials_path, eks_client
from nodeless.fargate.settings import FargateSettings
from tests.fixtures.apiserver import RunningAPIServer, start_apiserver

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")
CLUSTER = "nodeless"
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/pod-execution"
FOREIGN_VPC = "vpc-0f0f0f0f0f0f0f0f0"
FOREIGN_SUBNET = "subnet-0f0f0f0f0f0f0f0f0"


@dataclass
class EksEnv:
    api: RunningAPIServer
    data_dir: Path
    settings: FargateSettings
    component: EksApiComponent
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None
    _thread: threading.Thread | None = None
    errors: list[BaseException] = field(default_factory=list)

    @property
    def private_subnets(self) -> list[str]:
        return sorted(s.id for s in self.settings.vpc.private_subnets())

    @property
    def public_subnet(self) -> str:
        return next(s.id for s in self.settings.vpc.subnets if not s.private)

    def boto(self, **overrides: Any) -> Any:
        """A boto3 `eks` client with the data dir's key pair, region, endpoint and CA."""
        return eks_client(self.data_dir, **overrides)

    def aws_env(self) -> dict[str, str]:
        """The environment of a shell that only exported the two AWS_* file variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_CONFIG_FILE"] = str(config_path(self.data_dir))
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials_path(self.data_dir))
        env["HOME"] = str(self.data_dir)  # no ~/.aws of the machine's user
        return env

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real AWS CLI (awscli from PyPI), configured only by the data dir's files."""
        result = subprocess.run([AWS, *args], capture_output=True, text=True,
                                env=self.aws_env(), timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def aws_json(self, *args: str) -> Any:
        return json.loads(self.aws(*args, "--output", "json").stdout)

    def set_status(self, name: str, status: str) -> None:
        """What the profile controller does: write status.status (status subresource)."""
        patch = json.dumps({"status": {"status": status}})
        self.api.kubectl("patch", "fargateprofile", name, "--subresource=status",
                         "--type=merge", "-p", patch)

    def finish_deletion(self, name: str) -> None:
        """What the controller does last on delete: drop the cleanup finalizer."""
        self.api.kubectl("patch", "fargateprofile", name, "--type=merge",
                         "-p", '{"metadata":{"finalizers":null}}')

    def reset(self) -> None:
        """No profiles left, finalizers and all, for the next test."""
        names = self.api.kubectl("get", "fargateprofiles", "-o", "name").stdout.split()
        for ref in names:
            self.api.kubectl("patch", ref, "--type=merge",
                             "-p", '{"metadata":{"finalizers":null}}', check=False)
            self.api.kubectl("delete", ref, "--wait=false", "--ignore-not-found", check=False)
        self.api.kubectl("wait", "--for=delete", "fargateprofiles", "--all", "--timeout=30s",
                         check=False)

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.api.stop()


def install_fargate_objects(api: RunningAPIServer, the_vpc: vpc.VPC) -> None:
    """The CRDs (Established) and the VPC's Subnet objects, plus a subnet of another VPC."""
    docs = crds.all_crds()
    api.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    api.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                *[f"crd/{d['metadata']['name']}" for d in docs])
    subnets = [vpc.subnet_object(the_vpc, s) for s in the_vpc.subnets]
    foreign = vpc.VPC(FOREIGN_VPC, "10.1.0.0/16", (
        vpc.SubnetSpec(FOREIGN_SUBNET, "10.1.0.0/19", REGION + "a", True),))
    subnets.append(vpc.subnet_object(foreign, foreign.subnets[0]))
    api.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(subnets))


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    """Connection handlers aiohttp may still hold once the component has stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def start_eks_env(data_dir: Path) -> EksEnv:
    api = start_apiserver(data_dir)
    the_vpc = vpc.default_vpc(CLUSTER, REGION)
    install_fargate_objects(api, the_vpc)
    material = pki.PKI.at(data_dir)
    cert_pem, key_pem = pki.issue_certificate(material, "eks-api", ["127.0.0.1", "localhost"])
    cert, key = data_dir / "eks.crt", data_dir / "eks.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    settings = FargateSettings(kubeconfig=api.kubeconfig, vpc=the_vpc, cluster=CLUSTER,
                               region=REGION, state_dir=data_dir, eks_port=0,
                               eks_cert=cert, eks_key=key)
    env = EksEnv(api, data_dir, settings, EksApiComponent(settings))
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        env._loop = loop
        env._task = loop.create_task(env.component.run(ready.set))
        try:
            loop.run_until_complete(env._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            env.errors.append(exc)
            ready.set()
        finally:
            loop.run_until_complete(_cancel_all(asyncio.all_tasks(loop)))
            loop.close()

    env._thread = threading.Thread(target=run, name="eks-api", daemon=True)
    env._thread.start()
    if not ready.wait(30) or env.errors:
        env.stop()
        raise RuntimeError(f"the EKS API did not start: {env.errors}")
    env.url = env.component.url or ""
    return env


@pytest.fixture(scope="module", name="eks")
def eks_fixture(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One API server + EKS API per test module (import this and `fresh_fixture`
    into a test module to use them there)."""
    env = start_eks_env(tmp_path_factory.mktemp("eks"))
    yield env
    env.stop()


@pytest.fixture(name="fresh")
def fresh_fixture(eks: EksEnv) -> EksEnv:
    """The module's EKS API with no profiles left by earlier tests."""
    eks.reset()
    return eks


def test_the_environment_serves_https_and_writes_the_aws_files(eks: EksEnv) -> None:
    assert eks.url.startswith("https://127.0.0.1:")
    assert config_path(eks.data_dir).stat().st_mode & 0o777 == 0o600
    assert credentials_path(eks.data_dir).stat().st_mode & 0o777 == 0o600
    assert eks.boto().list_clusters()["clusters"] == [CLUSTER]
