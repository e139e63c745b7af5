"""Admission webhooks against a real HTTPS webhook server (certificates made here)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeless.apiserver.admission.webhooks import (
    AdmissionAttributes,
    WebhookDispatcher,
    WebhookError,
    default_configuration,
    rule_matches,
    validate_configuration,
)

# The webhook server fixture lives on the session loop; tests must run on it too.
aio = pytest.mark.asyncio(loop_scope="session")

SERVICE_HOST = "hook.webhooks.svc"


# ---- certificates ------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName("localhost"), x509.DNSName(SERVICE_HOST),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder().subject_name(_name("webhook")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# ---- the webhook server -------------------------------------------------------------


@dataclass
class WebhookServer:
    port: int
    ca_bundle: str
    other_ca_bundle: str
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.requests if p == path]


def _answer(request: dict[str, Any], **response: Any) -> web.Response:
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": request["uid"], **response}}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"allowed": True, "patchType": "JSONPatch",
            "patch": base64.b64encode(orjson.dumps(ops)).decode()}


def _app(server: WebhookServer) -> web.Application:
    async def handle(req: web.Request) -> web.StreamResponse:
        review = await req.json()
        server.requests.append((req.path, review, {**req.headers, **req.query}))
        request = review["request"]
        parts = req.path.strip("/").split("/")
        action = parts[0]
        if action == "allow":
            return _answer(request, allowed=True)
        if action == "warn":
            return _answer(request, allowed=True, warnings=[f"careful: {parts[1]}"])
        if action == "label":
            return _answer(request, **_patch([
                {"op": "add", "path": "/metadata/labels", "value": {"injected": parts[1]}}]))
        if action == "append":  # adds its name to annotation "order", seeing earlier ones
            meta = (request.get("object") or {}).get("metadata") or {}
            order = (meta.get("annotations") or {}).get("order", "")
            return _answer(request, **_patch([{"op": "add", "path": "/metadata/annotations",
                                               "value": {"order": order + parts[1]}}]))
        if action == "deny":
            return _answer(request, allowed=False, status={
                "code": 403, "reason": "Forbidden", "message": "pods in this namespace need "
                                                              "a team label"})
        if action == "deny-silently":
            return _answer(request, allowed=False)
        if action == "sleep":
            await asyncio.sleep(float(parts[1]))
            return _answer(request, allowed=True)
        if action == "wrong-uid":
            return _answer({"uid": "not-yours"}, allowed=True)
        if action == "garbage":
            return web.Response(text="<html>hello</html>", content_type="text/html")
        if action == "v1beta1":
            return web.json_response({"apiVersion": "admission.k8s.io/v1beta1",
                                      "kind": "AdmissionReview",
                                      "response": {"uid": request["uid"], "allowed": True}})
        if action == "no-response":
            return web.json_response({"apiVersion": "admission.k8s.io/v1",
                                      "kind": "AdmissionReview"})
        if action == "boom":
            return web.Response(status=500, text="boom")
        if action == "patch-from-validating":
            return _answer(request, **_patch([{"op": "add", "path": "/x", "value": 1}]))
        if action == "bad-patch":
            return _answer(request, **_patch([{"op": "remove", "path": "/nope/deeper"}]))
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ca, ca_key = _ca("webhook-test-ca")
    other, _ = _ca("someone-else")
    leaf, leaf_key = _leaf(ca, ca_key)
    d: Path = tmp_path_factory.mktemp("webhook-pki")
    (d / "tls.crt").write_bytes(_pem(leaf))
    (d / "tls.key").write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    yield {"dir": d, "ca": base64.b64encode(_pem(ca)).decode(),
           "other": base64.b64encode(_pem(other)).decode()}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(certs: dict[str, Any]) -> AsyncIterator[WebhookServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["dir"] / "tls.crt", certs["dir"] / "tls.key")
    srv = WebhookServer(port=0, ca_bundle=certs["ca"], other_ca_bundle=certs["other"])
    runner = web.AppRunner(_app(srv), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    srv.port = runner.addresses[0][1]
    yield srv
    await runner.cleanup()


NAMESPACES = {"team-a": {"team": "a", "fargate": "yes"}, "team-b": {"team": "b"}}


async def namespace_labels(name: str) -> dict[str, str] | None:
    return NAMESPACES.get(name)


@pytest_asyncio.fixture(loop_scope="session")
async def dispatcher(server: WebhookServer) -> AsyncIterator[WebhookDispatcher]:
    async def resolve(namespace: str, name: str, port: int) -> tuple[str, int]:
        return "127.0.0.1", server.port

    d = WebhookDispatcher(namespace_labels, resolve)
    yield d
    await d.close()


# ---- helpers -----------------------------------------------------------------------


def hook(server: WebhookServer, name: str, path: str, **extra: Any) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                   "apiVersions": ["v1"], "resources": ["pods"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    webhook.update(extra)
    return webhook


def mutating(name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration", "metadata": {"name": name},
            "webhooks": list(hooks)}


def validating(name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    return {**mutating(name, *hooks), "kind": "ValidatingWebhookConfiguration"}


def pod(namespace: str = "team-a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def attrs(obj: dict[str, Any] | None = None, **extra: Any) -> AdmissionAttributes:
    obj = pod() if obj is None else obj
    base = AdmissionAttributes(
        operation="CREATE", group="", version="v1", resource="pods", subresource="",
        kind_group="", kind_version="v1", kind="Pod",
        namespace=(obj.get("metadata") or {}).get("namespace", ""),
        name=(obj.get("metadata") or {}).get("name", ""),
        object=obj, old_object=None,
        user={"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]},
        dry_run=False, options={},
    )
    return replace(base, **extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- mutation ----------------------------------------------------------------------


@aio
async def test_mutation_applies_jsonpatch_and_returns_warnings(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [mutating("inject", hook(server, "inject.example.com", "/label/fargate"),
                        hook(server, "warn.example.com", "/warn/m"))]
    original = pod()
    obj, warnings = await dispatcher.mutate(configs, attrs(original))
    assert obj is not None
    assert obj["metadata"]["labels"] == {"injected": "fargate"}
    assert "labels" not in original["metadata"], "the caller's object is not modified in place"
    assert warnings == ["careful: m"]


@aio
async def test_mutations_run_in_configuration_name_order_each_seeing_the_last(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [
        mutating("b-second", hook(server, "c.example.com", "/append/c")),
        mutating("a-first", hook(server, "a.example.com", "/append/a"),
                 hook(server, "b.example.com", "/append/b")),
    ]
    obj, _ = await dispatcher.mutate(configs, attrs())
    assert obj is not None
    assert obj["metadata"]["annotations"]["order"] == "abc"


@aio
async def test_reinvocation_if_needed(server: WebhookServer, dispatcher: WebhookDispatcher) -> None:
    server.requests.clear()
    configs = [mutating("a", hook(server, "first.example.com", "/append/x",
                                  reinvocationPolicy="IfNeeded"),
                        hook(server, "second.example.com", "/append/y"))]
    obj, _ = await dispatcher.mutate(configs, attrs())
    assert obj is not None
    assert obj["metadata"]["annotations"]["order"] == "xyx"
    assert len(server.calls("/append/x")) == 2
    assert len(server.calls("/append/y")) == 1


@aio
async def test_patch_when_there_is_no_object_is_an_internal_error(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [mutating("m", hook(server, "label.example.com", "/label/x",
                                  rules=[{"operations": ["DELETE"], "apiGroups": [""],
                                          "apiVersions": ["v1"], "resources": ["pods"]}]))]
    with pytest.raises(WebhookError) as e:
        await dispatcher.mutate(configs, attrs(operation="DELETE", object=None,
                                               old_object=pod(), namespace="team-a"))
    assert e.value.code == 500
    assert e.value.message == (
        'Internal error occurred: admission webhook "label.example.com" attempted to modify '
        "the object, which is not supported for this operation")


@aio
async def test_patch_that_does_not_apply_fails_regardless_of_policy(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [mutating("m", hook(server, "bad.example.com", "/bad-patch",
                                  failurePolicy="Ignore"))]
    with pytest.raises(WebhookError) as e:
        await dispatcher.mutate(configs, attrs())
    assert e.value.code == 500
    assert e.value.message.startswith("Internal error occurred: ")


# ---- denial ------------------------------------------------------------------------


@aio
async def test_validation_denial_reads_and_codes_as_kube(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [validating("policy", hook(server, "allow.example.com", "/warn/v"),
                          hook(server, "team.example.com", "/deny"))]
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate(configs, attrs())
    assert e.value.code == 403
    assert e.value.reason == "Forbidden"
    assert e.value.message == ('admission webhook "team.example.com" denied the request: pods in '
                               "this namespace need a team label")
    assert e.value.warnings == ["careful: v"]
    status = e.value.status()
    assert status["kind"] == "Status" and status["code"] == 403


@aio
async def test_denial_without_explanation(server: WebhookServer,
                                          dispatcher: WebhookDispatcher) -> None:
    configs = [validating("policy", hook(server, "quiet.example.com", "/deny-silently"))]
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate(configs, attrs())
    assert e.value.code == 400
    assert e.value.message == ('admission webhook "quiet.example.com" denied the request '
                               "without explanation")
    with pytest.raises(WebhookError) as e:
        await dispatcher.mutate([mutating("m", hook(server, "quiet.example.com",
                                                    "/deny-silently"))], attrs())
    assert e.value.code == 400


# ---- failure policy and timeouts ---------------------------------------------------


@aio
async def test_unreachable_webhook_fail_versus_ignore(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    port = free_port()
    down = hook(server, "down.example.com", "/allow")
    down["clientConfig"]["url"] = f"https://127.0.0.1:{port}/allow"
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate([validating("v", down)], attrs())
    assert e.value.code == 500
    assert e.value.reason == "InternalError"
    assert e.value.message == (
        'Internal error occurred: failed calling webhook "down.example.com": failed to call '
        f'webhook: Post "https://127.0.0.1:{port}/allow?timeout=10s": dial tcp 127.0.0.1:{port}: '
        "connect: connection refused")
    with pytest.raises(WebhookError):
        await dispatcher.mutate([mutating("m", down)], attrs())

    ignored = {**down, "failurePolicy": "Ignore"}
    assert await dispatcher.validate([validating("v", ignored)], attrs()) == []
    obj, _ = await dispatcher.mutate(
        [mutating("m", ignored, hook(server, "next.example.com", "/label/after"))], attrs())
    assert obj is not None and obj["metadata"]["labels"] == {"injected": "after"}


@aio
async def test_timeout(server: WebhookServer, dispatcher: WebhookDispatcher) -> None:
    slow = hook(server, "slow.example.com", "/sleep/2.5", timeoutSeconds=1)
    started = time.monotonic()
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate([validating("v", slow)], attrs())
    assert time.monotonic() - started < 2
    assert e.value.code == 500
    assert e.value.message == (
        'Internal error occurred: failed calling webhook "slow.example.com": failed to call '
        f'webhook: Post "{server.url("/sleep/2.5")}?timeout=1s": context deadline exceeded')
    started = time.monotonic()
    obj, _ = await dispatcher.mutate([mutating("m", {**slow, "failurePolicy": "Ignore"})], attrs())
    assert time.monotonic() - started < 2
    assert obj == pod()


@aio
async def test_validating_webhooks_run_concurrently(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [validating("v", *(hook(server, f"s{i}.example.com", "/sleep/0.4")
                                 for i in range(4)))]
    started = time.monotonic()
    await dispatcher.validate(configs, attrs())
    assert time.monotonic() - started < 1.2


# ---- matching ----------------------------------------------------------------------


def test_rule_matching() -> None:
    a = attrs()
    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods"]}
    assert rule_matches(rule, a)
    assert not rule_matches(rule, replace(a, operation="UPDATE"))
    assert rule_matches({**rule, "operations": ["*"]}, replace(a, operation="DELETE"))
    assert not rule_matches(rule, replace(a, subresource="status"))
    assert rule_matches({**rule, "resources": ["pods/status"]}, replace(a, subresource="status"))
    assert rule_matches({**rule, "resources": ["pods/*"]}, replace(a, subresource="binding"))
    assert rule_matches({**rule, "resources": ["pods/*"]}, a), "kube: 'x/*' covers x itself"
    assert rule_matches({**rule, "resources": ["*"]}, a)
    assert not rule_matches({**rule, "resources": ["*"]}, replace(a, subresource="status"))
    assert rule_matches({**rule, "resources": ["*/*"]}, replace(a, subresource="status"))
    assert rule_matches({**rule, "resources": ["*/status"]}, replace(a, subresource="status"))
    assert not rule_matches({**rule, "apiGroups": ["apps"]}, a)
    assert rule_matches({**rule, "apiGroups": ["*"], "apiVersions": ["*"]}, a)
    assert not rule_matches({**rule, "apiVersions": ["v2"]}, a)
    assert rule_matches({**rule, "scope": "Namespaced"}, a)
    assert not rule_matches({**rule, "scope": "Cluster"}, a)
    node = replace(a, resource="nodes", kind="Node", namespace="")
    assert rule_matches({**rule, "resources": ["nodes"], "scope": "Cluster"}, node)
    assert not rule_matches({**rule, "resources": ["nodes"], "scope": "Namespaced"}, node)
    ns = replace(a, resource="namespaces", kind="Namespace", namespace="team-a", name="team-a")
    assert rule_matches({**rule, "resources": ["namespaces"], "scope": "Cluster"}, ns)
    assert not rule_matches({**rule, "resources": ["namespaces"], "scope": "Namespaced"}, ns)


@aio
async def test_namespace_and_object_selectors(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    def deny(**selectors: Any) -> list[dict[str, Any]]:
        return [validating("v", hook(server, "deny.example.com", "/deny", **selectors))]

    async def denied(configs: list[dict[str, Any]], a: AdmissionAttributes) -> bool:
        try:
            await dispatcher.validate(configs, a)
        except WebhookError:
            return True
        return False

    in_a, in_b = attrs(pod("team-a")), attrs(pod("team-b"))
    by_namespace = deny(namespaceSelector={"matchLabels": {"fargate": "yes"}})
    assert await denied(by_namespace, in_a)
    assert not await denied(by_namespace, in_b)
    excluding = deny(namespaceSelector={"matchExpressions": [
        {"key": "team", "operator": "NotIn", "values": ["a"]}]})
    assert not await denied(excluding, in_a)
    assert await denied(excluding, in_b)

    by_object = deny(objectSelector={"matchLabels": {"app": "web"}})
    assert not await denied(by_object, in_a)
    assert await denied(by_object, attrs(pod(labels={"app": "web"})))
    # On UPDATE either the new or the old object's labels may match.
    assert await denied(by_object, attrs(pod(), operation="UPDATE",
                                         old_object=pod(labels={"app": "web"})))

    # Cluster-scoped objects ignore namespaceSelector.
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    node_rule = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                  "resources": ["nodes"]}]
    node_attrs = attrs(node, resource="nodes", kind="Node", namespace="")
    assert await denied(deny(namespaceSelector={"matchLabels": {"nope": "x"}},
                             rules=node_rule), node_attrs)

    # A Namespace being created is matched on its own labels.
    ns_rule = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["namespaces"]}]
    new_ns = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": "fresh", "labels": {"fargate": "yes"}}}
    ns_attrs = attrs(new_ns, resource="namespaces", kind="Namespace", namespace="")
    assert await denied(deny(namespaceSelector={"matchLabels": {"fargate": "yes"}},
                             rules=ns_rule), ns_attrs)

    # A namespaced object in a namespace that does not exist: kube's 404.
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate(by_namespace, attrs(pod("ghost")))
    assert e.value.code == 404
    assert e.value.message == 'namespaces "ghost" not found'

    # Non-matching rules: no call at all.
    server.requests.clear()
    await dispatcher.validate(deny(rules=node_rule), in_a)
    assert server.requests == []


# ---- the request we send -----------------------------------------------------------


@aio
async def test_admission_review_request(server: WebhookServer,
                                        dispatcher: WebhookDispatcher) -> None:
    server.requests.clear()
    configs = [validating("v", hook(server, "a.example.com", "/allow"),
                          hook(server, "b.example.com", "/allow"))]
    await dispatcher.validate(configs, attrs(dry_run=True, options={"fieldManager": "kubectl"}))
    first, second = server.calls("/allow")
    assert first["apiVersion"] == "admission.k8s.io/v1"
    assert first["kind"] == "AdmissionReview"
    req = first["request"]
    assert req["uid"] != second["request"]["uid"]
    assert req["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert req["namespace"] == "team-a" and req["name"] == "web"
    assert req["operation"] == "CREATE"
    assert req["userInfo"] == {"username": "alice", "uid": "u-1",
                               "groups": ["dev", "system:authenticated"]}
    assert req["object"] == pod() and req["oldObject"] is None
    assert req["dryRun"] is True
    assert req["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                              "fieldManager": "kubectl"}
    headers = [h for p, _, h in server.requests if p == "/allow"][0]
    assert headers["timeout"] == "10s"
    assert headers["Content-Type"] == "application/json"


@aio
async def test_dry_run_needs_side_effect_free_webhooks(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    risky = [validating("v", hook(server, "risky.example.com", "/allow", sideEffects="Some",
                                  failurePolicy="Ignore"))]
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate(risky, attrs(dry_run=True))
    assert e.value.code == 400
    assert e.value.message == 'admission webhook "risky.example.com" does not support dry run'
    await dispatcher.validate(risky, attrs())
    safe = [validating("v", hook(server, "safe.example.com", "/allow",
                                 sideEffects="NoneOnDryRun"))]
    await dispatcher.validate(safe, attrs(dry_run=True))


# ---- bad answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/wrong-uid", "received invalid webhook response: expected response.uid="),
        ("/garbage", "failed to call webhook: couldn't get version/kind; json parse error: "),
        ("/v1beta1", "received invalid webhook response: expected webhook response of "
                     "admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, "
                     "Kind=AdmissionReview"),
        ("/no-response", "received invalid webhook response: webhook response was absent"),
        ("/boom", 'failed to call webhook: an error on the server ("boom") has prevented the '
                  "request from succeeding"),
        ("/nowhere", "failed to call webhook: the server could not find the requested resource"),
        ("/patch-from-validating",
         "received invalid webhook response: validating webhook may not return response.patch"),
    ],
)
@aio
async def test_bad_answers_are_call_failures(
    server: WebhookServer, dispatcher: WebhookDispatcher, path: str, reason: str,
) -> None:
    bad = hook(server, "bad.example.com", path)
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate([validating("v", bad)], attrs())
    assert e.value.code == 500
    prefix = 'Internal error occurred: failed calling webhook "bad.example.com": '
    assert e.value.message.startswith(prefix + reason), e.value.message
    assert await dispatcher.validate([validating("v", {**bad, "failurePolicy": "Ignore"})],
                                     attrs()) == []


@aio
async def test_v1beta1_only_webhook_gets_v1beta1(server: WebhookServer,
                                                 dispatcher: WebhookDispatcher) -> None:
    server.requests.clear()
    old = hook(server, "old.example.com", "/v1beta1", admissionReviewVersions=["v1beta1"])
    await dispatcher.validate([validating("v", old)], attrs())
    assert server.calls("/v1beta1")[0]["apiVersion"] == "admission.k8s.io/v1beta1"


# ---- TLS ---------------------------------------------------------------------------


@aio
async def test_ca_bundle_mismatch_is_refused(server: WebhookServer,
                                             dispatcher: WebhookDispatcher) -> None:
    strange = hook(server, "tls.example.com", "/allow")
    strange["clientConfig"]["caBundle"] = server.other_ca_bundle
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate([validating("v", strange)], attrs())
    assert e.value.message.endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority")
    # Without a caBundle the system CAs are used, which do not know our test CA either.
    del strange["clientConfig"]["caBundle"]
    with pytest.raises(WebhookError) as e:
        await dispatcher.validate([validating("v", strange)], attrs())
    assert "certificate signed by unknown authority" in e.value.message


@aio
async def test_service_reference_is_resolved_and_verified_by_service_name(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    server.requests.clear()
    via_service = hook(server, "svc.example.com", "/label/svc")
    via_service["clientConfig"] = {
        "service": {"namespace": "webhooks", "name": "hook", "path": "/label/svc", "port": 443},
        "caBundle": server.ca_bundle,
    }
    obj, _ = await dispatcher.mutate([mutating("m", via_service)], attrs())
    assert obj is not None and obj["metadata"]["labels"] == {"injected": "svc"}
    headers = [h for p, _, h in server.requests if p == "/label/svc"][0]
    assert headers["Host"] == f"{SERVICE_HOST}:443"

    wrong_name = {**via_service, "clientConfig": {
        **via_service["clientConfig"],
        "service": {"namespace": "webhooks", "name": "other", "path": "/label/svc"}}}
    with pytest.raises(WebhookError) as e:
        await dispatcher.mutate([mutating("m", wrong_name)], attrs())
    assert e.value.message == (
        'Internal error occurred: failed calling webhook "svc.example.com": failed to call '
        'webhook: Post "https://other.webhooks.svc:443/label/svc?timeout=10s": tls: failed to '
        "verify certificate: x509: certificate is not valid for other.webhooks.svc")


@aio
async def test_sessions_are_reused_and_calls_are_fast(
    server: WebhookServer, dispatcher: WebhookDispatcher,
) -> None:
    configs = [validating("v", hook(server, "fast.example.com", "/allow"))]
    started = time.monotonic()
    for _ in range(100):
        await dispatcher.validate(configs, attrs())
    elapsed = time.monotonic() - started
    assert len(dispatcher._sessions) == 1
    assert elapsed < 3, f"100 webhook calls took {elapsed:.2f}s"


# ---- configuration validation -------------------------------------------------------


def test_valid_configuration_has_no_errors(server: WebhookServer) -> None:
    config = mutating("m", hook(server, "ok.example.com", "/allow",
                                namespaceSelector={"matchLabels": {"a": "b"}},
                                failurePolicy="Ignore", timeoutSeconds=5,
                                reinvocationPolicy="IfNeeded"))
    assert validate_configuration(config) == []
    svc = {"name": "svc.example.com", "sideEffects": "NoneOnDryRun",
           "admissionReviewVersions": ["v1beta1", "v1"],
           "clientConfig": {"service": {"namespace": "x", "name": "y", "path": "/mutate"}}}
    assert validate_configuration(validating("v", svc)) == []


def test_configuration_errors_name_their_fields(server: WebhookServer) -> None:
    bad = {
        "name": "short",
        "clientConfig": {"url": "http://hook.local/x"},
        "rules": [{"operations": ["CREATE", "*"], "apiGroups": [],
                   "apiVersions": ["v1"], "resources": ["*/*", "pods"], "scope": "Everywhere"}],
        "failurePolicy": "Sometimes",
        "matchPolicy": "Fuzzy",
        "timeoutSeconds": 31,
        "admissionReviewVersions": ["v2"],
        "reinvocationPolicy": "Always",
        "matchConditions": [{"name": "x", "expression": "true"}],
    }
    shown = [str(e) for e in validate_configuration(mutating("m", bad))]
    expected = [
        'webhooks[0].name: Invalid value: "short": should be a domain with at least three '
        "segments separated by dots",
        'webhooks[0].rules[0].operations: Invalid value: []string{"CREATE", "*"}: if \'*\' is '
        "present, must not specify other operations",
        "webhooks[0].rules[0].apiGroups: Required value",
        'webhooks[0].rules[0].resources: Invalid value: []string{"*/*", "pods"}: if \'*/*\' is '
        "present, must not specify other resources",
        'webhooks[0].rules[0].scope: Unsupported value: "Everywhere": supported values: "*", '
        '"Cluster", "Namespaced"',
        'webhooks[0].failurePolicy: Unsupported value: "Sometimes": supported values: "Fail", '
        '"Ignore"',
        'webhooks[0].matchPolicy: Unsupported value: "Fuzzy": supported values: "Equivalent", '
        '"Exact"',
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
        "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 "
        "and 30 seconds",
        'webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: '
        '"IfNeeded", "Never"',
        'webhooks[0].clientConfig.url: Invalid value: "http": \'https\' is the only allowed URL '
        "scheme; desired format: https://host[/path]",
        'webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must include at '
        "least one of v1, v1beta1",
    ]
    for line in expected:
        assert line in shown, line
    assert any(s.startswith("webhooks[0].matchConditions: Forbidden: matchConditions are CEL "
                            "expressions") for s in shown)

    both = hook(server, "both.example.com", "/allow")
    both["clientConfig"]["service"] = {"namespace": "a", "name": "b"}
    neither = hook(server, "neither.example.com", "/allow", clientConfig={})
    dup = hook(server, "both.example.com", "/allow")
    shown = [str(e) for e in validate_configuration(validating("v", both, neither, dup))]
    assert ("webhooks[0].clientConfig: Required value: exactly one of url or service is "
            "required") in shown
    assert ("webhooks[1].clientConfig: Required value: exactly one of url or service is "
            "required") in shown
    assert 'webhooks[2].name: Duplicate value: "both.example.com"' in shown
    assert validate_configuration(validating("v", hook(
        server, "x.example.com", "/a", admissionReviewVersions=[])))[0].field == \
        "webhooks[0].admissionReviewVersions"


def test_default_configuration() -> None:
    config = default_configuration(mutating("m", {
        "name": "a.b.c", "rules": [{"operations": ["CREATE"]}],
        "clientConfig": {"service": {"namespace": "n", "name": "s"}}}))
    w = config["webhooks"][0]
    assert w["failurePolicy"] == "Fail" and w["matchPolicy"] == "Equivalent"
    assert w["timeoutSeconds"] == 10 and w["reinvocationPolicy"] == "Never"
    assert w["namespaceSelector"] == {} and w["objectSelector"] == {}
    assert w["rules"][0]["scope"] == "*"
    assert w["clientConfig"]["service"]["port"] == 443
