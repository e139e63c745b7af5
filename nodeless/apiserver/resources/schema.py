"""The upstream schemas of the built-in types, loaded once from `kubernetes-validate`.

kubernetes-validate ships kube-apiserver's v1.37 OpenAPI definitions converted to JSON
Schema (`$defs`, nullable types as `["string", "null"]`, refs as `#/$defs/NAME`). They
keep the `x-kubernetes-*` extensions we need: group-version-kind, patch merge keys and
strategies, list types. Every other module reads schemas through this one.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_VERSION = "v1.37.0-local"
REF_PREFIX = "#/$defs/"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """All definitions by name, e.g. `io.k8s.api.core.v1.Pod`."""
    path = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / SCHEMA_VERSION
        / "_definitions.json"
    )
    return json.loads(path.read_text())["$defs"]


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # Prefer the definition in the type's own API package over re-exports.
            if key not in index or name.endswith(f".{gvk['version']}.{gvk['kind']}"):
                index[key] = name
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition name of a built-in kind, e.g. ("apps","v1","Deployment")."""
    return _by_gvk().get((group, version, kind))


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` (one level; definitions never point at bare refs)."""
    ref = schema.get("$ref")
    if ref and ref.startswith(REF_PREFIX):
        return definitions()[ref[len(REF_PREFIX) :]]
    return schema


def schema_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, without "null"."""
    t = schema.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t} - {"null"}
    return set(t) - {"null"}
