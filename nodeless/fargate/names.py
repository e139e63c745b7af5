"""The names nodeless shares with EKS (labels, annotations, taints, states), so that
manifests and scripts written for EKS Fargate work unchanged, and its own API group."""

from __future__ import annotations

from enum import StrEnum

GROUP = "fargate.nodeless.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

SCHEDULER_NAME = "fargate-scheduler"
PROFILE_ANNOTATION = "eks.amazonaws.com/fargate-profile"
"""On an admitted pod: the profile it runs through. As a pod label: the profile chosen."""
PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"
COMPUTE_TYPE_LABEL = "eks.amazonaws.com/compute-type"
PROFILE_FINALIZER = "fargate.nodeless.io/profile-cleanup"
"""Held by every profile until the pods scheduled through it are gone."""

MAX_PROFILES = 10
MAX_SELECTORS = 5
MAX_LABELS_PER_SELECTOR = 5

WEBHOOK_NAME_MUTATE = "mutate.pods.fargate.nodeless.io"
WEBHOOK_NAME_VALIDATE = "validate.pods.fargate.nodeless.io"
WEBHOOK_NAME_PROFILES = "validate.fargateprofiles.fargate.nodeless.io"


class ProfileStatus(StrEnum):
    """EKS's FargateProfileStatus values."""

    CREATING = "CREATING"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    CREATE_FAILED = "CREATE_FAILED"
    DELETE_FAILED = "DELETE_FAILED"

# ---- scheduling (fargate-scheduler, host agents) ----------------------------------

CAPACITY_ANNOTATION = "CapacityProvisioned"
"""On a scheduled pod: `0.25vCPU 0.5GB`, formatted as EKS writes it."""
NODE_ANNOTATION = "fargate.nodeless.io/node"
"""On a pod being scheduled: the micro-node chosen for it (makes scheduling idempotent)."""
HOST_LABEL = "fargate.nodeless.io/host"
"""On a micro-node: the host that runs it."""
POD_UID_LABEL = "fargate.nodeless.io/pod-uid"
SUBNET_LABEL = "fargate.nodeless.io/subnet"
"""On a micro-node: the subnet its address (the pod's IP) was allocated from."""
ZONE_LABEL = "topology.kubernetes.io/zone"
FARGATE_TAINT = {"key": COMPUTE_TYPE_LABEL, "value": "fargate", "effect": "NoSchedule"}
HOST_LEASE_NAMESPACE = "kube-node-lease"
"""Hosts renew a Lease named after them here; a host whose lease lapsed gets no pods."""
HOST_LEASE_SECONDS = 40
SCHEDULER_LEASE = ("kube-system", "fargate-scheduler")
EPHEMERAL_STORAGE = "20Gi"
"""Every Fargate pod's ephemeral storage, as EKS gives by default."""
