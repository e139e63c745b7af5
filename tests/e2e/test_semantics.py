"""Object semantics as kube-apiserver has them, seen through the official client."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.fixtures.apiserver import RunningAPIServer


def _pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def _http(server: RunningAPIServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=server.ssl_context(), timeout=30,
                        headers={"Authorization": f"Bearer {server.token}"})


def test_pod_defaults_binding_and_graceful_deletion(apiserver: RunningAPIServer,
                                                    namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())
    pod = api.create_namespaced_pod(namespace, _pod("bound"))
    assert pod.spec.restart_policy == "Always" and pod.spec.dns_policy == "ClusterFirst"
    assert pod.spec.termination_grace_period_seconds == 30
    assert pod.spec.containers[0].image_pull_policy == "Always"  # no tag: latest
    assert pod.status.phase == "Pending" and pod.status.qos_class == "BestEffort"

    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    api.create_namespaced_pod_binding("bound", namespace, binding, _preload_content=False)
    bound = api.read_namespaced_pod("bound", namespace)
    assert bound.spec.node_name == "node-a"
    assert [c.type for c in bound.status.conditions] == ["PodScheduled"]
    with pytest.raises(ApiException) as again:
        api.create_namespaced_pod_binding("bound", namespace, binding, _preload_content=False)
    assert again.value.status == 409 and "already assigned" in again.value.body

    # A bound pod waits for its node: deletion only marks it...
    api.delete_namespaced_pod("bound", namespace)
    pending = api.read_namespaced_pod("bound", namespace)
    assert pending.metadata.deletion_timestamp is not None
    assert pending.metadata.deletion_grace_period_seconds == 30
    # ...until the node confirms with a zero grace period.
    api.delete_namespaced_pod("bound", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_pod("bound", namespace)
    assert gone.value.status == 404

    # An unbound pod goes at once.
    api.create_namespaced_pod(namespace, _pod("unbound"))
    api.delete_namespaced_pod("unbound", namespace)
    with pytest.raises(ApiException):
        api.read_namespaced_pod("unbound", namespace)


def test_pod_spec_is_mostly_immutable(apiserver: RunningAPIServer, namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())
    api.create_namespaced_pod(namespace, _pod("fixed"))
    api.patch_namespaced_pod("fixed", namespace, {"spec": {"containers": [
        {"name": "c", "image": "busybox:1.36"}]}})  # image may change
    with pytest.raises(ApiException) as info:
        api.patch_namespaced_pod("fixed", namespace, {"spec": {"restartPolicy": "Never"}})
    assert info.value.status == 422
    assert "pod updates may not change fields other than" in info.value.body


def test_finalizers_hold_deletion(apiserver: RunningAPIServer, namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())
    api.create_namespaced_config_map(namespace, {
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {"a": "b"}})
    api.delete_namespaced_config_map("held", namespace)
    held = api.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as info:
        api.patch_namespaced_config_map("held", namespace, {"metadata": {
            "finalizers": ["example.com/hold", "example.com/more"]}})
    assert info.value.status == 422 and "no new finalizers" in info.value.body
    api.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_config_map("held", namespace)
    assert gone.value.status == 404


def test_generation_and_status_split(apiserver: RunningAPIServer, namespace: str) -> None:
    apps = client.AppsV1Api(apiserver.client())
    deploy = apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "gen"},
        "spec": {"selector": {"matchLabels": {"app": "gen"}},
                 "template": {"metadata": {"labels": {"app": "gen"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 99}})
    assert deploy.metadata.generation == 1
    assert not deploy.status.replicas  # status is not settable on create
    apps.patch_namespaced_deployment("gen", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_deployment("gen", namespace).metadata.generation == 1
    apps.patch_namespaced_deployment("gen", namespace, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("gen", namespace).metadata.generation == 2
    apps.patch_namespaced_deployment_status("gen", namespace, {
        "status": {"replicas": 3, "observedGeneration": 2}, "spec": {"replicas": 7}})
    after = apps.read_namespaced_deployment("gen", namespace)
    assert after.status.replicas == 3 and after.spec.replicas == 3  # spec untouched


def test_service_ip_and_node_port_allocation(apiserver: RunningAPIServer,
                                             namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())

    def svc(name: str, **spec: object) -> dict:
        return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}

    a = api.create_namespaced_service(namespace, svc("a", type="NodePort"))
    port = a.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    assert a.spec.ports[0].target_port == 80  # defaulted to port
    with pytest.raises(ApiException) as taken:
        api.create_namespaced_service(namespace, svc("b", type="NodePort", ports=[
            {"port": 80, "nodePort": port}]))
    assert taken.value.status == 422 and "provided port is already allocated" in taken.value.body
    with pytest.raises(ApiException) as ip_taken:
        api.create_namespaced_service(namespace, svc("c", clusterIP=a.spec.cluster_ip))
    assert ip_taken.value.status == 422 and "already allocated" in ip_taken.value.body
    headless = api.create_namespaced_service(namespace, svc("h", clusterIP="None"))
    assert headless.spec.cluster_ip == "None"
    api.delete_namespaced_service("a", namespace)
    reused = api.create_namespaced_service(namespace, svc("d", type="NodePort", ports=[
        {"port": 80, "nodePort": port}], clusterIP=a.spec.cluster_ip))
    assert reused.spec.ports[0].node_port == port and reused.spec.cluster_ip == \
        a.spec.cluster_ip


def test_watch_with_selector_translates_events(apiserver: RunningAPIServer,
                                               namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())
    rv = api.list_namespaced_config_map(namespace).metadata.resource_version
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "m", "labels": {
        "pick": "no"}}})
    api.patch_namespaced_config_map("m", namespace, {"metadata": {"labels": {"pick": "yes"}}})
    api.patch_namespaced_config_map("m", namespace, {"data": {"k": "v"}})
    api.patch_namespaced_config_map("m", namespace, {"metadata": {"labels": {"pick": "no"}}})
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_config_map, namespace,
                                      label_selector="pick=yes", resource_version=rv,
                                      timeout_seconds=2):
        seen.append(event["type"])
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_custom_resource_status_subresource(apiserver: RunningAPIServer, namespace: str
                                            ) -> None:
    ext = client.ApiextensionsV1Api(apiserver.client())
    ext.create_custom_resource_definition({
        "metadata": {"name": "gadgets.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}})
    custom = client.CustomObjectsApi(apiserver.client())
    body = {"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"n": 1}, "status": {"ok": True}}
    created = custom.create_namespaced_custom_object("example.org", "v1", namespace,
                                                     "gadgets", body)
    assert "status" not in created and created["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object_status("example.org", "v1", namespace, "gadgets",
                                                 "g", {"status": {"ok": True}})
    got = custom.get_namespaced_custom_object("example.org", "v1", namespace, "gadgets", "g")
    assert got["status"] == {"ok": True} and got["metadata"]["generation"] == 1
    ext.delete_custom_resource_definition("gadgets.example.org")
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            ext.read_custom_resource_definition("gadgets.example.org")
        except ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.1)
    with pytest.raises(ApiException) as info:
        custom.get_namespaced_custom_object("example.org", "v1", namespace, "gadgets", "g")
    assert info.value.status == 404


def test_bookmarks_timeouts_server_side_apply_and_metrics(apiserver: RunningAPIServer,
                                                          namespace: str) -> None:
    with _http(apiserver) as http:
        rv = http.get(f"/api/v1/namespaces/{namespace}/configmaps").json()["metadata"][
            "resourceVersion"]
        started = time.time()
        lines = http.get(f"/api/v1/namespaces/{namespace}/configmaps", params={
            "watch": "true", "resourceVersion": rv, "timeoutSeconds": "1",
            "allowWatchBookmarks": "true"}).text.splitlines()
        assert time.time() - started < 5  # the server ends the watch at timeoutSeconds
        assert all(json.loads(line)["type"] == "BOOKMARK" for line in lines)
        initial = http.get(f"/api/v1/namespaces/{namespace}/serviceaccounts", params={
            "watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"}).text.splitlines()
        last = json.loads(initial[-1])
        assert last["type"] == "BOOKMARK"
        assert last["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"}
        ssa = http.patch(f"/api/v1/namespaces/{namespace}/configmaps/x", content=b"{}",
                         headers={"Content-Type": "application/apply-patch+yaml"})
        assert ssa.status_code == 415 and "apply" in ssa.json()["message"]
        metrics = http.get("/metrics").text
        assert "apiserver_request_total{" in metrics
        assert 'resource="configmaps"' in metrics


def test_custom_resource_served_at_every_version(apiserver: RunningAPIServer,
                                                 namespace: str) -> None:
    ext = client.ApiextensionsV1Api(apiserver.client())
    schema = {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True}}
    ext.create_custom_resource_definition({
        "metadata": {"name": "things.example.net"},
        "spec": {"group": "example.net", "scope": "Namespaced",
                 "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                 "versions": [
                     {"name": "v1", "served": True, "storage": True, "schema": schema},
                     {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                 ]}})
    custom = client.CustomObjectsApi(apiserver.client())
    custom.create_namespaced_custom_object("example.net", "v1", namespace, "things", {
        "apiVersion": "example.net/v1", "kind": "Thing", "metadata": {"name": "t"}})
    old = custom.get_namespaced_custom_object("example.net", "v1beta1", namespace, "things", "t")
    assert old["apiVersion"] == "example.net/v1beta1"
    listed = custom.list_namespaced_custom_object("example.net", "v1beta1", namespace, "things")
    assert [i["apiVersion"] for i in listed["items"]] == ["example.net/v1beta1"]
    ext.delete_custom_resource_definition("things.example.net")
