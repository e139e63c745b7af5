"""PATCH bodies as kubectl 1.37 sends them, applied as kube-apiserver applies them.

The bodies marked "kubectl 1.37" were recorded verbatim from `kubectl` v1.37.1 talking to a
recording server (only the last-applied annotation's JSON is shortened to "<v2>"); the
expected objects are worked out from apimachinery's strategicpatch and evanphx/json-patch,
including the placement of new list items and the errors kube returns.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeless.apiserver import errors
from nodeless.apiserver.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_json_patch,
    apply_merge_patch,
    apply_patch,
    apply_strategic_merge_patch,
)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REJECTED = "the server rejected our request due to an error in our request"
GONE = object()  # an expected value meaning "the key is absent"


def live_deployment() -> dict[str, Any]:
    """The Deployment as stored after the first `kubectl apply`, server defaults and all."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "6f1c2d0e", "generation": 1,
            "resourceVersion": "101",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {LAST_APPLIED: "<v1>"},
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                         "env": [{"name": "MODE", "value": "prod"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"},
                                   {"containerPort": 8080, "protocol": "TCP"}],
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}]},
                        {"name": "sidecar", "image": "busybox:1.36",
                         "imagePullPolicy": "IfNotPresent", "args": ["sleep", "infinity"]},
                    ],
                    "volumes": [{"name": "config",
                                 "configMap": {"name": "web-config", "defaultMode": 420}}],
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web",
                                     "effect": "NoSchedule"}],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
        "status": {"replicas": 2, "readyReplicas": 2},
    }


def with_changes(doc: dict[str, Any], changes: dict[Any, Any]) -> dict[str, Any]:
    """`doc` with each path ("a.b.0.c" or a tuple of keys) set to its value, or removed."""
    out = copy.deepcopy(doc)
    for path, value in changes.items():
        keys = [int(k) if k.isdigit() else k for k in path.split(".")] if isinstance(
            path, str) else list(path)
        parent: Any = out
        for key in keys[:-1]:
            parent = parent[key]
        if value is GONE:
            del parent[keys[-1]]
        else:
            parent[keys[-1]] = value
    return out


def patched(content_type: str, doc: dict[str, Any], body: Any,
            schema: str | None = DEPLOYMENT) -> dict[str, Any]:
    """Apply through the HTTP entry point, checking the stored object is left alone."""
    before = copy.deepcopy(doc)
    result = apply_patch(content_type, doc, json.dumps(body).encode(), schema)
    assert doc == before
    return result


def containers_patch(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers), **spec}}}}


BOTH_CONTAINERS = [{"name": "web"}, {"name": "sidecar"}]
WEB_PORT = {"containerPort": 80, "protocol": "TCP"}
EDGE_LABELS = {"app": "web", "tier": "edge", "track": "stable"}

# ---- kubectl apply (client-side), the second time --------------------------------------

APPLY_CASES = [
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {
             "$setElementOrder/containers": BOTH_CONTAINERS,
             "containers": [{"image": "nginx:1.27", "name": "web"}]}}}},
        {"spec.template.spec.containers.0.image": "nginx:1.27"},
        id="changed-image"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {
             "$setElementOrder/containers": BOTH_CONTAINERS,
             "containers": [{"$setElementOrder/env": [{"name": "MODE"}, {"name": "LOG_LEVEL"}],
                             "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                             "name": "web"}]}}}},
        {"spec.template.spec.containers.0.env": [{"name": "MODE", "value": "prod"},
                                                 {"name": "LOG_LEVEL", "value": "debug"}]},
        id="added-env-var"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {
             "$setElementOrder/containers": BOTH_CONTAINERS,
             "containers": [{"$setElementOrder/ports": [{"containerPort": 80}],
                             "name": "web",
                             "ports": [{"$patch": "delete", "containerPort": 8080}]}]}}}},
        {"spec.template.spec.containers.0.ports": [WEB_PORT]},
        id="removed-container-port"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"},
                      "labels": {"tier": "edge", "track": "stable"}},
         "spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None,
                               "type": "Recreate"},
                  "template": {"metadata": {"labels": {"tier": "edge", "track": "stable"}}}}},
        {"metadata.labels": EDGE_LABELS,
         "spec.template.metadata.labels": EDGE_LABELS,
         "spec.strategy": {"type": "Recreate"}},
        id="changed-labels-and-strategy-retain-keys"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"},
                      "labels": {"tier": "edge", "track": "stable"}},
         "spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None,
                               "type": "Recreate"},
                  "template": {"metadata": {"labels": {"tier": "edge", "track": "stable"}},
                               "spec": {
                                   "$setElementOrder/containers": BOTH_CONTAINERS,
                                   "containers": [{
                                       "$setElementOrder/env": [{"name": "MODE"},
                                                                {"name": "LOG_LEVEL"}],
                                       "$setElementOrder/ports": [{"containerPort": 80}],
                                       "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                                       "image": "nginx:1.27", "name": "web",
                                       "ports": [{"$patch": "delete", "containerPort": 8080}],
                                   }]}}}},
        {"metadata.labels": EDGE_LABELS,
         "spec.template.metadata.labels": EDGE_LABELS,
         "spec.strategy": {"type": "Recreate"},
         "spec.template.spec.containers.0.image": "nginx:1.27",
         "spec.template.spec.containers.0.env": [{"name": "MODE", "value": "prod"},
                                                 {"name": "LOG_LEVEL", "value": "debug"}],
         "spec.template.spec.containers.0.ports": [WEB_PORT]},
        id="all-changes-at-once"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {
             "$setElementOrder/containers": BOTH_CONTAINERS,
             "$setElementOrder/volumes": [{"name": "config"}, {"name": "cache"}],
             "containers": [{
                 "$setElementOrder/volumeMounts": [{"mountPath": "/etc/web"},
                                                   {"mountPath": "/var/cache"}],
                 "name": "web",
                 "volumeMounts": [{"mountPath": "/etc/web", "readOnly": True},
                                  {"mountPath": "/var/cache", "name": "cache"}]}],
             "volumes": [{"$retainKeys": ["name", "secret"], "configMap": None,
                          "name": "config", "secret": {"secretName": "web-secret"}},
                         {"emptyDir": {"medium": "Memory"}, "name": "cache"}]}}}},
        {"spec.template.spec.containers.0.volumeMounts": [
            {"name": "config", "mountPath": "/etc/web", "readOnly": True},
            {"mountPath": "/var/cache", "name": "cache"}],
         "spec.template.spec.volumes": [
             {"name": "config", "secret": {"secretName": "web-secret"}},
             {"emptyDir": {"medium": "Memory"}, "name": "cache"}]},
        id="volume-source-swapped-and-mount-added"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {"tolerations": [
             {"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "web"},
             {"key": "spot", "operator": "Exists"}]}}}},
        {"spec.template.spec.tolerations": [
            {"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "web"},
            {"key": "spot", "operator": "Exists"}]},
        id="tolerations-replaced-whole"),
    pytest.param(
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"template": {"spec": {
             "$setElementOrder/containers": [{"name": "web"}],
             "containers": [{"$patch": "delete", "name": "sidecar"}]}}}},
        {"spec.template.spec.containers": live_deployment()["spec"]["template"]["spec"][
            "containers"][:1]},
        id="removed-container"),
]


@pytest.mark.parametrize(("body", "changes"), APPLY_CASES)
def test_kubectl_apply_second_time(body: dict[str, Any], changes: dict[str, Any]) -> None:
    live = live_deployment()
    expected = with_changes(live, {**changes, ("metadata", "annotations", LAST_APPLIED): "<v2>"})
    assert patched(STRATEGIC_MERGE_PATCH, live, body) == expected


def test_kubectl_apply_finalizers_primitive_list() -> None:
    """kubectl 1.37: finalizers [a, b] -> [b, c] deletes through the parallel list and
    orders through `$setElementOrder`."""
    live = with_changes(live_deployment(), {"metadata.finalizers": ["example.com/a",
                                                                    "example.com/b"]})
    body = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"],
                         "$setElementOrder/finalizers": ["example.com/b", "example.com/c"],
                         "annotations": {LAST_APPLIED: "<v2>"},
                         "finalizers": ["example.com/c"]}}
    result = patched(STRATEGIC_MERGE_PATCH, live, body)
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/c"]


def test_apply_keeps_server_only_items_where_they_were() -> None:
    """kubectl 1.37, config [web, sidecar] -> [sidecar, logger] over a live list with an
    injected proxy: the proxy keeps its place among the items `$setElementOrder` places."""
    live = live_deployment()
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.insert(1, {"name": "proxy", "image": "envoy"})  # web, proxy, sidecar
    body = containers_patch({"name": "logger", "image": "fluent-bit"},
                            {"$patch": "delete", "name": "web"})
    body["spec"]["template"]["spec"]["$setElementOrder/containers"] = [
        {"name": "sidecar"}, {"name": "logger"}]
    result = patched(STRATEGIC_MERGE_PATCH, live, body)
    names = [c["name"] for c in result["spec"]["template"]["spec"]["containers"]]
    assert names == ["proxy", "sidecar", "logger"]


# ---- other kubectl commands ------------------------------------------------------------

WEB = 0
SIDECAR = 1

COMMAND_CASES = [
    pytest.param(  # kubectl set image deploy/web web=nginx:1.28
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {"$setElementOrder/containers": BOTH_CONTAINERS,
                                        "containers": [{"image": "nginx:1.28",
                                                        "name": "web"}]}}}},
        {}, {"spec.template.spec.containers.0.image": "nginx:1.28"},
        id="set-image"),
    pytest.param(  # kubectl set env deploy/web -c web MODE=dev CACHE=on
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": BOTH_CONTAINERS,
            "containers": [{"$setElementOrder/env": [{"name": "MODE"}, {"name": "CACHE"}],
                            "env": [{"name": "MODE", "value": "dev"},
                                    {"name": "CACHE", "value": "on"}],
                            "name": "web"}]}}}},
        {}, {"spec.template.spec.containers.0.env": [{"name": "MODE", "value": "dev"},
                                                     {"name": "CACHE", "value": "on"}]},
        id="set-env-by-name"),
    pytest.param(  # kubectl set env deploy/web -c web CACHE-
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": BOTH_CONTAINERS,
            "containers": [{"$setElementOrder/env": [{"name": "MODE"}],
                            "env": [{"$patch": "delete", "name": "CACHE"}],
                            "name": "web"}]}}}},
        {"spec.template.spec.containers.0.env": [{"name": "MODE", "value": "prod"},
                                                 {"name": "CACHE", "value": "on"}]},
        {"spec.template.spec.containers.0.env": [{"name": "MODE", "value": "prod"}]},
        id="unset-env"),
    pytest.param(  # kubectl set resources deploy/web -c sidecar --limits=cpu=200m
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {
            "$setElementOrder/containers": BOTH_CONTAINERS,
            "containers": [{"name": "sidecar", "resources": {"limits": {"cpu": "200m"}}}]}}}},
        {}, {"spec.template.spec.containers.1.resources": {"limits": {"cpu": "200m"}}},
        id="set-resources"),
    pytest.param(  # kubectl edit: replicas 2 -> 3, sidecar image
        STRATEGIC_MERGE_PATCH,
        {"metadata": {"annotations": {LAST_APPLIED: "<v2>"}},
         "spec": {"replicas": 3, "template": {"spec": {
             "$setElementOrder/containers": BOTH_CONTAINERS,
             "containers": [{"image": "busybox:1.37", "name": "sidecar"}]}}}},
        {}, {"spec.replicas": 3, "spec.template.spec.containers.1.image": "busybox:1.37",
             ("metadata", "annotations", LAST_APPLIED): "<v2>"},
        id="edit"),
    pytest.param(  # kubectl patch deploy web -p '...$patch: delete...'
        STRATEGIC_MERGE_PATCH,
        containers_patch({"name": "sidecar", "$patch": "delete"}),
        {}, {"spec.template.spec.containers": live_deployment()["spec"]["template"]["spec"][
            "containers"][:1]},
        id="patch-delete-container"),
    pytest.param(  # kubectl patch deploy web -p '{"spec":{...tolerations...}}'
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {"tolerations": [{"key": "spot",
                                                         "operator": "Exists"}]}}}},
        {}, {"spec.template.spec.tolerations": [{"key": "spot", "operator": "Exists"}]},
        id="patch-tolerations-replace-whole-list"),
    pytest.param(  # kubectl label deploy web env=prod
        MERGE_PATCH, {"metadata": {"labels": {"env": "prod"}}},
        {}, {"metadata.labels.env": "prod"}, id="label"),
    pytest.param(  # kubectl label deploy web --overwrite tier=backend
        MERGE_PATCH, {"metadata": {"labels": {"tier": "backend"}}},
        {}, {"metadata.labels.tier": "backend"}, id="label-overwrite"),
    pytest.param(  # kubectl label deploy web tier-
        MERGE_PATCH, {"metadata": {"labels": {"tier": None}}},
        {}, {"metadata.labels.tier": GONE}, id="label-remove"),
    pytest.param(  # kubectl label deploy web app- (the last label)
        MERGE_PATCH, {"metadata": {"labels": {"app": None}}},
        {"metadata.labels": {"app": "web"}}, {"metadata.labels": {}},
        id="label-remove-last"),
    pytest.param(  # kubectl annotate deploy web example.com/note=hello
        MERGE_PATCH, {"metadata": {"annotations": {"example.com/note": "hello"}}},
        {}, {("metadata", "annotations", "example.com/note"): "hello"}, id="annotate"),
    pytest.param(  # kubectl annotate deploy web example.com/note-
        MERGE_PATCH, {"metadata": {"annotations": {"example.com/note": None}}},
        {("metadata", "annotations", "example.com/note"): "hello"},
        {("metadata", "annotations", "example.com/note"): GONE}, id="annotate-remove"),
]


@pytest.mark.parametrize(("content_type", "body", "before", "changes"), COMMAND_CASES)
def test_kubectl_commands(content_type: str, body: dict[str, Any], before: dict[str, Any],
                          changes: dict[str, Any]) -> None:
    live = with_changes(live_deployment(), before)
    assert patched(content_type, live, body) == with_changes(live, changes)


def test_kubectl_scale_merges_into_the_scale_subresource() -> None:
    """kubectl scale deploy web --replicas=5 (a merge patch on .../scale)."""
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
             "metadata": {"name": "web", "namespace": "default", "resourceVersion": "101"},
             "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}
    result = patched(MERGE_PATCH, scale, {"spec": {"replicas": 5}}, SCALE)
    assert result == with_changes(scale, {"spec.replicas": 5})


# ---- strategic merge patch semantics ---------------------------------------------------

SMP_CASES = [
    pytest.param(
        {"metadata": {"finalizers": ["example.com/c", "example.com/a"]}},
        {"metadata.finalizers": ["example.com/a", "example.com/b"]},
        {"metadata.finalizers": ["example.com/c", "example.com/a", "example.com/b"]},
        id="finalizers-merge-patch-items-first"),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}},
        {"metadata.finalizers": ["example.com/a", "example.com/b"]},
        {"metadata.finalizers": ["example.com/b"]},
        id="finalizers-delete-from-primitive-list"),
    pytest.param(
        containers_patch({"name": "web", "env": [{"name": "MODE", "value": "dev"}]}),
        {}, {"spec.template.spec.containers.0.env": [{"name": "MODE", "value": "dev"}]},
        id="env-by-name"),
    pytest.param(
        containers_patch({"name": "web", "volumeMounts": [{"mountPath": "/etc/web",
                                                           "readOnly": True}]}),
        {}, {"spec.template.spec.containers.0.volumeMounts": [
            {"name": "config", "mountPath": "/etc/web", "readOnly": True}]},
        id="volume-mount-by-mount-path"),
    pytest.param(
        {"spec": {"template": {"spec": {"volumes": [{"name": "config",
                                                     "configMap": {"optional": True}}]}}}},
        {}, {"spec.template.spec.volumes.0.configMap.optional": True},
        id="volume-by-name"),
    pytest.param(
        containers_patch({"name": "web", "ports": [{"containerPort": 8080, "name": "alt"}]}),
        {}, {"spec.template.spec.containers.0.ports.1.name": "alt"},
        id="port-by-container-port"),
    pytest.param(
        containers_patch({"name": "logger", "image": "fluent-bit"}),
        {}, {"spec.template.spec.containers": [
            {"name": "logger", "image": "fluent-bit"},
            *live_deployment()["spec"]["template"]["spec"]["containers"]]},
        id="new-container-without-order-goes-first"),
    pytest.param(
        containers_patch({"$patch": "replace"}, {"name": "solo", "image": "alpine"}),
        {}, {"spec.template.spec.containers": [{"name": "solo", "image": "alpine"}]},
        id="replace-directive-in-list"),
    pytest.param(
        {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "app": "web"}}}}},
        {}, {"spec.template.metadata.labels": {"app": "web"}},
        id="replace-directive-on-map"),
    pytest.param(
        {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}},
        {}, {"spec.strategy.rollingUpdate": {}},
        id="delete-directive-on-map"),
    pytest.param(
        {"spec": {"revisionHistoryLimit": None, "paused": None},
         "metadata": {"labels": {"tier": None}}},
        {}, {"spec.revisionHistoryLimit": GONE, "metadata.labels.tier": GONE},
        id="null-deletes"),
    pytest.param(
        {"spec": {"template": {"spec": {"securityContext": {"runAsUser": 1000,
                                                            "fsGroup": None}}}}},
        {}, {"spec.template.spec.securityContext": {"runAsUser": 1000}},
        id="new-map-drops-its-nulls"),
    pytest.param(
        {"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"],
                               "rollingUpdate": {"maxSurge": 2}}}},
        {}, {"spec.strategy.rollingUpdate.maxSurge": 2},
        id="retain-keys-keeping-everything"),
    pytest.param(
        {"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}},
        {"spec.template.spec.nodeSelector": {"zone": "a"}},
        {"spec.template.spec.nodeSelector": {"zone": "a", "disk": "ssd"}},
        id="additional-properties-map-merges"),
    pytest.param(
        containers_patch({"name": "sidecar", "args": ["sleep", "60"]}),
        {}, {"spec.template.spec.containers.1.args": ["sleep", "60"]},
        id="primitive-list-without-strategy-replaced"),
    pytest.param(
        {"spec": {"template": {"spec": {"containers": []}}}},
        {}, {}, id="empty-merge-list-changes-nothing"),
    pytest.param(None, {}, {}, id="null-body-changes-nothing"),
]


@pytest.mark.parametrize(("body", "before", "changes"), SMP_CASES)
def test_strategic_merge_patch(body: Any, before: dict[str, Any],
                               changes: dict[str, Any]) -> None:
    live = with_changes(live_deployment(), before)
    assert patched(STRATEGIC_MERGE_PATCH, live, body) == with_changes(live, changes)


def test_strategic_replace_strategy_replaces_the_map() -> None:
    """PodDisruptionBudget.spec.selector has patch strategy "replace"."""
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "web"},
           "spec": {"minAvailable": 1,
                    "selector": {"matchLabels": {"app": "web"},
                                 "matchExpressions": [{"key": "tier", "operator": "Exists"}]}}}
    body = {"spec": {"selector": {"matchLabels": {"app": "api"}}}}
    result = patched(STRATEGIC_MERGE_PATCH, pdb, body, "io.k8s.api.policy.v1.PodDisruptionBudget")
    assert result["spec"]["selector"] == {"matchLabels": {"app": "api"}}


def test_strategic_patch_does_not_mutate_its_body() -> None:
    body = containers_patch({"name": "web", "image": "x"}, {"$patch": "delete", "name": "sidecar"})
    frozen = copy.deepcopy(body)
    apply_strategic_merge_patch(live_deployment(), body, DEPLOYMENT)
    assert body == frozen


# ---- JSON patch and merge patch ---------------------------------------------------------

JSON_PATCH_CASES = [
    pytest.param([{"op": "add", "path": "/metadata/labels/env", "value": "prod"}],
                 {"metadata.labels.env": "prod"}, id="add"),
    pytest.param([{"op": "test", "path": "/metadata/labels/tier", "value": "frontend"},
                  {"op": "replace", "path": "/metadata/labels/tier", "value": "edge"}],
                 {"metadata.labels.tier": "edge"}, id="test-then-replace"),
    pytest.param([{"op": "replace", "path": "/metadata/labels/new", "value": "yes"}],
                 {"metadata.labels.new": "yes"}, id="replace-missing-member-adds-like-kube"),
    pytest.param([{"op": "test", "path": "/metadata/labels/missing", "value": None}],
                 {}, id="test-null-on-missing-member-passes-like-kube"),
    pytest.param([{"op": "remove", "path": "/spec/template/spec/containers/1/args/1"}],
                 {"spec.template.spec.containers.1.args": ["sleep"]}, id="remove"),
    pytest.param([{"op": "add", "path": "/spec/template/spec/tolerations/-",
                   "value": {"key": "spot", "operator": "Exists"}}],
                 {"spec.template.spec.tolerations": [
                     live_deployment()["spec"]["template"]["spec"]["tolerations"][0],
                     {"key": "spot", "operator": "Exists"}]}, id="append"),
    pytest.param([{"op": "copy", "from": "/metadata/labels/app",
                   "path": "/metadata/annotations/example.com~1app"}],
                 {("metadata", "annotations", "example.com/app"): "web"}, id="copy-escaped"),
    pytest.param([{"op": "move", "from": "/metadata/labels/tier",
                   "path": "/metadata/labels/layer"}],
                 {"metadata.labels.tier": GONE, "metadata.labels.layer": "frontend"},
                 id="move"),
    pytest.param([{"op": "replace", "path": "/spec/replicas", "value": 4}],
                 {"spec.replicas": 4}, id="replace"),
    pytest.param([], {}, id="empty"),
    pytest.param(None, {}, id="null"),
]


@pytest.mark.parametrize(("body", "changes"), JSON_PATCH_CASES)
def test_json_patch(body: Any, changes: dict[Any, Any]) -> None:
    live = live_deployment()
    assert patched(JSON_PATCH, live, body) == with_changes(live, changes)


MERGE_PATCH_CASES = [
    pytest.param({"spec": {"replicas": 3}}, {"spec.replicas": 3}, id="scalar"),
    pytest.param({"spec": {"template": {"spec": {"tolerations": []}}}},
                 {"spec.template.spec.tolerations": []}, id="lists-are-replaced"),
    pytest.param({"spec": {"strategy": None}}, {"spec.strategy": GONE}, id="null-deletes"),
    pytest.param({"spec": {"template": {"spec": {"nodeSelector": {"a": "b", "c": None}}}}},
                 {"spec.template.spec.nodeSelector": {"a": "b"}},
                 id="nulls-dropped-from-added-object"),
    pytest.param({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "x", "command": None}]}}}},
                 {"spec.template.spec.containers": [{"name": "only", "image": "x"}]},
                 id="nulls-dropped-inside-added-array"),
    pytest.param({"spec": {"selector": "app=web"}}, {"spec.selector": "app=web"},
                 id="object-replaced-by-scalar"),
    pytest.param({"status": {"readyReplicas": None, "conditions": [{"type": "Available"}]}},
                 {"status.readyReplicas": GONE, "status.conditions": [{"type": "Available"}]},
                 id="nested"),
]


@pytest.mark.parametrize(("body", "changes"), MERGE_PATCH_CASES)
def test_merge_patch(body: dict[str, Any], changes: dict[Any, Any]) -> None:
    live = live_deployment()
    assert patched(MERGE_PATCH, live, body) == with_changes(live, changes)


def test_merge_patch_on_custom_resource_without_schema() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 1, "items": [1, 2]}}
    result = patched(MERGE_PATCH, widget, {"spec": {"items": [3]}}, None)
    assert result["spec"] == {"size": 1, "items": [3]}


def test_content_type_parameters_are_ignored() -> None:
    result = apply_patch("application/merge-patch+json; charset=utf-8", live_deployment(),
                         b'{"spec":{"replicas":7}}', DEPLOYMENT)
    assert result["spec"]["replicas"] == 7


def test_the_parsed_entry_points_match_apply_patch() -> None:
    live = live_deployment()
    assert apply_merge_patch(live, {"spec": {"replicas": 1}})["spec"]["replicas"] == 1
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
    assert apply_json_patch(live, ops)["spec"]["replicas"] == 1
    assert live["spec"]["replicas"] == 2


# ---- errors, with kube-apiserver's codes and messages ----------------------------------

ERROR_CASES = [
    # Bodies that are not JSON, or not the JSON each patch type needs: 400.
    pytest.param(JSON_PATCH, b"[{", DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: unexpected end of JSON input", id="json-truncated"),
    pytest.param(MERGE_PATCH, b"{x}", DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: invalid character 'x' looking for beginning of "
                 "object key string", id="merge-bad-key"),
    pytest.param(STRATEGIC_MERGE_PATCH, b"nope", DEPLOYMENT, errors.BadRequest,
                 "invalid character 'n' looking for beginning of value", id="smp-not-json"),
    pytest.param(STRATEGIC_MERGE_PATCH, b"", DEPLOYMENT, errors.BadRequest,
                 "unexpected end of JSON input", id="smp-empty"),
    pytest.param(MERGE_PATCH, b'{"a": NaN}', DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: invalid character 'N' looking for beginning of value",
                 id="merge-nan"),
    pytest.param(MERGE_PATCH, b'{"a": 1} {}', DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: invalid character '{' after top-level value",
                 id="merge-trailing-data"),
    pytest.param(JSON_PATCH, b'{"op": "remove", "path": "/a"}', DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal object into Go value of type "
                 "[]handlers.jsonPatchOp", id="json-patch-not-a-list"),
    pytest.param(JSON_PATCH, b'["remove"]', DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal string into Go value of type "
                 "handlers.jsonPatchOp", id="json-patch-op-not-an-object"),
    pytest.param(JSON_PATCH, b'[{"op": 1, "path": "/a"}]', DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal number into Go struct field "
                 "jsonPatchOp.op of type string", id="json-patch-op-not-a-string"),
    pytest.param(MERGE_PATCH, b"[1]", DEPLOYMENT, errors.BadRequest,
                 "error decoding patch: json: cannot unmarshal array into Go value of type "
                 "map[string]interface {}", id="merge-patch-array"),
    pytest.param(MERGE_PATCH, b"null", DEPLOYMENT, errors.BadRequest,
                 "Invalid JSON Patch", id="merge-patch-null"),
    pytest.param(STRATEGIC_MERGE_PATCH, b'"x"', DEPLOYMENT, errors.BadRequest,
                 "json: cannot unmarshal string into Go value of type map[string]interface {}",
                 id="smp-string"),
    pytest.param(JSON_PATCH, json.dumps([{"op": "test", "path": "/a", "value": 1}] * 10001)
                 .encode(), DEPLOYMENT, errors.RequestEntityTooLarge,
                 "Request entity too large: The allowed maximum operations in a JSON patch is "
                 "10000, got 10001", id="json-patch-too-many-operations"),
    pytest.param(STRATEGIC_MERGE_PATCH, b"[" * 5000 + b"]" * 5000, DEPLOYMENT, errors.BadRequest,
                 "exceeded max depth", id="smp-too-deep"),
    # Malformed strategic directives kube reports as bad requests.
    pytest.param(STRATEGIC_MERGE_PATCH,
                 b'{"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}}',
                 DEPLOYMENT, errors.BadRequest, "invalid patch format of retainKeys",
                 id="retain-keys-not-a-list"),
    pytest.param(STRATEGIC_MERGE_PATCH,
                 b'{"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}',
                 DEPLOYMENT, errors.BadRequest, "invalid patch format of retainKeys",
                 id="retain-keys-omits-patched-field"),
    pytest.param(STRATEGIC_MERGE_PATCH,
                 b'{"metadata": {"$setElementOrderfinalizers": ["a"]}}', DEPLOYMENT,
                 errors.BadRequest, "invalid patch format of setElementOrder list",
                 id="set-element-order-bad-key"),
    pytest.param(STRATEGIC_MERGE_PATCH,
                 b'{"metadata": {"$deleteFromPrimitiveList": ["a"]}}', DEPLOYMENT,
                 errors.BadRequest, "invalid patch format of primitive list",
                 id="delete-from-primitive-list-bad-key"),
    # Content types.
    pytest.param(STRATEGIC_MERGE_PATCH, b"{}", None, errors.UnsupportedMediaType,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json",
                 id="smp-on-custom-resource"),
    pytest.param("application/json", b"{}", DEPLOYMENT, errors.UnsupportedMediaType,
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/strategic-merge-patch+json", id="unknown-content-type"),
    pytest.param("application/apply-patch+yaml", b"kind: Deployment", DEPLOYMENT,
                 errors.UnsupportedMediaType,
                 "server-side apply (application/apply-patch+yaml) is not supported yet; use "
                 "client-side `kubectl apply` (without --server-side), which sends a strategic "
                 "merge patch (a JSON merge patch for custom resources)",
                 id="server-side-apply"),
]


@pytest.mark.parametrize(("content_type", "body", "schema", "error", "message"), ERROR_CASES)
def test_refused_patches(content_type: str, body: bytes, schema: str | None,
                         error: type[errors.APIError], message: str) -> None:
    live = live_deployment()
    with pytest.raises(error) as raised:
        apply_patch(content_type, live, body, schema)
    assert raised.value.message == message
    assert live == live_deployment()


def test_server_side_apply_is_refused_with_415() -> None:
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        apply_patch("application/apply-patch+yaml", live_deployment(), b"{}", DEPLOYMENT)
    status = raised.value.status()
    assert (status["code"], status["reason"]) == (415, "UnsupportedMediaType")


# A JSON patch that does not apply: kube's bare 422, and ours says why in a cause.
JSON_PATCH_FAILURES = [
    pytest.param([{"op": "test", "path": "/metadata/labels/tier", "value": "nope"},
                  {"op": "replace", "path": "/metadata/labels/tier", "value": "x"}],
                 "testing value /metadata/labels/tier failed: test failed", id="test-fails"),
    pytest.param([{"op": "remove", "path": "/metadata/labels/missing"}],
                 "error in remove for path: '/metadata/labels/missing': Unable to remove "
                 "nonexistent key: missing: missing value", id="remove-missing-member"),
    pytest.param([{"op": "add", "path": "/spec/nothing/here", "value": 1}],
                 'add operation does not apply: doc is missing path: "/spec/nothing/here": '
                 "missing value", id="add-under-missing-parent"),
    pytest.param([{"op": "replace", "path": "/spec/template/spec/containers/5", "value": {}}],
                 "error in replace for path: '/spec/template/spec/containers/5': Unable to "
                 "access invalid index: 5: invalid index referenced", id="index-out-of-range"),
    pytest.param([{"op": "move", "from": "/metadata/labels/missing", "path": "/metadata/x"}],
                 "error in move for path: 'missing': Unable to remove nonexistent key: "
                 "missing: missing value", id="move-from-missing"),
    pytest.param([{"op": "append", "path": "/metadata/name", "value": "x"}],
                 "Unexpected kind: append", id="not-an-rfc-6902-operation"),
    pytest.param([{"path": "/metadata/name"}], "Unexpected kind: unknown", id="no-op-member"),
    pytest.param([{"op": "add", "value": 1}],
                 "add operation failed to decode path: missing value", id="no-path"),
    pytest.param([{"op": "replace", "path": "", "value": [1]}],
                 "the patched document is not a JSON object", id="root-replaced-by-a-list"),
]


@pytest.mark.parametrize(("body", "cause"), JSON_PATCH_FAILURES)
def test_json_patch_that_does_not_apply(body: list[Any], cause: str) -> None:
    live = live_deployment()
    with pytest.raises(errors.APIError) as raised:
        apply_patch(JSON_PATCH, live, json.dumps(body).encode(), DEPLOYMENT)
    status = raised.value.status()
    assert (status["code"], status["reason"], status["message"]) == (422, "Invalid", REJECTED)
    assert status["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": cause, "field": "patch"}]
    assert live == live_deployment()


# Strategic patches kube refuses with an untyped 500: nodeless answers 422, same message.
SMP_FAILURES = [
    pytest.param(containers_patch({"image": "x"}),
                 "map: map[image:x] does not contain declared merge key: name",
                 id="missing-merge-key"),
    pytest.param(containers_patch({"$patch": "delete", "image": "x"}),
                 "map: map[$patch:delete image:x] does not contain declared merge key: name",
                 id="delete-without-merge-key"),
    pytest.param(containers_patch({"name": "web", "$patch": "merge"}),
                 "merging lists cannot yet be specified in the patch",
                 id="merge-directive-in-list"),
    pytest.param({"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}},
                 "unknown patch type: merge in map: map[$patch:merge type:Recreate]",
                 id="merge-directive-on-map"),
    pytest.param(containers_patch({"name": "web", "$patch": "drop"}),
                 "unknown patch type: drop in map: map[$patch:drop name:web]",
                 id="unknown-list-directive"),
    pytest.param({"metadata": {"finalizers": ["a", 1]}},
                 "list element types are not identical: [[] [a 1]]",
                 id="mixed-element-types"),
    pytest.param({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
        "containers": [{"name": "web", "image": "x"}, {"name": "sidecar", "image": "y"}]}}}},
        "the order in patch list:\n[map[image:x name:web] map[image:y name:sidecar]]\n "
        "doesn't match $setElementOrder list:\n[map[name:sidecar] map[name:web]]",
        id="set-element-order-mismatch"),
    pytest.param({"spec": {"template": {"spec": {"$setElementOrder/containers": "web"}}}},
                 "expected a []interface {}, but received a string",
                 id="set-element-order-not-a-list"),
]


@pytest.mark.parametrize(("body", "message"), SMP_FAILURES)
def test_strategic_patch_kube_refuses_untyped(body: dict[str, Any], message: str) -> None:
    live = with_changes(live_deployment(), {"metadata.finalizers": []})
    with pytest.raises(errors.APIError) as raised:
        apply_strategic_merge_patch(live, body, DEPLOYMENT)
    assert (raised.value.code, raised.value.message) == (422, message)


def test_strategic_list_of_lists_is_unprocessable() -> None:
    live = with_changes(live_deployment(), {"metadata.finalizers": []})
    with pytest.raises(errors.APIError) as raised:
        apply_strategic_merge_patch(live, {"metadata": {"finalizers": [["b"]]}}, DEPLOYMENT)
    assert (raised.value.code, raised.value.message) == (422, REJECTED)
    assert raised.value.details == {"causes": [{
        "reason": "FieldValueInvalid", "message": "lists of lists are not supported",
        "field": "patch"}]}


def test_delete_directive_in_list_without_merge_key_is_refused() -> None:
    """Tolerations have no merge key, so kube copies the directive into the object and its
    strict decoding refuses it; kubectl shows "The request is invalid: patch: ..."."""
    body = {"spec": {"template": {"spec": {"tolerations": [{"key": "dedicated",
                                                            "$patch": "delete"}]}}}}
    with pytest.raises(errors.Invalid) as raised:
        apply_strategic_merge_patch(live_deployment(), body, DEPLOYMENT)
    assert raised.value.code == 422
    assert raised.value.message == (
        ' "" is invalid: patch: Invalid value: '
        '"map[spec:map[template:map[spec:map[tolerations:[map[$patch:delete key:dedicated]]]]]]"'
        ': strict decoding error: unknown field "spec.template.spec.tolerations[0].$patch"')


def test_custom_resources_get_no_strategic_merge_patch() -> None:
    with pytest.raises(errors.UnsupportedMediaType):
        apply_strategic_merge_patch({"metadata": {"name": "w"}}, {}, None)


# ---- odd input never crashes ------------------------------------------------------------

_KEYS = st.sampled_from([
    "$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers", "$deleteFromPrimitiveList/containers",
    "$setElementOrderx", "metadata", "spec", "template", "containers", "name", "image", "env",
    "finalizers", "labels", "ports", "containerPort", "tolerations", "strategy", "type",
    "volumes", "op", "path", "value", "from", "replace", "delete", "merge",
])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2),
                     st.sampled_from(["web", "sidecar", "replace", "delete", "merge", "/spec",
                                      "/metadata/labels/app", "add", "remove", "test"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=st.sampled_from([JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]),
       body=_JSON)
def test_odd_bodies_raise_api_errors_only(content_type: str, body: Any) -> None:
    live = with_changes(live_deployment(), {"metadata.finalizers": ["example.com/a"]})
    before = copy.deepcopy(live)
    try:
        result = apply_patch(content_type, live, json.dumps(body).encode(), DEPLOYMENT)
    except errors.APIError as refused:
        assert 400 <= refused.code < 500
    else:
        assert isinstance(result, dict)
    assert live == before


def test_json_patch_after_document_replaced_by_scalar_is_refused() -> None:
    """Found by fuzzing: once `add ""` made the document a scalar, a later operation on
    a path must be refused as not applicable, not crash."""
    body = json.dumps([{"op": "add", "path": "", "value": False},
                       {"op": "remove", "path": "/metadata"}]).encode()
    with pytest.raises(errors.APIError) as refused:
        apply_patch("application/json-patch+json", {"metadata": {"name": "x"}}, body,
                    "io.k8s.api.core.v1.Pod")
    assert refused.value.code == 422
