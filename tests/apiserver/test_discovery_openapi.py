"""Discovery and OpenAPI served to the real kubectl 1.37 with its default flags.

The app serves only the discovery and OpenAPI routes (plain HTTP, no auth), with the
built-in registry plus one custom resource, so every request kubectl makes here is
one of ours. kubectl runs as an asyncio subprocess, so the server keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from nodeless.apiserver import errors
from nodeless.apiserver.http.discovery import AGGREGATED_CONTENT_TYPE, add_discovery_routes
from nodeless.apiserver.http.openapi import add_openapi_routes
from nodeless.apiserver.resources.registry import Registry, ResourceType

pytestmark = pytest.mark.asyncio(loop_scope="session")

KUBECTL = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl")

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CronTab runs an image on a schedule.",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Spec of the crontab.",
            "required": ["image"],
            "properties": {
                "cronSpec": {"type": "string", "description": "The cron schedule.",
                             "pattern": "^[0-9*/ ]+$"},
                "image": {"type": "string", "description": "Image to run."},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def crontab_type(version: str = "v1") -> ResourceType:
    return ResourceType(
        group="stable.example.com", version=version, kind="CronTab", plural="crontabs",
        singular="crontab", namespaced=True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update",
               "watch"),
        short_names=("ct",), categories=("all",), subresources=("scale", "status"),
        crd_schema=CRONTAB_SCHEMA, crd={"metadata": {"name": "crontabs.stable.example.com"}},
    )


@web.middleware
async def _status(request: web.Request, handler: Any) -> web.StreamResponse:
    """What the real server's error boundary does: APIError -> Status."""
    try:
        return await handler(request)
    except errors.APIError as exc:
        return web.Response(status=exc.code, body=orjson.dumps(exc.status()),
                            content_type="application/json")


@dataclass
class Server:
    url: str
    registry: Registry
    kubeconfig: Path
    cache: Path
    requests: list[str]

    async def kubectl(self, *args: str, check: bool = True) -> tuple[str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache),
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.cache.parent)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        if check:
            assert proc.returncode == 0, err.decode()
        return out.decode(), err.decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    requests: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        requests.append(f"{request.method} {request.path}")
        return await handler(request)

    registry = Registry()
    registry.add(crontab_type())
    app = web.Application(middlewares=[record, _status])
    add_discovery_routes(app, registry)
    add_openapi_routes(app, registry)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: t\n  cluster: {{server: '{url}'}}\n"
        "users:\n- name: u\n  user: {token: test}\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: u}\n"
        "current-context: t\n"
    )
    try:
        yield Server(url, registry, kubeconfig, tmp_path / "cache", requests)
    finally:
        await runner.cleanup()


async def _get(server: Server, path: str, accept: str | None = None,
               **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    if accept is not None:
        headers["Accept"] = accept
    async with aiohttp.ClientSession() as session, session.get(
            server.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


# --- kubectl ---------------------------------------------------------------------------

async def test_api_resources(server: Server) -> None:
    out, _ = await server.kubectl("api-resources")
    rows = {tuple(line.split()) for line in out.splitlines()[1:]}
    assert ("pods", "po", "v1", "true", "Pod") in rows
    assert ("nodes", "no", "v1", "false", "Node") in rows
    assert ("secrets", "v1", "true", "Secret") in rows
    assert ("deployments", "deploy", "apps/v1", "true", "Deployment") in rows
    assert ("customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false",
            "CustomResourceDefinition") in rows
    assert ("crontabs", "ct", "stable.example.com/v1", "true", "CronTab") in rows
    # aggregated discovery: two requests answer everything
    assert server.requests.count("GET /api") == 1
    assert server.requests.count("GET /apis") == 1
    assert not [r for r in server.requests if r.startswith("GET /apis/")]


async def test_api_resources_wide_and_categories(server: Server) -> None:
    out, _ = await server.kubectl("api-resources", "-o", "wide", "--categories=all")
    assert "pods" in out and "deployments" in out and "crontabs" in out
    assert "configmaps" not in out
    assert "create,delete,deletecollection,get,list,patch,update,watch" in out


async def test_api_versions(server: Server) -> None:
    out, _ = await server.kubectl("api-versions")
    versions = out.split()
    for gv in ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "stable.example.com/v1"):
        assert gv in versions


async def test_version(server: Server) -> None:
    out, _ = await server.kubectl("version", "-o", "json")
    info = orjson.loads(out)["serverVersion"]
    assert info["gitVersion"] == "v1.37.0-nodeless"
    assert (info["major"], info["minor"]) == ("1", "37")


async def test_explain_pod_containers(server: Server) -> None:
    out, _ = await server.kubectl("explain", "pods.spec.containers")
    assert "KIND:       Pod" in out
    assert "VERSION:    v1" in out
    assert "FIELD: containers <[]Container>" in out
    assert "image\t<string>" in out
    assert "resources\t<ResourceRequirements>" in out
    assert "name\t<string> -required-" in out


async def test_explain_deployment_strategy_recursive(server: Server) -> None:
    out, _ = await server.kubectl("explain", "deployment.spec.strategy", "--recursive")
    assert "GROUP:      apps" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "maxSurge\t<IntOrString>" in out
    assert "maxUnavailable\t<IntOrString>" in out


async def test_explain_map_of_quantity(server: Server) -> None:
    out, _ = await server.kubectl("explain", "pod.spec.containers.resources.limits")
    assert "FIELD: limits <map[string]Quantity>" in out


async def test_explain_custom_resource(server: Server) -> None:
    out, _ = await server.kubectl("explain", "crontabs.spec")
    assert "GROUP:      stable.example.com" in out
    assert "KIND:       CronTab" in out
    assert "FIELD: spec <Object>" in out
    assert "cronSpec\t<string>" in out
    assert "The cron schedule." in out
    assert "image\t<string> -required-" in out
    top, _ = await server.kubectl("explain", "ct")
    assert "metadata\t<ObjectMeta>" in top
    assert "CronTab runs an image on a schedule." in top


async def test_explain_openapi_v2_protobuf(server: Server) -> None:
    out, _ = await server.kubectl("explain", "deployment.spec.strategy", "--recursive",
                                  "--output", "plaintext-openapiv2")
    assert "RESOURCE: strategy <Object>" in out
    assert "maxSurge\t<string>" in out
    crd, _ = await server.kubectl("explain", "crontabs.spec", "--output",
                                  "plaintext-openapiv2")
    assert "cronSpec\t<string>" in crd


async def test_create_sends_strict_field_validation(server: Server, tmp_path: Path) -> None:
    """kubectl's query-param verifier reads our v3 PATCH operations and trusts the server."""
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, image: nginx}]}\n---\n"
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: c}\n"
        "spec: {image: x}\n"
    )
    _, err = await server.kubectl("create", "-f", str(manifest), "-v=6", check=False)
    posts = [line for line in err.splitlines() if 'verb="POST"' in line]
    assert len(posts) == 2, err
    assert all("fieldValidation=Strict" in line for line in posts), posts
    assert "GET /openapi/v2" not in server.requests  # v3 answered everything


# --- discovery documents ---------------------------------------------------------------

async def test_legacy_documents(server: Server) -> None:
    status, headers, body = await _get(server, "/api", "application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = orjson.loads(body)
    assert doc["kind"] == "APIVersions" and doc["versions"] == ["v1"]

    _, _, body = await _get(server, "/apis", "application/json, */*")
    groups = {g["name"]: g for g in orjson.loads(body)["groups"]}
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert "stable.example.com" in groups

    _, _, body = await _get(server, "/api/v1")
    resources = {r["name"]: r for r in orjson.loads(body)["resources"]}
    assert resources["pods"]["shortNames"] == ["po"]
    assert resources["pods"]["categories"] == ["all"]
    assert resources["pods/status"]["kind"] == "Pod"
    assert resources["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert resources["pods/binding"]["kind"] == "Binding"
    assert resources["pods/log"]["verbs"] == ["get"]

    _, _, body = await _get(server, "/apis/apps/v1")
    doc = orjson.loads(body)
    assert doc["groupVersion"] == "apps/v1"
    scale = {r["name"]: r for r in doc["resources"]}["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")

    _, _, body = await _get(server, "/apis/stable.example.com")
    assert orjson.loads(body)["preferredVersion"]["version"] == "v1"
    status, _, body = await _get(server, "/apis/nope.example.com/v1")
    assert status == 404 and orjson.loads(body)["reason"] == "NotFound"


async def test_aggregated_negotiation(server: Server) -> None:
    status, headers, body = await _get(
        server, "/apis", AGGREGATED_CONTENT_TYPE + ",application/json")
    assert status == 200
    assert headers["Content-Type"] == AGGREGATED_CONTENT_TYPE
    assert "Accept" in headers["Vary"]
    doc = orjson.loads(body)
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"]
                       if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced"
    assert deployments["responseKind"] == {"group": "apps", "version": "v1",
                                           "kind": "Deployment"}
    assert {s["subresource"] for s in deployments["subresources"]} == {"scale", "status"}

    _, headers, body = await _get(server, "/api", AGGREGATED_CONTENT_TYPE)
    core = orjson.loads(body)["items"]
    assert len(core) == 1 and "name" not in core[0]["metadata"]

    # an older aggregated version we do not serve falls back to the legacy document
    _, headers, body = await _get(
        server, "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json")
    assert orjson.loads(body)["kind"] == "APIGroupList"
    status, _, body = await _get(server, "/apis", "application/vnd.kubernetes.protobuf")
    assert status == 406 and orjson.loads(body)["reason"] == "NotAcceptable"


async def test_etag_and_generation(server: Server) -> None:
    _, headers, _ = await _get(server, "/apis", AGGREGATED_CONTENT_TYPE)
    etag = headers["ETag"]
    status, _, _ = await _get(server, "/apis", AGGREGATED_CONTENT_TYPE, **{"If-None-Match": etag})
    assert status == 304
    server.registry.add(crontab_type("v1beta1"))
    status, headers, body = await _get(server, "/apis", AGGREGATED_CONTENT_TYPE,
                                       **{"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    group = next(i for i in orjson.loads(body)["items"]
                 if i["metadata"]["name"] == "stable.example.com")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    _, _, body = await _get(server, "/openapi/v3")
    assert "apis/stable.example.com/v1beta1" in orjson.loads(body)["paths"]


# --- OpenAPI documents -----------------------------------------------------------------

async def test_openapi_v3_documents(server: Server) -> None:
    _, _, body = await _get(server, "/openapi/v3")
    paths = orjson.loads(body)["paths"]
    assert set(paths) >= {"api/v1", "apis/apps/v1", "apis/stable.example.com/v1"}
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")

    status, headers, body = await _get(server, url, "application/json")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    doc = orjson.loads(body)
    assert doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment",
                                                        "version": "v1"}
    assert {p["name"] for p in patch["parameters"] if p["in"] == "query"} >= {
        "fieldValidation", "fieldManager", "dryRun", "force"}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    schemas = doc["components"]["schemas"]
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["template"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}]
    assert spec["type"] == "object"
    assert spec["properties"]["replicas"]["type"] == "integer"
    assert "enum" not in schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["kind"]
    assert "$defs" not in body.decode()

    status, headers, _ = await _get(server, "/openapi/v3/apis/apps/v1?hash=stale")
    assert status == 301 and headers["Location"] == url
    status, _, _ = await _get(server, "/openapi/v3/apis/nope/v1")
    assert status == 404
    status, _, _ = await _get(
        server, url, "application/com.github.proto-openapi.spec.v3@v1.0+protobuf")
    assert status == 406


async def test_openapi_v3_custom_resource(server: Server) -> None:
    _, _, body = await _get(server, "/openapi/v3/apis/stable.example.com/v1")
    doc = orjson.loads(body)
    crontab = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]
    assert crontab["properties"]["spec"]["properties"]["cronSpec"]["type"] == "string"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    patch = doc["paths"][
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    scale = doc["paths"][
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"


async def test_openapi_v2_negotiation(server: Server) -> None:
    status, headers, body = await _get(server, "/openapi/v2", "application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = orjson.loads(body)
    assert doc["swagger"] == "2.0"
    assert doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"][
        "items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"][
        "format"] == "int-or-string"
    status, headers, body = await _get(
        server, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert status == 200
    assert headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body[:1] == b"\x0a" and b"io.k8s.api.core.v1.Pod" in body
    status, _, _ = await _get(server, "/openapi/v2", "text/html")
    assert status == 406
