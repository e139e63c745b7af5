"""Hypothesis fuzzing of create and patch bodies: bad input never gives a 500 and never
corrupts what is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.apiserver import RunningAPIServer

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
                         st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=20)

field_names = st.sampled_from([
    "apiVersion", "kind", "metadata", "spec", "status", "data", "containers", "name",
    "image", "labels", "annotations", "finalizers", "ports", "env", "selector", "replicas",
    "template", "generateName", "namespace", "resourceVersion", "uid", "$patch",
    "$setElementOrder/containers", "$retainKeys", "volumes", "initContainers",
])

structured = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(field_names, children, max_size=5)),
    max_leaves=25)

TARGETS = [
    ("/api/v1/namespaces/{ns}/pods", "v1", "Pod"),
    ("/api/v1/namespaces/{ns}/configmaps", "v1", "ConfigMap"),
    ("/apis/apps/v1/namespaces/{ns}/deployments", "apps/v1", "Deployment"),
    ("/api/v1/namespaces/{ns}/services", "v1", "Service"),
]

VALID_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fuzz-target"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture(scope="module")
def http(apiserver: RunningAPIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, verify=apiserver.ssl_context(),
                      headers={"Authorization": f"Bearer {apiserver.token}"},
                      timeout=30) as session:
        yield session


@pytest.fixture(scope="module")
def fuzz_ns(http: httpx.Client) -> str:
    http.post("/api/v1/namespaces", json={"metadata": {"name": "fuzz"}})
    r = http.post("/api/v1/namespaces/fuzz/pods", json=VALID_POD)
    assert r.status_code in (201, 409), r.text
    return "fuzz"


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["kind"] == "Status" and body["code"] == response.status_code


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), body=st.one_of(json_values, structured),
       with_type=st.booleans())
def test_create_never_500(http: httpx.Client, fuzz_ns: str, target: tuple[str, str, str],
                          body: object, with_type: bool) -> None:
    path, api_version, kind = target
    if with_type and isinstance(body, dict):
        body = {**body, "apiVersion": api_version, "kind": kind}
    _check(http.post(path.format(ns=fuzz_ns), content=json.dumps(body),
                     headers={"Content-Type": "application/json"}))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=200),
       content_type=st.sampled_from(["application/json", "application/yaml",
                                     "application/vnd.kubernetes.protobuf", "text/plain"]))
def test_garbage_bytes_never_500(http: httpx.Client, fuzz_ns: str, raw: bytes,
                                 content_type: str) -> None:
    _check(http.post(f"/api/v1/namespaces/{fuzz_ns}/configmaps", content=raw,
                     headers={"Content-Type": content_type}))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(patch=st.one_of(structured, json_values,
                       st.lists(st.fixed_dictionaries(
                           {"op": st.sampled_from(["add", "remove", "replace", "move", "copy",
                                                   "test", "bogus"]),
                            "path": st.sampled_from(["/spec/containers/0/image", "/metadata",
                                                     "/spec", "/x/y", "", "/metadata/name",
                                                     "/spec/containers/-", "~1"]),
                            "value": json_values}), max_size=3)),
       content_type=st.sampled_from(["application/json-patch+json",
                                     "application/merge-patch+json",
                                     "application/strategic-merge-patch+json",
                                     "application/apply-patch+yaml"]))
def test_patch_never_500_and_keeps_object_valid(http: httpx.Client, fuzz_ns: str,
                                                patch: object, content_type: str) -> None:
    path = f"/api/v1/namespaces/{fuzz_ns}/pods/fuzz-target"
    _check(http.patch(path, content=json.dumps(patch), headers={"Content-Type": content_type}))
    stored = http.get(path)
    assert stored.status_code == 200
    pod = stored.json()
    assert pod["metadata"]["name"] == "fuzz-target" and pod["kind"] == "Pod"
    assert pod["spec"]["containers"], "a patch emptied the containers of a stored pod"


def test_oversized_body_is_413(http: httpx.Client, fuzz_ns: str) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
           "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}
    r = http.post(f"/api/v1/namespaces/{fuzz_ns}/configmaps", json=big)
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
    assert http.get(f"/api/v1/namespaces/{fuzz_ns}/configmaps/big").status_code == 404


def test_unauthenticated_is_401(apiserver: RunningAPIServer) -> None:
    with httpx.Client(base_url=apiserver.url, verify=apiserver.ssl_context()) as anonymous:
        r = anonymous.get("/api/v1/namespaces")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        wrong = anonymous.get("/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert anonymous.get("/readyz").status_code == 200
