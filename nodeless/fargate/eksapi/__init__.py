"""EKS-compatible API: the Fargate profile operations of Amazon EKS, for boto3 and the
AWS CLI, as a facade over FargateProfile objects (see server.py, service.py)."""

from nodeless.fargate.eksapi.credentials import eks_client, ensure_aws_files, load_aws_files
from nodeless.fargate.eksapi.server import EksApiComponent

__all__ = ["EksApiComponent", "eks_client", "ensure_aws_files", "load_aws_files"]
