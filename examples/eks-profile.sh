#!/bin/sh
# A Fargate profile made as on EKS, with the AWS CLI, against nodeless' EKS-compatible
# API: the CLI reads nothing but the files `nodeless up` writes (endpoint, CA bundle,
# region, a key pair), so the same commands work against EKS with your own files.
#   uv run examples/eks-profile.sh [NAME [NAMESPACE]]     (uv run puts `aws` on PATH)
# NODELESS_DATA_DIR selects the instance (default ~/.local/share/nodeless).
set -eu
data_dir=${NODELESS_DATA_DIR:-$HOME/.local/share/nodeless}
name=${1:-demo-cli}
namespace=${2:-demo-cli}
export AWS_CONFIG_FILE="$data_dir/aws/config"
export AWS_SHARED_CREDENTIALS_FILE="$data_dir/aws/credentials"
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_REGION AWS_REGION AWS_ENDPOINT_URL
# The cluster's name is in endpoints.json ("cluster"); nodeless up's default is nodeless.
cluster=$(sed -n 's/.*"cluster": *"\([^"]*\)".*/\1/p' "$data_dir/endpoints.json")

aws eks create-fargate-profile --cluster-name "$cluster" --fargate-profile-name "$name" \
    --pod-execution-role-arn arn:aws:iam::000000000000:role/pods \
    --selectors "namespace=$namespace" \
    --query 'fargateProfile.[fargateProfileName,status]' --output text
aws eks wait fargate-profile-active --cluster-name "$cluster" --fargate-profile-name "$name"
aws eks describe-fargate-profile --cluster-name "$cluster" --fargate-profile-name "$name" \
    --query 'fargateProfile.[fargateProfileName,status,join(`,`,subnets)]' --output text
# To remove it: aws eks delete-fargate-profile --cluster-name "$cluster" \
#   --fargate-profile-name "$name"
