"""One whole `nodeless up --detach` (control plane, registry, host agent, containerd) for
the end-to-end tests, driven as a user drives it: kubectl, boto3 and the AWS CLI with the
files nodeless writes, images from the registry endpoints.json names.

Its VPC is a random free 10.X.0.0/16 (X in 150-199), written to DATA_DIR/vpc.yaml before
the first start, so the pod bridges and routes of this instance never collide with a
user's `nodeless up` (10.0.0.0/16) or with the other test fixtures' subnets."""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nodeless.agent.network.podnetwork import PodNetwork
from nodeless.agent.wiring import instance_id
from nodeless.fargate.vpc import default_vpc, to_dict
from tests.cli.test_up_down import free_port, nodeless
from tests.fargate.test_up_fargate import Cluster

T = TypeVar("T")
CLUSTER, REGION = "nodeless", "us-east-1"


def routed_octets() -> set[int]:
    """Second octets of the 10.X.0.0/16 networks this host already routes or addresses."""
    seen = set()
    for argv in (["ip", "-o", "route", "show"], ["ip", "-o", "-4", "addr", "show"]):
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for word in out.split():
            if word.startswith("10."):
                seen.add(int(word.split(".")[1]))
    return seen


def write_test_vpc(data_dir: Path) -> dict[str, Any]:
    """DATA_DIR/vpc.yaml: nodeless/fargate/vpc.py's default layout (two private /19s, one
    public) moved into a 10.X.0.0/16 no route of this host uses. Returns what was written."""
    free = sorted(set(range(150, 200)) - routed_octets())
    assert free, "every 10.X.0.0/16 with X in 150-199 is routed on this host"
    octet = random.choice(free)
    vpc = to_dict(default_vpc(CLUSTER, REGION))
    vpc["cidr"] = f"10.{octet}.0.0/16"
    for subnet in vpc["subnets"]:
        subnet["cidr"] = subnet["cidr"].replace("10.0.", f"10.{octet}.", 1)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / "vpc.yaml").write_text(yaml.safe_dump(vpc, sort_keys=False))
    return vpc


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60,
             every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(every)


class UpCluster(Cluster):
    """A running `nodeless up` with its registry and host agent."""

    def __init__(self, data_dir: Path, port: int, eks_port: int, vpc: dict[str, Any]) -> None:
        super().__init__(data_dir, port, eks_port)
        self.vpc = vpc
        self.endpoints: dict[str, Any] = {}

    @property
    def registry(self) -> str:
        """HOST:PORT of the local registry, as endpoints.json names it."""
        return str(self.endpoints["registry"])

    def image(self, name: str) -> str:
        return f"{self.registry}/{name}"

    def private_subnets(self) -> list[ipaddress.IPv4Network]:
        return [ipaddress.IPv4Network(s["cidr"]) for s in self.vpc["subnets"] if s["private"]]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        result = self.kubectl("get", kind, name, *ns, "-o", "json", check=False)
        if result.returncode != 0:
            assert "NotFound" in result.stderr, result.stderr
            return None
        return json.loads(result.stdout)

    def items(self, kind: str, *args: str) -> list[dict[str, Any]]:
        return json.loads(self.kubectl("get", kind, *args, "-o", "json").stdout)["items"]

    def network(self) -> PodNetwork:
        """The agent's pod network, for its bridge prefix and nftables table names."""
        state = self.data_dir / "agent"
        return PodNetwork(state / "network", instance=instance_id(state))


def start(data_dir: Path, *extra: str) -> UpCluster:
    vpc = write_test_vpc(data_dir)
    up = UpCluster(data_dir, free_port(), free_port(), vpc)
    started = nodeless("up", "--detach", "--data-dir", str(data_dir), "--port", str(up.port),
                       "--eks-port", str(up.eks_port), "--registry-port", "0",
                       "--timeout", "120", *extra, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    up.endpoints = json.loads((data_dir / "endpoints.json").read_text())
    return up


def leftovers(up: UpCluster) -> list[str]:
    """What a stopped instance must not leave behind: its bridges, its nftables table,
    containerd shims of its state dir."""
    net = up.network()
    found = []
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [f"bridge {line.split()[0]}" for line in links.splitlines()
              if line.startswith(net.bridge_prefix)]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nftables {line}" for line in tables.splitlines()
              if line.split()[-1:] == [net.firewall.table]]
    shims = subprocess.run(["pgrep", "-af", "containerd-shim"], capture_output=True,
                           text=True).stdout
    found += [f"shim {line}" for line in shims.splitlines() if str(up.data_dir) in line]
    return found


def stop(up: UpCluster) -> None:
    stopped = nodeless("down", "--data-dir", str(up.data_dir), "--timeout", "60", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    deadline = time.monotonic() + 10
    while leftovers(up) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(up) == [], "nodeless down left these behind"
