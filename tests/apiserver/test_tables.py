"""Server-side printing: the cells kube-apiserver would send, and real kubectl printing them.

Expected cells follow kube's printers (pkg/printers/internalversion) for the same objects;
every table is also checked against the meta.k8s.io/v1 Table shape, and a few are served
to the real kubectl 1.37 binary to prove it prints them as it prints kube's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web

from nodeless.apiserver.errors import BadRequest
from nodeless.apiserver.resources import schema
from nodeless.apiserver.resources.registry import Registry, ResourceType
from nodeless.apiserver.resources.tables import (
    JSONPath,
    human_duration,
    short_human_duration,
    to_table,
)
from nodeless.apiserver.resources.tables.common import _quantity

Obj = dict[str, Any]
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
REGISTRY = Registry()


def ago(**kw: float) -> str:
    """An RFC 3339 timestamp this long before NOW."""
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(group: str, plural: str) -> ResourceType:
    for t in REGISTRY:
        if (t.group, t.plural) == (group, plural):
            return t
    raise KeyError((group, plural))


def meta(name: str, *, age: timedelta = timedelta(minutes=5, seconds=3), **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}",
            "resourceVersion": "42", "creationTimestamp": (NOW - age).strftime(
                "%Y-%m-%dT%H:%M:%SZ"), **extra}


def cells(group: str, plural: str, obj: dict) -> list[Any]:
    table = to_table(rt(group, plural), [obj], now=NOW)
    validate_table(table)
    return table["rows"][0]["cells"]


def column_names(table: dict, wide: bool = False) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]


# The meta.k8s.io/v1 Table as the Go types define it (apimachinery meta/v1 types.go). The
# OpenAPI definitions kubernetes-validate ships leave Table out, so it is written here.
TABLE_SCHEMA = {
    "type": "object",
    "required": ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "Table"},
        "apiVersion": {"enum": ["meta.k8s.io/v1", "meta.k8s.io/v1beta1"]},
        "metadata": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "selfLink": {"type": "string"},
                "resourceVersion": {"type": "string"},
                "continue": {"type": "string"},
                "remainingItemCount": {"type": "integer"},
            },
        },
        "columnDefinitions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "type", "format", "description", "priority"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "type": {"enum": ["integer", "number", "string", "boolean", "date"]},
                "format": {"type": "string"},
                "description": {"type": "string"},
                "priority": {"type": "integer", "minimum": 0},
            },
        }},
        "rows": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["cells"],
            "properties": {
                "cells": {"type": "array", "items": {
                    "type": ["string", "integer", "number", "boolean", "null"]}},
                "conditions": {"type": "array", "items": {
                    "type": "object", "required": ["type", "status"],
                    "properties": {"type": {"type": "string"},
                                   "status": {"enum": ["True", "False", "Unknown"]},
                                   "reason": {"type": "string"},
                                   "message": {"type": "string"}}}},
                "object": {"type": "object", "required": ["apiVersion", "kind", "metadata"]},
            },
        }},
    },
}


def validate_table(table: dict) -> None:
    """The Table schema, plus what the schema cannot say: one cell per column."""
    definition = schema.definitions().get("io.k8s.apimachinery.pkg.apis.meta.v1.Table")
    jsonschema.validate(table, TABLE_SCHEMA)
    if definition is not None:  # should a later schema bundle carry it, check that too
        jsonschema.validate(table, {**definition, "$defs": schema.definitions()})
    for row in table["rows"]:
        if table["columnDefinitions"]:
            assert len(row["cells"]) == len(table["columnDefinitions"])


# ---------------------------------------------------------------------------------------
# Durations and quantities, as kube's own unit tests state them


@pytest.mark.parametrize(("seconds", "want"), [
    (-2, "<invalid>"), (-1, "0s"), (0, "0s"), (1, "1s"), (119, "119s"), (120, "2m"),
    (121, "2m1s"), (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
    (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600 + 59 * 60, "47h"),
    (48 * 3600, "2d"), (49 * 3600, "2d1h"), (8 * 86400, "8d"), (2 * 365 * 86400, "2y"),
    (2 * 365 * 86400 + 86400, "2y1d"), (8 * 365 * 86400, "8y"),
])
def test_human_duration(seconds: int, want: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == want


@pytest.mark.parametrize(("seconds", "want"), [
    (-2, "<invalid>"), (-1, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"),
    (86400, "1d"), (365 * 86400, "1y"), (303, "5m"),
])
def test_short_human_duration(seconds: int, want: str) -> None:
    assert short_human_duration(timedelta(seconds=seconds)) == want


@pytest.mark.parametrize(("given", "want"), [
    ("10Gi", "10Gi"), ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"), ("2000", "2k"),
    ("1000m", "1"), ("0.5", "500m"), ("100m", "100m"), ("1e3", "1e3"), ("0", "0"),
    (5, "5"), (None, "0"), ("512", "512"),
])
def test_quantity_canonical_form(given: Any, want: str) -> None:
    assert _quantity(given) == want


# ---------------------------------------------------------------------------------------
# Pods


def container_status(name: str, **kw: Any) -> Obj:
    return {"name": name, "image": "nginx", "imageID": "", "ready": False, "restartCount": 0,
            "state": {}, **kw}


RUNNING = {"running": {"startedAt": ago(minutes=5)}}


def pod(name: str, *, containers: int = 1, init: list[dict] | None = None,
        status: dict | None = None, **meta_extra: Any) -> Obj:
    spec: dict = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
                  "nodeName": "fargate-ip-10-0-1-5"}
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, **meta_extra),
            "spec": spec, "status": status or {"phase": "Pending"}}


WEB_POD = pod("web", containers=2, status={
    "phase": "Running", "podIP": "10.0.1.17", "podIPs": [{"ip": "10.0.1.17"}],
    "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [container_status("c0", ready=True, state=RUNNING),
                          container_status("c1", ready=True, state=RUNNING)]})
CRASH_POD = pod("crash", status={"phase": "Running", "containerStatuses": [container_status(
    "c0", restartCount=5, state={"waiting": {"reason": "CrashLoopBackOff"}},
    lastState={"terminated": {"exitCode": 1, "reason": "Error",
                              "finishedAt": ago(seconds=90)}})]})
INIT_POD = pod("init", init=[{"name": "i0"}, {"name": "i1"}], status={
    "phase": "Pending",
    "initContainerStatuses": [
        container_status("i0", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
        container_status("i1", state={"running": {}})],
    "containerStatuses": [container_status("c0", state={"waiting": {
        "reason": "PodInitializing"}})]})
TERMINATING_POD = pod("bye", deletionTimestamp=ago(seconds=5), status={
    "phase": "Running",
    "containerStatuses": [container_status("c0", ready=True, state=RUNNING)]})
DONE_POD = pod("done", status={"phase": "Succeeded", "containerStatuses": [container_status(
    "c0", state={"terminated": {"exitCode": 0, "reason": "Completed"}})]})

POD_CASES = [
    pytest.param(
        WEB_POD,
        ["web", "2/2", "Running", "0", "5m3s", "10.0.1.17", "fargate-ip-10-0-1-5", "<none>",
         "<none>"], id="running-two-containers"),
    pytest.param(
        CRASH_POD,
        ["crash", "0/1", "CrashLoopBackOff", "5 (90s ago)", "5m3s"], id="crashloop"),
    pytest.param(
        pod("pull", status={"phase": "Pending", "containerStatuses": [container_status(
            "c0", state={"waiting": {"reason": "ErrImagePull"}})]}),
        ["pull", "0/1", "ErrImagePull", "0", "5m3s"], id="err-image-pull"),
    pytest.param(
        pod("pending", status={"phase": "Pending"}),
        ["pending", "0/1", "Pending", "0", "5m3s", "<none>", "fargate-ip-10-0-1-5"],
        id="pending"),
    pytest.param(
        pod("gated", status={"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        ["gated", "0/1", "SchedulingGated", "0", "5m3s"], id="scheduling-gated"),
    pytest.param(
        INIT_POD,
        ["init", "0/1", "Init:1/2", "0", "5m3s"], id="init-running"),
    pytest.param(
        pod("initcrash", init=[{"name": "i0"}], status={
            "phase": "Pending",
            "initContainerStatuses": [container_status(
                "i0", restartCount=3, state={"waiting": {"reason": "CrashLoopBackOff"}},
                lastState={"terminated": {"exitCode": 2, "finishedAt": ago(minutes=3)}})]}),
        ["initcrash", "0/1", "Init:CrashLoopBackOff", "3 (3m ago)", "5m3s"],
        id="init-crashloop"),
    pytest.param(
        pod("initfail", init=[{"name": "i0"}], status={
            "phase": "Failed",
            "initContainerStatuses": [container_status(
                "i0", state={"terminated": {"exitCode": 3}})]}),
        ["initfail", "0/1", "Init:ExitCode:3", "0", "5m3s"], id="init-exit-code"),
    pytest.param(
        pod("sidecar", init=[{"name": "proxy", "restartPolicy": "Always"}], status={
            "phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [container_status(
                "proxy", started=True, ready=True, restartCount=1, state=RUNNING,
                lastState={"terminated": {"exitCode": 1, "finishedAt": ago(hours=2)}})],
            "containerStatuses": [container_status("c0", ready=True, state=RUNNING)]}),
        ["sidecar", "2/2", "Running", "1 (120m ago)", "5m3s"], id="sidecar-counts"),
    pytest.param(
        TERMINATING_POD,
        ["bye", "1/1", "Terminating", "0", "5m3s"], id="terminating"),
    pytest.param(
        pod("lost", deletionTimestamp=ago(seconds=5), status={
            "phase": "Running", "reason": "NodeLost"}),
        ["lost", "0/1", "Unknown", "0", "5m3s"], id="node-lost"),
    pytest.param(
        DONE_POD,
        ["done", "0/1", "Completed", "0", "5m3s"], id="completed"),
    pytest.param(
        pod("oom", status={"phase": "Failed", "containerStatuses": [container_status(
            "c0", state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})]}),
        ["oom", "0/1", "OOMKilled", "0", "5m3s"], id="oom-killed"),
    pytest.param(
        pod("sig", status={"phase": "Failed", "containerStatuses": [container_status(
            "c0", state={"terminated": {"exitCode": 0, "signal": 9}})]}),
        ["sig", "0/1", "Signal:9", "0", "5m3s"], id="signal"),
    pytest.param(
        pod("half", containers=2, status={
            "phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                container_status("c0", state={"terminated": {"exitCode": 0,
                                                             "reason": "Completed"}}),
                container_status("c1", ready=True, state=RUNNING)]}),
        ["half", "1/2", "NotReady", "0", "5m3s"], id="completed-with-running-not-ready"),
    pytest.param(
        {**pod("gates", status={
            "phase": "Running", "podIPs": [{"ip": "10.0.1.9"}],
            "nominatedNodeName": "n2",
            "conditions": [{"type": "example.com/lb", "status": "True"},
                           {"type": "example.com/dns", "status": "False"}],
            "containerStatuses": [container_status("c0", ready=True, state=RUNNING)]}),
         "spec": {"containers": [{"name": "c0"}],
                  "readinessGates": [{"conditionType": "example.com/lb"},
                                     {"conditionType": "example.com/dns"}]}},
        ["gates", "1/1", "Running", "0", "5m3s", "10.0.1.9", "<none>", "n2", "1/2"],
        id="wide-readiness-gates"),
]


@pytest.mark.parametrize(("obj", "want"), POD_CASES)
def test_pod_cells(obj: dict, want: list[Any]) -> None:
    assert cells("", "pods", obj)[:len(want)] == want


def test_pod_columns_and_completed_condition() -> None:
    table = to_table(rt("", "pods"), [DONE_POD], now=NOW)
    assert column_names(table) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert column_names(table, wide=True)[5:] == ["IP", "Node", "Nominated Node",
                                                  "Readiness Gates"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][5]["description"].startswith("podIP address")
    assert table["rows"][0]["conditions"] == [{
        "type": "Completed", "status": "True", "reason": "Succeeded",
        "message": "The pod has completed successfully."}]


# ---------------------------------------------------------------------------------------
# Nodes


def node(name: str, *, ready: str | None = "True", unschedulable: bool = False,
         labels: dict | None = None) -> Obj:
    status: dict = {
        "addresses": [{"type": "InternalIP", "address": "10.0.1.5"},
                      {"type": "Hostname", "address": name}],
        "nodeInfo": {"kubeletVersion": "v1.37.0-nodeless", "osImage": "Amazon Linux 2023",
                     "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0"},
        "conditions": [{"type": "MemoryPressure", "status": "False"}],
    }
    if ready is not None:
        status["conditions"].append({"type": "Ready", "status": ready})
    return {"metadata": {**meta(name, age=timedelta(days=3, hours=2)), "labels": labels or {}},
            "spec": {"unschedulable": unschedulable}, "status": status}


@pytest.mark.parametrize(("obj", "want"), [
    (node("a"), ["a", "Ready", "<none>", "3d2h", "v1.37.0-nodeless", "10.0.1.5", "<none>",
                 "Amazon Linux 2023", "6.1.0", "containerd://2.0"]),
    (node("b", ready="Unknown"), ["b", "NotReady"]),
    (node("c", ready="False", unschedulable=True), ["c", "NotReady,SchedulingDisabled"]),
    (node("d", ready=None), ["d", "Unknown"]),
    (node("e", unschedulable=True, labels={
        "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/fargate": "",
        "kubernetes.io/role": "edge", "node-role.kubernetes.io/": "x"}),
     ["e", "Ready,SchedulingDisabled", "edge,fargate,worker"]),
])
def test_node_cells(obj: dict, want: list[Any]) -> None:
    assert cells("", "nodes", obj)[:len(want)] == want


# ---------------------------------------------------------------------------------------
# Services and the other core types


def service(name: str, spec: dict, status: dict | None = None) -> Obj:
    return {"metadata": meta(name), "spec": spec, "status": status or {}}


@pytest.mark.parametrize(("obj", "want"), [
    (service("web", {"type": "NodePort", "clusterIP": "10.96.0.20",
                     "clusterIPs": ["10.96.0.20"], "selector": {"app": "web", "tier": "fe"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 443, "nodePort": 30443, "protocol": "TCP"}]}),
     ["web", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP,443:30443/TCP", "5m3s",
      "app=web,tier=fe"]),
    (service("dns", {"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [
        {"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}),
     ["dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "5m3s", "<none>"]),
    (service("headless", {"type": "ClusterIP", "clusterIP": "None"}),
     ["headless", "ClusterIP", "None", "<none>", "<none>"]),
    (service("lb", {"type": "LoadBalancer", "clusterIP": "10.96.0.30",
                    "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
     ["lb", "LoadBalancer", "10.96.0.30", "<pending>", "80:31000/TCP"]),
    (service("lb2", {"type": "LoadBalancer", "clusterIP": "10.96.0.31", "externalIPs": [
        "1.2.3.4"]}, {"loadBalancer": {"ingress": [
            {"hostname": "a-very-long-name.elb.us-east-1.amazonaws.com"}, {"ip": "5.6.7.8"}]}}),
     ["lb2", "LoadBalancer", "10.96.0.31",
      "5.6.7.8,a-very-long-name.elb.us-east-1.amazonaws.com,1.2.3.4"]),
    (service("ext", {"type": "ExternalName", "externalName": "db.example.com"}),
     ["ext", "ExternalName", "<none>", "db.example.com", "<none>"]),
])
def test_service_cells(obj: dict, want: list[Any]) -> None:
    assert cells("", "services", obj)[:len(want)] == want


SIMPLE_CASES: list[tuple[str, str, Obj, list[Any]]] = [
    ("", "namespaces", {"metadata": meta("prod"), "status": {"phase": "Active"}},
     ["prod", "Active", "5m3s"]),
    ("", "configmaps", {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"},
                        "binaryData": {"c": "AA=="}}, ["cfg", 3, "5m3s"]),
    ("", "secrets", {"metadata": meta("tls"), "type": "kubernetes.io/tls",
                     "data": {"tls.crt": "", "tls.key": ""}},
     ["tls", "kubernetes.io/tls", 2, "5m3s"]),
    ("", "serviceaccounts", {"metadata": meta("default")}, ["default", 0, "5m3s"]),
    ("", "endpoints", {"metadata": meta("web"), "subsets": [{
        "addresses": [{"ip": "10.0.1.17"}, {"ip": "10.0.1.18"}, {"ip": "fd00::1"}],
        "ports": [{"port": 8080}, {"port": 9090}]}]},
     ["web", "10.0.1.17:8080,10.0.1.18:8080,[fd00::1]:8080 + 3 more...", "5m3s"]),
    ("", "endpoints", {"metadata": meta("none")}, ["none", "<none>", "5m3s"]),
    ("discovery.k8s.io", "endpointslices", {
        "metadata": meta("web-abc"), "addressType": "IPv4",
        "ports": [{"port": 8080, "name": "http"}, {"name": "metrics"}, {}],
        "endpoints": [{"addresses": ["10.0.1.17"]}, {"addresses": ["10.0.1.18"]}]},
     ["web-abc", "IPv4", "8080,metrics,*", "10.0.1.17,10.0.1.18", "5m3s"]),
    ("discovery.k8s.io", "endpointslices", {"metadata": meta("empty"), "addressType": "IPv4"},
     ["empty", "IPv4", "<unset>", "<unset>", "5m3s"]),
    ("coordination.k8s.io", "leases", {"metadata": meta("fargate-ip-10-0-1-5"), "spec": {
        "holderIdentity": "fargate-ip-10-0-1-5"}},
     ["fargate-ip-10-0-1-5", "fargate-ip-10-0-1-5", "5m3s"]),
    ("", "persistentvolumeclaims", {"metadata": meta("data"), "spec": {
        "volumeName": "pv-1", "storageClassName": "gp3", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"},
                   "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}},
     ["data", "Bound", "pv-1", "10Gi", "RWO,ROX", "gp3", "<unset>", "5m3s", "Filesystem"]),
    ("", "persistentvolumeclaims", {"metadata": meta("wait"), "spec": {
        "storageClassName": "gp3", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}},
     ["wait", "Pending", "", "", "", "gp3", "<unset>", "5m3s", "<unset>"]),
    ("", "persistentvolumes", {"metadata": meta("pv-1"), "spec": {
        "capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp3",
        "claimRef": {"namespace": "default", "name": "data"}},
        "status": {"phase": "Bound"}},
     ["pv-1", "1Gi", "RWO", "Delete", "Bound", "default/data", "gp3", "<unset>", "", "5m3s",
      "<unset>"]),
    ("", "resourcequotas", {"metadata": meta("q"), "status": {
        "hard": {"pods": "10", "requests.cpu": "4", "limits.memory": "8Gi"},
        "used": {"pods": "3", "requests.cpu": "500m"}}},
     ["q", "pods: 3/10, requests.cpu: 500m/4", "limits.memory: 0/8Gi", "5m3s"]),
    ("networking.k8s.io", "ingresses", {"metadata": meta("web"), "spec": {
        "ingressClassName": "alb", "tls": [{"hosts": ["a.example.com"]}],
        "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"},
                  {"host": "c.example.com"}, {"host": "d.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-web.elb.amazonaws.com"}]}}},
     ["web", "alb", "a.example.com,b.example.com,c.example.com + 2 more...",
      "k8s-web.elb.amazonaws.com", "80, 443", "5m3s"]),
    ("networking.k8s.io", "ingresses", {"metadata": meta("bare"), "spec": {}},
     ["bare", "<none>", "*", "", "80", "5m3s"]),
    ("networking.k8s.io", "ingressclasses", {"metadata": meta("alb"), "spec": {
        "controller": "ingress.k8s.aws/alb", "parameters": {
            "apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": "p"}}},
     ["alb", "ingress.k8s.aws/alb", "IngressClassParams.elbv2.k8s.aws/p", "5m3s"]),
    ("networking.k8s.io", "networkpolicies", {"metadata": meta("deny"), "spec": {
        "podSelector": {}}}, ["deny", "<none>", "5m3s"]),
    ("networking.k8s.io", "networkpolicies", {"metadata": meta("db"), "spec": {
        "podSelector": {"matchLabels": {"app": "db"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "canary", "operator": "DoesNotExist"}]}}},
     ["db", "app=db,!canary,tier in (a,b)", "5m3s"]),
    ("autoscaling", "horizontalpodautoscalers", {"metadata": meta("web"), "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 10, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {
                "type": "AverageValue", "averageValue": "512Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
                "type": "AverageValue", "averageValue": "1k"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": 35, "averageValue": "120m"}}}]}},
     ["web", "Deployment/web", "cpu: 35%/80%, memory: <unknown>/512Mi + 1 more...", "2", 10,
      3, "5m3s"]),
    ("autoscaling", "horizontalpodautoscalers", {"metadata": meta("none"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}},
     ["none", "Deployment/x", "<none>", "<unset>", 3, 0, "5m3s"]),
    ("policy", "poddisruptionbudgets", {"metadata": meta("web"), "spec": {
        "minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}},
     ["web", "50%", "N/A", 1, "5m3s"]),
    ("storage.k8s.io", "storageclasses", {"metadata": {**meta("gp3"), "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True},
     ["gp3 (default)", "ebs.csi.aws.com", "Delete", "WaitForFirstConsumer", True, "5m3s"]),
    ("scheduling.k8s.io", "priorityclasses", {"metadata": meta("system-node-critical"),
                                              "value": 2000001000,
                                              "preemptionPolicy": "PreemptLowerPriority"},
     ["system-node-critical", 2000001000, False, "5m3s", "PreemptLowerPriority"]),
    ("rbac.authorization.k8s.io", "rolebindings", {
        "metadata": meta("read"), "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                     {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"}]},
     ["read", "Role/reader", "5m3s", "alice, bob", "devs", "ci/bot"]),
    ("rbac.authorization.k8s.io", "clusterrolebindings", {
        "metadata": meta("admin"), "roleRef": {"kind": "ClusterRole", "name": "admin"}},
     ["admin", "ClusterRole/admin", "5m3s", "", "", ""]),
    ("rbac.authorization.k8s.io", "roles", {"metadata": meta("reader")},
     ["reader", (NOW - timedelta(minutes=5, seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")]),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", {
        "metadata": meta("fargate"), "webhooks": [{"name": "a"}, {"name": "b"}]},
     ["fargate", 2, "5m3s"]),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", {
        "metadata": meta("v")}, ["v", 0, "5m3s"]),
    ("apiextensions.k8s.io", "customresourcedefinitions", {
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-05-01T08:00:00Z"}},
     ["widgets.example.com", "2025-05-01T08:00:00Z"]),
]


@pytest.mark.parametrize(("group", "plural", "obj", "want"), SIMPLE_CASES,
                         ids=[f"{c[1]}-{c[2]['metadata']['name']}" for c in SIMPLE_CASES])
def test_simple_types(group: str, plural: str, obj: dict, want: list[Any]) -> None:
    assert cells(group, plural, obj) == want


@pytest.mark.parametrize(("group", "plural", "want"), [
    ("", "configmaps", ["Name", "Data", "Age"]),
    ("", "secrets", ["Name", "Type", "Data", "Age"]),
    ("", "persistentvolumeclaims", ["Name", "Status", "Volume", "Capacity", "Access Modes",
                                    "StorageClass", "VolumeAttributesClass", "Age"]),
    ("apps", "deployments", ["Name", "Ready", "Up-to-date", "Available", "Age"]),
    ("apps", "replicasets", ["Name", "Desired", "Current", "Ready", "Age"]),
    ("apps", "statefulsets", ["Name", "Ready", "Age"]),
    ("batch", "jobs", ["Name", "Status", "Completions", "Duration", "Age"]),
    ("batch", "cronjobs", ["Name", "Schedule", "Timezone", "Suspend", "Active",
                           "Last Schedule", "Age"]),
    ("", "events", ["Last Seen", "Type", "Reason", "Object", "Message"]),
    ("autoscaling", "horizontalpodautoscalers", ["Name", "Reference", "Targets", "MinPods",
                                                 "MaxPods", "Replicas", "Age"]),
    ("rbac.authorization.k8s.io", "clusterroles", ["Name", "Created At"]),
    ("", "limitranges", ["Name", "Created At"]),
])
def test_default_columns(group: str, plural: str, want: list[str]) -> None:
    assert column_names(to_table(rt(group, plural), [], now=NOW)) == want


# ---------------------------------------------------------------------------------------
# Workloads


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
    {"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit:3"}]}}


def test_deployment_mid_rollout() -> None:
    deploy = {"metadata": meta("web"), "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 4, "updatedReplicas": 2, "readyReplicas": 1,
                   "availableReplicas": 1, "unavailableReplicas": 3}}
    assert cells("apps", "deployments", deploy) == [
        "web", "1/3", 2, 1, "5m3s", "web,log", "nginx:1.27,fluent-bit:3", "app=web"]


def test_replicaset_daemonset_statefulset() -> None:
    selector = {"matchLabels": {"app": "web"}}
    rs = {"metadata": meta("web-7d4b9c"), "spec": {"replicas": 2, "selector": selector,
                                                   "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("apps", "replicasets", rs) == [
        "web-7d4b9c", 2, 2, 1, "5m3s", "web,log", "nginx:1.27,fluent-bit:3", "app=web"]
    ds = {"metadata": meta("agent"), "spec": {"selector": selector, "template": {
        "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [
            {"name": "a", "image": "agent:1"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert cells("apps", "daemonsets", ds) == [
        "agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "5m3s", "a", "agent:1", "app=web"]
    sts = {"metadata": meta("db"), "spec": {"template": TEMPLATE}, "status": {}}
    assert cells("apps", "statefulsets", sts) == [
        "db", "0/1", "5m3s", "web,log", "nginx:1.27,fluent-bit:3"]


def job(name: str, spec: dict, status: dict, **meta_extra: Any) -> Obj:
    return {"metadata": meta(name, **meta_extra), "spec": {
        "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}},
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}, **spec},
        "status": status}


def condition(type_: str, status: str = "True") -> Obj:
    return {"type": type_, "status": status}


@pytest.mark.parametrize(("obj", "want"), [
    (job("running", {"completions": 1}, {"startTime": ago(minutes=5, seconds=3),
                                         "active": 1}),
     ["running", "Running", "0/1", "5m3s", "5m3s", "pi", "perl:5",
      "batch.kubernetes.io/controller-uid=u1"]),
    (job("done", {"completions": 3, "parallelism": 3}, {
        "startTime": ago(minutes=5), "completionTime": ago(minutes=4, seconds=20),
        "succeeded": 3, "conditions": [condition("SuccessCriteriaMet"),
                                       condition("Complete")]}),
     ["done", "Complete", "3/3", "40s", "5m3s"]),
    (job("failed", {}, {"startTime": ago(hours=1), "completionTime": ago(minutes=30),
                        "failed": 7, "conditions": [condition("FailureTarget"),
                                                    condition("Failed")]}),
     ["failed", "Failed", "0/1", "30m", "5m3s"]),
    (job("failing", {"parallelism": 4}, {"startTime": ago(minutes=2),
                                         "conditions": [condition("FailureTarget")]}),
     ["failing", "FailureTarget", "0/1 of 4", "2m", "5m3s"]),
    (job("paused", {"suspend": True}, {"conditions": [condition("Suspended"),
                                                      condition("Complete", "False")]}),
     ["paused", "Suspended", "0/1", "", "5m3s"]),
    (job("going", {}, {"startTime": ago(minutes=1)}, deletionTimestamp=ago(seconds=1)),
     ["going", "Terminating", "0/1", "60s", "5m3s"]),
])
def test_job_cells(obj: dict, want: list[Any]) -> None:
    assert cells("batch", "jobs", obj)[:len(want)] == want


def test_cronjob_cells() -> None:
    cj = {"metadata": meta("backup"), "spec": {
        "schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "b", "image": "backup:2"}]}}}}},
        "status": {"lastScheduleTime": ago(minutes=4), "active": [{"name": "backup-1"}]}}
    assert cells("batch", "cronjobs", cj) == [
        "backup", "*/5 * * * *", "Etc/UTC", "<unset>", 1, "4m", "5m3s", "b", "backup:2",
        "<none>"]
    cj["spec"]["suspend"] = False
    del cj["status"]["lastScheduleTime"]
    assert cells("batch", "cronjobs", cj)[3:6] == ["False", 1, "<none>"]


def test_controllerrevision_cells() -> None:
    cr = {"metadata": {**meta("db-6f7c"), "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True,
         "uid": "u"}]}, "revision": 2}
    assert cells("apps", "controllerrevisions", cr) == ["db-6f7c", "statefulset.apps/db", 2,
                                                        "5m3s"]


# ---------------------------------------------------------------------------------------
# Events, both APIs


CORE_EVENT: Obj = {
    "apiVersion": "v1", "kind": "Event", "metadata": meta("web.17f3a"),
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web",
                       "fieldPath": "spec.containers{c0}"},
    "reason": "BackOff", "message": "Back-off restarting failed container c0\n",
    "type": "Warning", "source": {"component": "kubelet", "host": "fargate-ip-10-0-1-5"},
    "firstTimestamp": ago(minutes=12), "lastTimestamp": ago(seconds=30), "count": 7,
}


def test_core_event_cells() -> None:
    assert cells("", "events", CORE_EVENT) == [
        "30s", "Warning", "BackOff", "pod/web", "spec.containers{c0}",
        "kubelet, fargate-ip-10-0-1-5", "Back-off restarting failed container c0", "12m", 7,
        "web.17f3a"]


def test_new_style_core_event_uses_event_time_and_series() -> None:
    event = {"metadata": meta("sched.1"), "involvedObject": {"kind": "Pod", "name": "web"},
             "reason": "Scheduled", "message": "Assigned", "type": "Normal",
             "eventTime": "2025-06-01T11:58:00.000000Z", "reportingComponent": "scheduler",
             "reportingInstance": "fargate-scheduler-1"}
    assert cells("", "events", event) == [
        "2m", "Normal", "Scheduled", "pod/web", "", "scheduler, fargate-scheduler-1",
        "Assigned", "2m", 1, "sched.1"]
    event["series"] = {"count": 4, "lastObservedTime": "2025-06-01T11:59:30.000000Z"}
    assert cells("", "events", event)[0] == "30s"
    assert cells("", "events", event)[8] == 4


def test_events_k8s_io_event_prints_like_core() -> None:
    event = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("web.17f3a"),
        "regarding": CORE_EVENT["involvedObject"], "reason": "BackOff",
        "note": CORE_EVENT["message"], "type": "Warning",
        "deprecatedSource": CORE_EVENT["source"],
        "deprecatedFirstTimestamp": CORE_EVENT["firstTimestamp"],
        "deprecatedLastTimestamp": CORE_EVENT["lastTimestamp"], "deprecatedCount": 7,
        "eventTime": None, "reportingController": "", "reportingInstance": "",
    }
    assert cells("events.k8s.io", "events", event) == cells("", "events", CORE_EVENT)


# ---------------------------------------------------------------------------------------
# Custom resources


WIDGET_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
             "versions": [
                 {"name": "v1", "served": True, "storage": True,
                  "schema": {"openAPIV3Schema": {"type": "object"}},
                  "additionalPrinterColumns": [
                      {"name": "Ready", "type": "string",
                       "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                      {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                      {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio"},
                      {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
                      {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                      {"name": "Image", "type": "string", "priority": 1,
                       "description": "The first image.",
                       "jsonPath": ".spec.containers[0].image"},
                      {"name": "Selector", "type": "string", "priority": 1,
                       "jsonPath": ".spec.selector"},
                  ]},
                 {"name": "v1alpha1", "served": True, "storage": False,
                  "schema": {"openAPIV3Schema": {"type": "object"}}},
             ]},
}


def widget_type(version: str) -> ResourceType:
    return ResourceType(group="example.com", version=version, kind="Widget", plural="widgets",
                        singular="widget", namespaced=True,
                        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                        crd=WIDGET_CRD)


WIDGET: Obj = {
    "apiVersion": "example.com/v1", "kind": "Widget",
    "metadata": meta("blue", age=timedelta(hours=2, minutes=7)),
    "spec": {"replicas": 3, "paused": False, "selector": {"app": "blue"},
             "containers": [{"image": "blue:1"}, {"image": "sidecar:2"}]},
    "status": {"ratio": 0.75, "conditions": [{"type": "Synced", "status": "True"},
                                             {"type": "Ready", "status": "False"}]},
}


def test_custom_resource_printer_columns() -> None:
    table = to_table(widget_type("v1"), [WIDGET], now=NOW)
    validate_table(table)
    assert [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Replicas", "integer", 0),
        ("Ratio", "number", 0), ("Paused", "boolean", 0), ("Age", "date", 0),
        ("Image", "string", 1), ("Selector", "string", 1)]
    assert table["columnDefinitions"][1]["description"] == (
        'Custom resource definition column (in JSONPath format): '
        '.status.conditions[?(@.type=="Ready")].status')
    assert table["columnDefinitions"][6]["description"] == "The first image."
    # date columns use the short duration, not the pods' two-unit one
    assert table["rows"][0]["cells"] == [
        "blue", "False", 3, 0.75, False, "2h", "blue:1", '{"app":"blue"}']


def test_custom_resource_missing_values_are_null() -> None:
    sparse = {"metadata": meta("bare"), "spec": {"replicas": "three"}}
    assert to_table(widget_type("v1"), [sparse], now=NOW)["rows"][0]["cells"] == [
        "bare", None, None, None, None, "5m", None, None]


def test_custom_resource_without_columns_gets_age() -> None:
    table = to_table(widget_type("v1alpha1"), [WIDGET], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["blue", "2h"]


@pytest.mark.parametrize(("path", "want"), [
    (".spec.replicas", [3]),
    ("{.spec.replicas}", [3]),
    (".spec.containers[1].image", ["sidecar:2"]),
    (".spec.containers[-1].image", ["sidecar:2"]),
    (".spec.containers[*].image", ["blue:1", "sidecar:2"]),
    (".spec.containers[5].image", []),
    (".spec.nope.deeper", []),
    (".status.conditions[?(@.type=='Synced')].status", ["True"]),
    ('.status.conditions[?(@.status!="True")].type', ["Ready"]),
    (".status.conditions[?(@.type)].type", ["Synced", "Ready"]),
    (".metadata['name']", ["blue"]),
    (".metadata.labels.app\\.kubernetes\\.io/name", ["x"]),
])
def test_jsonpath_subset(path: str, want: list[Any]) -> None:
    obj = {**WIDGET, "metadata": {**WIDGET["metadata"],
                                  "labels": {"app.kubernetes.io/name": "x"}}}
    assert JSONPath(path).find(obj) == want


# ---------------------------------------------------------------------------------------
# The Table envelope


def test_table_envelope_and_include_object() -> None:
    pods = [WEB_POD, CRASH_POD]
    list_meta = {"resourceVersion": "1234", "continue": "tok", "remainingItemCount": 8}
    table = to_table(rt("", "pods"), pods, list_meta=list_meta, now=NOW)
    validate_table(table)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == list_meta
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata",
                                          "apiVersion": "meta.k8s.io/v1",
                                          "metadata": pods[0]["metadata"]}
    full = to_table(rt("", "pods"), pods, include_object="Object", now=NOW)
    assert full["rows"][1]["object"] is pods[1]
    bare = to_table(rt("", "pods"), pods, include_object="None", now=NOW)
    assert all("object" not in row for row in bare["rows"])
    assert to_table(rt("", "pods"), [], list_meta={"resourceVersion": "9"})["rows"] == []


def test_single_object_and_watch_event_tables() -> None:
    one = to_table(rt("", "pods"), [WEB_POD], now=NOW)
    assert one["metadata"] == {"resourceVersion": "42"}
    later = to_table(rt("", "pods"), [WEB_POD], now=NOW, no_headers=True,
                     api_version="meta.k8s.io/v1beta1")
    validate_table(later)
    assert later["columnDefinitions"] == []
    assert later["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_unknown_include_object_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="unrecognized includeObject"):
        to_table(rt("", "pods"), [], include_object="Everything")


def test_every_served_type_prints_a_valid_table() -> None:
    for t in REGISTRY:
        table = to_table(t, [{"metadata": meta("x")}], now=NOW)
        validate_table(table)
        assert table["rows"][0]["cells"], t.plural


# ---------------------------------------------------------------------------------------
# The real kubectl prints these tables


KUBECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"


def discovery_app(types: list[ResourceType], objects: dict[str, list[Obj]]) -> web.Application:
    """Just enough of an API server for `kubectl get`: legacy discovery and table lists."""
    by_gv: dict[str, list[ResourceType]] = {}
    for t in types:
        by_gv.setdefault(t.api_version, []).append(t)

    def resource_list(gv: str) -> Obj:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [{"name": t.plural, "singularName": t.singular,
                               "namespaced": t.namespaced, "kind": t.kind,
                               "verbs": list(t.verbs), "shortNames": list(t.short_names)}
                              for t in by_gv[gv]]}

    async def handle(request: web.Request) -> web.Response:
        parts = request.path.strip("/").split("/")
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                      "serverAddressByClientCIDRs": []})
        if parts == ["apis"]:
            groups = sorted({t.group for t in types if t.group})
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}
                                         for gv in by_gv if gv.startswith(g + "/")],
                 "preferredVersion": next({"groupVersion": gv, "version": gv.split("/")[1]}
                                          for gv in by_gv if gv.startswith(g + "/"))}
                for g in groups]})
        core = parts[0] == "api"
        gv = parts[1] if core else "/".join(parts[1:3])
        rest = parts[2:] if core else parts[3:]
        if not rest and gv in by_gv:
            return web.json_response(resource_list(gv))
        if rest[:1] == ["namespaces"]:
            rest = rest[2:]
        t = next((t for t in by_gv.get(gv, []) if rest and t.plural == rest[0]), None)
        if t is None or "as=Table" not in request.headers.get("Accept", ""):
            return web.json_response({"kind": "Status", "apiVersion": "v1", "code": 404,
                                      "status": "Failure", "reason": "NotFound"}, status=404)
        items = objects.get(t.plural, [])
        if len(rest) == 2:
            items = [o for o in items if o["metadata"]["name"] == rest[1]]
            return web.json_response(to_table(t, items, now=NOW))
        return web.json_response(to_table(t, items, list_meta={"resourceVersion": "77"},
                                          now=NOW))

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


SERVICE_NODEPORT = service("web", {
    "type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]})


@pytest.fixture
async def fake_server(tmp_path: Path) -> AsyncIterator[str]:
    types = [*REGISTRY, widget_type("v1")]
    objects = {
        "pods": [WEB_POD, CRASH_POD, INIT_POD, TERMINATING_POD],
        "services": [SERVICE_NODEPORT],
        "jobs": [job("pi", {"completions": 1}, {
            "startTime": ago(minutes=5), "completionTime": ago(minutes=4, seconds=23),
            "succeeded": 1, "conditions": [condition("Complete")]})],
        "events": [CORE_EVENT],
        "widgets": [WIDGET],
    }
    runner = web.AppRunner(discovery_app(types, objects))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()



async def kubectl(server: str, tmp_path: Path, *args: str) -> str:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.touch()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--server", server, "--cache-dir", str(tmp_path / "cache"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


needs_kubectl = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not in the venv")
# The server fixture lives on the session loop (the project's default fixture scope).
on_session_loop = pytest.mark.asyncio(loop_scope="session")


@needs_kubectl
@on_session_loop
async def test_kubectl_prints_pods(fake_server: str, tmp_path: Path) -> None:
    out = await kubectl(fake_server, tmp_path, "get", "pods")
    assert out.splitlines() == [
        "NAME    READY   STATUS             RESTARTS      AGE",
        "web     2/2     Running            0             5m3s",
        "crash   0/1     CrashLoopBackOff   5 (90s ago)   5m3s",
        "init    0/1     Init:1/2           0             5m3s",
        "bye     1/1     Terminating        0             5m3s",
    ]
    wide = await kubectl(fake_server, tmp_path, "get", "pods", "-o", "wide")
    assert wide.splitlines()[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
        "READINESS", "GATES"]
    assert wide.splitlines()[1].split() == [
        "web", "2/2", "Running", "0", "5m3s", "10.0.1.17", "fargate-ip-10-0-1-5", "<none>",
        "<none>"]
    single = await kubectl(fake_server, tmp_path, "get", "pod", "crash", "--no-headers")
    assert single.split() == ["crash", "0/1", "CrashLoopBackOff", "5", "(90s", "ago)", "5m3s"]


@needs_kubectl
@on_session_loop
async def test_kubectl_prints_services_jobs_events(fake_server: str, tmp_path: Path) -> None:
    svc = await kubectl(fake_server, tmp_path, "get", "svc")
    assert svc.splitlines() == [
        "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE",
        "web    NodePort   10.96.0.20   <none>        80:30080/TCP   5m3s",
    ]
    jobs = await kubectl(fake_server, tmp_path, "get", "jobs")
    assert jobs.splitlines() == [
        "NAME   STATUS     COMPLETIONS   DURATION   AGE",
        "pi     Complete   1/1           37s        5m3s",
    ]
    events = await kubectl(fake_server, tmp_path, "get", "events")
    assert events.splitlines() == [
        "LAST SEEN   TYPE      REASON    OBJECT    MESSAGE",
        "30s         Warning   BackOff   pod/web   Back-off restarting failed container c0",
    ]


@needs_kubectl
@on_session_loop
async def test_kubectl_prints_custom_resources(fake_server: str, tmp_path: Path) -> None:
    out = await kubectl(fake_server, tmp_path, "get", "widgets")
    assert out.splitlines() == [
        "NAME   READY   REPLICAS   RATIO   PAUSED   AGE",
        "blue   False   3          0.75    false    2h",
    ]
