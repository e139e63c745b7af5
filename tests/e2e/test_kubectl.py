"""kubectl 1.37 with the generated kubeconfig and its default flags, against the API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import yaml

from tests.fixtures.apiserver import KUBECTL, RunningAPIServer

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:{tag}
        ports: [{containerPort: 80}]
        env: [{name: MODE, value: "{mode}"}]
"""

MIXED = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: "{color}"}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {role: solo}}
spec:
  containers: [{name: main, image: "busybox:{tag}", command: [sleep, "3600"]}]
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue}
          status:
            type: object
            properties:
              ready: {type: boolean}
"""

WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: {size}}
"""


def _fill(template: str, **values: object) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def apply(server: RunningAPIServer, ns: str, manifest: str, *extra: str) -> str:
    return server.kubectl("apply", "-n", ns, "-f", "-", *extra, input=manifest).stdout


def get_json(server: RunningAPIServer, *args: str) -> dict:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def test_apply_twice_with_a_change(apiserver: RunningAPIServer, namespace: str) -> None:
    out = apply(apiserver, namespace, _fill(DEPLOYMENT, tag="1.25", mode="a"))
    assert "deployment.apps/web created" in out
    out = apply(apiserver, namespace, _fill(MIXED, color="red", tag="1.36"))
    assert "configmap/settings created" in out and "service/web created" in out
    assert "pod/solo created" in out

    out = apply(apiserver, namespace, _fill(DEPLOYMENT, tag="1.27", mode="b"))
    assert "deployment.apps/web configured" in out
    out = apply(apiserver, namespace, _fill(MIXED, color="green", tag="1.36"))
    assert "configmap/settings configured" in out
    assert "service/web unchanged" in out and "pod/solo unchanged" in out

    deploy = get_json(apiserver, "-n", namespace, "deployment", "web")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"
    assert container["env"] == [{"name": "MODE", "value": "b"}]
    assert deploy["metadata"]["generation"] == 2
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"  # defaulted
    cm = get_json(apiserver, "-n", namespace, "configmap", "settings")
    assert cm["data"] == {"color": "green"}
    svc = get_json(apiserver, "-n", namespace, "service", "web")
    assert svc["spec"]["clusterIP"].startswith("10.")
    pod = get_json(apiserver, "-n", namespace, "pod", "solo")
    assert pod["spec"]["schedulerName"] == "default-scheduler"
    assert pod["status"]["phase"] == "Pending"


def test_crd_and_custom_object(apiserver: RunningAPIServer, namespace: str) -> None:
    out = apiserver.kubectl("apply", "-f", "-", input=CRD).stdout
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com" in out
    apiserver.kubectl("wait", "--for=condition=Established", "--timeout=20s",
                      "crd/widgets.example.com")
    out = apply(apiserver, namespace, _fill(WIDGET, size=3))
    assert "widget.example.com/w1 created" in out
    out = apply(apiserver, namespace, _fill(WIDGET, size=5))
    assert "widget.example.com/w1 configured" in out
    widget = get_json(apiserver, "-n", namespace, "wd", "w1")
    assert widget["spec"] == {"size": 5, "color": "blue"}  # schema default applied
    table = apiserver.kubectl("get", "-n", namespace, "widgets").stdout
    # With printer columns declared, kube shows exactly those (no implicit AGE).
    assert table.split("\n")[0].split() == ["NAME", "SIZE"]
    assert table.split("\n")[1].split()[:2] == ["w1", "5"]
    bad = apiserver.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                            input=_fill(WIDGET, size=0).replace("w1", "w2"))
    assert bad.returncode != 0 and "spec.size" in bad.stderr
    apiserver.kubectl("explain", "widgets.spec")


def test_get_outputs_and_selectors(apiserver: RunningAPIServer, namespace: str) -> None:
    apply(apiserver, namespace, _fill(MIXED, color="red", tag="1.36"))
    apply(apiserver, namespace, _fill(DEPLOYMENT, tag="1.25", mode="a"))
    table = apiserver.kubectl("get", "pods", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1].split()[:3] == ["solo", "0/1", "Pending"]
    doc = yaml.safe_load(apiserver.kubectl("get", "pod", "solo", "-n", namespace,
                                           "-o", "yaml").stdout)
    assert doc["kind"] == "Pod" and doc["metadata"]["uid"]
    assert get_json(apiserver, "configmap", "settings", "-n", namespace)["data"]["color"] == "red"
    labelled = get_json(apiserver, "pods", "-n", namespace, "-l", "role=solo")
    assert [p["metadata"]["name"] for p in labelled["items"]] == ["solo"]
    assert get_json(apiserver, "pods", "-n", namespace, "-l", "role!=solo")["items"] == []
    by_field = get_json(apiserver, "pods", "-n", namespace, "--field-selector",
                        "status.phase=Pending,metadata.name=solo")
    assert len(by_field["items"]) == 1
    everywhere = apiserver.kubectl("get", "configmaps", "-A").stdout
    assert namespace in everywhere and "settings" in everywhere
    everything = apiserver.kubectl("get", "all", "-n", namespace).stdout
    assert "pod/solo" in everything and "service/web" in everything
    assert "deployment.apps/web" in everything
    resources = apiserver.kubectl("api-resources").stdout
    assert any(line.split()[:2] == ["pods", "po"] for line in resources.splitlines())
    assert "customresourcedefinitions" in resources


def test_get_watch_sees_other_clients_change(apiserver: RunningAPIServer, namespace: str
                                             ) -> None:
    apiserver.kubectl("create", "configmap", "watched", "-n", namespace,
                      "--from-literal=k=v1")
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig)}
    watcher = subprocess.Popen(
        [KUBECTL, "get", "configmaps", "-n", namespace, "-w", "-o",
         "custom-columns=NAME:.metadata.name,VALUE:.data.k", "--request-timeout=30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 20
        lines: list[str] = []
        assert watcher.stdout is not None
        line = watcher.stdout.readline()  # header or first row: the watch is running
        lines.append(line)
        time.sleep(0.5)
        apiserver.kubectl("patch", "configmap", "watched", "-n", namespace, "--type", "merge",
                          "-p", '{"data":{"k":"v2"}}')
        while time.time() < deadline:
            line = watcher.stdout.readline()
            lines.append(line)
            if "v2" in line:
                break
        assert any("watched" in row and "v2" in row for row in lines), lines
    finally:
        watcher.kill()
        watcher.communicate()


def test_label_annotate_patch_edit_scale(apiserver: RunningAPIServer, namespace: str) -> None:
    apply(apiserver, namespace, _fill(DEPLOYMENT, tag="1.25", mode="a"))
    apply(apiserver, namespace, _fill(MIXED, color="red", tag="1.36"))
    apiserver.kubectl("label", "pod", "solo", "-n", namespace, "team=blue")
    apiserver.kubectl("annotate", "pod", "solo", "-n", namespace, "note=hello")
    pod = get_json(apiserver, "pod", "solo", "-n", namespace)
    assert pod["metadata"]["labels"]["team"] == "blue"
    assert pod["metadata"]["annotations"]["note"] == "hello"
    apiserver.kubectl("label", "pod", "solo", "-n", namespace, "team-")
    assert "team" not in get_json(apiserver, "pod", "solo", "-n", namespace)["metadata"][
        "labels"]
    conflict = apiserver.kubectl("label", "pod", "solo", "-n", namespace, "role=x",
                                 check=False)
    assert conflict.returncode != 0 and "already has a value" in conflict.stderr

    apiserver.kubectl("patch", "configmap", "settings", "-n", namespace, "--type", "json",
                      "-p", '[{"op":"add","path":"/data/size","value":"L"}]')
    apiserver.kubectl("patch", "configmap", "settings", "-n", namespace, "--type", "merge",
                      "-p", '{"data":{"color":null,"shape":"round"}}')
    assert get_json(apiserver, "cm", "settings", "-n", namespace)["data"] == {
        "size": "L", "shape": "round"}
    apiserver.kubectl("patch", "deployment", "web", "-n", namespace, "--type", "strategic",
                      "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar",'
                      '"image":"busybox"}]}}}}')
    names = [c["name"] for c in get_json(apiserver, "deploy", "web", "-n", namespace)[
        "spec"]["template"]["spec"]["containers"]]
    assert names == ["sidecar", "nginx"] or sorted(names) == ["nginx", "sidecar"]
    apiserver.kubectl("set", "image", "deployment/web", "-n", namespace, "nginx=nginx:1.29")
    containers = get_json(apiserver, "deploy", "web", "-n", namespace)["spec"]["template"][
        "spec"]["containers"]
    assert {c["name"]: c["image"] for c in containers}["nginx"] == "nginx:1.29"

    editor = textwrap.dedent("""\
        import sys
        path = sys.argv[1]
        text = open(path).read().replace("color: red", "color: purple")
        open(path, "w").write(text)
        """)
    script = apiserver.kubeconfig.parent / "editor.py"
    script.write_text(editor)
    apiserver.kubectl("patch", "configmap", "settings", "-n", namespace, "--type", "merge",
                      "-p", '{"data":{"color":"red"}}')
    apiserver.kubectl("edit", "configmap", "settings", "-n", namespace,
                      env={"KUBE_EDITOR": f"{sys.executable} {script}"})
    assert get_json(apiserver, "cm", "settings", "-n", namespace)["data"]["color"] == "purple"

    apiserver.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=5")
    assert get_json(apiserver, "deploy", "web", "-n", namespace)["spec"]["replicas"] == 5
    scale = json.loads(apiserver.kubectl(
        "get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 5
    assert scale["status"]["selector"] == "app=web"


def test_delete_create_namespace_and_dry_run(apiserver: RunningAPIServer, namespace: str
                                             ) -> None:
    apply(apiserver, namespace, _fill(MIXED, color="red", tag="1.36"))
    out = apply(apiserver, namespace, _fill(DEPLOYMENT, tag="1.25", mode="a"),
                "--dry-run=server")
    assert "deployment.apps/web created (server dry run)" in out
    missing = apiserver.kubectl("get", "deployment", "web", "-n", namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    apiserver.kubectl("delete", "configmap", "settings", "-n", namespace)
    apiserver.kubectl("delete", "service", "web", "-n", namespace)
    apiserver.kubectl("delete", "pod", "solo", "-n", namespace)  # unbound: goes at once
    left = get_json(apiserver, "pods,services,configmaps", "-n", namespace)
    assert [i["metadata"]["name"] for i in left["items"]] == []
    apiserver.kubectl("create", "namespace", namespace + "-x")
    ns = get_json(apiserver, "namespace", namespace + "-x")
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == namespace + "-x"
    exists = apiserver.kubectl("create", "namespace", namespace + "-x", check=False)
    assert exists.returncode != 0 and "AlreadyExists" in exists.stderr


def test_errors_are_clear(apiserver: RunningAPIServer, namespace: str) -> None:
    bad_name = apiserver.kubectl("create", "configmap", "Bad_Name", "-n", namespace,
                                 check=False)
    assert bad_name.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name' in bad_name.stderr
    no_ns = apiserver.kubectl("create", "configmap", "x", "-n", "does-not-exist", check=False)
    assert 'namespaces "does-not-exist" not found' in no_ns.stderr
    unknown = apiserver.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                                input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u}\n"
                                      "dataa: {x: y}\n")
    assert unknown.returncode != 0 and 'unknown field "dataa"' in unknown.stderr
