"""The rules a Fargate profile must keep, as EKS enforces them.

One implementation for every door a profile comes in by: the EKS-compatible API turns a
`RuleError` into the AWS exception it names; the profile admission webhook turns it
into a denial naming the field. Every message says which rule was broken.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nodeless.fargate.names import (
    MAX_LABELS_PER_SELECTOR,
    MAX_PROFILES,
    MAX_SELECTORS,
    ProfileStatus,
)

# arn:PARTITION:iam::ACCOUNT:role/PATH/NAME (IAM's role name characters).
_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# EKS's fargateProfileName: letters, digits, - and _ ; starts with a letter or digit.
_PROFILE_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

INVALID_PARAMETER = "InvalidParameterException"
LIMIT_EXCEEDED = "ResourceLimitExceededException"
IN_USE = "ResourceInUseException"
NOT_FOUND = "ResourceNotFoundException"
INVALID_REQUEST = "InvalidRequestException"


@dataclass
class RuleError(Exception):
    """A broken rule: `code` is the AWS exception name, `field` the spec field."""

    code: str
    message: str
    field: str = ""

    def __str__(self) -> str:
        return self.message


def _statuses(profiles: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(p["metadata"]["name"], (p.get("status") or {}).get("status") or
             ProfileStatus.CREATING) for p in profiles]


def check_name(name: str) -> None:
    if not _PROFILE_NAME.match(name) or not _K8S_NAME.match(name.lower()) or "_" in name:
        raise RuleError(INVALID_PARAMETER, (
            f"fargateProfileName {name!r} is invalid: it must start with a letter or digit, "
            "contain only lowercase letters, digits and '-' (it is also the name of a "
            "Kubernetes object) and be at most 100 characters"), "metadata.name")


def check_spec(name: str, spec: Mapping[str, Any], *, cluster: str,
               subnets: Mapping[str, Mapping[str, Any]], vpc_id: str) -> dict[str, Any]:
    """Validate a new profile's spec; returns it normalised (defaults filled in).

    `subnets` maps subnet id -> Subnet object of the cluster's VPC. A profile without
    subnets gets every private subnet of the VPC, as EKS does.
    """
    check_name(name)
    normalized = dict(spec)
    if spec.get("clusterName") not in (None, "", cluster):
        raise RuleError(INVALID_PARAMETER, (
            f"clusterName {spec.get('clusterName')!r} does not name this cluster "
            f"({cluster!r})"), "spec.clusterName")
    normalized["clusterName"] = cluster
    role = spec.get("podExecutionRoleArn")
    if not role:
        raise RuleError(INVALID_PARAMETER, "podExecutionRoleArn is required: the IAM role "
                        "the pods' node components assume", "spec.podExecutionRoleArn")
    if not isinstance(role, str) or not _ROLE_ARN.match(role):
        raise RuleError(INVALID_PARAMETER, (
            f"podExecutionRoleArn {role!r} is not an IAM role ARN "
            "(arn:aws:iam::<12-digit account>:role/<name>)"), "spec.podExecutionRoleArn")
    selectors = list(spec.get("selectors") or [])
    if not selectors:
        raise RuleError(INVALID_PARAMETER, "a Fargate profile needs at least one selector "
                        "(a namespace and optional labels)", "spec.selectors")
    if len(selectors) > MAX_SELECTORS:
        raise RuleError(INVALID_PARAMETER, (
            f"a Fargate profile may have at most {MAX_SELECTORS} selectors; "
            f"this one has {len(selectors)}"), "spec.selectors")
    for i, selector in enumerate(selectors):
        if not isinstance(selector, Mapping) or not selector.get("namespace"):
            raise RuleError(INVALID_PARAMETER, f"selectors[{i}] needs a namespace",
                            f"spec.selectors[{i}].namespace")
        labels = selector.get("labels") or {}
        if len(labels) > MAX_LABELS_PER_SELECTOR:
            raise RuleError(INVALID_PARAMETER, (
                f"selectors[{i}] has {len(labels)} labels; a selector may have at most "
                f"{MAX_LABELS_PER_SELECTOR}"), f"spec.selectors[{i}].labels")
    chosen = list(spec.get("subnets") or [])
    if not chosen:
        chosen = sorted(sid for sid, s in subnets.items()
                        if (s.get("spec") or {}).get("private", True)
                        and (s.get("spec") or {}).get("vpcId") == vpc_id)
        if not chosen:
            raise RuleError(INVALID_PARAMETER, "no subnets were given and the cluster's VPC "
                            f"{vpc_id} has no private subnet", "spec.subnets")
    for sid in chosen:
        subnet = subnets.get(sid)
        if subnet is None or (subnet.get("spec") or {}).get("vpcId") != vpc_id:
            raise RuleError(INVALID_PARAMETER, (
                f"subnet {sid} is not a subnet of the cluster's VPC {vpc_id}"), "spec.subnets")
        if not (subnet.get("spec") or {}).get("private", True):
            raise RuleError(INVALID_PARAMETER, (
                f"subnet {sid} is a public subnet: Fargate profiles accept only private "
                "subnets (no route to an internet gateway)"), "spec.subnets")
    normalized["subnets"] = chosen
    normalized["selectors"] = selectors
    return normalized


def check_can_create(name: str, existing: Iterable[Mapping[str, Any]], cluster: str) -> None:
    """The cluster-wide rules: unique name, at most 10 profiles, one change at a time."""
    statuses = _statuses(existing)
    if any(n == name for n, _ in statuses):
        raise RuleError(IN_USE, f"Fargate Profile already exists with name: {name}",
                        "metadata.name")
    busy = [(n, s) for n, s in statuses if s in (ProfileStatus.CREATING, ProfileStatus.DELETING)]
    if busy:
        other, state = busy[0]
        raise RuleError(IN_USE, (
            f"Cannot create Fargate Profile {name} because cluster {cluster} currently has "
            f"Fargate profile {other} in status {state}: EKS creates or deletes one profile "
            "at a time"))
    if len(statuses) >= MAX_PROFILES:
        raise RuleError(LIMIT_EXCEEDED, (
            f"cluster {cluster} already has {len(statuses)} Fargate profiles, the most a "
            f"cluster may have ({MAX_PROFILES})"))


def check_can_delete(name: str, existing: Iterable[Mapping[str, Any]], cluster: str) -> None:
    statuses = _statuses(existing)
    if not any(n == name for n, _ in statuses):
        raise RuleError(NOT_FOUND, f"No Fargate Profile found with name: {name}.")
    busy = [(n, s) for n, s in statuses if n != name and s in (
        ProfileStatus.CREATING, ProfileStatus.DELETING)]
    if busy:
        other, state = busy[0]
        raise RuleError(IN_USE, (
            f"Cannot delete Fargate Profile {name} because cluster {cluster} currently has "
            f"Fargate profile {other} in status {state}: EKS creates or deletes one profile "
            "at a time"))


def check_update(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Profiles are immutable: replace one by creating a new profile and deleting the old."""
    if (old.get("spec") or {}) != (new.get("spec") or {}):
        raise RuleError(INVALID_REQUEST, (
            "Fargate profiles are immutable: create a new profile and delete this one "
            "instead of changing its spec"), "spec")
