"""`nodeless profile create|list|describe|delete` against a real EKS API, configured
only by the data dir's AWS files (the caller's AWS environment must not matter)."""

from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from nodeless.cli.profile import DEFAULT_DATA_DIR, profile_app
from tests.fargate.test_eksapi_env import (  # noqa: F401  (fixtures)
    CLUSTER,
    ROLE,
    EksEnv,
    eks_fixture,
    fresh_fixture,
)


def run(env: EksEnv, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(profile_app, [*args, "--data-dir", str(env.data_dir)],
                                env={"COLUMNS": "200"})
    output = result.output
    assert result.exit_code == code, output + repr(result.exception)
    return output


@pytest.fixture(autouse=True)
def foreign_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell set up for real AWS: none of it may leak into nodeless's requests."""
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALAWSREALAWS00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "r" * 40)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://eks.example.invalid")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")


def test_create_list_describe_delete(fresh: EksEnv) -> None:
    out = run(fresh, "create", "web", "--namespace", "default", "--labels", "app=web,tier=fe",
              "--namespace", "kube-*", "--tags", "team=a", "--role-arn", ROLE)
    assert "web is CREATING" in out
    profile = fresh.boto().describe_fargate_profile(clusterName=CLUSTER,
                                                    fargateProfileName="web")["fargateProfile"]
    assert profile["selectors"] == [{"namespace": "default",
                                     "labels": {"app": "web", "tier": "fe"}},
                                    {"namespace": "kube-*"}]
    assert profile["tags"] == {"team": "a"} and profile["podExecutionRoleArn"] == ROLE
    listed = run(fresh, "list")
    assert "web" in listed and "CREATING" in listed and "app=web,tier=fe" in listed
    described = run(fresh, "describe", "web")
    assert profile["fargateProfileArn"] in described
    assert "team=a" in described
    fresh.set_status("web", "ACTIVE")
    assert "ACTIVE" in run(fresh, "list")
    assert "web is DELETING" in run(fresh, "delete", "web")


def test_default_role_and_subnets(fresh: EksEnv) -> None:
    run(fresh, "create", "plain", "-n", "default", "--subnets", fresh.private_subnets[0])
    profile = fresh.boto().describe_fargate_profile(
        clusterName=CLUSTER, fargateProfileName="plain")["fargateProfile"]
    assert profile["subnets"] == fresh.private_subnets[:1]
    assert profile["podExecutionRoleArn"] == fresh.settings.default_role_arn


def test_delete_wait_returns_once_the_profile_is_gone(fresh: EksEnv) -> None:
    run(fresh, "create", "going", "-n", "default")
    fresh.set_status("going", "ACTIVE")

    def controller() -> None:  # plays the profile controller's part of a deletion
        time.sleep(1.0)
        fresh.set_status("going", "DELETING")
        fresh.finish_deletion("going")

    helper = threading.Thread(target=controller)
    helper.start()
    try:
        out = run(fresh, "delete", "going", "--wait", "--timeout", "30")
    finally:
        helper.join()
    assert "going deleted" in out
    assert run(fresh, "list").count("going") == 0


def test_aws_errors_are_printed_with_a_non_zero_exit(fresh: EksEnv) -> None:
    run(fresh, "create", "first", "-n", "default")
    out = run(fresh, "create", "second", "-n", "default", code=1)
    assert "first in status CREATING" in out and "ResourceInUseException" in out
    out = run(fresh, "create", "pub", "-n", "default", "--subnets", fresh.public_subnet,
              code=1)
    assert "public subnet" in out and "InvalidParameterException" in out
    out = run(fresh, "describe", "ghost", code=1)
    assert "No Fargate Profile found with name: ghost." in out
    out = run(fresh, "delete", "ghost", code=1)
    assert "No Fargate Profile found with name: ghost." in out
    out = run(fresh, "list", "--cluster", "other", code=1)
    assert "No cluster found for name: other." in out
    out = run(fresh, "create", "x", "-n", "a", "-l", "a=b", "-l", "c=d", code=1)
    assert "--labels" in out


def test_no_files_means_start_nodeless_first(tmp_path: object) -> None:
    result = CliRunner().invoke(profile_app, ["list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "nodeless up" in result.output


def test_the_default_data_dir_is_nodeless_ups() -> None:
    from nodeless.cli.main import DEFAULT_DATA_DIR as UP_DEFAULT

    assert DEFAULT_DATA_DIR == UP_DEFAULT
