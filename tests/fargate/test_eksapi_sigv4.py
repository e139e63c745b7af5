"""SigV4 verification: unit tests of `sigv4.verify` against requests signed by botocore,
and the refusals a real client gets over the wire (unsigned, wrong secret, unknown key,
stale clock, wrong region, tampered body)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from nodeless.fargate.eksapi import sigv4
from nodeless.fargate.eksapi.credentials import load_aws_files
from nodeless.fargate.eksapi.errors import AwsError
from tests.fargate.test_eksapi_env import (  # noqa: F401  (fixtures)
    CLUSTER,
    REGION,
    EksEnv,
    eks_fixture,
)

KEY, SECRET = "AKIAEXAMPLEEXAMPLE01", "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/s3cr3"
URL = "https://127.0.0.1:8443"


def sign(method: str = "POST", path: str = "/clusters/c/fargate-profiles",
         body: bytes = b'{"a": 1}', headers: dict[str, str] | None = None,
         key: str = KEY, secret: str = SECRET, region: str = REGION,
         service: str = "eks") -> AWSRequest:
    request = AWSRequest(method=method, url=URL + path, data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return request


def received(request: AWSRequest, **changes: Any) -> sigv4.SignedRequest:
    """The request as a server sees it: Host on the wire, path and query raw."""
    headers = {k: v for k, v in request.headers.items()}
    headers["Host"] = "127.0.0.1:8443"
    headers.update(changes.pop("headers", {}))
    path = request.url.removeprefix(URL)
    return sigv4.SignedRequest(changes.pop("method", request.method),
                               changes.pop("raw_path", path), headers,
                               changes.pop("body", request.body or b""))


def check(request: sigv4.SignedRequest, now: dt.datetime | None = None) -> str:
    return sigv4.verify(request, {KEY: SECRET}.get, REGION, now)


def code_of(request: sigv4.SignedRequest, now: dt.datetime | None = None) -> tuple[str, str]:
    with pytest.raises(AwsError) as info:
        check(request, now)
    assert info.value.status == 403
    return info.value.code, info.value.message


def test_a_botocore_signature_verifies() -> None:
    assert check(received(sign())) == KEY
    assert check(received(sign("GET", "/clusters/c/fargate-profiles?maxResults=2&nextToken=a%3D",
                                b""))) == KEY
    assert check(received(sign("DELETE", "/clusters/c/fargate-profiles/x%20y", b""))) == KEY


def test_tampering_is_refused() -> None:
    request = sign()
    assert code_of(received(request, body=b'{"a": 2}'))[0] == "InvalidSignatureException"
    assert code_of(received(request, method="PUT"))[0] == "InvalidSignatureException"
    assert code_of(received(request, raw_path="/clusters/d/fargate-profiles"))[0] == \
        "InvalidSignatureException"
    assert code_of(received(request, headers={"Content-Type": "text/plain"}))[0] == \
        "InvalidSignatureException"
    code, message = code_of(received(sign(secret="wrong")))
    assert code == "InvalidSignatureException"
    assert "signature we calculated does not match" in message


def test_headers_outside_the_signature_do_not_matter() -> None:
    assert check(received(sign(), headers={"User-Agent": "another", "X-Trace": "1"})) == KEY


def test_a_declared_payload_hash_must_be_the_bodys() -> None:
    unsigned = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    code, message = code_of(received(unsigned))
    assert code == "InvalidSignatureException" and "signed payloads only" in message
    digest = hashlib.sha256(b'{"a": 1}').hexdigest()
    assert check(received(sign(headers={"X-Amz-Content-SHA256": digest}))) == KEY


def test_missing_and_malformed_authorization() -> None:
    request = received(sign())
    headers = {k: v for k, v in request.headers.items() if k != "Authorization"}
    bare = sigv4.SignedRequest(request.method, request.raw_path, headers, request.body)
    assert code_of(bare) == ("MissingAuthenticationTokenException",
                             "Missing Authentication Token")
    for auth in ("Bearer abc", "AWS4-HMAC-SHA256 Credential=x",
                 f"AWS4-HMAC-SHA256 Credential={KEY}/x, SignedHeaders=host, Signature=00"):
        bad = sigv4.SignedRequest(request.method, request.raw_path,
                                  {**headers, "Authorization": auth}, request.body)
        assert code_of(bad)[0] == "IncompleteSignatureException", auth


def test_unknown_key_and_session_tokens() -> None:
    assert code_of(received(sign(key="AKIAUNKNOWNUNKNOWN00"))) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")
    token = received(sign(), headers={"X-Amz-Security-Token": "session"})
    assert code_of(token)[0] == "UnrecognizedClientException"


def test_scope_must_be_this_region_and_eks() -> None:
    code, message = code_of(received(sign(region="eu-west-1")))
    assert code == "InvalidSignatureException" and "region" in message
    code, message = code_of(received(sign(service="s3")))
    assert code == "InvalidSignatureException" and "'eks'" in message


def test_clock_skew_of_more_than_15_minutes() -> None:
    request = received(sign())
    now = dt.datetime.now(dt.UTC)
    assert check(request, now + dt.timedelta(minutes=14)) == KEY
    code, message = code_of(request, now + dt.timedelta(minutes=16))
    assert code == "InvalidSignatureException" and message.startswith("Signature expired")
    code, message = code_of(request, now - dt.timedelta(minutes=16))
    assert code == "InvalidSignatureException" and "not yet current" in message


# ----------------------------------------------------------------- over the wire


def refused_with(call: Any, code: str, *words: str) -> None:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == code, error
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    for word in words:
        assert word in error["Message"]


def test_unsigned_requests_are_refused(eks: EksEnv) -> None:
    client = eks.boto(config=Config(signature_version=UNSIGNED))
    refused_with(lambda: client.list_clusters(), "MissingAuthenticationTokenException",
                 "Missing Authentication Token")
    refused_with(lambda: client.describe_cluster(name=CLUSTER),
                 "MissingAuthenticationTokenException")


def test_wrongly_signed_requests_are_refused(eks: EksEnv) -> None:
    files = load_aws_files(eks.data_dir)
    wrong_secret = eks.boto(aws_secret_access_key=files.secret_access_key[::-1])
    refused_with(lambda: wrong_secret.list_clusters(), "InvalidSignatureException",
                 "signature we calculated does not match")
    unknown = eks.boto(aws_access_key_id="AKIANOTKNOWNNOTKNOWN")
    refused_with(lambda: unknown.list_clusters(), "UnrecognizedClientException",
                 "security token included in the request is invalid")
    other_region = eks.boto(region_name="eu-central-1")
    refused_with(lambda: other_region.list_clusters(), "InvalidSignatureException",
                 "region")


def test_a_stale_clock_is_refused(eks: EksEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: stale)
    client = eks.boto(config=Config(retries={"max_attempts": 1}))
    refused_with(lambda: client.list_clusters(), "InvalidSignatureException",
                 "Signature expired")


def send_signed(eks: EksEnv, method: str, path: str, body: bytes = b"",
                sign_it: bool = True) -> tuple[int, str, bytes]:
    """A raw request signed by botocore's signer: (status, x-amzn-ErrorType, body)."""
    files = load_aws_files(eks.data_dir)
    request = AWSRequest(method=method, url=eks.url + path, data=body)
    if sign_it:
        SigV4Auth(Credentials(files.access_key_id, files.secret_access_key), "eks",
                  REGION).add_auth(request)
    ctx = ssl.create_default_context(cafile=str(files.ca_bundle))
    http = urllib.request.Request(request.url, data=body or None, method=method,
                                  headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(http, context=ctx, timeout=10) as response:
            return response.status, "", response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("x-amzn-ErrorType", ""), exc.read()


def test_a_signed_request_for_no_operation_gets_an_aws_error(eks: EksEnv) -> None:
    status, code, body = send_signed(eks, "GET", "/no/such/thing")
    assert (status, code) == (404, "UnknownOperationException")
    assert b"is no EKS operation" in body
    status, code, _ = send_signed(eks, "GET", "/no/such/thing", sign_it=False)
    assert (status, code) == (403, "MissingAuthenticationTokenException")


def test_bodies_that_are_not_json_objects(eks: EksEnv) -> None:
    path = f"/clusters/{CLUSTER}/fargate-profiles"
    for body in (b"{not json", b"[1, 2]"):
        status, code, _ = send_signed(eks, "POST", path, body)
        assert (status, code) == (400, "SerializationException"), body
    status, code, _ = send_signed(eks, "POST", path, b" " * (2 << 20))
    assert (status, code) == (400, "SerializationException")


def test_the_same_keys_work_from_a_plain_boto3_session(eks: EksEnv,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE alone: endpoint, CA and keys all
    come from the files nodeless wrote."""
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in eks.aws_env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    client = boto3.session.Session().client("eks")
    assert client.meta.endpoint_url == eks.url
    assert client.meta.region_name == REGION
    assert client.list_clusters()["clusters"] == [CLUSTER]
