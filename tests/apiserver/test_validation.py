"""Validation: each case is an object a user might write (defaulted first, as the server
does) and the exact field errors kube-apiserver v1.37 answers with."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from nodeless.apiserver import errors
from nodeless.apiserver.resources import defaults, validation
from nodeless.apiserver.resources.registry import Registry, ResourceType

REGISTRY = Registry()

DNS_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
             "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
             "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
           "with an alphabetic character, and end with an alphanumeric character (e.g. "
           "'my-name',  or 'abc-123', regex used for validation is "
           "'[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, "
               "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
               "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
               "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
              "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
              "'[-._a-zA-Z0-9]+')")
PORT_RANGE = "must be between 1 and 65535, inclusive"


def rt(resource: str) -> ResourceType:
    plural, _, group = resource.partition(".")
    for t in REGISTRY:
        if t.plural == plural and t.group == group:
            return t
    raise KeyError(resource)


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "app", "image": "nginx:1.27", **extra}


def pod(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", **meta},
            "spec": spec if spec is not None else {"containers": [container()]}}


def template(spec: dict[str, Any] | None = None, labels: dict | None = None) -> dict:
    return {"metadata": {"labels": {"app": "web"} if labels is None else labels},
            "spec": spec or {"containers": [container()]}}


def workload(kind: str, **spec: Any) -> dict[str, Any]:
    body = {"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "web", "namespace": "default"}, "spec": body}


def job(**spec: Any) -> dict[str, Any]:
    tmpl = {"spec": {"restartPolicy": "Never", "containers": [container(image="perl")]}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "8f1c"},
            "spec": {"template": tmpl, **spec}}


def cronjob(**spec: Any) -> dict[str, Any]:
    tmpl = {"spec": {"restartPolicy": "OnFailure", "containers": [container(image="busybox")]}}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tmpl}},
                     **spec}}


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def crd(**spec: Any) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object"}}
    body = {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
            **spec}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": body}


def check(resource: str, obj: dict, old: dict | None = None) -> list[str]:
    t = rt(resource)
    obj = copy.deepcopy(obj)
    defaults.apply_defaults(t, obj)
    if old is not None:
        old = copy.deepcopy(old)
        defaults.apply_defaults(t, old)
    return [str(e) for e in validation.validate(t, obj, old)]


def edit(obj: dict, fn: Callable[[dict], Any]) -> dict:
    obj = copy.deepcopy(obj)
    fn(obj)
    return obj


VALID = [
    ("pod", "pods", pod()),
    ("pod named from generateName", "pods", pod(name="web-x7k2p", generateName="web-")),
    ("deployment", "deployments.apps", workload("Deployment")),
    ("replicaset", "replicasets.apps", workload("ReplicaSet")),
    ("daemonset", "daemonsets.apps", workload("DaemonSet")),
    ("statefulset", "statefulsets.apps", workload("StatefulSet", serviceName="web")),
    ("job", "jobs.batch", job()),
    ("cronjob", "cronjobs.batch", cronjob()),
    ("service", "services", service()),
    ("headless service", "services", service(clusterIP="None", ports=[])),
    ("namespace", "namespaces", {"metadata": {"name": "team-a"}}),
    ("configmap", "configmaps",
     {"metadata": {"name": "cfg", "namespace": "d"}, "data": {"app.conf": "x=1"}}),
    ("secret", "secrets", {"metadata": {"name": "s", "namespace": "d"},
                           "stringData": {"password": "x"}}),
    ("crd", "customresourcedefinitions.apiextensions.k8s.io", crd()),
    ("lease", "leases.coordination.k8s.io",
     {"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
      "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}),
    ("role", "roles.rbac.authorization.k8s.io",
     {"metadata": {"name": "system:reader", "namespace": "d"},
      "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
    ("custom resource name", "nodes", {"metadata": {"name": "fargate-ip-10-0-1-23.eu-west-1"
                                                            ".compute.internal"}}),
]


@pytest.mark.parametrize(("name", "resource", "obj"), VALID, ids=[c[0] for c in VALID])
def test_valid_objects(name: str, resource: str, obj: dict) -> None:
    assert check(resource, obj) == []


CASES: list[tuple[str, str, dict, dict | None, list[str]]] = [
    # --- object metadata
    ("name required", "pods", pod(name=""), None,
     ["metadata.name: Required value: name or generateName is required"]),
    ("pod name is a subdomain", "pods", pod(name="Web_1"), None,
     [f'metadata.name: Invalid value: "Web_1": {DNS_SUBDOMAIN}']),
    ("name too long", "configmaps", {"metadata": {"name": "a" * 254, "namespace": "d"}}, None,
     [f'metadata.name: Invalid value: "{"a" * 254}": must be no more than 253 characters']),
    ("generateName trailing dash is fine, bad chars are not", "pods",
     pod(name="", generateName="Web-"), None,
     [f'metadata.generateName: Invalid value: "Web-": {DNS_SUBDOMAIN}',
      "metadata.name: Required value: name or generateName is required"]),
    ("namespace name is a label", "namespaces", {"metadata": {"name": "team.a"}}, None,
     ['metadata.name: Invalid value: "team.a": must not contain dots']),
    ("service name is a DNS-1035 label", "services",
     edit(service(), lambda o: o["metadata"].update(name="1web")), None,
     [f'metadata.name: Invalid value: "1web": {DNS1035}']),
    ("statefulset name is a label", "statefulsets.apps",
     edit(workload("StatefulSet"), lambda o: o["metadata"].update(name="db.primary")), None,
     ['metadata.name: Invalid value: "db.primary": must not contain dots']),
    ("rbac names are path segments", "clusterroles.rbac.authorization.k8s.io",
     {"metadata": {"name": "a/b"}}, None,
     ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]),
    ("namespace required", "pods", pod(namespace=""), None,
     ["metadata.namespace: Required value"]),
    ("label value", "pods", pod(labels={"app": "web app"}), None,
     [f'metadata.labels: Invalid value: "web app": {LABEL_VALUE}']),
    ("label value too long", "pods", pod(labels={"app": "x" * 64}), None,
     [f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 bytes']),
    ("label key", "pods", pod(labels={"-app": "web"}), None,
     [f'metadata.labels: Invalid value: "-app": {NAME_PART}']),
    ("label key prefix", "pods", pod(labels={"Example.com/app": "web"}), None,
     [f'metadata.labels: Invalid value: "Example.com/app": prefix part {DNS_SUBDOMAIN}']),
    ("label key empty name", "pods", pod(labels={"example.com/": "web"}), None,
     ['metadata.labels: Invalid value: "example.com/": name part must be non-empty',
      f'metadata.labels: Invalid value: "example.com/": {NAME_PART}']),
    ("annotations too big", "pods", pod(annotations={"a": "x" * (256 * 1024)}), None,
     ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ("finalizer not qualified", "configmaps",
     {"metadata": {"name": "c", "namespace": "d", "finalizers": ["cleanup"]}}, None,
     ['metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer '
      "name nor is it fully qualified"]),
    ("namespace immutable", "configmaps",
     {"metadata": {"name": "c", "namespace": "other", "uid": "u"}},
     {"metadata": {"name": "c", "namespace": "d", "uid": "u"}},
     ['metadata.namespace: Invalid value: "other": field is immutable']),
    # --- pods
    ("no containers", "pods", pod({"containers": []}), None,
     ["spec.containers: Required value"]),
    ("image required", "pods", pod({"containers": [{"name": "app"}]}), None,
     ["spec.containers[0].image: Required value"]),
    ("container name", "pods", pod({"containers": [container(name="App")]}), None,
     [f'spec.containers[0].name: Invalid value: "App": {DNS_LABEL}']),
    ("duplicate container names", "pods",
     pod({"containers": [container(), container(image="redis")]}), None,
     ['spec.containers[1].name: Duplicate value: "app"']),
    ("init container name clashes", "pods",
     pod({"containers": [container()], "initContainers": [container(image="busybox")]}), None,
     ['spec.initContainers[0].name: Duplicate value: "app"']),
    ("container port range", "pods",
     pod({"containers": [container(ports=[{"containerPort": 70000}])]}), None,
     [f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_RANGE}"]),
    ("container port protocol", "pods",
     pod({"containers": [container(ports=[{"containerPort": 80, "protocol": "tcp"}])]}), None,
     ['spec.containers[0].ports[0].protocol: Unsupported value: "tcp": supported values: '
      '"SCTP", "TCP", "UDP"']),
    ("port name", "pods",
     pod({"containers": [container(ports=[{"containerPort": 80, "name": "http_web"}])]}), None,
     ['spec.containers[0].ports[0].name: Invalid value: "http_web": must contain only '
      "alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
    ("duplicate host ports", "pods",
     pod({"containers": [container(ports=[{"containerPort": 80, "hostPort": 8080}]),
                         container(name="b", ports=[{"containerPort": 81, "hostPort": 8080}])]}),
     None, ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"']),
    ("restartPolicy enum", "pods",
     pod({"containers": [container()], "restartPolicy": "Sometimes"}), None,
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    ("dnsPolicy enum", "pods", pod({"containers": [container()], "dnsPolicy": "Google"}), None,
     ['spec.dnsPolicy: Unsupported value: "Google": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']),
    ("dnsPolicy None needs dnsConfig", "pods",
     pod({"containers": [container()], "dnsPolicy": "None"}), None,
     ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
    ("pull policy enum", "pods",
     pod({"containers": [container(imagePullPolicy="Sometimes")]}), None,
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
      '"Always", "IfNotPresent", "Never"']),
    ("requests above limits", "pods",
     pod({"containers": [container(resources={"limits": {"cpu": "500m"},
                                              "requests": {"cpu": "1"}})]}), None,
     ['spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal '
      "to cpu limit of 500m"]),
    ("negative request", "pods",
     pod({"containers": [container(resources={"requests": {"memory": "-1Gi"}})]}), None,
     ['spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be greater '
      "than or equal to 0"]),
    ("unknown resource name", "pods",
     pod({"containers": [container(resources={"limits": {"gpu": "1"}})]}), None,
     ['spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      "resource type or fully qualified",
      'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      "resource for containers",
      # the request was defaulted from the limit, so it is reported too
      'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      "resource type or fully qualified",
      'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      "resource for containers"]),
    ("extended resources are not overcommitted", "pods",
     pod({"containers": [container(resources={"limits": {"nvidia.com/gpu": "2"},
                                              "requests": {"nvidia.com/gpu": "1"}})]}), None,
     ['spec.containers[0].resources.requests: Invalid value: "1": must be equal to '
      "nvidia.com/gpu limit of 2"]),
    ("volume mount of no volume", "pods",
     pod({"containers": [container(volumeMounts=[{"name": "data", "mountPath": "/data"}])]}),
     None, ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ("duplicate mount paths", "pods",
     pod({"volumes": [{"name": "a"}, {"name": "b"}], "containers": [container(volumeMounts=[
         {"name": "a", "mountPath": "/data"}, {"name": "b", "mountPath": "/data"}])]}), None,
     ['spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique']),
    ("duplicate volume names", "pods",
     pod({"volumes": [{"name": "a"}, {"name": "a"}], "containers": [container()]}), None,
     ['spec.volumes[1].name: Duplicate value: "a"']),
    ("volume name is a label", "pods",
     pod({"volumes": [{"name": "my_vol"}], "containers": [container()]}), None,
     [f'spec.volumes[0].name: Invalid value: "my_vol": {DNS_LABEL}']),
    ("two volume sources", "pods",
     pod({"volumes": [{"name": "v", "emptyDir": {}, "configMap": {"name": "c"}}],
          "containers": [container()]}), None,
     ["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type"]),
    ("secret volume needs a name", "pods",
     pod({"volumes": [{"name": "v", "secret": {}}], "containers": [container()]}), None,
     ["spec.volumes[0].secret.secretName: Required value"]),
    ("defaultMode range", "pods",
     pod({"volumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 1000}}],
          "containers": [container()]}), None,
     ["spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 "
      "and 0777 (octal), both inclusive"]),
    ("probe without handler", "pods",
     pod({"containers": [container(livenessProbe={"periodSeconds": 5})]}), None,
     ["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
    ("liveness successThreshold", "pods",
     pod({"containers": [container(livenessProbe={"tcpSocket": {"port": 80},
                                                  "successThreshold": 2})]}), None,
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("probe port name", "pods",
     pod({"containers": [container(readinessProbe={"httpGet": {"port": "HTTP"}})]}), None,
     ['spec.containers[0].readinessProbe.httpGet.port: Invalid value: "HTTP": must contain only '
      "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
      'spec.containers[0].readinessProbe.httpGet.port: Invalid value: "HTTP": must contain at '
      "least one letter (a-z)"]),
    ("init container probes", "pods",
     pod({"containers": [container()], "initContainers": [
         container(name="init", readinessProbe={"exec": {"command": ["true"]}})]}), None,
     ["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
      "without restartPolicy=Always"]),
    ("env var without name", "pods", pod({"containers": [container(env=[{"value": "x"}])]}),
     None, ["spec.containers[0].env[0].name: Required value"]),
    ("env var with = in name", "pods",
     pod({"containers": [container(env=[{"name": "A=B", "value": "x"}])]}), None,
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name '
      "must consist only of printable ASCII characters other than '='"]),
    ("env value and valueFrom", "pods",
     pod({"containers": [container(env=[{"name": "A", "value": "x", "valueFrom": {
         "fieldRef": {"fieldPath": "metadata.name"}}}])]}), None,
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when '
      "`value` is not empty"]),
    ("env fieldRef path", "pods",
     pod({"containers": [container(env=[{"name": "A", "valueFrom": {
         "fieldRef": {"fieldPath": "spec.hostname"}}}])]}), None,
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
      '"spec.hostname": supported values: "metadata.name", "metadata.namespace", '
      '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", '
      '"status.hostIPs", "status.podIP", "status.podIPs"']),
    ("tolerationSeconds needs NoExecute", "pods",
     pod({"containers": [container()], "tolerations": [
         {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
     None, ['spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be '
            "'NoExecute' when `tolerationSeconds` is set"]),
    ("toleration without key", "pods",
     pod({"containers": [container()], "tolerations": [{"operator": "Equal", "value": "x"}]}),
     None, ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists '
            'when `key` is empty, which means "match all values and all keys"']),
    ("image whitespace", "pods", pod({"containers": [container(image=" nginx")]}), None,
     ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
      "whitespace"]),
    ("activeDeadlineSeconds", "pods",
     pod({"containers": [container()], "activeDeadlineSeconds": 0}), None,
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    ("hostNetwork hostPort", "pods",
     pod({"hostNetwork": True, "containers": [
         container(ports=[{"containerPort": 80, "hostPort": 81}])]}), None,
     ["spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` "
      "when `hostNetwork` is true"]),
    ("nodeSelector value", "pods",
     pod({"containers": [container()], "nodeSelector": {"zone": "eu west"}}), None,
     [f'spec.nodeSelector: Invalid value: "eu west": {LABEL_VALUE}']),
    ("runAsUser range", "pods",
     pod({"containers": [container(securityContext={"runAsUser": -1})]}), None,
     ["spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and "
      "4294967295, inclusive"]),
    ("ephemeral containers on create", "pods",
     pod({"containers": [container()], "ephemeralContainers": [
         {"name": "debug", "image": "busybox"}]}), None,
     ["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
    # --- pod updates
    ("pod update changes image", "pods",
     edit(pod(uid="u"), lambda o: o["spec"]["containers"][0].update(image="nginx:1.28")),
     pod(uid="u"), []),
    ("pod update adds a container", "pods",
     edit(pod(uid="u"), lambda o: o["spec"]["containers"].append(container(name="b"))),
     pod(uid="u"), ["spec.containers: Forbidden: pod updates may not add or remove containers"]),
    ("pod update lowers activeDeadlineSeconds", "pods",
     edit(pod({"containers": [container()], "activeDeadlineSeconds": 60}, uid="u"),
          lambda o: o["spec"].update(activeDeadlineSeconds=30)),
     pod({"containers": [container()], "activeDeadlineSeconds": 60}, uid="u"), []),
    ("pod update raises activeDeadlineSeconds", "pods",
     edit(pod({"containers": [container()], "activeDeadlineSeconds": 60}, uid="u"),
          lambda o: o["spec"].update(activeDeadlineSeconds=90)),
     pod({"containers": [container()], "activeDeadlineSeconds": 60}, uid="u"),
     ["spec.activeDeadlineSeconds: Invalid value: 90: must be less than or equal to previous "
      "value"]),
    ("pod update adds a toleration", "pods",
     edit(pod(uid="u"), lambda o: o["spec"].setdefault("tolerations", []).append(
         {"key": "k", "operator": "Exists"})), pod(uid="u"), []),
    ("pod update removes a scheduling gate", "pods",
     pod({"containers": [container()], "schedulingGates": []}, uid="u"),
     pod({"containers": [container()], "schedulingGates": [{"name": "example.com/wait"}]},
         uid="u"), []),
    ("pod update adds a scheduling gate", "pods",
     pod({"containers": [container()], "schedulingGates": [{"name": "example.com/wait"}]},
         uid="u"),
     pod(uid="u"),
     ["spec.schedulingGates[0].name: Forbidden: only deletion is allowed, but found new "
      "scheduling gate 'example.com/wait'"]),
    # --- deployments and friends
    ("deployment selector required", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"].pop("selector")), None,
     ["spec.selector: Required value"]),
    ("deployment selector does not match", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"]["template"]["metadata"].update(
         labels={"app": "api"})), None,
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: '
      "`selector` does not match template `labels`"]),
    ("deployment empty selector", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"].update(selector={})), None,
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "deployment"]),
    ("deployment negative replicas", "deployments.apps", workload("Deployment", replicas=-1),
     None, ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("deployment template restartPolicy", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"]["template"]["spec"].update(
         restartPolicy="OnFailure")), None,
     ['spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: '
      '"Always"']),
    ("deployment bad selector operator", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"].update(selector={
         "matchExpressions": [{"key": "app", "operator": "Equals", "values": ["web"]}]})), None,
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Equals": not a valid '
      "selector operator",
      "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", '
      'Operator:"Equals", Values:[]string{"web"}}}}: invalid label selector']),
    ("deployment both surge and unavailable zero", "deployments.apps",
     workload("Deployment", strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     None, ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
            'intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` '
            "is 0"]),
    ("deployment progress deadline", "deployments.apps",
     workload("Deployment", minReadySeconds=600), None,
     ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than "
      "minReadySeconds"]),
    ("deployment selector immutable", "deployments.apps",
     edit(workload("Deployment"), lambda o: (
         o["spec"]["selector"]["matchLabels"].update(tier="front"),
         o["spec"]["template"]["metadata"]["labels"].update(tier="front"))),
     workload("Deployment"),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"
      '"app":"web", "tier":"front"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
      "field is immutable"]),
    ("deployment template update is fine", "deployments.apps",
     edit(workload("Deployment"), lambda o: o["spec"]["template"]["spec"]["containers"][0]
          .update(image="nginx:1.28")), workload("Deployment"), []),
    ("replicaset selector mismatch", "replicasets.apps",
     edit(workload("ReplicaSet"), lambda o: o["spec"]["template"]["metadata"].update(
         labels={})), None,
     ["spec.template.metadata.labels: Invalid value: map[string]string{}: `selector` does not "
      "match template `labels`"]),
    ("daemonset without selector", "daemonsets.apps",
     edit(workload("DaemonSet"), lambda o: o["spec"].pop("selector")), None,
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      "`selector` does not match template `labels`"]),
    ("daemonset template restartPolicy", "daemonsets.apps",
     edit(workload("DaemonSet"), lambda o: o["spec"]["template"]["spec"].update(
         restartPolicy="Never")), None,
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    ("statefulset podManagementPolicy", "statefulsets.apps",
     workload("StatefulSet", podManagementPolicy="Random"), None,
     ['spec.podManagementPolicy: Invalid value: "Random": must be \'OrderedReady\' or '
      "'Parallel'"]),
    ("statefulset pod spec is only checked when pods are made", "statefulsets.apps",
     edit(workload("StatefulSet"), lambda o: o["spec"]["template"]["spec"]["containers"][0]
          .pop("image")), None, []),
    ("statefulset update of serviceName", "statefulsets.apps",
     workload("StatefulSet", serviceName="db"), workload("StatefulSet", serviceName="web"),
     ["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
      "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
      "'minReadySeconds' are forbidden"]),
    # --- jobs
    ("job restartPolicy Always", "jobs.batch",
     edit(job(), lambda o: o["spec"]["template"]["spec"].pop("restartPolicy")), None,
     ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("job restartPolicy enum", "jobs.batch",
     edit(job(), lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Sometimes")),
     None, ['spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported '
            'values: "Always", "OnFailure", "Never"',
            'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported '
            'values: "OnFailure", "Never"']),
    ("job negative backoffLimit", "jobs.batch", job(backoffLimit=-1), None,
     ["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"]),
    ("job indexed without completions", "jobs.batch",
     job(completionMode="Indexed", parallelism=2), None,
     ["spec.completions: Required value: when completion mode is Indexed"]),
    ("job per-index needs Indexed", "jobs.batch", job(backoffLimitPerIndex=1), None,
     ["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"]),
    ("job manual selector must match", "jobs.batch",
     job(manualSelector=True, selector={"matchLabels": {"app": "pi"}}), None,
     ['spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does '
      "not match template `labels`"]),
    ("job name too long for its label", "jobs.batch",
     edit(job(), lambda o: o["metadata"].update(name="j" * 64)), None,
     [f'spec.template.labels: Invalid value: "{"j" * 64}": must be no more than 63 bytes']),
    ("job selector immutable", "jobs.batch",
     edit(job(manualSelector=True, selector={"matchLabels": {"app": "pi"}}),
          lambda o: (o["spec"]["template"].update(metadata={"labels": {"app": "pi"}}),
                     o["spec"]["selector"].update(matchExpressions=[
                         {"key": "app", "operator": "Exists"}]))),
     edit(job(manualSelector=True, selector={"matchLabels": {"app": "pi"}}),
          lambda o: o["spec"]["template"].update(metadata={"labels": {"app": "pi"}})),
     ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":'
      '"pi"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{'
      'Key:"app", Operator:"Exists", Values:[]string(nil)}}}: field is immutable']),
    ("job template immutable", "jobs.batch",
     edit(job(), lambda o: o["spec"]["template"]["spec"]["containers"][0].update(
         image="perl:5.40")), job(),
     ["spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]),
    ("job parallelism may change", "jobs.batch", job(parallelism=3, completions=1), job(), []),
    ("job completions may not change", "jobs.batch", job(completions=2), job(),
     ["spec.completions: Invalid value: 2: field is immutable"]),
    ("suspended job may change its node selector", "jobs.batch",
     edit(job(suspend=True), lambda o: o["spec"]["template"]["spec"].update(
         nodeSelector={"zone": "a"})), job(suspend=True), []),
    # --- cronjobs
    ("cronjob schedule fields", "cronjobs.batch", cronjob(schedule="*/5 * * *"), None,
     ['spec.schedule: Invalid value: "*/5 * * *": expected exactly 5 fields, found 4: '
      "[*/5 * * *]"]),
    ("cronjob schedule range", "cronjobs.batch", cronjob(schedule="0 25 * * *"), None,
     ['spec.schedule: Invalid value: "0 25 * * *": end of range (25) above maximum (23): 25']),
    ("cronjob TZ in schedule", "cronjobs.batch",
     cronjob(schedule="CRON_TZ=UTC 0 * * * *"), None,
     ['spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
      "schedule, use timeZone field instead"]),
    ("cronjob unknown time zone", "cronjobs.batch", cronjob(timeZone="Mars/Olympus"), None,
     ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']),
    ("cronjob concurrencyPolicy", "cronjobs.batch", cronjob(concurrencyPolicy="Never"), None,
     ['spec.concurrencyPolicy: Unsupported value: "Never": supported values: "Allow", '
      '"Forbid", "Replace"']),
    ("cronjob name length", "cronjobs.batch",
     edit(cronjob(), lambda o: o["metadata"].update(name="c" * 53)), None,
     [f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters']),
    ("cronjob job template restartPolicy", "cronjobs.batch",
     edit(cronjob(), lambda o: o["spec"]["jobTemplate"]["spec"]["template"]["spec"].pop(
         "restartPolicy")), None,
     ['spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: '
      '"OnFailure", "Never"']),
    # --- services
    ("service without ports", "services", service(ports=[]), None,
     ["spec.ports: Required value"]),
    ("service port range", "services", service(ports=[{"port": 0, "targetPort": 80}]), None,
     [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    ("service port names required", "services",
     service(ports=[{"port": 80}, {"port": 443}]), None,
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ("service duplicate port names", "services",
     service(ports=[{"name": "web", "port": 80}, {"name": "web", "port": 443}]), None,
     ['spec.ports[1].name: Duplicate value: "web"']),
    ("service duplicate ports", "services",
     service(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]), None,
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
      "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, "
      'StrVal:""}, NodePort:0}']),
    ("service type", "services", service(type="Internal"), None,
     ['spec.type: Unsupported value: "Internal": supported values: "ClusterIP", '
      '"ExternalName", "LoadBalancer", "NodePort"']),
    ("service nodePort on ClusterIP", "services",
     service(ports=[{"port": 80, "nodePort": 30080}]), None,
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("service externalName", "services",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {"type": "ExternalName"}}, None,
     ["spec.externalName: Required value"]),
    ("service bad clusterIP", "services", service(clusterIP="10.0.0.300"), None,
     ['spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. '
      "10.9.8.7 or 2001:db8::ffff)"]),
    ("headless NodePort", "services", service(type="NodePort", clusterIP="None"), None,
     ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort '
      "services"]),
    ("service clusterIP immutable", "services", service(clusterIP="10.96.0.11"),
     service(clusterIP="10.96.0.10"),
     ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']),
    ("service selector label", "services", service(selector={"app": "web app"}), None,
     [f'spec.selector: Invalid value: "web app": {LABEL_VALUE}']),
    # --- config
    ("configmap key", "configmaps",
     {"metadata": {"name": "c", "namespace": "d"}, "data": {"app conf": "x"}}, None,
     [f'data[app conf]: Invalid value: "app conf": {CONFIG_KEY}']),
    ("configmap key ..", "configmaps",
     {"metadata": {"name": "c", "namespace": "d"}, "data": {"..data": "x"}}, None,
     ["data[..data]: Invalid value: \"..data\": must not start with '..'"]),
    ("configmap too big", "configmaps",
     {"metadata": {"name": "c", "namespace": "d"}, "data": {"big": "x" * (1024 * 1024 + 1)}},
     None, [": Too long: may not be more than 1048576 bytes"]),
    ("configmap duplicate binary key", "configmaps",
     {"metadata": {"name": "c", "namespace": "d"}, "data": {"k": "x"},
      "binaryData": {"k": "eA=="}}, None,
     ['data[k]: Invalid value: "k": duplicate of key present in binaryData']),
    ("immutable configmap", "configmaps",
     {"metadata": {"name": "c", "namespace": "d"}, "immutable": True, "data": {"k": "y"}},
     {"metadata": {"name": "c", "namespace": "d"}, "immutable": True, "data": {"k": "x"}},
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("secret key", "secrets",
     {"metadata": {"name": "s", "namespace": "d"}, "data": {"pass word": "eA=="}}, None,
     ['data[pass word]: Invalid value: "pass word": a valid config key must consist of '
      "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
      "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
    ("secret too big", "secrets",
     {"metadata": {"name": "s", "namespace": "d"}, "stringData": {"big": "x" * (1 << 20),
                                                                  "more": "y"}}, None,
     ["data: Too long: may not be more than 1048576 bytes"]),
    ("tls secret keys", "secrets",
     {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls"}, None,
     ["data[tls.crt]: Required value", "data[tls.key]: Required value"]),
    ("secret type immutable", "secrets",
     {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/basic-auth",
      "data": {"username": "YQ=="}},
     {"metadata": {"name": "s", "namespace": "d"}, "data": {"username": "YQ=="}},
     ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']),
    # --- namespaces, leases, rbac
    ("namespace finalizer", "namespaces",
     {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes", "cleanup"]}}, None,
     ['spec.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name '
      "nor is it fully qualified"]),
    ("lease duration", "leases.coordination.k8s.io",
     {"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}, None,
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("lease transitions", "leases.coordination.k8s.io",
     {"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseTransitions": -1}}, None,
     ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]),
    ("role rule without verbs", "roles.rbac.authorization.k8s.io",
     {"metadata": {"name": "r", "namespace": "d"},
      "rules": [{"apiGroups": [""], "resources": ["pods"]}]}, None,
     ["rules[0].verbs: Required value: verbs must contain at least one value"]),
    ("role rule without api groups", "roles.rbac.authorization.k8s.io",
     {"metadata": {"name": "r", "namespace": "d"},
      "rules": [{"resources": ["pods"], "verbs": ["get"]}]}, None,
     ["rules[0].apiGroups: Required value: resource rules must supply at least one api "
      "group"]),
    ("cluster role binding to a Role", "clusterrolebindings.rbac.authorization.k8s.io",
     {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
      "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}, None,
     ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
      "subjects[0].namespace: Required value"]),
    ("binding roleRef immutable", "rolebindings.rbac.authorization.k8s.io",
     {"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "b"}},
     {"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "a"}},
     ['roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
      'Kind:"Role", Name:"b"}: cannot change roleRef']),
    # --- CRDs
    ("crd name", "customresourcedefinitions.apiextensions.k8s.io",
     edit(crd(), lambda o: o["metadata"].update(name="widget.example.com")), None,
     ['metadata.name: Invalid value: "widget.example.com": must be '
      'spec.names.plural+"."+spec.group']),
    ("crd group", "customresourcedefinitions.apiextensions.k8s.io",
     edit(crd(group="example"), lambda o: o["metadata"].update(name="widgets.example")), None,
     ['spec.group: Invalid value: "example": should be a domain with at least one dot']),
    ("crd scope", "customresourcedefinitions.apiextensions.k8s.io", crd(scope="Global"), None,
     ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']),
    ("crd two storage versions", "customresourcedefinitions.apiextensions.k8s.io",
     crd(versions=[{"name": "v1", "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}}},
                   {"name": "v2", "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]), None,
     ["spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
      'apiextensions.CustomResourceDefinitionVersion{Name:"v1", Served:true, Storage:true, '
      '...}, apiextensions.CustomResourceDefinitionVersion{Name:"v2", Served:true, '
      "Storage:true, ...}}: must have exactly one version marked as storage version",
      "status.storedVersions: Invalid value: apiextensions.CustomResourceDefinitionVersion{"
      'Name:"v2", ...}: must have the storage version v2']),
    ("crd schema required", "customresourcedefinitions.apiextensions.k8s.io",
     crd(versions=[{"name": "v1", "served": True, "storage": True}]), None,
     ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]),
    ("crd kind", "customresourcedefinitions.apiextensions.k8s.io",
     crd(names={"plural": "widgets", "kind": "Wid get"}), None,
     [f'spec.names.singular: Invalid value: "wid get": {DNS1035}',
      'spec.names.kind: Invalid value: "Wid get": may have mixed case, but should otherwise '
      f"match: {DNS1035}",
      'spec.names.listKind: Invalid value: "Wid getList": may have mixed case, but should '
      f"otherwise match: {DNS1035}"]),
    ("crd group immutable", "customresourcedefinitions.apiextensions.k8s.io",
     edit(crd(group="example.org"), lambda o: o["metadata"].update(name="widgets.example.org")),
     crd(), ['metadata.name: Invalid value: "widgets.example.org": field is immutable',
             'spec.group: Invalid value: "example.org": field is immutable']),
]


@pytest.mark.parametrize(("name", "resource", "obj", "old", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_validation(name: str, resource: str, obj: dict, old: dict | None,
                    expected: list[str]) -> None:
    assert check(resource, obj, old) == expected


def test_invalid_error_message_and_causes() -> None:
    """What a client finally sees: kube's Status message and its causes."""
    t = rt("pods")
    obj = pod({"containers": [{"name": "app"}]})
    defaults.apply_defaults(t, obj)
    exc = errors.Invalid(t.kind, "web", validation.validate(t, obj), group=t.group)
    assert exc.message == 'Pod "web" is invalid: spec.containers[0].image: Required value'
    assert exc.status()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value",
         "field": "spec.containers[0].image"}]


def test_not_found_cause_reason() -> None:
    t = rt("pods")
    obj = pod({"containers": [container(volumeMounts=[{"name": "x", "mountPath": "/x"}])]})
    defaults.apply_defaults(t, obj)
    [err] = validation.validate(t, obj)
    assert err.cause() == {"reason": "FieldValueNotFound", "message": 'Not found: "x"',
                           "field": "spec.containers[0].volumeMounts[0].name"}


def test_go_quoting_of_values() -> None:
    assert validation.go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    assert validation.go_value(True) == "true"
    assert validation.go_value(None) == "null"
    assert validation.go_string_map({"b": "2", "a": "1"}) == 'map[string]string{"a":"1", "b":"2"}'


def test_validate_label_selector_field_errors() -> None:
    """metav1validation.ValidateLabelSelector, used for workload selectors and for a
    webhook's namespaceSelector and objectSelector alike."""
    errs = validation.validate_label_selector({
        "matchLabels": {"ok": "fine", "bad/": "x"},
        "matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x y"]},
            {"key": "c", "operator": "Sometimes"},
        ],
    }, "spec.selector")
    shown = [str(e) for e in errs]
    assert shown[0].startswith('spec.selector.matchLabels: Invalid value: "bad/": name part '
                               "must be non-empty")
    assert ("spec.selector.matchExpressions[0].values: Required value: must be specified when "
            "`operator` is 'In' or 'NotIn'") in shown
    assert ("spec.selector.matchExpressions[1].values: Forbidden: may not be specified when "
            "`operator` is 'Exists' or 'DoesNotExist'") in shown
    # Values are checked whatever the operator, as kube checks them.
    assert (f'spec.selector.matchExpressions[1].values[0]: Invalid value: "x y": {LABEL_VALUE}'
            in shown)
    assert ('spec.selector.matchExpressions[2].operator: Invalid value: "Sometimes": not a '
            "valid selector operator") in shown
    assert validation.validate_label_selector({"matchLabels": {"a": "b"}}, "x") == []
    assert validation.validate_label_selector(None, "x") == []


def test_errors_are_deduplicated() -> None:
    """Pod updates validate metadata twice in kube; the aggregate drops repeats."""
    old = pod(uid="u", labels={"app": "web"})
    new = edit(old, lambda o: o["metadata"]["labels"].update(app="web app"))
    assert check("pods", new, old) == [f'metadata.labels: Invalid value: "web app": {LABEL_VALUE}']


def test_custom_resources_get_metadata_rules_only() -> None:
    from nodeless.apiserver.resources.registry import ResourceType
    widget = ResourceType(group="example.com", version="v1", kind="Widget", plural="widgets",
                          singular="widget", namespaced=True, verbs=("create",), crd={})
    obj = {"metadata": {"name": "Bad", "namespace": "d", "finalizers": ["cleanup"]},
           "spec": {"anything": True}}
    assert [str(e) for e in validation.validate(widget, obj)] == [
        f'metadata.name: Invalid value: "Bad": {DNS_SUBDOMAIN}']


def test_pod_validation_is_fast() -> None:
    t = rt("pods")
    base = pod({"containers": [container(ports=[{"containerPort": 80}],
                                         resources={"limits": {"cpu": "1", "memory": "1Gi"}},
                                         readinessProbe={"httpGet": {"port": 80}},
                                         env=[{"name": "A", "value": "b"}],
                                         volumeMounts=[{"name": "c", "mountPath": "/c"}])],
                "volumes": [{"name": "c", "configMap": {"name": "c"}}]},
               labels={"app": "web"})
    defaults.apply_defaults(t, base)
    start = time.perf_counter()
    for _ in range(500):
        assert validation.validate(t, base) == []
    assert (time.perf_counter() - start) / 500 < 0.0005
