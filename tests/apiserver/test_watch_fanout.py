"""Watchers of the same change share its decoding and encoding (objects.py); each must
still see the change as its own request asked for it: its version, its selector's
translation, its API group's shape of an Event."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from tests.fixtures.apiserver import RunningAPIServer


def _client(server: RunningAPIServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, verify=server.ssl_context(), timeout=30,
                             headers={"Authorization": f"Bearer {server.token}"})


async def _watch(http: httpx.AsyncClient, path: str, rv: str, **params: str
                 ) -> list[dict[str, Any]]:
    response = await http.get(path, params={"watch": "true", "resourceVersion": rv,
                                            "timeoutSeconds": "2", **params})
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


async def _established(http: httpx.AsyncClient, path: str) -> None:
    deadline = time.monotonic() + 10
    while (await http.get(path)).status_code != 200:
        assert time.monotonic() < deadline, f"{path} never served"
        await asyncio.sleep(0.1)


async def test_watchers_of_one_change_each_see_their_version_and_selector(
        apiserver: RunningAPIServer, namespace: str) -> None:
    schema = {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True}}
    async with _client(apiserver) as http:
        crd = await http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json={
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "fanouts.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "fanouts", "singular": "fanout", "kind": "Fanout"},
                     "versions": [
                         {"name": "v1", "served": True, "storage": True, "schema": schema},
                         {"name": "v1beta1", "served": True, "storage": False,
                          "schema": schema}]}})
        assert crd.status_code == 201, crd.text
        try:
            v1 = f"/apis/example.com/v1/namespaces/{namespace}/fanouts"
            beta = f"/apis/example.com/v1beta1/namespaces/{namespace}/fanouts"
            await _established(http, v1)
            await _established(http, beta)
            rv = (await http.get(v1)).json()["metadata"]["resourceVersion"]
            merge = {"Content-Type": "application/merge-patch+json"}
            created = await http.post(v1, json={
                "apiVersion": "example.com/v1", "kind": "Fanout",
                "metadata": {"name": "f", "labels": {"pick": "no"}}, "spec": {"n": 1}})
            assert created.status_code == 201, created.text
            for patch in ({"metadata": {"labels": {"pick": "yes"}}}, {"spec": {"n": 2}},
                          {"metadata": {"labels": {"pick": "no"}}}):
                changed = await http.patch(f"{v1}/f", content=json.dumps(patch),
                                           headers=merge)
                assert changed.status_code == 200, changed.text
            assert (await http.delete(f"{v1}/f")).status_code == 200

            # All three replay the same stored versions at once, sharing their decoding.
            plain, old, picked = await asyncio.gather(
                _watch(http, v1, rv), _watch(http, beta, rv),
                _watch(http, v1, rv, labelSelector="pick=yes"))
        finally:
            await http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                              "fanouts.example.com")

    assert [e["type"] for e in plain] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED",
                                          "DELETED"]
    assert [e["type"] for e in old] == [e["type"] for e in plain]
    assert {e["object"]["apiVersion"] for e in plain} == {"example.com/v1"}
    assert {e["object"]["apiVersion"] for e in old} == {"example.com/v1beta1"}
    assert [e["object"]["metadata"]["resourceVersion"] for e in old] == \
        [e["object"]["metadata"]["resourceVersion"] for e in plain]
    # The selector's view: in when the label came, out when it went.
    assert [e["type"] for e in picked] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e["object"]["spec"]["n"] for e in picked] == [1, 2, 2]
    assert {e["object"]["apiVersion"] for e in picked} == {"example.com/v1"}


async def test_event_watchers_of_both_groups_see_their_own_shape(
        apiserver: RunningAPIServer, namespace: str) -> None:
    core = f"/api/v1/namespaces/{namespace}/events"
    events_v1 = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    async with _client(apiserver) as http:
        rv = (await http.get(core)).json()["metadata"]["resourceVersion"]
        created = await http.post(core, json={
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
            "reason": "Tested", "message": "seen by two groups", "type": "Normal",
            "source": {"component": "fanout-test"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1})
        assert created.status_code == 201, created.text
        as_core, as_events = await asyncio.gather(_watch(http, core, rv),
                                                  _watch(http, events_v1, rv))

    assert [e["type"] for e in as_core] == [e["type"] for e in as_events] == ["ADDED"]
    core_event, new_event = as_core[0]["object"], as_events[0]["object"]
    assert core_event["apiVersion"] == "v1" and core_event["message"] == "seen by two groups"
    assert core_event["involvedObject"]["name"] == "p" and "regarding" not in core_event
    assert new_event["apiVersion"] == "events.k8s.io/v1"
    assert new_event["note"] == "seen by two groups" and "message" not in new_event
    assert new_event["regarding"]["name"] == "p" and "involvedObject" not in new_event
