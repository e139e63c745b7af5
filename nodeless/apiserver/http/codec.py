"""Bodies in, objects out: media types, size limits, and the one place an `APIError`
becomes a Kubernetes `Status` on the wire."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from nodeless.apiserver import errors
from nodeless.apiserver.http import protobuf

JSON = "application/json"
YAML = "application/yaml"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)

try:  # libyaml's loader is ~10x faster where available
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or JSON).split(";")[0].strip().lower()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes with 413 before reading it all."""
    length = request.content_length
    if length is not None and length > limit:
        raise errors.RequestEntityTooLarge(
            f"the request body is too large ({length} bytes, limit {limit})")
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise errors.RequestEntityTooLarge(
                f"the request body is too large (over {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_object(body: bytes, content_type: str) -> Any:
    """JSON or YAML into a Python value; anything else is 415, malformed input 400."""
    if not body.strip():
        raise errors.BadRequest("the request body is empty: an object is required")
    if content_type in (JSON, "", "*/*"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise errors.BadRequest(
                f"couldn't get version/kind; json parse error: {exc}") from None
    if content_type == protobuf.CONTENT_TYPE:
        # kubectl's typed commands send built-in objects as Kubernetes protobuf.
        return protobuf.decode_protobuf_body(body)
    if content_type in (YAML, "application/x-yaml", "text/yaml"):
        try:
            value = yaml.load(body, Loader=_YamlLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"error converting YAML to JSON: {exc}") from None
        try:  # YAML may hold values JSON cannot (timestamps, binary); normalise them
            return orjson.loads(orjson.dumps(value, default=str))
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise errors.BadRequest(f"error converting YAML to JSON: {exc}") from None
    raise errors.UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON}, {YAML}, {protobuf.CONTENT_TYPE}")


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None,
                  *, as_yaml: bool = False) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(_warning(w) for w in dict.fromkeys(warnings))
    if as_yaml:
        return web.Response(body=yaml.safe_dump(body, sort_keys=False).encode(),
                            status=status, content_type=YAML, headers=headers)
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON,
                        headers=headers)


def _warning(text: str) -> str:
    """RFC 7234 warn-text: quoted, and never a control or non-ASCII byte (which HTTP
    headers may not carry: a field name from a client may hold anything)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in escaped)
    return f'299 - "{escaped}"'


def status_response(exc: errors.APIError) -> web.Response:
    headers = {}
    warnings = getattr(exc, "warnings", None)
    if warnings:
        headers["Warning"] = ", ".join(_warning(w) for w in dict.fromkeys(warnings))
    return web.Response(body=orjson.dumps(exc.status()), status=exc.code, content_type=JSON,
                        headers=headers)


def success_status(details: dict[str, Any], code: int = 200) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details, "code": code}


def wants_table(request: web.Request) -> str | None:
    """The meta.k8s.io version of Table the client asked for first, if any."""
    for part in request.headers.get("Accept", "").split(","):
        params = dict(
            p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p
        )
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
        if part.strip().split(";")[0] in (JSON, "*/*", YAML) and "as=" not in part:
            return None  # a plain type listed first: the client prefers the plain object
    return None


def wants_partial_metadata(request: web.Request) -> str | None:
    """"PartialObjectMetadata" / "PartialObjectMetadataList" if asked for (metadata-only
    clients such as kube's garbage collector and `kubectl get -o name`)."""
    for part in request.headers.get("Accept", "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as", "").startswith("PartialObjectMetadata") and params.get(
                "g") == "meta.k8s.io":
            return params["as"]
        if part.strip() and "as=" not in part:
            return None
    return None


def wants_yaml(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0].split(";")[0].strip()
    return first in (YAML, "application/x-yaml")


def check_acceptable(request: web.Request) -> None:
    """406 when the client accepts nothing we can produce (e.g. protobuf only)."""
    accept = request.headers.get("Accept")
    if not accept:
        return
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in (JSON, YAML, "application/x-yaml", "*/*", "application/*", "") or (
            kind == "application/json" or kind.endswith("+json")
        ):
            return
    raise errors.NotAcceptable(
        f"only the following media types are accepted: {JSON}, {YAML}")
