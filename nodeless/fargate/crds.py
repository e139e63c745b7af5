"""The CustomResourceDefinitions of nodeless: FargateProfile and Subnet.

`nodeless up` installs them; `deploy/crds.yaml` carries the same for real clusters
(`tools/render_deploy.py` writes it from here, a test keeps the two equal).
The schemas check types and required fields; the EKS rules (limits, private subnets,
one change at a time) are the profile webhook's, so a refusal can name its rule.
"""

from __future__ import annotations

from typing import Any

from nodeless.fargate.names import GROUP, VERSION, ProfileStatus

_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _crd(kind: str, plural: str, short_names: list[str], schema: dict[str, Any],
         columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List", "shortNames": short_names,
                      "categories": ["nodeless"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }


def fargate_profile_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["podExecutionRoleArn"],
        "properties": {
            "clusterName": {**_STRING, "description": "The cluster the profile belongs to."},
            "podExecutionRoleArn": {
                **_STRING,
                "description": "IAM role the pods' node components assume "
                               "(arn:aws:iam::ACCOUNT:role/NAME)."},
            "subnets": {"type": "array", "items": _STRING,
                        "description": "Private subnet ids pods get their IP from; "
                                       "empty means every private subnet of the VPC."},
            "selectors": {
                "type": "array",
                "description": "A pod runs on Fargate when one selector matches it.",
                "items": {
                    "type": "object",
                    "required": ["namespace"],
                    "properties": {
                        "namespace": {**_STRING, "description": "Namespace; * and ? allowed."},
                        "labels": {**_STRING_MAP,
                                   "description": "All must match; * and ? in values."},
                    },
                },
            },
            "tags": _STRING_MAP,
        },
    }
    status = {
        "type": "object",
        "properties": {
            "status": {**_STRING, "enum": [s.value for s in ProfileStatus]},
            "fargateProfileArn": _STRING,
            "createdAt": {**_STRING, "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "health": {"type": "object", "properties": {"issues": {"type": "array", "items": {
                "type": "object", "properties": {
                    "code": _STRING, "message": _STRING,
                    "resourceIds": {"type": "array", "items": _STRING}}}}}},
        },
    }
    return _crd("FargateProfile", "fargateprofiles", ["fp"], {
        "type": "object",
        "description": "Which pods run on Fargate, and in which subnets (EKS FargateProfile).",
        "required": ["spec"],
        "properties": {"spec": spec, "status": status},
    }, [
        {"name": "Status", "type": "string", "jsonPath": ".status.status"},
        {"name": "Role", "type": "string", "jsonPath": ".spec.podExecutionRoleArn",
         "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])


def subnet_crd() -> dict[str, Any]:
    return _crd("Subnet", "subnets", [], {
        "type": "object",
        "description": "A subnet of the cluster's VPC; Fargate pods take IPs from private ones.",
        "required": ["spec"],
        "properties": {"spec": {
            "type": "object",
            "required": ["vpcId", "cidrBlock", "availabilityZone"],
            "properties": {
                "vpcId": _STRING,
                "cidrBlock": _STRING,
                "availabilityZone": _STRING,
                "private": {"type": "boolean", "default": True,
                            "description": "No route to an internet gateway."},
            },
        }, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }, [
        {"name": "CIDR", "type": "string", "jsonPath": ".spec.cidrBlock"},
        {"name": "Zone", "type": "string", "jsonPath": ".spec.availabilityZone"},
        {"name": "Private", "type": "boolean", "jsonPath": ".spec.private"},
        {"name": "VPC", "type": "string", "jsonPath": ".spec.vpcId"},
    ])


_QUANTITIES = {"type": "object", "additionalProperties": {
    "x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}}


def fargate_host_crd() -> dict[str, Any]:
    """A machine that runs micro-nodes, registered by its host agent.

    spec: what it offers (capacity x overcommit) and where (zones); status.allocated:
    the totals the scheduler has given out, written with compare-and-swap on
    resourceVersion, so two schedulers can never oversubscribe it (the per-micro-node
    record is its Node, which names host and size)."""
    return _crd("FargateHost", "fargatehosts", ["fh"], {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["capacity", "zones"],
                "properties": {
                    "capacity": {**_QUANTITIES, "description": "cpu, memory, pods of the host."},
                    "overcommit": {"type": "object", "properties": {
                        "cpu": {"type": "number", "default": 1.0, "minimum": 0.01},
                        "memory": {"type": "number", "default": 1.0, "minimum": 0.01}},
                        "description": "Capacity is offered times these; 1.0 is Fargate's "
                                       "guarantee."},
                    "zones": {"type": "array", "items": _STRING,
                              "description": "Availability zones whose subnets it serves."},
                    "address": {**_STRING, "description": "The host's own IP."},
                    "agentEndpoint": {**_STRING, "description": "HTTPS URL of its agent."},
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "allocated": {"type": "object", "properties": {
                        "cpu": _STRING, "memory": _STRING, "pods": {"type": "integer"}},
                        "description": "What the micro-nodes placed here hold, in all (an "
                                       "upper bound: recounted from the micro-nodes)."},
                    "recounts": {"type": "integer", "description": (
                        "How often `allocated` was recounted from the micro-nodes.")},
                    "reservations": {"type": "object", "additionalProperties": {
                        "type": "object", "properties": {
                            "cpu": _STRING, "memory": _STRING,
                            "pod": _STRING, "podUID": _STRING}},
                        "description": "Deprecated, read once: one entry per micro-node, "
                                       "replaced by `allocated` on the next write."},
                },
            },
        },
    }, [
        {"name": "Zones", "type": "string", "jsonPath": ".spec.zones"},
        {"name": "CPU", "type": "string", "jsonPath": ".spec.capacity.cpu"},
        {"name": "Memory", "type": "string", "jsonPath": ".spec.capacity.memory"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])


RETIRED_CRDS = (f"podipallocations.{GROUP}",)
"""CRDs an earlier nodeless installed and this one no longer reads: setup deletes them,
and their objects with them (a pod IP's claim is now its micro-node, see ipam.py)."""


def all_crds() -> list[dict[str, Any]]:
    return [fargate_profile_crd(), subnet_crd(), fargate_host_crd()]
