"""Settings shared by the Fargate components (profile controller, admission webhook,
EKS-compatible API). They reach the cluster only through `kubeconfig`, so the same
components run inside `nodeless up` and against a real cluster (`nodeless fargate run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nodeless.fargate.vpc import VPC


@dataclass
class FargateSettings:
    kubeconfig: Path | None
    """Credentials of the components (a token of their own, not the admin's); None:
    $KUBECONFIG, else the pod's service account (in-cluster, as deploy/ runs them)."""
    vpc: VPC
    cluster: str = "nodeless"
    region: str = "us-east-1"
    account_id: str = "000000000000"
    """The AWS account the ARNs name."""
    state_dir: Path = field(default_factory=lambda: Path("."))
    """Where the components keep files: webhook certificates, AWS credentials."""

    webhook_host: str = "127.0.0.1"
    webhook_port: int = 0
    """0: a free port, chosen at start."""
    webhook_cert: Path | None = None
    webhook_key: Path | None = None
    webhook_ca: Path | None = None
    """CA of webhook_cert: the caBundle the registered configurations carry."""
    register_webhooks: bool = True
    """Write the Mutating/ValidatingWebhookConfigurations pointing at this webhook."""

    eks_host: str = "127.0.0.1"
    eks_port: int | None = None
    """None: no EKS-compatible API (e.g. on a real cluster, where EKS itself is the API)."""
    eks_cert: Path | None = None
    eks_key: Path | None = None

    default_profile: bool = True
    """Create `fp-default` for the namespaces default and kube-system, as eksctl does."""
    default_role_arn: str = "arn:aws:iam::000000000000:role/nodeless-pod-execution-role"

    scheduler_workers: int = 96
    """Pods the fargate-scheduler places at once. Each waits mostly on the API (three
    round trips), so a burst needs many in flight: 32 left it trailing pod creation by
    seconds on two cores, 96 keeps up."""
    scheduler_lease_seconds: float = 15.0
    """How long a lapsed scheduler leader's Lease keeps a standby replica waiting."""
    recreate_pending_pods: bool = False
    """Delete controller-owned Pending pods created before their profile was ACTIVE, so
    they come back through admission (on in `nodeless up`; opt-in elsewhere)."""

    def cluster_arn(self) -> str:
        return f"arn:aws:eks:{self.region}:{self.account_id}:cluster/{self.cluster}"

    def profile_arn(self, name: str, uid: str) -> str:
        return (f"arn:aws:eks:{self.region}:{self.account_id}:fargateprofile/"
                f"{self.cluster}/{name}/{uid}")
