"""Parse a resource URL into what it names, as kube-apiserver's RequestInfoFactory does.

    /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]
    /api/v1/{resource}[/{name}[/{subresource}]]
    /apis/{group}/{version}/...            (same shapes)
    /api/v1/watch/...                      (legacy watch paths)
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeless.apiserver import errors

# Namespace subresources, so /api/v1/namespaces/NAME/status is not "resource status".
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class RequestInfo:
    group: str
    version: str
    resource: str
    namespace: str | None
    name: str
    subresource: str
    legacy_watch: bool


def parse_resource_path(path: str) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise errors.NotFound("the server could not find the requested resource")
    if parts[0] == "api":
        if len(parts) < 3:
            raise errors.NotFound("the server could not find the requested resource")
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 4:
            raise errors.NotFound("the server could not find the requested resource")
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.NotFound("the server could not find the requested resource")
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
    namespace: str | None = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
    ):
        namespace = rest[1]
        rest = rest[2:]
    if not rest or len(rest) > 3:
        raise errors.NotFound("the server could not find the requested resource")
    return RequestInfo(
        group=group,
        version=version,
        resource=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else "",
        subresource=rest[2] if len(rest) > 2 else "",
        legacy_watch=legacy_watch,
    )
