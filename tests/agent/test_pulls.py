"""Image pull decisions as kubelet makes them: policy defaults, the registry an image
names, and imagePullSecrets turned into CRI credentials."""

from __future__ import annotations

import base64
import json

import pytest

from nodeless.agent.pulls import auths_from_secret, pull_policy, registry_of


@pytest.mark.parametrize(("image", "policy"), [
    ("busybox", "Always"),
    ("busybox:latest", "Always"),
    ("busybox:1.36", "IfNotPresent"),
    ("127.0.0.1:5000/library/busybox", "Always"),
    ("127.0.0.1:5000/library/busybox:1.0", "IfNotPresent"),
    ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert pull_policy({"image": image}) == policy
    assert pull_policy({"image": image, "imagePullPolicy": "Never"}) == "Never"


@pytest.mark.parametrize(("image", "registry"), [
    ("busybox", "docker.io"),
    ("library/busybox", "docker.io"),
    ("public.ecr.aws/eks/pause:3.9", "public.ecr.aws"),
    ("127.0.0.1:6445/library/busybox:latest", "127.0.0.1:6445"),
    ("localhost/app", "localhost"),
])
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def secret(payload: dict[str, object], key: str = ".dockerconfigjson") -> dict[str, object]:
    return {"data": {key: base64.b64encode(json.dumps(payload).encode()).decode()}}


def test_dockerconfigjson_credentials_per_registry() -> None:
    auth = base64.b64encode(b"robot:s3cret:with:colons").decode()
    found = auths_from_secret(secret({"auths": {
        "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
        "123456789012.dkr.ecr.us-east-1.amazonaws.com": {"auth": auth}}}))
    assert (found["docker.io"].username, found["docker.io"].password) == ("hub", "pw")
    ecr = found["123456789012.dkr.ecr.us-east-1.amazonaws.com"]
    assert (ecr.username, ecr.password) == ("robot", "s3cret:with:colons")


def test_legacy_dockercfg_and_garbage() -> None:
    legacy = auths_from_secret(secret({"quay.io": {"username": "u", "password": "p"}},
                                      key=".dockercfg"))
    assert legacy["quay.io"].username == "u"
    assert auths_from_secret({"data": {".dockerconfigjson": "not base64!"}}) == {}
    assert auths_from_secret({"data": {}}) == {}
