"""The EKS-compatible API driven by the AWS CLI (`awscli` from PyPI), configured by
nothing but AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE pointing at the data dir:
the endpoint (a `services` section) and the CA bundle come from the config file."""

from __future__ import annotations

import json

from tests.fargate.test_eksapi_env import (  # noqa: F401  (fixtures)
    CLUSTER,
    ROLE,
    EksEnv,
    eks_fixture,
    fresh_fixture,
)


def create(env: EksEnv, name: str, *extra: str, check: bool = True) -> object:
    result = env.aws("eks", "create-fargate-profile", "--cluster-name", CLUSTER,
                     "--fargate-profile-name", name, "--pod-execution-role-arn", ROLE,
                     *(extra or ("--selectors", "namespace=default")), check=check)
    return json.loads(result.stdout) if check else result


def test_create_describe_list_delete(fresh: EksEnv) -> None:
    made = create(fresh, "cli", "--selectors",
                  '[{"namespace": "default", "labels": {"app": "web"}}]',
                  "--tags", "team=a")
    assert isinstance(made, dict)
    profile = made["fargateProfile"]
    assert profile["status"] == "CREATING"
    assert profile["selectors"] == [{"namespace": "default", "labels": {"app": "web"}}]
    assert profile["subnets"] == fresh.private_subnets
    described = fresh.aws_json("eks", "describe-fargate-profile", "--cluster-name", CLUSTER,
                               "--fargate-profile-name", "cli")["fargateProfile"]
    assert described["fargateProfileArn"] == profile["fargateProfileArn"]
    status = fresh.aws("eks", "describe-fargate-profile", "--cluster-name", CLUSTER,
                       "--fargate-profile-name", "cli", "--query", "fargateProfile.status",
                       "--output", "text").stdout.strip()
    assert status == "CREATING"
    listed = fresh.aws_json("eks", "list-fargate-profiles", "--cluster-name", CLUSTER)
    assert listed["fargateProfileNames"] == ["cli"]
    fresh.set_status("cli", "ACTIVE")
    deleted = fresh.aws_json("eks", "delete-fargate-profile", "--cluster-name", CLUSTER,
                             "--fargate-profile-name", "cli")
    assert deleted["fargateProfile"]["status"] == "DELETING"
    fresh.finish_deletion("cli")
    fresh.aws("eks", "wait", "fargate-profile-deleted", "--cluster-name", CLUSTER,
              "--fargate-profile-name", "cli")


def test_paging(fresh: EksEnv) -> None:
    names = ["a1", "a2", "a3"]
    for name in names:
        create(fresh, name)
        fresh.set_status(name, "ACTIVE")
    # --page-size: the CLI fetches page after page (maxResults=1, nextToken) and joins them
    everything = fresh.aws_json("eks", "list-fargate-profiles", "--cluster-name", CLUSTER,
                                "--page-size", "1")
    assert everything["fargateProfileNames"] == names
    first = fresh.aws_json("eks", "list-fargate-profiles", "--cluster-name", CLUSTER,
                           "--max-items", "2")
    assert first["fargateProfileNames"] == ["a1", "a2"]
    rest = fresh.aws_json("eks", "list-fargate-profiles", "--cluster-name", CLUSTER,
                          "--max-items", "2", "--starting-token", first["NextToken"])
    assert rest["fargateProfileNames"] == ["a3"]
    assert "NextToken" not in rest


def test_refusals_print_the_aws_exception_and_the_rule(fresh: EksEnv) -> None:
    create(fresh, "first")
    result = create(fresh, "second", check=False)
    assert not isinstance(result, dict)
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "(ResourceInUseException)" in result.stderr  # type: ignore[attr-defined]
    assert "first in status CREATING" in result.stderr  # type: ignore[attr-defined]
    bad = fresh.aws("eks", "create-fargate-profile", "--cluster-name", CLUSTER,
                    "--fargate-profile-name", "pub", "--pod-execution-role-arn", ROLE,
                    "--selectors", "namespace=default", "--subnets", fresh.public_subnet,
                    check=False)
    assert bad.returncode != 0
    assert "(InvalidParameterException)" in bad.stderr and "public subnet" in bad.stderr
    missing = fresh.aws("eks", "describe-fargate-profile", "--cluster-name", CLUSTER,
                        "--fargate-profile-name", "ghost", check=False)
    assert "(ResourceNotFoundException)" in missing.stderr
    assert "No Fargate Profile found with name: ghost." in missing.stderr
    cluster = fresh.aws("eks", "describe-cluster", "--name", "other", check=False)
    assert "No cluster found for name: other." in cluster.stderr


def test_describe_and_list_clusters(eks: EksEnv) -> None:
    cluster = eks.aws_json("eks", "describe-cluster", "--name", CLUSTER)["cluster"]
    assert cluster["status"] == "ACTIVE" and cluster["endpoint"] == eks.api.url
    assert eks.aws_json("eks", "list-clusters")["clusters"] == [CLUSTER]


def test_an_explicit_endpoint_url(eks: EksEnv) -> None:
    """`--endpoint-url` as scripts pass it, overriding the config file's endpoint."""
    listed = eks.aws_json("eks", "list-clusters", "--endpoint-url", eks.url)
    assert listed["clusters"] == [CLUSTER]


def test_unsigned_cli_requests_are_refused(eks: EksEnv) -> None:
    result = eks.aws("eks", "list-clusters", "--no-sign-request", check=False)
    assert result.returncode != 0
    assert "(MissingAuthenticationTokenException)" in result.stderr


def test_update_kubeconfig_reaches_the_cluster(eks: EksEnv) -> None:
    """`aws eks update-kubeconfig` builds a kubeconfig from DescribeCluster; its cluster
    entry (endpoint and CA) must be the API server's. Its user runs `aws eks get-token`,
    which nodeless's API server does not accept, so the check uses the admin token."""
    kubeconfig = eks.data_dir / "eks-kubeconfig"
    eks.aws("eks", "update-kubeconfig", "--name", CLUSTER, "--kubeconfig", str(kubeconfig))
    version = eks.api.kubectl("--kubeconfig", str(kubeconfig), "--token", eks.api.token,
                              "version", "-o", "json")
    assert json.loads(version.stdout)["serverVersion"]["major"] == "1"
