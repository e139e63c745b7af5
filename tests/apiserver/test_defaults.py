"""Defaulting: each case is an object a user might write and one field of the object
kube-apiserver v1.37 returns for it (kubectl create -o yaml / --dry-run=server)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from nodeless.apiserver import errors
from nodeless.apiserver.resources import defaults
from nodeless.apiserver.resources.registry import Registry, ResourceType

REGISTRY = Registry()


def rt(resource: str) -> ResourceType:
    """`pods`, `deployments.apps`, ... -> the served ResourceType."""
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


def template(spec: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": spec or {"containers": [container()]}}


def deployment(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(),
                     **spec}}


def job(uid: str | None = "0b8c-uid", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "pi", "namespace": "default"}
    if uid:
        meta["uid"] = uid
    tmpl = {"spec": {"restartPolicy": "Never", "containers": [container(image="perl")]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"template": tmpl, **spec}}


def edit_template_labels(obj: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    obj["spec"]["template"]["metadata"] = {"labels": labels}
    return obj


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def get(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


C0 = ("spec", "containers", 0)
TC0 = ("spec", "template", "spec", "containers", 0)

CASES: list[tuple[str, str, dict[str, Any], tuple[Any, ...], Any]] = [
    # --- Pod: SetDefaults_PodSpec
    ("pod restartPolicy", "pods", pod(), ("spec", "restartPolicy"), "Always"),
    ("pod dnsPolicy", "pods", pod(), ("spec", "dnsPolicy"), "ClusterFirst"),
    ("pod schedulerName", "pods", pod(), ("spec", "schedulerName"), "default-scheduler"),
    ("pod grace period", "pods", pod(), ("spec", "terminationGracePeriodSeconds"), 30),
    ("pod securityContext", "pods", pod(), ("spec", "securityContext"), {}),
    ("pod keeps grace 0", "pods",
     pod({"containers": [container()], "terminationGracePeriodSeconds": 0}),
     ("spec", "terminationGracePeriodSeconds"), 0),
    # --- Pod: SetDefaults_Pod and admission
    ("pod enableServiceLinks", "pods", pod(), ("spec", "enableServiceLinks"), True),
    ("pod serviceAccountName", "pods", pod(), ("spec", "serviceAccountName"), "default"),
    ("pod serviceAccount", "pods", pod(), ("spec", "serviceAccount"), "default"),
    ("pod keeps its service account", "pods",
     pod({"containers": [container()], "serviceAccountName": "builder"}),
     ("spec", "serviceAccount"), "builder"),
    ("pod deprecated serviceAccount", "pods",
     pod({"containers": [container()], "serviceAccount": "old"}),
     ("spec", "serviceAccountName"), "old"),
    ("pod priority", "pods", pod(), ("spec", "priority"), 0),
    ("pod preemptionPolicy", "pods", pod(), ("spec", "preemptionPolicy"),
     "PreemptLowerPriority"),
    ("pod system-node-critical", "pods",
     pod({"containers": [container()], "priorityClassName": "system-node-critical"}),
     ("spec", "priority"), 2000001000),
    ("pod tolerations", "pods", pod(), ("spec", "tolerations"), [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]),
    ("pod tolerating everything gets none", "pods",
     pod({"containers": [container()], "tolerations": [{"operator": "Exists"}]}),
     ("spec", "tolerations"), [{"operator": "Exists"}]),
    ("pod own not-ready toleration kept", "pods",
     pod({"containers": [container()], "tolerations": [
         {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
          "tolerationSeconds": 10}]}),
     ("spec", "tolerations", 1, "key"), "node.kubernetes.io/unreachable"),
    ("update gets no admission defaults", "pods", pod(uid="7f3e"),
     ("spec",), {"containers": [{"name": "app", "image": "nginx:1.27",
                                 "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File", "resources": {}}],
                 "enableServiceLinks": True, "dnsPolicy": "ClusterFirst",
                 "restartPolicy": "Always", "securityContext": {},
                 "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"}),
    # --- containers
    ("pull policy for a tag", "pods", pod(), (*C0, "imagePullPolicy"), "IfNotPresent"),
    ("pull policy without tag", "pods", pod({"containers": [container(image="nginx")]}),
     (*C0, "imagePullPolicy"), "Always"),
    ("pull policy for latest", "pods",
     pod({"containers": [container(image="docker.io/library/nginx:latest")]}),
     (*C0, "imagePullPolicy"), "Always"),
    ("pull policy for a registry port", "pods",
     pod({"containers": [container(image="localhost:5000/app")]}),
     (*C0, "imagePullPolicy"), "Always"),
    ("pull policy for a digest", "pods",
     pod({"containers": [container(image="nginx@sha256:" + "a" * 64)]}),
     (*C0, "imagePullPolicy"), "IfNotPresent"),
    ("pull policy kept", "pods",
     pod({"containers": [container(image="nginx", imagePullPolicy="Never")]}),
     (*C0, "imagePullPolicy"), "Never"),
    ("termination message path", "pods", pod(), (*C0, "terminationMessagePath"),
     "/dev/termination-log"),
    ("termination message policy", "pods", pod(), (*C0, "terminationMessagePolicy"), "File"),
    ("empty resources", "pods", pod(), (*C0, "resources"), {}),
    ("port protocol", "pods", pod({"containers": [container(ports=[{"containerPort": 80}])]}),
     (*C0, "ports", 0, "protocol"), "TCP"),
    ("hostNetwork hostPort", "pods",
     pod({"hostNetwork": True, "containers": [container(ports=[{"containerPort": 8080}])]}),
     (*C0, "ports", 0, "hostPort"), 8080),
    ("requests from limits", "pods",
     pod({"containers": [container(resources={"limits": {"cpu": "1", "memory": "1Gi"},
                                              "requests": {"cpu": "250m"}})]}),
     (*C0, "resources", "requests"), {"cpu": "250m", "memory": "1Gi"}),
    ("init container requests from limits", "pods",
     pod({"containers": [container()],
          "initContainers": [container(name="init", resources={"limits": {"cpu": "2"}})]}),
     ("spec", "initContainers", 0, "resources", "requests"), {"cpu": "2"}),
    ("quantities canonical", "pods",
     pod({"containers": [container(resources={"limits": {"cpu": 0.5, "memory": "1024Mi"},
                                              "requests": {"cpu": "100m",
                                                           "memory": "1.5Gi"}})]}),
     (*C0, "resources"), {"limits": {"cpu": "500m", "memory": "1Gi"},
                          "requests": {"cpu": "100m", "memory": "1536Mi"}}),
    ("env fieldRef apiVersion", "pods",
     pod({"containers": [container(env=[{"name": "NODE", "valueFrom": {
         "fieldRef": {"fieldPath": "spec.nodeName"}}}])]}),
     (*C0, "env", 0, "valueFrom", "fieldRef"), {"fieldPath": "spec.nodeName",
                                                "apiVersion": "v1"}),
    ("env resourceFieldRef divisor", "pods",
     pod({"containers": [container(env=[{"name": "CPU", "valueFrom": {
         "resourceFieldRef": {"resource": "limits.cpu"}}}])]}),
     (*C0, "env", 0, "valueFrom", "resourceFieldRef", "divisor"), "0"),
    ("probe defaults", "pods",
     pod({"containers": [container(readinessProbe={"httpGet": {"port": 8080}})]}),
     (*C0, "readinessProbe"), {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                               "timeoutSeconds": 1, "periodSeconds": 10,
                               "successThreshold": 1, "failureThreshold": 3}),
    ("probe keeps what was set", "pods",
     pod({"containers": [container(livenessProbe={"tcpSocket": {"port": 80},
                                                  "periodSeconds": 5})]}),
     (*C0, "livenessProbe", "periodSeconds"), 5),
    ("grpc probe service", "pods",
     pod({"containers": [container(startupProbe={"grpc": {"port": 9090}})]}),
     (*C0, "startupProbe", "grpc"), {"port": 9090, "service": ""}),
    ("lifecycle httpGet", "pods",
     pod({"containers": [container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]}),
     (*C0, "lifecycle", "preStop", "httpGet", "scheme"), "HTTP"),
    # --- volumes
    ("volume without source is emptyDir", "pods",
     pod({"containers": [container()], "volumes": [{"name": "scratch"}]}),
     ("spec", "volumes", 0), {"name": "scratch", "emptyDir": {}}),
    ("configMap defaultMode", "pods",
     pod({"containers": [container()], "volumes": [{"name": "c", "configMap": {"name": "c"}}]}),
     ("spec", "volumes", 0, "configMap", "defaultMode"), 420),
    ("secret defaultMode", "pods",
     pod({"containers": [container()],
          "volumes": [{"name": "s", "secret": {"secretName": "s"}}]}),
     ("spec", "volumes", 0, "secret", "defaultMode"), 420),
    ("projected token expiration", "pods",
     pod({"containers": [container()], "volumes": [{"name": "t", "projected": {"sources": [
         {"serviceAccountToken": {"path": "token"}}]}}]}),
     ("spec", "volumes", 0, "projected"), {"sources": [
         {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
         "defaultMode": 420}),
    ("hostPath type", "pods",
     pod({"containers": [container()], "volumes": [{"name": "h", "hostPath": {"path": "/x"}}]}),
     ("spec", "volumes", 0, "hostPath", "type"), ""),
    ("emptyDir sizeLimit canonical", "pods",
     pod({"containers": [container()],
          "volumes": [{"name": "e", "emptyDir": {"sizeLimit": "2048Mi"}}]}),
     ("spec", "volumes", 0, "emptyDir", "sizeLimit"), "2Gi"),
    ("ephemeral volume claim mode", "pods",
     pod({"containers": [container()], "volumes": [{"name": "e", "ephemeral": {
         "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}]}),
     ("spec", "volumes", 0, "ephemeral", "volumeClaimTemplate", "spec", "volumeMode"),
     "Filesystem"),
    # --- Deployment
    ("deployment replicas", "deployments.apps", deployment(), ("spec", "replicas"), 1),
    ("deployment strategy", "deployments.apps", deployment(), ("spec", "strategy"),
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("deployment Recreate has no rollingUpdate", "deployments.apps",
     deployment(strategy={"type": "Recreate"}), ("spec", "strategy"), {"type": "Recreate"}),
    ("deployment revisionHistoryLimit", "deployments.apps", deployment(),
     ("spec", "revisionHistoryLimit"), 10),
    ("deployment progressDeadlineSeconds", "deployments.apps", deployment(),
     ("spec", "progressDeadlineSeconds"), 600),
    ("deployment keeps replicas 0", "deployments.apps", deployment(replicas=0),
     ("spec", "replicas"), 0),
    ("deployment template restartPolicy", "deployments.apps", deployment(),
     ("spec", "template", "spec", "restartPolicy"), "Always"),
    ("deployment template container", "deployments.apps", deployment(),
     (*TC0, "imagePullPolicy"), "IfNotPresent"),
    ("template gets no Pod-only defaults", "deployments.apps", deployment(),
     ("spec", "template", "spec"), {
         "containers": [{"name": "app", "image": "nginx:1.27",
                         "imagePullPolicy": "IfNotPresent",
                         "terminationMessagePath": "/dev/termination-log",
                         "terminationMessagePolicy": "File", "resources": {}}],
         "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
         "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"}),
    ("deployment status", "deployments.apps", deployment(), ("status",), {}),
    # --- ReplicaSet, DaemonSet, StatefulSet
    ("replicaset replicas", "replicasets.apps",
     {"metadata": {"name": "rs", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "replicas"), 1),
    ("daemonset updateStrategy", "daemonsets.apps",
     {"metadata": {"name": "ds", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "updateStrategy"),
     {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    ("daemonset revisionHistoryLimit", "daemonsets.apps",
     {"metadata": {"name": "ds", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "revisionHistoryLimit"), 10),
    ("statefulset podManagementPolicy", "statefulsets.apps",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "podManagementPolicy"), "OrderedReady"),
    ("statefulset updateStrategy", "statefulsets.apps",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "updateStrategy"), {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ("statefulset retention policy", "statefulsets.apps",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "persistentVolumeClaimRetentionPolicy"),
     {"whenDeleted": "Retain", "whenScaled": "Retain"}),
    ("statefulset replicas", "statefulsets.apps",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {"template": template()}},
     ("spec", "replicas"), 1),
    ("statefulset claim template", "statefulsets.apps",
     {"metadata": {"name": "db", "namespace": "d"}, "spec": {
         "template": template(), "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
             "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}},
     ("spec", "volumeClaimTemplates", 0), {
         "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                  "volumeMode": "Filesystem"},
         "status": {"phase": "Pending"}}),
    # --- Job and CronJob
    ("job completions and parallelism", "jobs.batch", job(),
     ("spec", "completions"), 1),
    ("job parallelism alone", "jobs.batch", job(completions=5), ("spec", "parallelism"), 1),
    ("job completions unset with parallelism", "jobs.batch", job(parallelism=3),
     ("spec",), None),
    ("job backoffLimit", "jobs.batch", job(), ("spec", "backoffLimit"), 6),
    ("job backoffLimit with per-index", "jobs.batch",
     job(completionMode="Indexed", completions=3, backoffLimitPerIndex=1),
     ("spec", "backoffLimit"), 2147483647),
    ("job completionMode", "jobs.batch", job(), ("spec", "completionMode"), "NonIndexed"),
    ("job suspend", "jobs.batch", job(), ("spec", "suspend"), False),
    ("job manualSelector", "jobs.batch", job(), ("spec", "manualSelector"), False),
    ("job podReplacementPolicy", "jobs.batch", job(), ("spec", "podReplacementPolicy"),
     "TerminatingOrFailed"),
    ("job podReplacementPolicy with podFailurePolicy", "jobs.batch",
     job(podFailurePolicy={"rules": [{"action": "FailJob", "onPodConditions": [
         {"type": "DisruptionTarget"}]}]}),
     ("spec", "podReplacementPolicy"), "Failed"),
    ("job onPodConditions status", "jobs.batch",
     job(podFailurePolicy={"rules": [{"action": "Ignore", "onPodConditions": [
         {"type": "DisruptionTarget"}]}]}),
     ("spec", "podFailurePolicy", "rules", 0, "onPodConditions", 0, "status"), "True"),
    ("job generated selector", "jobs.batch", job(), ("spec", "selector"),
     {"matchLabels": {"batch.kubernetes.io/controller-uid": "0b8c-uid"}}),
    ("job generated template labels", "jobs.batch", job(),
     ("spec", "template", "metadata", "labels"),
     {"job-name": "pi", "batch.kubernetes.io/job-name": "pi", "controller-uid": "0b8c-uid",
      "batch.kubernetes.io/controller-uid": "0b8c-uid"}),
    ("job keeps the user's template labels", "jobs.batch",
     edit_template_labels(job(), {"app": "pi"}), ("metadata", "labels"), {"app": "pi"}),
    ("job without uid waits for one", "jobs.batch", job(uid=None),
     ("spec", "template", "metadata"), {}),
    ("job manual selector left alone", "jobs.batch",
     job(manualSelector=True, selector={"matchLabels": {"app": "pi"}}),
     ("spec", "selector"), {"matchLabels": {"app": "pi"}}),
    ("cronjob concurrencyPolicy", "cronjobs.batch",
     {"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "* * * * *",
                                                           "jobTemplate": {"spec": {}}}},
     ("spec", "concurrencyPolicy"), "Allow"),
    ("cronjob history limits", "cronjobs.batch",
     {"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "* * * * *",
                                                           "jobTemplate": {"spec": {}}}},
     ("spec",), None),
    ("cronjob suspend", "cronjobs.batch",
     {"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "* * * * *",
                                                           "jobTemplate": {"spec": {}}}},
     ("spec", "suspend"), False),
    # --- Service
    ("service type", "services", service(), ("spec", "type"), "ClusterIP"),
    ("service sessionAffinity", "services", service(), ("spec", "sessionAffinity"), "None"),
    ("service port protocol", "services", service(), ("spec", "ports", 0, "protocol"), "TCP"),
    ("service targetPort is port", "services", service(),
     ("spec", "ports", 0, "targetPort"), 80),
    ("service named targetPort kept", "services",
     service(ports=[{"port": 80, "targetPort": "http"}]),
     ("spec", "ports", 0, "targetPort"), "http"),
    ("service ipFamilyPolicy", "services", service(), ("spec", "ipFamilyPolicy"),
     "SingleStack"),
    ("service ipFamilies", "services", service(), ("spec", "ipFamilies"), ["IPv4"]),
    ("service IPv6 clusterIP family", "services", service(clusterIP="fd00::10"),
     ("spec", "ipFamilies"), ["IPv6"]),
    ("service clusterIPs from clusterIP", "services", service(clusterIP="10.96.0.10"),
     ("spec", "clusterIPs"), ["10.96.0.10"]),
    ("headless without selector", "services",
     {"metadata": {"name": "h", "namespace": "d"}, "spec": {"clusterIP": "None"}},
     ("spec", "ipFamilyPolicy"), "RequireDualStack"),
    ("service internalTrafficPolicy", "services", service(),
     ("spec", "internalTrafficPolicy"), "Cluster"),
    ("ClusterIP has no externalTrafficPolicy", "services", service(), ("spec",), None),
    ("NodePort externalTrafficPolicy", "services", service(type="NodePort"),
     ("spec", "externalTrafficPolicy"), "Cluster"),
    ("LoadBalancer allocateLoadBalancerNodePorts", "services", service(type="LoadBalancer"),
     ("spec", "allocateLoadBalancerNodePorts"), True),
    ("ClientIP affinity timeout", "services", service(sessionAffinity="ClientIP"),
     ("spec", "sessionAffinityConfig"), {"clientIP": {"timeoutSeconds": 10800}}),
    ("service status", "services", service(), ("status",), {"loadBalancer": {}}),
    ("ExternalName keeps no families", "services",
     {"metadata": {"name": "db", "namespace": "d"},
      "spec": {"type": "ExternalName", "externalName": "db.example.com"}},
     ("spec",), {"type": "ExternalName", "externalName": "db.example.com",
                 "sessionAffinity": "None"}),
    # --- Namespace, Secret, other core kinds
    ("namespace finalizer", "namespaces", {"metadata": {"name": "team-a"}},
     ("spec", "finalizers"), ["kubernetes"]),
    ("namespace name label", "namespaces", {"metadata": {"name": "team-a"}},
     ("metadata", "labels", "kubernetes.io/metadata.name"), "team-a"),
    ("namespace phase", "namespaces", {"metadata": {"name": "team-a"}},
     ("status", "phase"), "Active"),
    ("namespace update keeps finalizers", "namespaces",
     {"metadata": {"name": "team-a", "uid": "u"}, "spec": {"finalizers": []}},
     ("spec", "finalizers"), []),
    ("secret type", "secrets", {"metadata": {"name": "s", "namespace": "d"}},
     ("type",), "Opaque"),
    ("secret stringData into data", "secrets",
     {"metadata": {"name": "s", "namespace": "d"}, "stringData": {"password": "hunter2"}},
     ("data",), {"password": "aHVudGVyMg=="}),
    ("pvc volumeMode", "persistentvolumeclaims",
     {"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
     ("spec", "volumeMode"), "Filesystem"),
    ("pvc phase", "persistentvolumeclaims",
     {"metadata": {"name": "c", "namespace": "d"}, "spec": {}}, ("status", "phase"), "Pending"),
    ("pv reclaim policy", "persistentvolumes",
     {"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "10Gi"}}},
     ("spec", "persistentVolumeReclaimPolicy"), "Retain"),
    ("node allocatable from capacity", "nodes",
     {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2", "memory": "4096Mi"}}},
     ("status", "allocatable"), {"cpu": "2", "memory": "4Gi"}),
    ("endpoints port protocol", "endpoints",
     {"metadata": {"name": "e", "namespace": "d"},
      "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
     ("subsets", 0, "ports", 0, "protocol"), "TCP"),
    ("limit range defaults", "limitranges",
     {"metadata": {"name": "l", "namespace": "d"}, "spec": {"limits": [
         {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}},
     ("spec", "limits", 0), {"type": "Container", "max": {"cpu": "2"},
                             "min": {"memory": "64Mi"}, "default": {"cpu": "2"},
                             "defaultRequest": {"cpu": "2", "memory": "64Mi"}}),
    # --- other groups
    ("role binding subject group", "rolebindings.rbac.authorization.k8s.io",
     {"metadata": {"name": "b", "namespace": "d"},
      "roleRef": {"kind": "Role", "name": "r"},
      "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]},
     ("subjects",), [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "ServiceAccount", "name": "sa", "apiGroup": ""}]),
    ("role binding roleRef group", "rolebindings.rbac.authorization.k8s.io",
     {"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r"}},
     ("roleRef", "apiGroup"), "rbac.authorization.k8s.io"),
    ("webhook defaults", "mutatingwebhookconfigurations.admissionregistration.k8s.io",
     {"metadata": {"name": "w"}, "webhooks": [{"name": "w.example.com", "sideEffects": "None",
                                              "admissionReviewVersions": ["v1"],
                                              "clientConfig": {"service": {"name": "s",
                                                                           "namespace": "n"}},
                                              "rules": [{"operations": ["CREATE"]}]}]},
     ("webhooks", 0), {"name": "w.example.com", "sideEffects": "None",
                       "admissionReviewVersions": ["v1"],
                       "clientConfig": {"service": {"name": "s", "namespace": "n", "port": 443}},
                       "rules": [{"operations": ["CREATE"], "scope": "*"}],
                       "failurePolicy": "Fail", "matchPolicy": "Equivalent",
                       "namespaceSelector": {}, "objectSelector": {}, "timeoutSeconds": 10,
                       "reinvocationPolicy": "Never"}),
    ("crd names and conversion", "customresourcedefinitions.apiextensions.k8s.io",
     {"metadata": {"name": "widgets.example.com"},
      "spec": {"group": "example.com", "scope": "Namespaced",
               "names": {"plural": "widgets", "kind": "Widget"},
               "versions": [{"name": "v1", "served": True, "storage": True}]}},
     ("spec",), None),
    ("crd storedVersions", "customresourcedefinitions.apiextensions.k8s.io",
     {"metadata": {"name": "widgets.example.com"},
      "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
               "versions": [{"name": "v1alpha1", "served": True, "storage": False},
                            {"name": "v1", "served": True, "storage": True}]}},
     ("status", "storedVersions"), ["v1"]),
    ("network policy types", "networkpolicies.networking.k8s.io",
     {"metadata": {"name": "np", "namespace": "d"},
      "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}},
     ("spec", "policyTypes"), ["Ingress", "Egress"]),
    ("network policy port protocol", "networkpolicies.networking.k8s.io",
     {"metadata": {"name": "np", "namespace": "d"},
      "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}},
     ("spec", "egress", 0, "ports", 0, "protocol"), "TCP"),
    ("hpa defaults", "horizontalpodautoscalers.autoscaling",
     {"metadata": {"name": "h", "namespace": "d"},
      "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}},
     ("spec", "metrics"), [{"type": "Resource", "resource": {
         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
    ("storage class defaults", "storageclasses.storage.k8s.io",
     {"metadata": {"name": "fast"}, "provisioner": "efs.csi.aws.com"},
     ("volumeBindingMode",), "Immediate"),
    ("priority class preemption", "priorityclasses.scheduling.k8s.io",
     {"metadata": {"name": "high"}, "value": 1000}, ("preemptionPolicy",),
     "PreemptLowerPriority"),
    ("endpoint slice port", "endpointslices.discovery.k8s.io",
     {"metadata": {"name": "e", "namespace": "d"}, "addressType": "IPv4",
      "ports": [{"port": 80}]}, ("ports", 0), {"port": 80, "name": "", "protocol": "TCP"}),
]

# Whole-section expectations that are easier to write as the full value.
WHOLE = {
    "job completions unset with parallelism": ("parallelism", 3, "completions", None),
    "ClusterIP has no externalTrafficPolicy": ("externalTrafficPolicy", None, None, None),
    "cronjob history limits": ("successfulJobsHistoryLimit", 3, "failedJobsHistoryLimit", 1),
    "crd names and conversion": ("conversion", {"strategy": "None"}, "names",
                                 {"plural": "widgets", "kind": "Widget", "singular": "widget",
                                  "listKind": "WidgetList"}),
}


@pytest.mark.parametrize(("name", "resource", "obj", "path", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_defaults(name: str, resource: str, obj: dict, path: tuple, expected: Any) -> None:
    obj = copy.deepcopy(obj)
    defaults.apply_defaults(rt(resource), obj)
    value = get(obj, path)
    if name in WHOLE:
        k1, v1, k2, v2 = WHOLE[name]
        assert value.get(k1) == v1
        if k2:
            assert value.get(k2) == v2
    else:
        assert value == expected


def test_defaulting_is_idempotent() -> None:
    for resource, obj in (("pods", pod()), ("deployments.apps", deployment()),
                          ("jobs.batch", job()), ("services", service())):
        # Two passes: a job only takes its generated labels on the second (as on a read).
        once = copy.deepcopy(obj)
        defaults.apply_defaults(rt(resource), once)
        defaults.apply_defaults(rt(resource), once)
        twice = copy.deepcopy(once)
        defaults.apply_defaults(rt(resource), twice)
        assert twice == once, resource


def test_generate_job_selector_after_uid() -> None:
    """The create path defaults before the uid exists; the selector follows the uid."""
    obj = job(uid=None)
    defaults.apply_defaults(rt("jobs.batch"), obj)
    assert "selector" not in obj["spec"]
    obj["metadata"]["uid"] = "abc"
    defaults.generate_job_selector(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}
    assert "labels" not in obj["metadata"]
    # Decoding the stored job defaults it again: then it takes its template's labels.
    defaults.apply_defaults(rt("jobs.batch"), obj)
    assert obj["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"


def test_undecodable_quantity_is_a_bad_request() -> None:
    obj = pod({"containers": [container(resources={"limits": {"cpu": "one"}})]})
    with pytest.raises(errors.BadRequest) as exc:
        defaults.apply_defaults(rt("pods"), obj)
    assert exc.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


QUANTITIES = [
    ("1", "1"), ("1000m", "1"), ("0.5", "500m"), ("1.5", "1500m"), ("100m", "100m"),
    ("0.0001", "1m"), ("2000", "2k"), ("1e3", "1e3"), ("1.5e3", "1500"), ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"), ("0.5Gi", "512Mi"), ("1.5Ki", "1536"), ("100Ki", "100Ki"),
    ("1G", "1G"), ("128974848", "128974848"), ("0", "0"), ("0Mi", "0"), ("-1", "-1"),
    ("-500m", "-500m"), (2, "2"), (0.25, "250m"), ("12e6", "12e6"),
]


@pytest.mark.parametrize(("given", "canonical"), QUANTITIES, ids=[str(q[0]) for q in QUANTITIES])
def test_canonical_quantity(given: Any, canonical: str) -> None:
    assert defaults.canonical_quantity(given, milli=True) == canonical


@pytest.mark.parametrize("image", ["nginx", "nginx:latest", "ghcr.io/o/app", "localhost:5000/a"])
def test_latest_images_are_always_pulled(image: str) -> None:
    assert defaults.default_pull_policy(image) == "Always"


@pytest.mark.parametrize("image", ["nginx:1.27", "Nginx", "nginx@sha256:" + "0" * 64,
                                   "registry:5000/app:v2", ""])
def test_other_images_are_pulled_if_not_present(image: str) -> None:
    assert defaults.default_pull_policy(image) == "IfNotPresent"


def test_pod_defaulting_is_fast() -> None:
    pods = rt("pods")
    base = pod({"containers": [container(ports=[{"containerPort": 80}],
                                         resources={"limits": {"cpu": "1", "memory": "1Gi"}},
                                         readinessProbe={"httpGet": {"port": 80}})],
                "volumes": [{"name": "c", "configMap": {"name": "c"}}]})
    objs = [copy.deepcopy(base) for _ in range(500)]
    start = time.perf_counter()
    for obj in objs:
        defaults.apply_defaults(pods, obj)
    assert (time.perf_counter() - start) / len(objs) < 0.0005
