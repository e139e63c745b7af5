"""The Fargate admission webhook: which pods run on Fargate, decided as they are created.

A pod matching an ACTIVE profile gets `spec.schedulerName: fargate-scheduler` and the
profile annotation (mutating); one Fargate cannot run is refused naming each field
(validating); profiles written with kubectl get EKS's defaults and rules. Everything
reaches the cluster through the Kubernetes API, so the same webhook serves `nodeless up`
and a real cluster (`deploy/`).
"""

from nodeless.fargate.admission.cache import FargateCache, Reflector
from nodeless.fargate.admission.component import (
    WebhookComponent,
    issue_serving_certificate,
    webhook_component,
)
from nodeless.fargate.admission.registration import (
    COMPONENT_LABEL,
    CONFIGURATION_NAME,
    WEBHOOK_COMPONENT,
    WEBHOOK_NAME_MUTATE_PROFILES,
    ServiceRef,
    register_webhooks,
    webhook_configurations,
)
from nodeless.fargate.admission.server import (
    AdmissionWebhook,
    KubeVolumes,
    WebhookServer,
    server_ssl_context,
)

__all__ = [
    "COMPONENT_LABEL",
    "CONFIGURATION_NAME",
    "WEBHOOK_COMPONENT",
    "WEBHOOK_NAME_MUTATE_PROFILES",
    "AdmissionWebhook",
    "FargateCache",
    "KubeVolumes",
    "Reflector",
    "ServiceRef",
    "WebhookComponent",
    "webhook_component",
    "WebhookServer",
    "issue_serving_certificate",
    "register_webhooks",
    "server_ssl_context",
    "webhook_configurations",
]
