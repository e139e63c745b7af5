"""The pure steps of the scheduling pipeline: each takes plain objects, returns a value or
raises `SchedulingFailure` with the reason the user reads; none talks to the API, so each
is tested alone (tests/fargate/test_scheduler_steps.py). The controller strings them
together with the steps that do talk to the API (host, IP, node, bind).

    size -> profile subnets -> [host, IP: controller] -> node name -> micro-node object
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodeless.fargate import sizing
from nodeless.fargate.ipam import SubnetInfo
from nodeless.fargate.names import (
    CAPACITY_ANNOTATION,
    COMPUTE_TYPE_LABEL,
    EPHEMERAL_STORAGE,
    FARGATE_TAINT,
    HOST_LABEL,
    POD_UID_LABEL,
    PROFILE_ANNOTATION,
    SUBNET_LABEL,
    ZONE_LABEL,
    ProfileStatus,
)
from nodeless.fargate.scheduler.framework import Retry, SchedulingFailure, unsupported

REGION_LABEL = "topology.kubernetes.io/region"
HOSTNAME_LABEL = "kubernetes.io/hostname"
POD_ANNOTATION = "fargate.nodeless.io/pod"
"""On a micro-node: `namespace/name` of its pod (the uid is the label POD_UID_LABEL)."""
PROVIDER_SCHEME = "nodeless"


def size(pod: Mapping[str, Any]) -> sizing.FargateSize:
    """Step 1: the Fargate combination; a pod no combination holds never fits anywhere."""
    try:
        return sizing.size_pod(pod.get("spec") or {})
    except sizing.Unschedulable as exc:
        raise unsupported(exc.reason) from None


def profile_name(pod: Mapping[str, Any]) -> str:
    """The profile admission chose (its annotation); without one the pod came in by a door
    without our webhook, and no profile says which subnets it may use."""
    name = ((pod.get("metadata") or {}).get("annotations") or {}).get(PROFILE_ANNOTATION)
    if not name:
        raise SchedulingFailure(
            f"the pod has no {PROFILE_ANNOTATION} annotation: it was not admitted through a "
            "Fargate profile (is the fargate admission webhook registered?)", Retry.BACKOFF)
    return str(name)


def profile_subnets(name: str, profile: Mapping[str, Any] | None,
                    subnets: Mapping[str, Mapping[str, Any]]) -> list[SubnetInfo]:
    """Step 2: the private subnets the pod may take its IP from.

    Retried with backoff on failure: a profile still CREATING becomes ACTIVE, a subnet
    object appears when setup publishes the VPC."""
    if profile is None:
        raise SchedulingFailure(f"Fargate profile {name} does not exist")
    state = (profile.get("status") or {}).get("status") or "unknown"
    if (profile.get("metadata") or {}).get("deletionTimestamp"):
        raise SchedulingFailure(f"Fargate profile {name} is being deleted")
    if state != ProfileStatus.ACTIVE:
        raise SchedulingFailure(f"Fargate profile {name} is {state}, not ACTIVE")
    wanted = list((profile.get("spec") or {}).get("subnets") or [])
    if not wanted:  # empty: every private subnet of the VPC
        wanted = sorted(k for k, s in subnets.items()
                        if (s.get("spec") or {}).get("private", True))
    found = []
    for sid in wanted:
        subnet = subnets.get(sid)
        if subnet is None:
            raise SchedulingFailure(f"subnet {sid} of Fargate profile {name} does not exist")
        spec = subnet.get("spec") or {}
        if not spec.get("private", True):
            raise SchedulingFailure(f"subnet {sid} of Fargate profile {name} is public: "
                                    "Fargate pods get addresses only in private subnets")
        found.append(SubnetInfo(sid, str(spec["cidrBlock"]), str(spec["availabilityZone"])))
    if not found:
        raise SchedulingFailure(f"Fargate profile {name} has no private subnets")
    return found


def zones(subnets: list[SubnetInfo]) -> list[str]:
    """The zones a pod may land in: those of its subnets, in a stable order."""
    return sorted({s.zone for s in subnets})


def node_name(ip: str, region: str) -> str:
    """EKS's micro-node name: `fargate-ip-10-0-1-23.us-east-1.compute.internal`."""
    return f"fargate-ip-{ip.replace('.', '-').replace(':', '-')}.{region}.compute.internal"


def provider_id(host: str, zone: str, node: str) -> str:
    """Names the host that runs the micro-node (its agent finds its nodes by it)."""
    return f"{PROVIDER_SCHEME}://{host}/{zone}/{node}"


def micro_node(name: str, *, ip: str, subnet: SubnetInfo, region: str, host: str,
               size: sizing.FargateSize, pod: Mapping[str, Any]) -> dict[str, Any]:
    """The Node object of one pod, labelled and tainted as EKS does so that manifests
    selecting or tolerating Fargate nodes work unchanged. Creating it claims the address
    (ipam.py): it is the one record of the micro-node (pod uid, host, subnet, size)."""
    zone = subnet.zone
    meta = pod["metadata"]
    capacity = {"cpu": size.cpu_quantity(), "memory": size.memory_quantity(), "pods": "1",
                "ephemeral-storage": EPHEMERAL_STORAGE}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                COMPUTE_TYPE_LABEL: "fargate",
                ZONE_LABEL: zone,
                REGION_LABEL: region,
                HOSTNAME_LABEL: name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                HOST_LABEL: host,
                POD_UID_LABEL: meta["uid"],
                SUBNET_LABEL: subnet.id,
            },
            "annotations": {POD_ANNOTATION: f"{meta['namespace']}/{meta['name']}",
                            CAPACITY_ANNOTATION: size.annotation()},
        },
        "spec": {"taints": [dict(FARGATE_TAINT)],
                 "providerID": provider_id(host, zone, name)},
        "status": {
            "capacity": dict(capacity),
            "allocatable": dict(capacity),
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": name}],
        },
    }


def binding(pod: Mapping[str, Any], node: str, size: sizing.FargateSize) -> dict[str, Any]:
    """Step 6: the pods/binding body. The API server copies a Binding's annotations onto
    the pod in the same write, so `CapacityProvisioned` lands atomically with the bind;
    the uid makes a binding meant for a deleted-and-recreated namesake fail."""
    meta = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "uid": meta["uid"],
                         "annotations": {CAPACITY_ANNOTATION: size.annotation()}},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
