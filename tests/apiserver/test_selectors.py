"""Label and field selectors: kube's grammar, matching and error texts."""

from __future__ import annotations

import pytest

from nodeless.apiserver.errors import BadRequest
from nodeless.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    field_set,
    label_selector_string,
    parse_field_selector,
    parse_label_selector,
)

KEY_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def refusal(parse, text: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest) as e:
        parse(text)
    assert e.value.code == 400
    return e.value.message


# ---- label selector grammar -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("app in (web, db)", {"app": "db"}, True),
        ("app in (web,db)", {"app": "cache"}, False),
        ("app notin (web,db)", {}, True),
        ("app notin (web,db)", {"app": "web"}, False),
        ("app", {"app": ""}, True),
        ("app", {"tier": "x"}, False),
        ("!app", {"tier": "x"}, True),
        ("!app", {"app": "x"}, False),
        ("  app = web ,\ttier in (a) , !debug ", {"app": "web", "tier": "a"}, True),
        ("example.com/team=blue,app", {"example.com/team": "blue", "app": "x"}, True),
        ("x in (foo,,baz)", {"x": ""}, True),
        ("x notin ()", {"x": ""}, False),
        ("app=", {"app": ""}, True),
        ("replicas>2", {"replicas": "3"}, True),
        ("replicas<2", {"replicas": "3"}, False),
        ("in in (in, notin)", {"in": "notin"}, True),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_label_selector_empty_and_string_form() -> None:
    assert LabelSelector.parse("").empty
    assert LabelSelector.parse("   ").empty
    selector = LabelSelector.parse("z in (b,a),a=1,!c")
    assert not selector.empty
    assert str(selector) == "a=1,!c,z in (a,b)"
    assert selector.requires_exact_match("a") == "1"
    assert selector.requires_exact_match("z") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("=foo", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("app:web", f'unable to parse requirement: <nil>: Invalid value: "app:web": {KEY_RULE}'),
        ("*bar", f'unable to parse requirement: <nil>: Invalid value: "*bar": {KEY_RULE}'),
    ],
)
def test_label_selector_syntax_errors_read_like_kube(text: str, message: str) -> None:
    assert refusal(LabelSelector.parse, text) == message


def test_label_selector_invalid_value_and_prefix() -> None:
    message = refusal(LabelSelector.parse, "k=v@")
    assert message.startswith(
        'unable to parse requirement: values[0][k]: Invalid value: "v@": a valid label must '
        "be an empty string or consist of alphanumeric characters")
    message = refusal(LabelSelector.parse, "app.kubernetes_io/name=x")
    assert message.startswith(
        'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": prefix '
        "part a lowercase RFC 1123 subdomain must consist of")
    # IsValidLabelValue counts bytes and says so (api/validate/content).
    assert "must be no more than 63 bytes" in refusal(LabelSelector.parse, "a=" + "v" * 64)


# ---- metav1.LabelSelector ------------------------------------------------------------


def test_label_selector_from_dict() -> None:
    selector = LabelSelector.from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "debug", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
        ],
    })
    assert selector.matches({"app": "web", "tier": "edge", "team": "a"})
    assert not selector.matches({"app": "web", "tier": "edge", "team": "a", "debug": "1"})
    assert not selector.matches({"app": "web", "tier": "edge", "team": "a", "env": "prod"})
    assert not selector.matches({"app": "web", "tier": "back", "team": "a"})


def test_nil_selects_nothing_empty_selects_everything() -> None:
    assert not LabelSelector.from_dict(None).matches({})
    assert not LabelSelector.from_dict(None).empty
    assert LabelSelector.from_dict({}).matches({"any": "thing"})
    assert LabelSelector.from_dict({}).empty
    assert LabelSelector.from_set({"a": "b"}).matches({"a": "b", "c": "d"})


def test_label_selector_from_dict_errors() -> None:
    with pytest.raises(BadRequest) as e:
        LabelSelector.from_dict({"matchExpressions": [{"key": "a", "operator": "Has"}]})
    assert e.value.message == '"Has" is not a valid label selector operator'
    with pytest.raises(BadRequest) as e:
        LabelSelector.from_dict({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert e.value.message == ("values: Invalid value: []string{}: for 'in', 'notin' operators, "
                               "values set can't be empty")
    with pytest.raises(BadRequest) as e:
        LabelSelector.from_dict({"matchLabels": {"bad key": "x"}})
    assert e.value.message.startswith('key: Invalid value: "bad key": name part must consist')


# ---- field selectors -----------------------------------------------------------------


def test_field_selector_grammar_and_matching() -> None:
    selector = FieldSelector.parse("status.phase!=Running,spec.nodeName==node-1")
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [
        ("spec.nodeName", "=", "node-1"), ("status.phase", "!=", "Running")]
    assert selector.matches({"spec.nodeName": "node-1", "status.phase": "Pending"})
    assert not selector.matches({"spec.nodeName": "node-1", "status.phase": "Running"})
    # A field the object lacks reads as "": `x=` selects it, `x!=` does not.
    assert FieldSelector.parse("spec.nodeName=").matches({})
    assert not FieldSelector.parse("spec.nodeName!=").matches({})
    assert FieldSelector.parse("").empty and FieldSelector.parse(",,").empty
    assert FieldSelector.parse("a=b").requires_exact_match("a") == "b"


def test_field_selector_escaping() -> None:
    selector = FieldSelector.parse(r"metadata.name=a\,b\=c\\d,type=x")
    assert selector.requirements[0].value == "a,b=c\\d"
    assert str(selector) == r"metadata.name=a\,b\=c\\d,type=x"
    assert refusal(FieldSelector.parse, "a=b=c") == (
        "invalid field selector: unescaped character in value: 61")
    assert refusal(FieldSelector.parse, r"a=\x") == (
        "invalid field selector: invalid escape sequence: \\x")
    assert refusal(FieldSelector.parse, "a=b\\") == (
        "invalid field selector: invalid escape sequence: \\")
    assert refusal(FieldSelector.parse, "a=b,nonsense") == (
        "invalid selector: 'a=b,nonsense'; can't understand 'nonsense'")


@pytest.mark.parametrize(
    ("kind", "group", "text", "message"),
    [
        ("Pod", "", "spec.foo=1", "field label not supported: spec.foo"),
        ("Node", "", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("Event", "events.k8s.io", "involvedObject.name=x",
         "field label not supported: involvedObject.name"),
        ("Job", "batch", "status.active=1",
         'field label "status.active" not supported for batchv1.Job'),
        ("ConfigMap", "", "data.x=1",
         '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ],
)
def test_unsupported_field_refused_as_kube_words_it(
    kind: str, group: str, text: str, message: str,
) -> None:
    assert refusal(lambda t: FieldSelector.parse(t).check(kind, group), text) == message


def test_field_selector_check_accepts_and_renames() -> None:
    pod = FieldSelector.parse("spec.host=n1,status.phase=Running").check("Pod")
    assert [r.field for r in pod.requirements] == ["spec.nodeName", "status.phase"]
    FieldSelector.parse("metadata.namespace=x").check("ConfigMap")
    FieldSelector.parse("regarding.name=x,reportingController=y").check("Event", "events.k8s.io")
    FieldSelector.parse("status.replicas=0").check("ReplicaSet", "apps")
    FieldSelector.parse("spec.color=red").check("Widget", "x.io", custom=True,
                                                selectable=["spec.color"])
    message = refusal(lambda t: FieldSelector.parse(t).check(
        "Widget", "x.io", custom=True, namespaced=False), "metadata.namespace=a")
    assert message == "field label not supported: metadata.namespace"


def test_field_set_per_kind() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
           "spec": {"nodeName": "n1", "schedulerName": "fargate-scheduler",
                    "serviceAccountName": "default", "restartPolicy": "Always"},
           "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}}
    fields = field_set("Pod", pod)
    assert fields == {
        "metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "n1",
        "spec.restartPolicy": "Always", "spec.schedulerName": "fargate-scheduler",
        "spec.serviceAccountName": "default", "spec.hostNetwork": "false",
        "status.phase": "Running", "status.podIP": "10.0.0.5", "status.nominatedNodeName": "",
    }
    selector = FieldSelector.parse("spec.schedulerName=fargate-scheduler,spec.nodeName=")
    assert not selector.check("Pod").matches(fields)

    core_event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "n"},
                  "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"},
                  "reason": "Scheduled", "type": "Normal", "reportingComponent": "sched"}
    fields = field_set("Event", core_event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["source"] == "sched"
    new_event = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                 "metadata": {"name": "e", "namespace": "n"},
                 "regarding": {"kind": "Node", "name": "n1"}, "reason": "Ready",
                 "reportingController": "agent", "type": "Normal"}
    fields = field_set("Event", new_event)
    assert FieldSelector.parse("regarding.kind=Node,reportingController=agent").check(
        "Event", "events.k8s.io").matches(fields)

    assert field_set("Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}) == {
        "metadata.name": "n", "spec.unschedulable": "true"}
    assert field_set("Secret", {"metadata": {"name": "s", "namespace": "a"},
                                "type": "Opaque"})["type"] == "Opaque"
    assert field_set("Namespace", {"metadata": {"name": "a"},
                                   "status": {"phase": "Active"}})["status.phase"] == "Active"
    assert field_set("Job", {"metadata": {"name": "j", "namespace": "a"},
                             "status": {"succeeded": 2}})["status.successful"] == "2"
    assert field_set("ReplicaSet", {"metadata": {"name": "r", "namespace": "a"},
                                    "status": {}})["status.replicas"] == "0"
    assert field_set("", {"metadata": {"name": "w", "namespace": "a"},
                          "spec": {"color": "red"}}, ["spec.color"]) == {
        "metadata.name": "w", "metadata.namespace": "a", "spec.color": "red"}


def test_http_entry_points() -> None:
    assert parse_label_selector("a=b").matches({"a": "b"})
    assert parse_field_selector("spec.foo=1").requirements[0].field == "spec.foo"
    with pytest.raises(BadRequest) as e:
        parse_field_selector("spec.foo=1", "Pod")
    assert e.value.message == "field label not supported: spec.foo"
    assert parse_field_selector("spec.host=n", "Pod").requirements[0].field == "spec.nodeName"
    assert label_selector_string({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                             {"key": "x", "operator": "DoesNotExist"}]}) == (
        "app=web,tier in (a,b),!x")
    assert label_selector_string(None) == ""
