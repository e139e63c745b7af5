"""Discovery: how clients learn which groups, versions and resources we serve.

kubectl 1.37 asks `/api` and `/apis` for the aggregated document first
(`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`): one request
answers everything `kubectl api-resources` and its REST mapper need, instead of one
request per group version. Any other Accept gets the legacy documents (APIVersions,
APIGroupList, APIResourceList), which stay served for older clients and for the
per-group-version paths. Every document is rendered once per `registry.generation`
and carries an ETag, so the disk cache in kubectl revalidates with a 304.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from nodeless.apiserver import errors
from nodeless.apiserver.resources import schema
from nodeless.apiserver.resources.registry import Registry, ResourceType

KUBE_MAJOR, KUBE_MINOR = schema.SCHEMA_VERSION.lstrip("v").split(".")[:2]
GIT_VERSION = f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-nodeless"

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_VERSION = "v2"
AGGREGATED_KIND = "APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE = (
    f"application/json;g={AGGREGATED_GROUP};v={AGGREGATED_VERSION};as={AGGREGATED_KIND}"
)

# --- what a resource announces -------------------------------------------------------

@dataclass(frozen=True)
class Subresource:
    """One `parent/sub` entry: the kind it answers with and the verbs it takes."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


_GET_PATCH_UPDATE = ("get", "patch", "update")


def subresources(t: ResourceType) -> list[Subresource]:
    """The announced subresources of `t`, with kube's response kinds and verbs."""
    result = []
    for name in sorted(t.subresources):
        if name == "status":
            result.append(Subresource(name, t.group, t.version, t.kind, _GET_PATCH_UPDATE))
        elif name == "scale":
            result.append(Subresource(name, "autoscaling", "v1", "Scale", _GET_PATCH_UPDATE))
        elif name == "binding":
            result.append(Subresource(name, "", "v1", "Binding", ("create",)))
        elif name == "log":
            result.append(Subresource(name, t.group, t.version, t.kind, ("get",)))
        else:
            result.append(Subresource(name, t.group, t.version, t.kind, ("get",)))
    return result


def storage_version_hash(t: ResourceType) -> str:
    """kube's opaque per-resource hash of its storage version (8 bytes of sha256)."""
    digest = hashlib.sha256(f"{t.group}/{t.version}/{t.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key that puts versions in kube's preference order: GA, beta, alpha, other."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


def _ordered_groups(registry: Registry) -> list[tuple[str, list[str]]]:
    """Groups as kube lists them: built-ins in table order, then custom groups by name."""
    custom = {t.group for t in registry.custom_types()}
    builtin: list[tuple[str, list[str]]] = []
    extra: list[tuple[str, list[str]]] = []
    for group, versions in registry.group_versions().items():
        entry = (group, sorted(versions, key=version_priority))
        (extra if group in custom else builtin).append(entry)
    extra.sort(key=lambda e: e[0])
    return builtin + extra


def _types(registry: Registry, group: str, version: str) -> list[ResourceType]:
    return sorted(registry.in_group_version(group, version), key=lambda t: t.plural)


# --- the documents -------------------------------------------------------------------

def version_info() -> dict[str, Any]:
    """`/version`: what `kubectl version` prints and what skew warnings compare."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(int(KUBE_MINOR) - 1),
        "gitVersion": GIT_VERSION,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{_machine()}",
    }


def _machine() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in _ordered_groups(registry) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    for g, versions in _ordered_groups(registry):
        if g == group and group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, versions)}
    return None


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """Legacy APIResourceList of one group version; subresources as `parent/sub`."""
    types = _types(registry, group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in types:
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(t.verbs),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        entry["storageVersionHash"] = storage_version_hash(t)
        resources.append(entry)
        for sub in subresources(t):
            sub_entry: dict[str, Any] = {
                "name": f"{t.plural}/{sub.name}",
                "singularName": "",
                "namespaced": t.namespaced,
            }
            if (sub.group, sub.version) != (t.group, t.version):
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            sub_entry["kind"] = sub.kind
            sub_entry["verbs"] = list(sub.verbs)
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    doc: dict[str, Any] = {"kind": "APIResourceList", "groupVersion": gv, "resources": resources}
    if group:
        doc = {"kind": "APIResourceList", "apiVersion": "v1", **doc}
    return doc


def _aggregated_resource(t: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": t.plural,
        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
        "scope": "Namespaced" if t.namespaced else "Cluster",
        "singularResource": t.singular,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    subs = [
        {
            "subresource": s.name,
            "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
            "verbs": list(s.verbs),
        }
        for s in subresources(t)
    ]
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, *, legacy: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList of `/api` (legacy=True, the core group) or of `/apis`."""
    items = []
    for group, versions in _ordered_groups(registry):
        if bool(group) == legacy:
            continue
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group:
            metadata = {"name": group, "creationTimestamp": None}
        items.append({
            "metadata": metadata,
            "versions": [
                {
                    "version": v,
                    "resources": [_aggregated_resource(t) for t in _types(registry, group, v)],
                    "freshness": "Current",
                }
                for v in versions
            ],
        })
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{AGGREGATED_GROUP}/{AGGREGATED_VERSION}",
        "metadata": {},
        "items": items,
    }


# --- content negotiation -------------------------------------------------------------

def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """Accept header entries as (type, params), best q first, ties in header order."""
    entries = []
    for index, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for p in pieces[1:]:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            entries.append((-q, index, media, params))
    entries.sort()
    return [(media, params) for _, _, media, params in entries]


def wants_aggregated(accept: str | None) -> bool:
    """True if the best Accept entry we can serve is the aggregated v2 document.

    Raises NotAcceptable when nothing in the header is JSON or aggregated JSON.
    """
    if not accept:
        return False
    for media, params in _media_ranges(accept):
        if media == "application/json":
            if "g" not in params and "as" not in params:
                return False
            if (params.get("g"), params.get("v"), params.get("as")) == (
                AGGREGATED_GROUP, AGGREGATED_VERSION, AGGREGATED_KIND
            ):
                return True
            continue  # another aggregated version (v2beta1): not served
        if media in ("*/*", "application/*"):
            return False
    raise errors.NotAcceptable(
        "only the following media types are accepted: application/json, "
        + AGGREGATED_CONTENT_TYPE
    )


# --- caching and serving ---------------------------------------------------------------

class Rendered:
    """A response body with its content type and an ETag derived from its bytes."""

    __slots__ = ("body", "etag", "content_type")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest().upper() + '"'
        self.content_type = content_type

    @classmethod
    def of(cls, doc: Any, content_type: str = "application/json") -> Rendered:
        return cls(orjson.dumps(doc), content_type)


class DocumentCache:
    """Rendered documents, dropped whenever the registry's generation moves on."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._generation = -1
        self._docs: dict[tuple[str, ...], Rendered | None] = {}

    def get(
        self, key: tuple[str, ...], build: Callable[[], Any], content_type: str
    ) -> Rendered | None:
        generation = self.registry.generation
        if generation != self._generation:
            self._docs = {}
            self._generation = generation
        if key not in self._docs:
            doc = build()
            self._docs[key] = None if doc is None else Rendered.of(doc, content_type)
        return self._docs[key]


def respond(
    request: web.Request, rendered: Rendered, *, vary: bool = False,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """200 with the body, or 304 when the client's cached copy is still current."""
    headers = {"ETag": rendered.etag, **(headers or {})}
    if vary:
        headers["Vary"] = "Accept"
    if request.headers.get("If-None-Match") == rendered.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=rendered.body, headers={**headers, "Content-Type":
                                                     rendered.content_type})


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


class DiscoveryHandlers:
    """The aiohttp handlers; one instance per app, holding the document cache."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.cache = DocumentCache(registry)

    async def version(self, request: web.Request) -> web.Response:
        rendered = self.cache.get(("version",), version_info, "application/json")
        assert rendered is not None
        return respond(request, rendered)

    async def api(self, request: web.Request) -> web.Response:
        if wants_aggregated(request.headers.get("Accept")):
            rendered = self.cache.get(
                ("aggregated", "api"), lambda: aggregated(self.registry, legacy=True),
                AGGREGATED_CONTENT_TYPE)
        else:
            host = request.host
            rendered = self.cache.get(
                ("api", host), lambda: api_versions(host), "application/json")
        assert rendered is not None
        return respond(request, rendered, vary=True)

    async def apis(self, request: web.Request) -> web.Response:
        if wants_aggregated(request.headers.get("Accept")):
            rendered = self.cache.get(
                ("aggregated", "apis"), lambda: aggregated(self.registry, legacy=False),
                AGGREGATED_CONTENT_TYPE)
        else:
            rendered = self.cache.get(
                ("apis",), lambda: api_group_list(self.registry), "application/json")
        assert rendered is not None
        return respond(request, rendered, vary=True)

    async def group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        rendered = self.cache.get(
            ("group", group), lambda: api_group(self.registry, group), "application/json")
        if rendered is None:
            raise _not_found()
        return respond(request, rendered)

    async def core_version(self, request: web.Request) -> web.Response:
        return self._resources(request, "", request.match_info.get("version", "v1"))

    async def group_version(self, request: web.Request) -> web.Response:
        return self._resources(request, request.match_info["group"],
                               request.match_info["version"])

    def _resources(self, request: web.Request, group: str, version: str) -> web.Response:
        rendered = self.cache.get(
            ("resources", group, version),
            lambda: api_resource_list(self.registry, group, version), "application/json")
        if rendered is None:
            raise _not_found()
        return respond(request, rendered)


def add_discovery_routes(app: web.Application, registry: Registry) -> None:
    """Serve /version, /api, /api/v1, /apis, /apis/{group}, /apis/{group}/{version}."""
    handlers = DiscoveryHandlers(registry)
    app.router.add_get("/version", handlers.version)
    app.router.add_get("/version/", handlers.version)
    app.router.add_get("/api", handlers.api)
    app.router.add_get("/api/", handlers.api)
    app.router.add_get("/api/{version}", handlers.core_version)
    app.router.add_get("/apis", handlers.apis)
    app.router.add_get("/apis/", handlers.apis)
    app.router.add_get("/apis/{group}", handlers.group)
    app.router.add_get("/apis/{group}/{version}", handlers.group_version)
