"""Admission webhooks registered through the API, called by the API server over TLS."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from nodeless.apiserver import pki
from tests.fixtures.apiserver import RunningAPIServer, free_port


@dataclass
class WebhookServer:
    """A real HTTPS admission webhook: it labels pods and refuses ConfigMaps that ask."""

    port: int
    ca_bundle: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    async def _mutate(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.calls.append(review)
        patch = [{"op": "add", "path": "/metadata/labels/mutated-by", "value": "test-webhook"}]
        if not (review["request"]["object"]["metadata"].get("labels")):
            patch.insert(0, {"op": "add", "path": "/metadata/labels", "value": {}})
        return web.json_response({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True,
                         "patchType": "JSONPatch",
                         "patch": base64.b64encode(json.dumps(patch).encode()).decode()}})

    async def _validate(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.calls.append(review)
        data = (review["request"]["object"] or {}).get("data") or {}
        allowed = data.get("forbidden") != "yes"
        response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": "configmaps may not say forbidden=yes"}
        return web.json_response({"apiVersion": "admission.k8s.io/v1",
                                  "kind": "AdmissionReview", "response": response})

    def start(self, material: pki.PKI) -> None:
        cert, key = pki.issue_certificate(material, "test-webhook", ["127.0.0.1", "localhost"])
        directory = material.dir / "webhook"
        directory.mkdir(exist_ok=True)
        (directory / "tls.crt").write_bytes(cert)
        (directory / "tls.key").write_bytes(key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/mutate", self._mutate)
            app.router.add_post("/validate", self._validate)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port,
                                                ssl_context=context).start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def webhook(apiserver: RunningAPIServer) -> Iterator[WebhookServer]:
    material = pki.PKI.at(apiserver.config.data_dir)
    hook = WebhookServer(free_port(), base64.b64encode(material.ca_pem()).decode())
    hook.start(material)
    yield hook
    hook.stop()


def _configs(hook: WebhookServer, namespace: str, failure_policy: str, port: int) -> str:
    selector = f"{{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}"
    return f"""
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: label-pods-{namespace}}}
webhooks:
- name: label.pods.test.io
  clientConfig: {{url: "https://127.0.0.1:{port}/mutate", caBundle: {hook.ca_bundle}}}
  rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}}]
  namespaceSelector: {selector}
  failurePolicy: {failure_policy}
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: check-configmaps-{namespace}}}
webhooks:
- name: check.configmaps.test.io
  clientConfig: {{url: "https://127.0.0.1:{port}/validate", caBundle: {hook.ca_bundle}}}
  rules: [{{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1],
           resources: [configmaps]}}]
  namespaceSelector: {selector}
  failurePolicy: {failure_policy}
  sideEffects: None
  admissionReviewVersions: [v1]
"""


POD = """
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  containers: [{name: main, image: busybox}]
"""

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: NAME}
data: {forbidden: "VALUE"}
"""


def test_mutating_and_validating_webhooks(apiserver: RunningAPIServer, namespace: str,
                                          webhook: WebhookServer) -> None:
    apiserver.kubectl("apply", "-f", "-", input=_configs(webhook, namespace, "Fail",
                                                          webhook.port))
    apiserver.kubectl("apply", "-n", namespace, "-f", "-", input=POD.replace("NAME", "p1"))
    pod = json.loads(apiserver.kubectl("get", "pod", "p1", "-n", namespace, "-o",
                                       "json").stdout)
    assert pod["metadata"]["labels"] == {"mutated-by": "test-webhook"}
    review = next(c for c in webhook.calls if c["request"]["resource"]["resource"] == "pods")
    assert review["request"]["operation"] == "CREATE"
    assert review["request"]["namespace"] == namespace
    assert review["request"]["userInfo"]["username"] == "admin"

    ok = apiserver.kubectl("apply", "-n", namespace, "-f", "-",
                           input=CONFIGMAP.replace("NAME", "fine").replace("VALUE", "no"))
    assert "configmap/fine created" in ok.stdout
    denied = apiserver.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                               input=CONFIGMAP.replace("NAME", "bad").replace("VALUE", "yes"))
    assert denied.returncode != 0
    assert ('admission webhook "check.configmaps.test.io" denied the request: '
            "configmaps may not say forbidden=yes") in denied.stderr
    missing = apiserver.kubectl("get", "configmap", "bad", "-n", namespace, check=False)
    assert missing.returncode != 0

    # Other namespaces are not selected: their pods pass untouched.
    apiserver.kubectl("apply", "-n", "default", "-f", "-", input=POD.replace("NAME",
                                                                              f"{namespace}-p"))
    other = json.loads(apiserver.kubectl("get", "pod", f"{namespace}-p", "-n", "default",
                                         "-o", "json").stdout)
    assert "mutated-by" not in (other["metadata"].get("labels") or {})
    apiserver.kubectl("delete", "pod", f"{namespace}-p", "-n", "default")
    apiserver.kubectl("delete", "mutatingwebhookconfiguration", f"label-pods-{namespace}")
    apiserver.kubectl("delete", "validatingwebhookconfiguration",
                      f"check-configmaps-{namespace}")


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_failure_policy_when_webhook_is_down(apiserver: RunningAPIServer, namespace: str,
                                             failure_policy: str) -> None:
    dead_port = free_port()  # nothing listens here
    material = pki.PKI.at(apiserver.config.data_dir)
    hook = WebhookServer(dead_port, base64.b64encode(material.ca_pem()).decode())
    apiserver.kubectl("apply", "-f", "-", input=_configs(hook, namespace, failure_policy,
                                                          dead_port))
    try:
        pod = apiserver.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                                input=POD.replace("NAME", "p2"))
        cm = apiserver.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                               input=CONFIGMAP.replace("NAME", "c2").replace("VALUE", "no"))
        if failure_policy == "Fail":
            assert pod.returncode != 0
            assert 'failed calling webhook "label.pods.test.io"' in pod.stderr
            assert "connection refused" in pod.stderr
            assert cm.returncode != 0
            assert 'failed calling webhook "check.configmaps.test.io"' in cm.stderr
        else:
            assert pod.returncode == 0 and cm.returncode == 0
            created = json.loads(apiserver.kubectl("get", "pod", "p2", "-n", namespace,
                                                   "-o", "json").stdout)
            assert "mutated-by" not in (created["metadata"].get("labels") or {})
    finally:
        apiserver.kubectl("delete", "mutatingwebhookconfiguration", f"label-pods-{namespace}")
        apiserver.kubectl("delete", "validatingwebhookconfiguration",
                          f"check-configmaps-{namespace}")
