"""The pure steps of the scheduling pipeline, alone (no API server)."""

from __future__ import annotations

from typing import Any

import pytest

from nodeless.fargate.ipam import SubnetInfo
from nodeless.fargate.names import CAPACITY_ANNOTATION, FARGATE_TAINT, PROFILE_ANNOTATION
from nodeless.fargate.scheduler import steps
from nodeless.fargate.scheduler.framework import Retry, SchedulingFailure
from nodeless.fargate.scheduler.pending import recreatable_profile

SUBNETS = {
    "subnet-a": {"spec": {"cidrBlock": "10.0.0.0/19", "availabilityZone": "us-east-1a",
                          "private": True}},
    "subnet-b": {"spec": {"cidrBlock": "10.0.32.0/19", "availabilityZone": "us-east-1b",
                          "private": True}},
    "subnet-pub": {"spec": {"cidrBlock": "10.0.96.0/19", "availabilityZone": "us-east-1a",
                            "private": False}},
}


def _pod(cpu: str = "250m", memory: str = "256Mi", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                         "annotations": {PROFILE_ANNOTATION: "fp"}, **meta},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {
                "requests": {"cpu": cpu, "memory": memory}}}]}}


def _profile(state: str = "ACTIVE", subnets: list[str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "fp"}, "spec": {"subnets": subnets or []},
            "status": {"status": state}}


def test_size_too_large_is_unsupported_until_the_pod_changes() -> None:
    with pytest.raises(SchedulingFailure) as failure:
        steps.size(_pod(cpu="64"))
    assert failure.value.message.startswith("Pod not supported on Fargate: ")
    assert failure.value.retry is Retry.WHEN_POD_CHANGES
    assert steps.size(_pod()).annotation() == "0.25vCPU 0.5GB"


@pytest.mark.parametrize(("profile", "reason"), [
    (None, "Fargate profile fp does not exist"),
    (_profile("CREATING"), "Fargate profile fp is CREATING, not ACTIVE"),
    (_profile(subnets=["subnet-x"]), "subnet subnet-x of Fargate profile fp does not exist"),
    (_profile(subnets=["subnet-pub"]), "subnet subnet-pub of Fargate profile fp is public"),
])
def test_profile_problems_are_retried_with_their_reason(profile: Any, reason: str) -> None:
    with pytest.raises(SchedulingFailure) as failure:
        steps.profile_subnets("fp", profile, SUBNETS)
    assert failure.value.message.startswith(reason)
    assert failure.value.retry is Retry.BACKOFF


def test_profile_subnets_empty_means_every_private_subnet() -> None:
    found = steps.profile_subnets("fp", _profile(), SUBNETS)
    assert [s.id for s in found] == ["subnet-a", "subnet-b"]
    assert steps.zones(found) == ["us-east-1a", "us-east-1b"]


def test_pod_without_profile_annotation() -> None:
    with pytest.raises(SchedulingFailure, match="was not admitted through a Fargate profile"):
        steps.profile_name(_pod(annotations={}))


def test_micro_node_and_binding() -> None:
    size = steps.size(_pod(cpu="1", memory="8Gi"))
    assert size.annotation() == "2vCPU 9GB"
    name = steps.node_name("10.0.1.23", "eu-west-1")
    assert name == "fargate-ip-10-0-1-23.eu-west-1.compute.internal"
    subnet = SubnetInfo("subnet-0a", "10.0.1.0/24", "eu-west-1a")
    node = steps.micro_node(name, ip="10.0.1.23", subnet=subnet, region="eu-west-1",
                            host="h1", size=size, pod=_pod())
    assert node["spec"]["taints"] == [FARGATE_TAINT]
    assert node["spec"]["providerID"] == f"nodeless://h1/eu-west-1a/{name}"
    assert node["status"]["capacity"] == {"cpu": "2", "memory": "9Gi", "pods": "1",
                                          "ephemeral-storage": "20Gi"}
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == name
    assert labels["topology.kubernetes.io/zone"] == "eu-west-1a"
    assert labels["fargate.nodeless.io/subnet"] == "subnet-0a"
    assert labels["fargate.nodeless.io/pod-uid"] == "u-1"
    assert {"type": "InternalIP", "address": "10.0.1.23"} in node["status"]["addresses"]
    binding = steps.binding(_pod(), name, size)
    assert binding["target"] == {"apiVersion": "v1", "kind": "Node", "name": name}
    assert binding["metadata"]["uid"] == "u-1"
    assert binding["metadata"]["annotations"] == {CAPACITY_ANNOTATION: "2vCPU 9GB"}


def test_recreatable_profile() -> None:
    profiles = [{"metadata": {"name": "fp"}, "spec": {"selectors": [{"namespace": "ns"}]},
                 "status": {"status": "ACTIVE"}}]
    owned = {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": [
        {"kind": "ReplicaSet", "name": "rs", "controller": True}]},
        "spec": {"schedulerName": "default-scheduler"}, "status": {"phase": "Pending"}}
    assert recreatable_profile(owned, profiles) == "fp"
    bare = {**owned, "metadata": {"name": "p", "namespace": "ns"}}
    assert recreatable_profile(bare, profiles) is None
    daemon = {**owned, "metadata": {**owned["metadata"], "ownerReferences": [
        {"kind": "DaemonSet", "name": "ds", "controller": True}]}}
    assert recreatable_profile(daemon, profiles) is None
    bound = {**owned, "spec": {"nodeName": "n"}}
    assert recreatable_profile(bound, profiles) is None
    assert recreatable_profile({**owned, "metadata": {**owned["metadata"],
                                                      "namespace": "other"}}, profiles) is None
