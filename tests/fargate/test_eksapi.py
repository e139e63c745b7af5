"""The EKS-compatible API driven by boto3, as scripts written for EKS drive EKS.

Every refusal must raise the botocore exception class AWS raises, with a message that
names the rule. No profile controller runs: created profiles stay CREATING unless a test
plays the controller (`set_status`, `finish_deletion`).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fargate.test_eksapi_env import (  # noqa: F401  (fixtures)
    CLUSTER,
    FOREIGN_SUBNET,
    REGION,
    ROLE,
    EksEnv,
    eks_fixture,
    fresh_fixture,
)


def create(env: EksEnv, name: str, **fields: Any) -> dict[str, Any]:
    request = {"clusterName": CLUSTER, "fargateProfileName": name,
               "podExecutionRoleArn": ROLE, "selectors": [{"namespace": "default"}]}
    request.update(fields)
    return dict(env.boto().create_fargate_profile(**request)["fargateProfile"])


def create_active(env: EksEnv, *names: str) -> None:
    """Profiles that the (simulated) controller has made ACTIVE, so more may be created."""
    for name in names:
        create(env, name)
        env.set_status(name, "ACTIVE")


def refused(call: Any, code: str, *words: str) -> str:
    """Run `call`; it must raise botocore's modeled `code` exception whose message holds
    every one of `words`. Returns the message."""
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == code, error
    assert type(info.value).__name__ == code  # the modeled class, as AWS would raise
    for word in words:
        assert word in error["Message"], error["Message"]
    return str(error["Message"])


# ----------------------------------------------------------------- the happy path


def test_create_describe_list_delete(fresh: EksEnv) -> None:
    eks = fresh.boto()
    made = create(fresh, "web", selectors=[
        {"namespace": "default", "labels": {"app": "web"}}, {"namespace": "kube-*"}],
        tags={"team": "a"})
    assert made["status"] == "CREATING"
    assert made["clusterName"] == CLUSTER
    assert made["podExecutionRoleArn"] == ROLE
    assert made["selectors"] == [{"namespace": "default", "labels": {"app": "web"}},
                                 {"namespace": "kube-*"}]
    assert made["tags"] == {"team": "a"}
    assert made["subnets"] == fresh.private_subnets  # none given: every private subnet
    assert made["fargateProfileArn"].startswith(
        f"arn:aws:eks:{REGION}:000000000000:fargateprofile/{CLUSTER}/web/")
    described = eks.describe_fargate_profile(clusterName=CLUSTER,
                                             fargateProfileName="web")["fargateProfile"]
    assert described == made
    assert described["createdAt"].year >= 2024  # a datetime, parsed by botocore
    assert eks.list_fargate_profiles(clusterName=CLUSTER)["fargateProfileNames"] == ["web"]
    deleted = eks.delete_fargate_profile(clusterName=CLUSTER,
                                         fargateProfileName="web")["fargateProfile"]
    assert deleted["status"] == "DELETING"


def test_given_subnets_are_kept(fresh: EksEnv) -> None:
    one = fresh.private_subnets[:1]
    assert create(fresh, "one-subnet", subnets=one)["subnets"] == one


def test_states_creating_active_deleting_gone_with_a_simulated_controller(
        fresh: EksEnv) -> None:
    """The controller's part is played here by patching the status subresource and the
    finalizer; `nodeless up`'s e2e tests observe the same sequence with the real one."""
    eks = fresh.boto()

    def state() -> str:
        return str(eks.describe_fargate_profile(
            clusterName=CLUSTER, fargateProfileName="seq")["fargateProfile"]["status"])

    made = create(fresh, "seq")
    assert made["status"] == state() == "CREATING"
    finalizers = fresh.api.kubectl("get", "fargateprofile", "seq", "-o",
                                   "jsonpath={.metadata.finalizers}").stdout
    assert "fargate.nodeless.io/profile-cleanup" in finalizers
    fresh.set_status("seq", "ACTIVE")
    assert state() == "ACTIVE"
    table = fresh.api.kubectl("get", "fargateprofiles").stdout
    assert "seq" in table and "ACTIVE" in table
    eks.delete_fargate_profile(clusterName=CLUSTER, fargateProfileName="seq")
    assert state() == "DELETING"  # deletionTimestamp set, before the controller says so
    fresh.set_status("seq", "DELETING")
    assert state() == "DELETING"
    fresh.finish_deletion("seq")
    waiter = eks.get_waiter("fargate_profile_deleted")
    waiter.wait(clusterName=CLUSTER, fargateProfileName="seq",
                WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    refused(state, "ResourceNotFoundException", "No Fargate Profile found with name: seq.")


def test_kubectl_shows_the_profiles(fresh: EksEnv) -> None:
    create_active(fresh, "alpha")
    create(fresh, "beta")
    table = fresh.api.kubectl("get", "fargateprofiles").stdout
    assert "alpha" in table and "beta" in table
    spec = fresh.api.kubectl("get", "fp", "beta", "-o",
                             "jsonpath={.spec.podExecutionRoleArn}").stdout
    assert spec == ROLE


def test_list_pages_as_the_botocore_paginator_expects(fresh: EksEnv) -> None:
    names = ["p1", "p2", "p3", "p4", "p5"]
    create_active(fresh, *names)
    eks = fresh.boto()
    first = eks.list_fargate_profiles(clusterName=CLUSTER, maxResults=2)
    assert first["fargateProfileNames"] == ["p1", "p2"]
    second = eks.list_fargate_profiles(clusterName=CLUSTER, maxResults=2,
                                       nextToken=first["nextToken"])
    assert second["fargateProfileNames"] == ["p3", "p4"]
    last = eks.list_fargate_profiles(clusterName=CLUSTER, maxResults=2,
                                     nextToken=second["nextToken"])
    assert last["fargateProfileNames"] == ["p5"]
    assert "nextToken" not in last
    pages = list(eks.get_paginator("list_fargate_profiles").paginate(
        clusterName=CLUSTER, PaginationConfig={"PageSize": 2}))
    assert [p["fargateProfileNames"] for p in pages] == [["p1", "p2"], ["p3", "p4"], ["p5"]]
    limited = eks.get_paginator("list_fargate_profiles").paginate(
        clusterName=CLUSTER, PaginationConfig={"PageSize": 2, "MaxItems": 3}).build_full_result()
    assert limited["fargateProfileNames"] == ["p1", "p2", "p3"]
    assert "NextToken" in limited
    exact = eks.list_fargate_profiles(clusterName=CLUSTER, maxResults=5)
    assert exact["fargateProfileNames"] == names and "nextToken" not in exact


def test_bad_paging_parameters(fresh: EksEnv) -> None:
    eks = fresh.boto()
    refused(lambda: eks.list_fargate_profiles(clusterName=CLUSTER, nextToken="garbage"),
            "InvalidParameterException", "nextToken")
    refused(lambda: eks.list_fargate_profiles(clusterName=CLUSTER, maxResults=101),
            "InvalidParameterException", "maxResults")
    token = base64.urlsafe_b64encode(b"not ours").decode()
    refused(lambda: eks.list_clusters(nextToken=token), "InvalidParameterException",
            "nextToken")


def test_describe_cluster(eks: EksEnv) -> None:
    cluster = eks.boto().describe_cluster(name=CLUSTER)["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["name"] == CLUSTER
    assert cluster["arn"] == f"arn:aws:eks:{REGION}:000000000000:cluster/{CLUSTER}"
    assert cluster["endpoint"] == eks.api.url
    assert base64.b64decode(cluster["certificateAuthority"]["data"]) == \
        eks.api.ca_file.read_bytes()
    assert cluster["version"].count(".") == 1 and cluster["version"].startswith("1.")
    assert cluster["platformVersion"]
    assert cluster["kubernetesNetworkConfig"]["ipFamily"] == "ipv4"
    assert cluster["resourcesVpcConfig"]["vpcId"] == eks.settings.vpc.id
    assert eks.boto().list_clusters() ["clusters"] == [CLUSTER]


def test_the_cluster_endpoint_and_ca_work_for_kubernetes(eks: EksEnv, tmp_path: Any) -> None:
    """What `aws eks update-kubeconfig` does with DescribeCluster: reach the API with them."""
    import ssl
    import urllib.request

    cluster = eks.boto().describe_cluster(name=CLUSTER)["cluster"]
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificateAuthority"]["data"]))
    ctx = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(cluster["endpoint"] + "/version",
                                     headers={"Authorization": f"Bearer {eks.api.token}"})
    with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
        assert response.status == 200


def test_create_is_idempotent_with_a_client_request_token(fresh: EksEnv) -> None:
    first = create(fresh, "token", clientRequestToken="abc-123")
    again = create(fresh, "token", clientRequestToken="abc-123")
    assert again["fargateProfileArn"] == first["fargateProfileArn"]
    refused(lambda: create(fresh, "token", clientRequestToken="other"),
            "ResourceInUseException", "already exists with name: token")


# ----------------------------------------------------------------- refusals


@pytest.mark.parametrize(("fields", "words"), [
    ({"podExecutionRoleArn": "not-an-arn"}, ["podExecutionRoleArn", "not an IAM role ARN"]),
    ({"podExecutionRoleArn": "arn:aws:iam::123:role/x"}, ["not an IAM role ARN"]),
    ({"selectors": [{"namespace": f"ns{i}"} for i in range(6)]},
     ["at most 5 selectors", "has 6"]),
    ({"selectors": [{"namespace": "default",
                     "labels": {f"k{i}": "v" for i in range(6)}}]},
     ["6 labels", "at most 5"]),
    ({"selectors": []}, ["at least one selector"]),
    ({"selectors": [{"labels": {"a": "b"}}]}, ["selectors[0] needs a namespace"]),
    ({"subnets": [FOREIGN_SUBNET]}, [FOREIGN_SUBNET, "not a subnet of the cluster's VPC"]),
    ({"subnets": ["subnet-0123456789abcdef0"]}, ["subnet-0123456789abcdef0",
                                                 "not a subnet of the cluster's VPC"]),
    ({"fargateProfileName": "Bad_Name"}, ["fargateProfileName", "invalid"]),
    ({"tags": {"aws:owner": "me"}}, ["aws:", "reserved"]),
])
def test_invalid_profiles_are_refused(fresh: EksEnv, fields: dict[str, Any],
                                      words: list[str]) -> None:
    name = fields.pop("fargateProfileName", "bad")
    refused(lambda: create(fresh, name, **fields), "InvalidParameterException", *words)
    assert fresh.boto().list_fargate_profiles(clusterName=CLUSTER)["fargateProfileNames"] == []


def test_public_subnet_is_refused(fresh: EksEnv) -> None:
    public = fresh.public_subnet
    refused(lambda: create(fresh, "public", subnets=[fresh.private_subnets[0], public]),
            "InvalidParameterException", public, "public subnet", "only private subnets")


def test_duplicate_name(fresh: EksEnv) -> None:
    create_active(fresh, "dup")
    refused(lambda: create(fresh, "dup"), "ResourceInUseException",
            "Fargate Profile already exists with name: dup")


def test_one_change_at_a_time(fresh: EksEnv) -> None:
    create_active(fresh, "settled")
    create(fresh, "pending")  # stays CREATING: no controller here
    refused(lambda: create(fresh, "second"), "ResourceInUseException",
            "Cannot create Fargate Profile second", "pending in status CREATING")
    eks = fresh.boto()
    refused(lambda: eks.delete_fargate_profile(clusterName=CLUSTER,
                                               fargateProfileName="settled"),
            "ResourceInUseException", "Cannot delete Fargate Profile settled",
            "pending in status CREATING")
    fresh.set_status("pending", "ACTIVE")
    eks.delete_fargate_profile(clusterName=CLUSTER, fargateProfileName="settled")
    refused(lambda: create(fresh, "second"), "ResourceInUseException",
            "settled in status DELETING")


def test_at_most_ten_profiles(fresh: EksEnv) -> None:
    create_active(fresh, *[f"fp{i:02d}" for i in range(10)])
    refused(lambda: create(fresh, "eleventh"), "ResourceLimitExceededException",
            "10 Fargate profiles", "(10)")


def test_unknown_profile_and_cluster(fresh: EksEnv) -> None:
    eks = fresh.boto()
    refused(lambda: eks.describe_fargate_profile(clusterName=CLUSTER,
                                                 fargateProfileName="ghost"),
            "ResourceNotFoundException", "No Fargate Profile found with name: ghost.")
    refused(lambda: eks.delete_fargate_profile(clusterName=CLUSTER,
                                               fargateProfileName="ghost"),
            "ResourceNotFoundException", "No Fargate Profile found with name: ghost.")
    for call in (
        lambda: eks.describe_cluster(name="other"),
        lambda: eks.list_fargate_profiles(clusterName="other"),
        lambda: eks.describe_fargate_profile(clusterName="other", fargateProfileName="x"),
        lambda: eks.delete_fargate_profile(clusterName="other", fargateProfileName="x"),
        lambda: eks.create_fargate_profile(clusterName="other", fargateProfileName="x",
                                           podExecutionRoleArn=ROLE,
                                           selectors=[{"namespace": "default"}]),
    ):
        refused(call, "ResourceNotFoundException", "No cluster found for name: other.")


def test_operations_nodeless_does_not_serve_are_named(eks: EksEnv) -> None:
    client = eks.boto()
    refused(lambda: client.list_nodegroups(clusterName=CLUSTER), "InvalidRequestException",
            "ListNodegroups is not supported", "CreateFargateProfile")
