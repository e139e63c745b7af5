"""The pod -> IP records the agent writes and our CNI plugin reads (records.py).

containerd runs one CNI network list for every sandbox and tells the plugin only the pod's
namespace and name (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME). The IP, though, was chosen
by the fargate-scheduler. So the agent writes it down before RunPodSandbox, one small JSON
file per pod, and the plugin looks it up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from nodeless.agent.network import records

MAX_IFNAME = 15
"""Linux interface names are at most 15 characters (IFNAMSIZ - 1)."""


@dataclass(frozen=True)
class Assignment:
    """Where one pod goes: its address, its subnet, the bridge of that subnet."""

    namespace: str
    name: str
    ip: str
    subnet: str
    """CIDR, e.g. "10.0.0.0/19"."""
    bridge: str
    gateway: str
    """The subnet's .1, the bridge's own address (AWS reserves .1-.3, so never a pod's)."""
    uid: str = ""
    """The pod's UID if known: a record left by an earlier pod of the same name is then
    refused instead of handing out that pod's address."""

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def record_path(pods_dir: Path, namespace: str, name: str) -> Path:
    return Path(records.record_path(pods_dir, namespace, name))


def write(pods_dir: Path, assignment: Assignment) -> None:
    """Atomically (rename), so the plugin never reads half a record."""
    pods_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(pods_dir, assignment.namespace, assignment.name)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(assignment)))
    os.replace(tmp, path)


def read(pods_dir: Path, namespace: str, name: str) -> Assignment | None:
    data = records.read_record(pods_dir, namespace, name)
    return Assignment(**data) if data is not None else None


def short_hash(text: str, length: int = 4) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def bridge_name(bridge_prefix: str, subnet: str) -> str:
    """The bridge of `subnet`: the prefix (shared by all our bridges, which the firewall
    matches on) and a hash of the subnet."""
    name = f"{bridge_prefix}{short_hash(str(ipaddress.ip_network(subnet)))}"
    if len(name) > MAX_IFNAME:
        raise ValueError(f"bridge name {name!r} is longer than {MAX_IFNAME} characters; "
                         f"use a bridge prefix of at most {MAX_IFNAME - 4}")
    return name
