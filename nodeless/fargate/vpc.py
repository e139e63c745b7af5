"""The VPC a cluster lives in: its CIDR and subnets, each private or public.

`nodeless up` reads it from DATA_DIR/vpc.yaml (written with the default on first start,
so it can be edited) and publishes every subnet as a `Subnet` object, where the profile
rules and the scheduler's IP allocation find them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodeless.fargate.names import API_VERSION


@dataclass(frozen=True)
class SubnetSpec:
    id: str
    cidr: str
    zone: str
    private: bool = True


@dataclass(frozen=True)
class VPC:
    id: str
    cidr: str
    subnets: tuple[SubnetSpec, ...] = field(default_factory=tuple)

    def private_subnets(self) -> list[SubnetSpec]:
        return [s for s in self.subnets if s.private]


def _id(prefix: str, *parts: str) -> str:
    """A stable AWS-looking id (`subnet-0` + 16 hex), derived from the cluster's names."""
    return f"{prefix}-0{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:16]}"


def default_vpc(cluster: str, region: str) -> VPC:
    """10.0.0.0/16 with private subnets in two zones and one public subnet, as
    `eksctl create cluster` lays a VPC out (public subnets exist so that choosing one
    for a profile can be refused)."""
    vpc_id = _id("vpc", cluster, region)
    layout = [("10.0.0.0/19", "a", True), ("10.0.32.0/19", "b", True),
              ("10.0.96.0/19", "a", False)]
    return VPC(vpc_id, "10.0.0.0/16", tuple(
        SubnetSpec(_id("subnet", cluster, region, cidr), cidr, region + zone, private)
        for cidr, zone, private in layout))


def validate_vpc(vpc: VPC) -> list[str]:
    """Problems with a VPC definition, each naming the subnet and the rule."""
    problems = []
    try:
        network = ipaddress.ip_network(vpc.cidr)
    except ValueError as exc:
        return [f"vpc {vpc.id}: cidr {vpc.cidr!r} is not a network: {exc}"]
    seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for s in vpc.subnets:
        if not s.id.startswith("subnet-"):
            problems.append(f"subnet {s.id!r}: ids start with 'subnet-'")
        try:
            net = ipaddress.ip_network(s.cidr)
        except ValueError as exc:
            problems.append(f"subnet {s.id}: cidr {s.cidr!r} is not a network: {exc}")
            continue
        if not net.subnet_of(network):  # type: ignore[arg-type]
            problems.append(f"subnet {s.id}: {s.cidr} is outside the VPC's {vpc.cidr}")
        for other_id, other in seen:
            if net.overlaps(other):
                problems.append(f"subnet {s.id}: {s.cidr} overlaps {other_id}")
        seen.append((s.id, net))
    return problems


def load_vpc(path: Path, cluster: str, region: str) -> VPC:
    """The VPC of DATA_DIR/vpc.yaml, writing the default there first if it is missing."""
    if not path.exists():
        vpc = default_vpc(cluster, region)
        path.write_text(yaml.safe_dump(to_dict(vpc), sort_keys=False))
        return vpc
    data = yaml.safe_load(path.read_text()) or {}
    vpc = VPC(str(data["id"]), str(data["cidr"]), tuple(
        SubnetSpec(str(s["id"]), str(s["cidr"]), str(s["zone"]), bool(s.get("private", True)))
        for s in data.get("subnets") or []))
    problems = validate_vpc(vpc)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return vpc


def to_dict(vpc: VPC) -> dict[str, Any]:
    return {"id": vpc.id, "cidr": vpc.cidr, "subnets": [
        {"id": s.id, "cidr": s.cidr, "zone": s.zone, "private": s.private}
        for s in vpc.subnets]}


def subnet_object(vpc: VPC, subnet: SubnetSpec) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Subnet",
            "metadata": {"name": subnet.id, "labels": {
                "fargate.nodeless.io/vpc-id": vpc.id,
                "topology.kubernetes.io/zone": subnet.zone}},
            "spec": {"vpcId": vpc.id, "cidrBlock": subnet.cidr,
                     "availabilityZone": subnet.zone, "private": subnet.private}}
