"""The Mutating- and ValidatingWebhookConfigurations that put the webhook in the API
server's write path, and their registration.

Failure policy: Fail, everywhere. If the webhook is down, a pod create fails with
"failed calling webhook ...": loud, and retried by every controller that creates pods.
Ignore would let a pod that belongs on Fargate through unmutated: on a real cluster it
lands silently on an ordinary node (outside its isolation boundary, without its
subnet), on `nodeless up` it waits forever for a scheduler nobody runs. Neither is
visible to the user, so neither is acceptable. The cost of Fail is that the webhook
must be able to come back while it is down: its own pods (label
`fargate.nodeless.io/component: webhook`) are let through by an objectSelector, so a
Deployment of it can always be created. Profiles use Fail too: a profile that skipped
the rules (limits, private subnets) would be a broken promise, and profiles are rare.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.resources.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)

from nodeless.fargate.admission.server import (
    MUTATE_PODS,
    MUTATE_PROFILES,
    VALIDATE_PODS,
    VALIDATE_PROFILES,
)
from nodeless.fargate.names import (
    GROUP,
    VERSION,
    WEBHOOK_NAME_MUTATE,
    WEBHOOK_NAME_PROFILES,
    WEBHOOK_NAME_VALIDATE,
)

CONFIGURATION_NAME = "nodeless-fargate"
"""The name of both configurations (one of each kind)."""
WEBHOOK_NAME_MUTATE_PROFILES = "mutate.fargateprofiles.fargate.nodeless.io"
COMPONENT_LABEL = "fargate.nodeless.io/component"
WEBHOOK_COMPONENT = "webhook"
"""Pods labelled COMPONENT_LABEL=webhook skip the pod webhooks (see the module doc)."""
TIMEOUT_SECONDS = 5
"""A review takes milliseconds; 5 s leaves the EBS lookups (2 s) room, and keeps a hung
webhook from holding pod creates for kube's default 10 s."""


@dataclass(frozen=True)
class ServiceRef:
    """The webhook as an in-cluster Service (for deploy/ on a real cluster)."""

    namespace: str
    name: str
    port: int = 443


def _client_config(target: str | ServiceRef, path: str, ca_bundle: str) -> dict[str, Any]:
    config: dict[str, Any]
    if isinstance(target, ServiceRef):
        config = {"service": {"namespace": target.namespace, "name": target.name,
                              "port": target.port, "path": path}}
    else:
        config = {"url": target.rstrip("/") + path}
    if ca_bundle:
        config["caBundle"] = ca_bundle
    return config


def _hook(name: str, target: str | ServiceRef, path: str, ca_bundle: str,
          rule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": _client_config(target, path, ca_bundle),
        "rules": [rule],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        **extra,
    }


def webhook_configurations(target: str | ServiceRef, ca_pem: bytes | None = None
                           ) -> list[dict[str, Any]]:
    """[MutatingWebhookConfiguration, ValidatingWebhookConfiguration] for the webhook at
    `target` (a base URL `https://host:port`, or a ServiceRef), trusting `ca_pem` (the
    CA of its serving certificate; None: the API server's system CAs)."""
    ca_bundle = base64.b64encode(ca_pem).decode() if ca_pem else ""
    pods = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods"], "scope": "Namespaced"}
    profiles = {"operations": ["CREATE", "UPDATE"], "apiGroups": [GROUP],
                "apiVersions": [VERSION], "resources": ["fargateprofiles"], "scope": "Cluster"}
    not_the_webhook = {"matchExpressions": [{"key": COMPONENT_LABEL, "operator": "NotIn",
                                             "values": [WEBHOOK_COMPONENT]}]}
    labels = {"app.kubernetes.io/part-of": "nodeless", COMPONENT_LABEL: WEBHOOK_COMPONENT}
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": labels},
        "webhooks": [
            # IfNeeded: a later webhook may add the label that chooses a profile.
            _hook(WEBHOOK_NAME_MUTATE, target, MUTATE_PODS, ca_bundle, pods,
                  objectSelector=not_the_webhook, reinvocationPolicy="IfNeeded"),
            _hook(WEBHOOK_NAME_MUTATE_PROFILES, target, MUTATE_PROFILES, ca_bundle, profiles,
                  reinvocationPolicy="Never"),
        ],
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": labels},
        "webhooks": [
            _hook(WEBHOOK_NAME_VALIDATE, target, VALIDATE_PODS, ca_bundle, pods,
                  objectSelector=not_the_webhook),
            _hook(WEBHOOK_NAME_PROFILES, target, VALIDATE_PROFILES, ca_bundle, profiles),
        ],
    }
    return [mutating, validating]


_KINDS: dict[str, Any] = {
    "MutatingWebhookConfiguration": MutatingWebhookConfiguration,
    "ValidatingWebhookConfiguration": ValidatingWebhookConfiguration,
}


async def register_webhooks(client: AsyncClient, configurations: list[dict[str, Any]]
                            ) -> None:
    """Create each configuration, or replace the one there (a restarted webhook has a
    new port or CA); retried on write conflicts."""
    for config in configurations:
        resource = _KINDS[config["kind"]]
        name = config["metadata"]["name"]
        for attempt in range(5):
            try:
                existing = await client.get(resource, name)
            except ApiError as e:
                if e.status.code != 404:
                    raise
                existing = None
            try:
                if existing is None:
                    await client.create(resource.from_dict(config))
                else:
                    obj = resource.from_dict(config)
                    obj.metadata.resourceVersion = existing.metadata.resourceVersion
                    await client.replace(obj)
                break
            except ApiError as e:
                if e.status.code != 409 or attempt == 4:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
