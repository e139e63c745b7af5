"""A container's environment: kubelet's order, $(VAR) expansion, sources and their errors."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from nodeless.agent.pods.env import (
    expand,
    expand_command_and_args,
    field_value,
    lookup_in,
    resolve_env,
    resource_value,
    service_environment,
)
from nodeless.agent.pods.errors import ContainerConfigError


@dataclass
class Sources:
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    node_allocatable: dict[str, Any] = field(
        default_factory=lambda: {"cpu": "2", "memory": "4Gi"})
    pod_ips: list[str] = field(default_factory=lambda: ["10.0.1.23"])
    host_ips: list[str] = field(default_factory=lambda: ["10.0.1.23"])

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get((namespace, name))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get((namespace, name))


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web", "tier": "front"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"nodeName": "fargate-ip-10-0-1-23.us-east-1.compute.internal",
                     "serviceAccountName": "builder", "containers": [container], **spec}}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)", "a"),
    ("x$(A)y$(B)z", "xaybz"),
    ("$$(A)", "$(A)"),
    ("$$$(A)", "$a"),
    ("$(MISSING)", "$(MISSING)"),
    ("$(A", "$(A"),
    ("$A", "$A"),
    ("cost: 5$", "cost: 5$"),
    ("$()", "$()"),
    ("$(A)$(A)", "aa"),
    ("(A)", "(A)"),
])
def test_expansion_as_kubelet(text: str, expected: str) -> None:
    assert expand(text, lookup_in({"A": "a", "B": "b"})) == expected


async def test_order_envfrom_then_env_with_references_and_service_vars() -> None:
    src = Sources(configmaps={("shop", "cfg"): {"data": {"MODE": "prod", "bad=key": "x"}}},
                  secrets={("shop", "creds"): {"data": {"PASSWORD": b64("s3cret")}}})
    c = {"name": "app", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                    {"secretRef": {"name": "creds"}, "prefix": "DB_"}],
         "env": [{"name": "URL", "value": "http://$(KUBERNETES_SERVICE_HOST)/$(MODE)"},
                 {"name": "MODE", "value": "override-$(MODE)"},
                 {"name": "LATER", "value": "$(NOT_YET)"},
                 {"name": "NOT_YET", "value": "now"}]}
    warnings: list[tuple[str, str]] = []
    env = await resolve_env(pod(c), c, src, service_env={"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                                         "MODE": "ignored"},
                            warn=lambda r, m: warnings.append((r, m)))
    pairs = [(kv.key, kv.value) for kv in env]
    assert pairs == [("MODE", "override-prod"), ("DB_PASSWORD", "s3cret"),
                     ("URL", "http://10.96.0.1/prod"), ("LATER", "$(NOT_YET)"),
                     ("NOT_YET", "now"), ("KUBERNETES_SERVICE_HOST", "10.96.0.1")]
    assert warnings == [("InvalidEnvironmentVariableNames",
                         "Keys [bad=key] from the EnvFrom configMap shop/cfg were skipped since "
                         "they are considered invalid environment variable names.")]


@pytest.mark.parametrize(("env", "message"), [
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}],
     'configmap "nope" not found'),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}],
     "couldn't find key k in ConfigMap shop/cfg"),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
     'secret "nope" not found'),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}],
     "couldn't find key k in Secret shop/creds"),
    ([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}],
     "unsupported fieldPath: spec.hostname"),
])
async def test_missing_sources_fail_with_kubelets_message(env: list[Any], message: str) -> None:
    src = Sources(configmaps={("shop", "cfg"): {"data": {"other": "1"}}},
                  secrets={("shop", "creds"): {"data": {}}})
    c = {"name": "app", "env": env}
    with pytest.raises(ContainerConfigError) as err:
        await resolve_env(pod(c), c, src)
    assert str(err.value) == message
    assert err.value.reason == "CreateContainerConfigError"


async def test_optional_sources_leave_the_variable_unset() -> None:
    c = {"name": "app",
         "envFrom": [{"configMapRef": {"name": "nope", "optional": True}},
                     {"secretRef": {"name": "nope", "optional": True}}],
         "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                                 "optional": True}}},
                 {"name": "B", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k",
                                                              "optional": True}}},
                 {"name": "C", "value": "c"}]}
    src = Sources(secrets={("shop", "creds"): {"data": {}}})
    env = await resolve_env(pod(c), c, src)
    assert [(kv.key, kv.value) for kv in env] == [("C", "c")]


@pytest.mark.parametrize(("path", "value"), [
    ("metadata.name", "web"),
    ("metadata.namespace", "shop"),
    ("metadata.uid", "u-1"),
    ("metadata.labels['tier']", "front"),
    ("metadata.labels['absent']", ""),
    ("metadata.annotations['note']", 'say "hi"'),
    ("metadata.labels", 'app="web"\ntier="front"'),
    ("metadata.annotations", 'note="say \\"hi\\""'),
    ("spec.nodeName", "fargate-ip-10-0-1-23.us-east-1.compute.internal"),
    ("spec.serviceAccountName", "builder"),
    ("status.podIP", "10.0.1.23"),
    ("status.podIPs", "10.0.1.23,fd00::17"),
    ("status.hostIP", "10.0.1.23"),
])
def test_field_refs(path: str, value: str) -> None:
    assert field_value(pod({"name": "app"}), path, pod_ips=["10.0.1.23", "fd00::17"],
                       host_ips=["10.0.1.23"]) == value


@pytest.mark.parametrize(("resources", "ref", "value"), [
    ({}, {"resource": "limits.cpu"}, "2"),                 # node allocatable: 2 vCPU
    ({}, {"resource": "limits.memory"}, str(4 * 2**30)),
    ({}, {"resource": "limits.memory", "divisor": "1Mi"}, "4096"),
    ({}, {"resource": "limits.ephemeral-storage", "divisor": "1Gi"}, "20"),
    ({}, {"resource": "requests.cpu"}, "0"),
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu"}, "1"),      # rounded up
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu", "divisor": "1m"}, "250"),
    ({"requests": {"memory": "100M"}}, {"resource": "requests.memory", "divisor": "1Mi"}, "96"),
])
def test_resource_field_refs(resources: dict[str, Any], ref: dict[str, Any], value: str) -> None:
    c = {"name": "app", "resources": resources}
    assert resource_value(pod(c), c, ref, {"cpu": "2", "memory": "4Gi"}) == value


def test_command_and_args_expand_against_the_environment() -> None:
    from cri_api.v1.api_pb2 import KeyValue
    c = {"command": ["sh", "-c", "echo $(GREETING) $$(GREETING)"], "args": ["$(WHO)", "$(NONE)"]}
    cmd, args = expand_command_and_args(c, [KeyValue(key="GREETING", value="hi"),
                                            KeyValue(key="WHO", value="you")])
    assert cmd == ["sh", "-c", "echo hi $(GREETING)"]
    assert args == ["you", "$(NONE)"]


def test_service_links() -> None:
    services = [
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}},
        {"metadata": {"name": "redis-primary", "namespace": "shop"},
         "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 6379, "protocol": "TCP"}]}},
        {"metadata": {"name": "headless", "namespace": "shop"},
         "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
        {"metadata": {"name": "elsewhere", "namespace": "other"},
         "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}},
    ]
    env = service_environment(services, "shop")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.9"
    assert env["REDIS_PRIMARY_PORT_6379_TCP"] == "tcp://10.96.0.9:6379"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in env)
    without_links = service_environment(services, "shop", enable_service_links=False)
    assert set(without_links) == {k for k in env if k.startswith("KUBERNETES_")}


async def test_env_from_objects_in_the_api_server(apiserver: Any, namespace: str) -> None:
    """ConfigMap and Secret created with kubectl, read back through the API."""
    from nodeless.agent.pods.sources import PodSources
    from nodeless.kube import async_client

    apiserver.kubectl("create", "configmap", "cfg", "-n", namespace, "--from-literal=MODE=prod")
    apiserver.kubectl("create", "secret", "generic", "creds", "-n", namespace,
                      "--from-literal=password=s3cret")
    client = async_client(apiserver.kubeconfig)
    try:
        sources = PodSources(client, node_allocatable={"cpu": "1", "memory": "2Gi"},
                             pod_ips=["10.0.1.23"], host_ips=["10.0.1.23"])
        c = {"name": "app", "envFrom": [{"configMapRef": {"name": "cfg"}}],
             "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {
                 "name": "creds", "key": "password"}}},
                     {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
        p = {"metadata": {"name": "web", "namespace": namespace, "uid": "u"},
             "spec": {"containers": [c]}}
        env = await resolve_env(p, c, sources)
        assert [(kv.key, kv.value) for kv in env] == [
            ("MODE", "prod"), ("PASSWORD", "s3cret"), ("IP", "10.0.1.23")]
        c["envFrom"] = [{"configMapRef": {"name": "absent"}}]
        with pytest.raises(ContainerConfigError, match='configmap "absent" not found'):
            await resolve_env(p, c, sources)
    finally:
        await client.close()
