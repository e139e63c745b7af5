"""The schema walker: pruning, fieldValidation, decoding errors, CRD defaults and rules."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from nodeless.apiserver import errors
from nodeless.apiserver.resources import structural

POD = "io.k8s.api.core.v1.Pod"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "c", "image": "nginx",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                              "requests": {"cpu": 0.5}},
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "livenessProbe": {"tcpSocket": {"port": 8080}},
            }],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
    }


# --- built-in types ------------------------------------------------------------------------

def test_valid_pod_is_untouched() -> None:
    obj = pod()
    result = structural.check(obj, schema_ref=POD)
    assert result.unknown_fields == []
    assert obj == pod()
    assert (result.kind, result.version) == ("Pod", "v1")


def test_unknown_fields_are_pruned_with_kube_paths() -> None:
    obj = pod()
    obj["spec"]["foo"] = 1
    obj["spec"]["containers"][0]["bar"] = {"x": 1}
    obj["metadata"]["zzz"] = True
    obj["Spec"] = {}  # kube's decoder is case-sensitive
    result = structural.check(obj, schema_ref=POD)
    assert result.unknown_fields == [
        "metadata.zzz", "spec.containers[0].bar", "spec.foo", "Spec"]
    assert "foo" not in obj["spec"]
    assert "bar" not in obj["spec"]["containers"][0]
    assert "zzz" not in obj["metadata"] and "Spec" not in obj


def test_warn_strict_ignore() -> None:
    obj = pod()
    obj["spec"]["foo"] = 1
    result = structural.check(obj, schema_ref=POD)

    warnings: list[str] = []
    structural.report(result, "Warn", warnings, kind="Pod", name="p")
    assert warnings == ['unknown field "spec.foo"']

    warnings = []
    structural.report(result, "", warnings, kind="Pod", name="p")  # Warn is the default
    assert warnings == ['unknown field "spec.foo"']

    warnings = []
    structural.report(result, "Ignore", warnings, kind="Pod", name="p")
    assert warnings == []

    with pytest.raises(errors.BadRequest) as exc:
        structural.report(result, "Strict", [], kind="Pod", name="p")
    assert exc.value.code == 400
    assert exc.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.foo"')

    with pytest.raises(errors.BadRequest):
        structural.report(result, "Loud", [], kind="Pod", name="p")


def test_strict_without_unknown_fields_passes() -> None:
    result = structural.check(pod(), schema_ref=POD)
    structural.report(result, "Strict", [], kind="Pod", name="p")


def test_strict_lists_every_field() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 1, "foo": 1, "template": {"spec": {"bar": 2}}}}
    result = structural.check(obj, schema_ref=DEPLOYMENT)
    with pytest.raises(errors.BadRequest) as exc:
        structural.report(result, "Strict", [], kind="Deployment.apps", name="d")
    assert exc.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
        'error: unknown field "spec.foo", unknown field "spec.template.spec.bar"')


@pytest.mark.parametrize(("path", "value", "message"), [
    (("spec", "containers", 0, "name"), 1,
     "json: cannot unmarshal number into Go struct field Container.spec.containers.name "
     "of type string"),
    (("spec", "containers"), {"name": "c"},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.containers "
     "of type []v1.Container"),
    (("spec",), "x",
     "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"),
    (("metadata", "labels", "app"), 1,
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
     "of type string"),
    (("spec", "containers", 0, "ports", 0, "containerPort"), "80",
     "json: cannot unmarshal string into Go struct field "
     "ContainerPort.spec.containers.ports.containerPort of type int32"),
    (("spec", "containers", 0, "ports", 0, "containerPort"), 1.5,
     "json: cannot unmarshal number 1.5 into Go struct field "
     "ContainerPort.spec.containers.ports.containerPort of type int32"),
    (("spec", "hostNetwork"), "yes",
     "json: cannot unmarshal string into Go struct field PodSpec.spec.hostNetwork of type bool"),
    (("spec", "containers", 0, "readinessProbe", "httpGet", "port"), ["a"],
     "json: cannot unmarshal array into Go struct field "
     "HTTPGetAction.spec.containers.readinessProbe.httpGet.port of type intstr.IntOrString"),
])
def test_type_errors_are_decoding_errors(path: tuple[Any, ...], value: Any,
                                         message: str) -> None:
    obj = pod()
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(errors.BadRequest) as exc:
        structural.check(obj, schema_ref=POD)
    assert exc.value.code == 400
    assert exc.value.message == f'Pod in version "v1" cannot be handled as a Pod: {message}'


def test_int_or_string_and_quantity_take_both_forms() -> None:
    obj = pod()
    container = obj["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["port"] = 8080
    container["livenessProbe"]["tcpSocket"]["port"] = "http"
    container["resources"]["limits"] = {"cpu": 2, "memory": "512Mi"}
    container["resources"]["requests"] = {"cpu": "250m", "memory": 1.5e9}
    assert structural.check(obj, schema_ref=POD).unknown_fields == []
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%",
                                                          "maxUnavailable": 0}}}}
    assert structural.check(deployment, schema_ref=DEPLOYMENT).unknown_fields == []


def test_nulls_decode_to_zero_values() -> None:
    obj = pod()
    obj["spec"]["restartPolicy"] = None
    obj["metadata"]["annotations"] = None
    assert structural.check(obj, schema_ref=POD).unknown_fields == []
    assert "restartPolicy" not in obj["spec"] and "annotations" not in obj["metadata"]


def test_free_form_fields_keep_everything() -> None:
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "r"}, "revision": 1,
                "data": {"anything": {"goes": [1, 2]}}}
    result = structural.check(revision, schema_ref="io.k8s.api.apps.v1.ControllerRevision")
    assert result.unknown_fields == []
    assert revision["data"] == {"anything": {"goes": [1, 2]}}


def test_crd_object_schemas_are_checked_as_json_schema_props() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "crontabs.stable.example.com"},
           "spec": {"group": "stable.example.com", "scope": "Namespaced",
                    "names": {"plural": "crontabs", "kind": "CronTab"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {
                            "spec": {"type": "object", "default": {},
                                     "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    name = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    assert structural.check(crd, schema_ref=name).unknown_fields == []


def test_pod_checks_fast() -> None:
    objs = [pod() for _ in range(500)]
    structural.check(pod(), schema_ref=POD)  # compile outside the timing
    start = time.perf_counter()
    for obj in objs:
        structural.check(obj, schema_ref=POD)
    per_pod = (time.perf_counter() - start) / len(objs)
    assert per_pod < 0.001


def test_no_schema_is_a_no_op() -> None:
    obj = {"anything": 1}
    assert structural.check(obj).unknown_fields == []
    assert obj == {"anything": 1}


# --- custom resources ----------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^[0-9*/ ]+$", "maxLength": 20},
                "image": {"type": "string", "minLength": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "port": {"x-kubernetes-int-or-string": True},
                "options": {"type": "object", "default": {},
                            "properties": {"verbose": {"type": "boolean", "default": True}}},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1,
                         "items": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "maybe": {"type": "string", "nullable": True},
                "never": {"type": "string", "default": "d"},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
                "workers": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string",
                                                              "default": "w"}}}},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def crontab(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "c", "labels": {"a": "b"}}, "spec": {"image": "i", **spec}}


def test_crd_pruning() -> None:
    obj = crontab(extra=1, free={"any": {"thing": 1}}, port="http",
                  template={"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "x", "junk": 2}, "spec": {"q": 1}},
                  workers=[{"name": "a", "age": 3}])
    obj["metadata"]["bogus"] = 1
    obj["top"] = 1
    obj["status"] = {"whatever": True}
    result = structural.check(obj, crd_schema=SCHEMA)
    assert result.unknown_fields == [
        "metadata.bogus", "spec.extra", "spec.template.metadata.junk", "spec.workers[0].age",
        "top"]
    assert obj["spec"]["free"] == {"any": {"thing": 1}}
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": "x"}, "spec": {"q": 1}}
    assert obj["status"] == {"whatever": True}
    assert "top" not in obj and obj["metadata"] == {"name": "c", "labels": {"a": "b"}}
    assert (result.kind, result.version) == ("CronTab", "v1")
    with pytest.raises(errors.BadRequest) as exc:
        structural.report(result, "Strict", [], kind="CronTab.stable.example.com", name="c")
    assert exc.value.message.startswith(
        'CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: '
        'unknown field "metadata.bogus", unknown field "spec.extra"')


def test_crd_metadata_decodes_as_object_meta() -> None:
    obj = crontab()
    obj["metadata"]["labels"] = ["a"]
    with pytest.raises(errors.BadRequest) as exc:
        structural.check(obj, crd_schema=SCHEMA)
    assert "Go struct field ObjectMeta.metadata.labels of type map[string]string" in (
        exc.value.message)


def test_crd_defaults() -> None:
    obj = crontab(maybe=None, never=None, workers=[{}, {"name": "x"}])
    structural.check(obj, crd_schema=SCHEMA)
    structural.apply_crd_defaults(obj, SCHEMA)
    spec = obj["spec"]
    assert spec["replicas"] == 1 and spec["mode"] == "a"
    assert spec["options"] == {"verbose": True}  # defaulted, then defaults inside it
    assert spec["maybe"] is None  # nullable: the null stays
    assert spec["never"] == "d"  # not nullable: pruned, then defaulted
    assert spec["workers"] == [{"name": "w"}, {"name": "x"}]
    assert structural.validate_crd(obj, SCHEMA) == []
    explicit = crontab(replicas=3)
    structural.apply_crd_defaults(explicit, SCHEMA)
    assert explicit["spec"]["replicas"] == 3


def test_crd_defaults_do_not_share_values() -> None:
    a, b = crontab(), crontab()
    structural.apply_crd_defaults(a, SCHEMA)
    structural.apply_crd_defaults(b, SCHEMA)
    a["spec"]["options"]["verbose"] = False
    assert b["spec"]["options"]["verbose"] is True


def test_crd_validation_messages() -> None:
    obj = crontab(replicas="x", cronSpec="abc", mode="c", tags=["a", "b", "c"], port=1.5,
                  labels={"k": 1})
    obj["spec"]["image"] = ""
    structural.check(obj, crd_schema=SCHEMA)  # type errors are not decoding errors here
    structural.apply_crd_defaults(obj, SCHEMA)
    errs = structural.validate_crd(obj, SCHEMA)
    messages = [str(e) for e in errs]
    assert messages == [
        'spec.image: Invalid value: "": spec.image in body should be at least 1 chars long',
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
        'integer: "string"',
        "spec.cronSpec: Invalid value: \"abc\": spec.cronSpec in body should match "
        "'^[0-9*/ ]+$'",
        'spec.mode: Unsupported value: "c": supported values: "a", "b"',
        "spec.tags: Too many: 3: must have at most 2 items",
        'spec.port: Invalid value: "number": spec.port in body must be of type '
        'integer/string: "number"',
        'spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type '
        'string: "integer"',
    ]
    invalid = errors.Invalid("CronTab", "c", errs, group="stable.example.com")
    assert invalid.code == 422
    assert invalid.message.startswith('CronTab.stable.example.com "c" is invalid: [spec.image')
    assert invalid.details is not None
    assert invalid.details["causes"][1]["field"] == "spec.replicas"


def test_crd_bounds_and_required() -> None:
    assert [str(e) for e in structural.validate_crd(crontab(replicas=20), SCHEMA)] == [
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or "
        "equal to 10"]
    assert [str(e) for e in structural.validate_crd(crontab(replicas=0), SCHEMA)] == [
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or "
        "equal to 1"]
    assert [str(e) for e in structural.validate_crd(crontab(tags=[]), SCHEMA)] == [
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
    assert [str(e) for e in structural.validate_crd(crontab(cronSpec="1" * 21), SCHEMA)][
        -1] == "spec.cronSpec: Too long: may not be more than 20 bytes"
    missing = {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
               "metadata": {"name": "c"}, "spec": {}}
    assert [str(e) for e in structural.validate_crd(missing, SCHEMA)] == [
        "spec.image: Required value"]
    assert [str(e) for e in structural.validate_crd({"metadata": {}}, SCHEMA)] == [
        "spec: Required value"]


def test_crd_without_schema_rules_is_free_form() -> None:
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": [1]}}
    before = copy.deepcopy(obj)
    assert structural.check(obj, crd_schema=free).unknown_fields == []
    structural.apply_crd_defaults(obj, free)
    assert obj == before and structural.validate_crd(obj, free) == []
