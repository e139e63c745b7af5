"""OpenAPI documents: what `kubectl explain`, `kubectl apply` and validation read.

Generated from the registry and the upstream definitions, never written per type.
`/openapi/v3` lists one document per group version; each names its schemas under
`components.schemas` and has a path for every served resource, whose PATCH operation
carries `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter:
that pair is how kubectl's query-param verifier decides the server validates fields
itself (so it sends `fieldValidation=Strict` instead of validating client-side).

`/openapi/v2` is asked for in protobuf only: client-go's `OpenAPISchema` has no JSON
fallback (kubectl uses it for `explain --output plaintext-openapiv2`, and for apply and
validation when v3 fails). So it is served as gnostic's `openapi_v2.Document`, encoded
by the small protobuf writer below, and as JSON for any other Accept.

Documents are built lazily and kept per `registry.generation`; the conversion of a
built-in definition is done once per process.
"""

from __future__ import annotations

import copy
import functools
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiohttp import web

from nodeless.apiserver import errors
from nodeless.apiserver.http.discovery import (
    GIT_VERSION,
    Rendered,
    Subresource,
    respond,
    subresources,
)
from nodeless.apiserver.resources import schema
from nodeless.apiserver.resources.registry import Registry, ResourceType

V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
V2_PROTOBUF_ALT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
V3_REF = "#/components/schemas/"
V2_REF = "#/definitions/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. "
    "Servers should convert recognized schemas to the latest internal value, and may "
    "reject unrecognized values. More info: https://git.k8s.io/community/contributors/"
    "devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. "
    "Servers may infer this from the endpoint the client submits requests to. Cannot be "
    "updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/"
    "devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_METADATA_DOC = (
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)


# --- schema conversion -----------------------------------------------------------------

def _single_type(value: Any) -> str | None:
    if isinstance(value, list):
        types = [t for t in value if t != "null"]
        return types[0] if len(types) == 1 else None
    return value


def _convert(node: Any, ref_prefix: str, v2: bool) -> Any:
    """JSON-Schema form (`$defs` refs, nullable type lists) to OpenAPI 3.0 or Swagger 2.0."""
    if isinstance(node, list):
        return [_convert(n, ref_prefix, v2) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    ref = None
    for key, value in node.items():
        if key == "$ref":
            ref = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type":
            single = _single_type(value)
            if single:
                out["type"] = single
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _convert(v, ref_prefix, v2) for k, v in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert(value, ref_prefix, v2)
        elif key in ("items", "not", "allOf", "anyOf", "oneOf"):
            if v2 and key != "items":
                continue
            out[key] = _convert(value, ref_prefix, v2)
        elif key in ("enum", "default", "example"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = value
    if ref is None:
        return out
    if not out:
        return {"$ref": ref}
    if v2:
        return {"$ref": ref, **out}
    return {"allOf": [{"$ref": ref}], **out}


@functools.cache
def _builtin_component(name: str, v2: bool) -> dict[str, Any]:
    """One upstream definition in OpenAPI form; kube's own shape for the odd ones."""
    definition = schema.definitions()[name]
    if v2 and name == INT_OR_STRING:
        return {"description": definition.get("description", ""), "type": "string",
                "format": "int-or-string"}
    if v2 and name == QUANTITY:
        return {"description": definition.get("description", ""), "type": "string"}
    converted = _convert(definition, V2_REF if v2 else V3_REF, v2)
    if "x-kubernetes-group-version-kind" in converted:
        # kubernetes-validate pins apiVersion/kind with an enum; kube's documents do not.
        props = converted.get("properties", {})
        for field in ("apiVersion", "kind"):
            if field in props:
                props[field] = {k: v for k, v in props[field].items() if k != "enum"}
    return converted


def _refs(node: Any, prefix: str, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            found.add(ref[len(prefix):])
        for value in node.values():
            _refs(value, prefix, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, prefix, found)


@functools.cache
def _builtin_closure(name: str) -> frozenset[str]:
    """Every definition `name` needs, itself included."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen or current not in schema.definitions():
            continue
        seen.add(current)
        found: set[str] = set()
        _refs(schema.definitions()[current], schema.REF_PREFIX, found)
        pending.extend(found - seen)
    return frozenset(seen)


def crd_component_name(t: ResourceType) -> str:
    """kube's name of a custom kind's schema: reversed group, version, kind."""
    return ".".join([*reversed(t.group.split(".")), t.version, t.kind])


def _crd_schema_for(t: ResourceType, v2: bool) -> dict[str, Any]:
    """A custom resource's schema with the standard fields kube publishes for it."""
    root = copy.deepcopy(t.crd_schema or {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": True})
    if v2:
        root = _strip_v2(root)
    ref_prefix = V2_REF if v2 else V3_REF
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    props["kind"] = {"description": _KIND_DOC, "type": "string"}
    meta_ref = ref_prefix + OBJECT_META
    props["metadata"] = (
        {"$ref": meta_ref, "description": _METADATA_DOC} if v2
        else {"allOf": [{"$ref": meta_ref}], "description": _METADATA_DOC}
    )
    root["type"] = "object"
    root["x-kubernetes-group-version-kind"] = [
        {"group": t.group, "kind": t.kind, "version": t.version}
    ]
    return dict(sorted(root.items()))


def _strip_v2(node: Any) -> Any:
    """Swagger 2.0 has no nullable and no combinators; kube drops them the same way."""
    if isinstance(node, list):
        return [_strip_v2(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("nullable", "oneOf", "anyOf", "allOf", "not"):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {k: _strip_v2(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _strip_v2(value)
        else:
            out[key] = value
    return out


def _list_schema(t: ResourceType, item_ref: str, v2: bool) -> dict[str, Any]:
    ref_prefix = V2_REF if v2 else V3_REF
    items: dict[str, Any] = {"$ref": item_ref}
    meta: dict[str, Any] = (
        {"$ref": ref_prefix + LIST_META, "description": _LIST_METADATA_DOC} if v2
        else {"allOf": [{"$ref": ref_prefix + LIST_META}], "description": _LIST_METADATA_DOC}
    )
    return {
        "description": f"{t.kind}List is a list of {t.kind}",
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "items": {"description": f"List of {t.plural}.", "items": items,
                      "type": "array"},
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": meta,
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [
            {"group": t.group, "kind": t.list_kind, "version": t.version}
        ],
    }


# --- paths ---------------------------------------------------------------------------------

def _param(name: str, where: str, kind: str, description: str, *, v2: bool,
           required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"description": description, "in": where, "name": name}
    if required:
        param["required"] = True
    if v2:
        param["type"] = kind
        param["uniqueItems"] = True
    else:
        param["schema"] = {"type": kind, "uniqueItems": True}
    return param


_PARAMS: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK watch events."),
    "continue": ("string", "The continue token of a previous paged list."),
    "dryRun": ("string", "When present (All), process the request without persisting it."),
    "fieldManager": ("string", "Name of the actor making the change, for managedFields."),
    "fieldSelector": ("string", "Restrict the list to objects whose fields match."),
    "fieldValidation": (
        "string",
        "How the server treats fields the schema does not know or sets twice: Ignore "
        "drops them silently, Warn (the default) drops them and answers with a warning "
        "per field, Strict refuses the request with a BadRequest naming every one.",
    ),
    "force": ("boolean", "Force an apply patch over conflicts with other managers."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 is now."),
    "labelSelector": ("string", "Restrict the list to objects whose labels match."),
    "limit": ("integer", "Maximum number of items to return in one page."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy."),
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "propagationPolicy": ("string", "Orphan, Background or Foreground garbage collection."),
    "resourceVersion": ("string", "Constraint on the resource version served."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list."),
    "sendInitialEvents": ("boolean", "Start a watch with the current state as events."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "watch": ("boolean", "Watch for changes instead of listing."),
    "container": ("string", "The container for which to stream logs."),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "previous": ("boolean", "Return the logs of the previous container instance."),
    "tailLines": ("integer", "Number of lines from the end of the logs to show."),
    "timestamps": ("boolean", "Prefix every line of log output with a timestamp."),
}
_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                "timeoutSeconds", "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")


def _query(names: Iterable[str], v2: bool) -> list[dict[str, Any]]:
    return [_param(n, "query", _PARAMS[n][0], _PARAMS[n][1], v2=v2) for n in names]


def _camel_group(group: str) -> str:
    if not group:
        return "Core"
    base = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in base.split("."))


def _tag(t: ResourceType) -> str:
    group = _camel_group(t.group)
    return f"{group[:1].lower()}{group[1:]}_{t.version}"


_JSON_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")


class _PathBuilder:
    """Operations for one API version, in OpenAPI 3.0 or Swagger 2.0 shape."""

    def __init__(self, v2: bool, component: Callable[[ResourceType], str]) -> None:
        self.v2 = v2
        self.prefix = V2_REF if v2 else V3_REF
        self.component = component
        self.paths: dict[str, dict[str, Any]] = {}

    def _ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.prefix + name}

    def _responses(self, codes: Iterable[str], ref: str | None,
                   text: bool = False) -> dict[str, Any]:
        described = {"200": "OK", "201": "Created", "202": "Accepted"}
        out: dict[str, Any] = {}
        for code in codes:
            body: dict[str, Any] = {"description": described[code]}
            schema_obj = {"type": "string"} if text else self._ref(ref or STATUS)
            if self.v2:
                body["schema"] = schema_obj
            else:
                types = ("text/plain",) if text else _JSON_TYPES
                body["content"] = {m: {"schema": schema_obj} for m in types}
            out[code] = body
        out["401"] = {"description": "Unauthorized"}
        return out

    def _operation(
        self, verb: str, op_id: str, t: ResourceType, gvk: dict[str, str], *,
        description: str, action: str, response: str | None, codes: Iterable[str],
        params: Iterable[str] = (), body: str | None = None,
        body_types: Iterable[str] = ("*/*",), text: bool = False,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {"description": description, "operationId": op_id}
        parameters = _query(params, self.v2)
        if body is not None:
            if self.v2:
                parameters.insert(0, {"in": "body", "name": "body", "required": True,
                                      "schema": self._ref(body)})
                op["consumes"] = list(body_types)
            else:
                op["requestBody"] = {
                    "content": {m: {"schema": self._ref(body)} for m in body_types},
                    "required": True,
                }
        if parameters:
            op["parameters"] = parameters
        if self.v2:
            op["produces"] = ["text/plain"] if text else list(_JSON_TYPES)
            op["schemes"] = ["https"]
        op["responses"] = self._responses(codes, response, text)
        op["tags"] = [_tag(t)]
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = gvk
        return op

    def _path(self, path: str, path_params: list[str]) -> dict[str, Any]:
        item = self.paths.setdefault(path, {})
        params = [
            _param(p, "path", "string",
                   "object name and auth scope, such as for teams and projects"
                   if p == "namespace" else f"{p} of the object", v2=self.v2, required=True)
            for p in path_params
        ]
        params.append(_param("pretty", "query", "string", _PARAMS["pretty"][1], v2=self.v2))
        item["parameters"] = params
        return item

    def add(self, t: ResourceType) -> None:
        base = "/api/" + t.version if not t.group else f"/apis/{t.group}/{t.version}"
        gv = _camel_group(t.group) + t.version[:1].upper() + t.version[1:]
        scope = "Namespaced" if t.namespaced else ""
        kind_ref = self.component(t)
        list_ref = kind_ref + "List"
        gvk = {"group": t.group, "kind": t.kind, "version": t.version}
        collection = (f"{base}/namespaces/{{namespace}}/{t.plural}" if t.namespaced
                      else f"{base}/{t.plural}")
        scope_params = ["namespace"] if t.namespaced else []
        verbs = set(t.verbs)
        kind = t.kind
        patch_types = [m for m in _PATCH_TYPES
                       if t.crd is None or m != "application/strategic-merge-patch+json"]

        if verbs & {"list", "create", "deletecollection"}:
            item = self._path(collection, scope_params)
            if "list" in verbs:
                item["get"] = self._operation(
                    "get", f"list{gv}{scope}{kind}", t, gvk,
                    description=f"list or watch objects of kind {kind}", action="list",
                    response=list_ref, codes=("200",), params=_LIST_PARAMS)
            if "create" in verbs:
                item["post"] = self._operation(
                    "post", f"create{gv}{scope}{kind}", t, gvk,
                    description=f"create a {kind}", action="post", response=kind_ref,
                    codes=("200", "201", "202"), params=_WRITE_PARAMS, body=kind_ref)
            if "deletecollection" in verbs:
                item["delete"] = self._operation(
                    "delete", f"delete{gv}Collection{scope}{kind}", t, gvk,
                    description=f"delete collection of {kind}", action="deletecollection",
                    response=STATUS, codes=("200",),
                    params=(*_DELETE_PARAMS, *_LIST_PARAMS), body=DELETE_OPTIONS)
        if t.namespaced and "list" in verbs:
            item = self._path(f"{base}/{t.plural}", [])
            item["get"] = self._operation(
                "get", f"list{gv}{kind}ForAllNamespaces", t, gvk,
                description=f"list or watch objects of kind {kind}", action="list",
                response=list_ref, codes=("200",), params=_LIST_PARAMS)

        named = f"{collection}/{{name}}"
        if verbs & {"get", "update", "patch", "delete"}:
            item = self._path(named, ["name", *scope_params])
            if "get" in verbs:
                item["get"] = self._operation(
                    "get", f"read{gv}{scope}{kind}", t, gvk,
                    description=f"read the specified {kind}", action="get",
                    response=kind_ref, codes=("200",))
            if "update" in verbs:
                item["put"] = self._operation(
                    "put", f"replace{gv}{scope}{kind}", t, gvk,
                    description=f"replace the specified {kind}", action="put",
                    response=kind_ref, codes=("200", "201"), params=_WRITE_PARAMS,
                    body=kind_ref)
            if "patch" in verbs:
                item["patch"] = self._operation(
                    "patch", f"patch{gv}{scope}{kind}", t, gvk,
                    description=f"partially update the specified {kind}", action="patch",
                    response=kind_ref, codes=("200", "201"),
                    params=(*_WRITE_PARAMS, "force"), body=PATCH, body_types=patch_types)
            if "delete" in verbs:
                item["delete"] = self._operation(
                    "delete", f"delete{gv}{scope}{kind}", t, gvk,
                    description=f"delete a {kind}", action="delete", response=STATUS,
                    codes=("200", "202"), params=_DELETE_PARAMS, body=DELETE_OPTIONS)

        for sub in subresources(t):
            self._add_subresource(t, sub, named, ["name", *scope_params], gv, scope,
                                  kind_ref, patch_types)

    def _add_subresource(
        self, t: ResourceType, sub: Subresource, named: str, path_params: list[str],
        gv: str, scope: str, kind_ref: str, patch_types: list[str],
    ) -> None:
        item = self._path(f"{named}/{sub.name}", path_params)
        gvk = {"group": sub.group, "kind": sub.kind, "version": sub.version}
        suffix = t.kind + sub.name[:1].upper() + sub.name[1:]
        if sub.kind == t.kind and (sub.group, sub.version) == (t.group, t.version):
            ref = kind_ref
        else:
            ref = schema.definition_name(sub.group, sub.version, sub.kind) or STATUS
        what = f"{sub.name} of the specified {t.kind}"
        if sub.name == "log":
            item["get"] = self._operation(
                "get", f"read{gv}{scope}{suffix}", t, gvk, description=f"read {what}",
                action="get", response=None, codes=("200",), text=True,
                params=("container", "follow", "previous", "tailLines", "timestamps"))
            return
        if "get" in sub.verbs:
            item["get"] = self._operation(
                "get", f"read{gv}{scope}{suffix}", t, gvk, description=f"read {what}",
                action="get", response=ref, codes=("200",))
        if "update" in sub.verbs:
            item["put"] = self._operation(
                "put", f"replace{gv}{scope}{suffix}", t, gvk,
                description=f"replace {what}", action="put", response=ref,
                codes=("200", "201"), params=_WRITE_PARAMS, body=ref)
        if "patch" in sub.verbs:
            item["patch"] = self._operation(
                "patch", f"patch{gv}{scope}{suffix}", t, gvk,
                description=f"partially update {what}", action="patch", response=ref,
                codes=("200", "201"), params=(*_WRITE_PARAMS, "force"), body=PATCH,
                body_types=patch_types)
        if "create" in sub.verbs:
            item["post"] = self._operation(
                "post", f"create{gv}{scope}{suffix}", t, gvk, description=f"create {what}",
                action="post", response=ref, codes=("200", "201", "202"),
                params=_WRITE_PARAMS, body=ref)


# --- documents ---------------------------------------------------------------------------

_SECURITY_SCHEME = {"BearerToken": {"description": "Bearer Token authentication",
                                    "in": "header", "name": "authorization",
                                    "type": "apiKey"}}


def _schemas_for(types: list[ResourceType], v2: bool) -> tuple[dict[str, Any],
                                                               Callable[[ResourceType], str]]:
    """Components for `types` (their closure of built-in definitions) and a namer."""
    prefix = V2_REF if v2 else V3_REF
    components: dict[str, Any] = {}
    names: dict[tuple[str, str, str], str] = {}
    builtin: set[str] = {STATUS, PATCH, DELETE_OPTIONS, OBJECT_META, LIST_META}
    for t in types:
        if t.crd is None and t.schema_ref:
            names[(t.group, t.version, t.plural)] = t.schema_ref
            builtin.add(t.schema_ref)
            list_name = t.schema_ref + "List"
            if list_name in schema.definitions():
                builtin.add(list_name)
            else:
                components[list_name] = _list_schema(t, prefix + t.schema_ref, v2)
        else:
            name = crd_component_name(t)
            names[(t.group, t.version, t.plural)] = name
            components[name] = _crd_schema_for(t, v2)
            components[name + "List"] = _list_schema(t, prefix + name, v2)
        for sub in subresources(t):
            ref = schema.definition_name(sub.group, sub.version, sub.kind)
            if ref:
                builtin.add(ref)
    closure: set[str] = set()
    for name in builtin:
        closure |= _builtin_closure(name)
    for name in closure:
        components[name] = _builtin_component(name, v2)
    return dict(sorted(components.items())), lambda t: names[(t.group, t.version, t.plural)]


def v3_document(types: list[ResourceType]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group version."""
    components, namer = _schemas_for(types, v2=False)
    paths = _PathBuilder(v2=False, component=namer)
    for t in sorted(types, key=lambda t: t.plural):
        paths.add(t)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": dict(sorted(paths.paths.items())),
        "components": {"schemas": components,
                       "securitySchemes": {"BearerToken": {
                           "type": "apiKey", "description": "Bearer Token authentication",
                           "name": "authorization", "in": "header"}}},
    }


def v2_document(registry: Registry) -> dict[str, Any]:
    """The Swagger 2.0 document of everything served."""
    types = list(registry)
    definitions, namer = _schemas_for(types, v2=True)
    paths = _PathBuilder(v2=True, component=namer)
    for t in sorted(types, key=lambda t: (t.group, t.version, t.plural)):
        paths.add(t)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": dict(sorted(paths.paths.items())),
        "definitions": definitions,
        "securityDefinitions": _SECURITY_SCHEME,
        "security": [{"BearerToken": []}],
    }


def gv_path(group: str, version: str) -> str:
    """`api/v1` or `apis/apps/v1`: the key of a group version in the v3 index."""
    return f"api/{version}" if not group else f"apis/{group}/{version}"


# --- protobuf encoding of the v2 document (gnostic openapi_v2) -----------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _field(number, value.encode()) if value else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", float(value))


def _any(number: int, value: Any) -> bytes:
    """gnostic's Any keeps the value as YAML text; JSON is YAML."""
    return _field(number, _string(2, orjson.dumps(value).decode()))


def _extensions(number: int, node: dict[str, Any]) -> bytes:
    return b"".join(
        _field(number, _string(1, key) + _any(2, value))
        for key, value in node.items() if key.startswith("x-")
    )


def _pb_schema(node: dict[str, Any]) -> bytes:
    out = [
        _string(1, node.get("$ref", "")),
        _string(2, node.get("format", "")),
        _string(3, node.get("title", "")),
        _string(4, node.get("description", "")),
    ]
    if "default" in node:
        out.append(_any(5, node["default"]))
    for key, number in (("maximum", 7), ("minimum", 9)):
        if isinstance(node.get(key), int | float) and not isinstance(node.get(key), bool):
            out.append(_double(number, node[key]))
    out.append(_bool(8, bool(node.get("exclusiveMaximum"))))
    out.append(_bool(10, bool(node.get("exclusiveMinimum"))))
    for key, number in (("maxLength", 11), ("minLength", 12), ("maxItems", 14),
                        ("minItems", 15), ("maxProperties", 17), ("minProperties", 18)):
        if isinstance(node.get(key), int):
            out.append(_int(number, node[key]))
    out.append(_string(13, node.get("pattern", "")))
    out.append(_bool(16, bool(node.get("uniqueItems"))))
    out.extend(_string(19, r) for r in node.get("required", ()))
    out.extend(_any(20, e) for e in node.get("enum", ()))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_field(21, _field(1, _pb_schema(extra))))
    elif isinstance(extra, bool):
        out.append(_field(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00")))
    if node.get("type"):
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        out.append(_field(22, b"".join(_string(1, t) for t in types)))
    if isinstance(node.get("items"), dict):
        out.append(_field(23, _field(1, _pb_schema(node["items"]))))
    out.extend(_field(24, _pb_schema(s)) for s in node.get("allOf", ()))
    if node.get("properties"):
        out.append(_field(25, b"".join(
            _field(1, _string(1, name) + _field(2, _pb_schema(prop)))
            for name, prop in node["properties"].items())))
    out.append(_bool(27, bool(node.get("readOnly"))))
    out.append(_extensions(31, node))
    return b"".join(out)


def _pb_parameter(param: dict[str, Any]) -> bytes:
    if param.get("in") == "body":
        body = (_string(1, param.get("description", "")) + _string(2, param["name"])
                + _string(3, "body") + _bool(4, bool(param.get("required")))
                + _field(5, _pb_schema(param["schema"])))
        return _field(1, _field(1, body))
    if param.get("in") == "path":
        sub = (_bool(1, bool(param.get("required"))) + _string(2, "path")
               + _string(3, param.get("description", "")) + _string(4, param["name"])
               + _string(5, param.get("type", "")) + _bool(19, bool(param.get("uniqueItems"))))
        return _field(1, _field(2, _field(4, sub)))
    sub = (_bool(1, bool(param.get("required"))) + _string(2, "query")
           + _string(3, param.get("description", "")) + _string(4, param["name"])
           + _string(6, param.get("type", "")) + _bool(20, bool(param.get("uniqueItems"))))
    return _field(1, _field(2, _field(3, sub)))


def _pb_operation(op: dict[str, Any]) -> bytes:
    out = [b"".join(_string(1, tag) for tag in op.get("tags", ())),
           _string(3, op.get("description", "")), _string(5, op.get("operationId", ""))]
    out.extend(_string(6, m) for m in op.get("produces", ()))
    out.extend(_string(7, m) for m in op.get("consumes", ()))
    out.extend(_field(8, _pb_parameter(p)) for p in op.get("parameters", ()))
    codes = []
    for code, response in op.get("responses", {}).items():
        body = _string(1, response.get("description", ""))
        if "schema" in response:
            body += _field(2, _field(1, _pb_schema(response["schema"])))
        codes.append(_field(1, _string(1, code) + _field(2, _field(1, body))))
    out.append(_field(9, b"".join(codes)))
    out.extend(_string(10, s) for s in op.get("schemes", ()))
    out.append(_extensions(13, op))
    return b"".join(out)


_PATH_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}


def encode_v2_protobuf(doc: dict[str, Any]) -> bytes:
    """The Swagger document as gnostic's `openapi.v2.Document` protobuf message."""
    info = doc.get("info", {})
    out = [_string(1, doc.get("swagger", "2.0")),
           _field(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))]
    paths = []
    for path, item in doc.get("paths", {}).items():
        body = [_field(number, _pb_operation(item[method]))
                for method, number in _PATH_METHODS.items() if method in item]
        body.extend(_field(9, _pb_parameter(p)) for p in item.get("parameters", ()))
        paths.append(_field(2, _string(1, path) + _field(2, b"".join(body))))
    out.append(_field(8, b"".join(paths)))
    out.append(_field(9, b"".join(
        _field(1, _string(1, name) + _field(2, _pb_schema(definition)))
        for name, definition in doc.get("definitions", {}).items())))
    for requirement in doc.get("security", ()):
        out.append(_field(12, b"".join(
            _field(1, _string(1, name) + _field(2, b"".join(_string(1, s) for s in scopes)))
            for name, scopes in requirement.items())))
    security = []
    for name, scheme in doc.get("securityDefinitions", {}).items():
        api_key = (_string(1, scheme.get("type", "")) + _string(2, scheme.get("name", ""))
                   + _string(3, scheme.get("in", "")) + _string(4, scheme.get("description", "")))
        security.append(_field(1, _string(1, name) + _field(2, _field(2, api_key))))
    if security:
        out.append(_field(13, b"".join(security)))
    return b"".join(out)


# --- serving -------------------------------------------------------------------------------

class OpenAPIDocuments:
    """Every OpenAPI document for the registry's current generation, built on demand."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._generation = -1
        self._v3: dict[str, Rendered] | None = None
        self._v2: dict[str, Rendered] = {}

    def _fresh(self) -> None:
        if self.registry.generation != self._generation:
            self._generation = self.registry.generation
            self._v3 = None
            self._v2 = {}

    def v3(self) -> dict[str, Rendered]:
        """Group-version path -> rendered document; all rendered so the index has hashes."""
        with self._lock:
            self._fresh()
            if self._v3 is None:
                by_gv: dict[tuple[str, str], list[ResourceType]] = {}
                for t in self.registry:
                    by_gv.setdefault((t.group, t.version), []).append(t)
                self._v3 = {
                    gv_path(group, version): Rendered(orjson.dumps(v3_document(types)),
                                                   "application/json")
                    for (group, version), types in sorted(by_gv.items())
                }
            return self._v3

    def v3_index(self) -> dict[str, Any]:
        return {"paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={blob.etag.strip(chr(34))}"}
            for path, blob in self.v3().items()
        }}

    def v2(self, protobuf: bool) -> Rendered:
        with self._lock:
            self._fresh()
            key = "pb" if protobuf else "json"
            if key not in self._v2:
                doc = v2_document(self.registry)
                self._v2["json"] = Rendered(orjson.dumps(doc), "application/json")
                self._v2["pb"] = Rendered(encode_v2_protobuf(doc), V2_PROTOBUF_ALT)
            return self._v2[key]


def _ranked(accept: str) -> list[str]:
    """Media types of an Accept header, best q first, ties in header order."""
    ranked = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 1.0
        if q > 0:
            ranked.append((-q, index, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def _v2_wants_protobuf(accept: str | None) -> bool:
    """Protobuf when the client names it before JSON; JSON for anything else usable."""
    if not accept:
        return False
    for media in _ranked(accept):
        if media in (V2_PROTOBUF, V2_PROTOBUF_ALT):
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    raise errors.NotAcceptable(
        f"only the following media types are accepted: application/json, {V2_PROTOBUF}")


def _v3_accepts_json(accept: str | None) -> None:
    """v3 documents are served as JSON only (what client-go's openapi3 root asks for)."""
    if not accept or any(m in ("application/json", "*/*", "application/*")
                         for m in _ranked(accept)):
        return
    raise errors.NotAcceptable("only the following media types are accepted: application/json")


class OpenAPIHandlers:
    def __init__(self, registry: Registry) -> None:
        self.documents = OpenAPIDocuments(registry)

    async def v2(self, request: web.Request) -> web.Response:
        protobuf = _v2_wants_protobuf(request.headers.get("Accept"))
        return respond(request, self.documents.v2(protobuf), vary=True)

    async def v3_index(self, request: web.Request) -> web.Response:
        body = orjson.dumps(self.documents.v3_index())
        return respond(request, Rendered(body, "application/json"))

    async def v3_group_version(self, request: web.Request) -> web.Response:
        _v3_accepts_json(request.headers.get("Accept"))
        path = request.match_info["path"].strip("/")
        blob = self.documents.v3().get(path)
        if blob is None:
            raise errors.NotFound("the server could not find the requested resource")
        current = blob.etag.strip('"')
        asked = request.query.get("hash")
        if asked is not None and asked != current:
            # A client holding an old index: send it to the current document.
            return web.Response(status=301,
                                headers={"Location": f"/openapi/v3/{path}?hash={current}"})
        headers = ({"Cache-Control": "public, immutable", "Expires":
                    "Thu, 31 Dec 2099 23:59:59 GMT"} if asked else
                   {"Cache-Control": "no-cache, private"})
        return respond(request, blob, headers=headers)


def add_openapi_routes(app: web.Application, registry: Registry) -> None:
    """Serve /openapi/v2, /openapi/v3 and /openapi/v3/{api/v1 | apis/GROUP/VERSION}."""
    handlers = OpenAPIHandlers(registry)
    app.router.add_get("/openapi/v2", handlers.v2)
    app.router.add_get("/openapi/v3", handlers.v3_index)
    app.router.add_get("/openapi/v3/", handlers.v3_index)
    app.router.add_get("/openapi/v3/{path:.+}", handlers.v3_group_version)
