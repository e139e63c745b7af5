"""DATA_DIR/aws/{credentials,config}: modes, stability across restarts, a format botocore
reads as nodeless means it, and the component's plain-HTTP and restart behaviour."""

from __future__ import annotations

import asyncio
import configparser
from pathlib import Path

import boto3
import pytest
from botocore.session import Session

from nodeless.fargate import vpc
from nodeless.fargate.eksapi import EksApiComponent
from nodeless.fargate.eksapi.credentials import (
    config_path,
    credentials_path,
    ensure_aws_files,
    load_aws_files,
    read_credentials,
)
from nodeless.fargate.settings import FargateSettings
from tests.fargate.test_eksapi_env import CLUSTER, REGION


def test_files_are_private_and_keys_stable(tmp_path: Path) -> None:
    first = ensure_aws_files(tmp_path, REGION, "https://127.0.0.1:1111",
                             ca_bundle=tmp_path / "ca.crt")
    again = ensure_aws_files(tmp_path, REGION, "https://127.0.0.1:2222",
                             ca_bundle=tmp_path / "ca.crt")
    assert first == again
    assert first[0].startswith("AKIA") and len(first[0]) == 20 and len(first[1]) == 40
    for path in (credentials_path(tmp_path), config_path(tmp_path)):
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "aws").stat().st_mode & 0o777 == 0o700
    files = load_aws_files(tmp_path)
    assert files.endpoint_url == "https://127.0.0.1:2222"  # the config follows the port
    assert (files.access_key_id, files.secret_access_key) == first
    assert files.region == REGION and files.ca_bundle == (tmp_path / "ca.crt").resolve()
    assert read_credentials(credentials_path(tmp_path)) == {first[0]: first[1]}


def test_botocore_reads_the_endpoint_for_eks_only(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = ensure_aws_files(tmp_path, "eu-west-3", "https://127.0.0.1:4321",
                                   ca_bundle=tmp_path / "ca.crt")
    for name in [n for n in __import__("os").environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_path(tmp_path)))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_path(tmp_path)))
    session = boto3.session.Session()
    eks = session.client("eks")
    assert eks.meta.endpoint_url == "https://127.0.0.1:4321"
    assert eks.meta.region_name == "eu-west-3"
    creds = session.get_credentials()
    assert (creds.access_key, creds.secret_key) == (key, secret)
    assert session.client("sts").meta.endpoint_url != "https://127.0.0.1:4321"
    assert Session().get_config_variable("ca_bundle") == str((tmp_path / "ca.crt").resolve())


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="credentials"):
        load_aws_files(tmp_path)


def test_a_key_added_to_the_file_is_accepted(tmp_path: Path) -> None:
    from nodeless.fargate.eksapi.server import KeyStore

    ensure_aws_files(tmp_path, REGION, "http://127.0.0.1:1")
    store = KeyStore(credentials_path(tmp_path))
    assert store.secret_for("AKIAADDEDADDEDADDED0") is None
    parser = configparser.ConfigParser()
    parser.read(credentials_path(tmp_path))
    parser["ci"] = {"aws_access_key_id": "AKIAADDEDADDEDADDED0",
                    "aws_secret_access_key": "x" * 40}
    with open(credentials_path(tmp_path), "w") as f:
        parser.write(f)
    assert store.secret_for("AKIAADDEDADDEDADDED0") == "x" * 40


def _settings(tmp_path: Path, **changes: object) -> FargateSettings:
    settings = FargateSettings(kubeconfig=tmp_path / "kubeconfig",
                               vpc=vpc.default_vpc(CLUSTER, REGION), state_dir=tmp_path,
                               eks_port=0)
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


async def test_without_a_certificate_it_serves_http_on_loopback_only(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
        "'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n")
    component = EksApiComponent(_settings(tmp_path))
    ready = asyncio.Event()
    task = asyncio.create_task(component.run(ready.set))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        assert component.url is not None and component.url.startswith("http://127.0.0.1:")
        files = load_aws_files(tmp_path)
        assert files.endpoint_url == component.url and files.ca_bundle is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert component.url is None
    exposed = EksApiComponent(_settings(tmp_path, eks_host="0.0.0.0"))
    with pytest.raises(ValueError, match="plain HTTP"):
        await exposed.run(lambda: None)
