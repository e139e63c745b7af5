"""ConfigMap and Secret: keys, sizes, Secret types, and immutability."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from nodeless.apiserver.resources.names import byte_len
from nodeless.apiserver.resources.validation.context import V, _d
from nodeless.apiserver.resources.validation.field import forbidden, invalid, required, too_long
from nodeless.apiserver.resources.validation.formats import is_config_map_key

MAX_SECRET_SIZE = 1024 * 1024


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def _secret(v: V) -> None:
    obj = v.obj
    data = _d(obj.get("data"))
    total = 0
    for key, value in data.items():
        v.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key)))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        v.add(too_long("data", MAX_SECRET_SIZE))
    kind = obj.get("type") or ""
    annotations = _d(_d(obj.get("metadata")).get("annotations"))
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            v.add(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/dockercfg":
        if ".dockercfg" not in data:
            v.add(required("data[.dockercfg]"))
    elif kind == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            v.add(required("data[.dockerconfigjson]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            v.add(required("data[username]"), required("data[password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            v.add(required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        if "tls.crt" not in data:
            v.add(required("data[tls.crt]"))
        if "tls.key" not in data:
            v.add(required("data[tls.key]"))
    if v.old is not None:
        if (obj.get("type") or "") != (v.old.get("type") or ""):
            v.add(invalid("type", obj.get("type") or "", "field is immutable"))
        _immutable_data(v, ("data",))


def _immutable_data(v: V, keys: tuple[str, ...]) -> None:
    assert v.old is not None
    if not v.old.get("immutable"):
        return
    if not v.obj.get("immutable"):
        v.add(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (v.obj.get(key) or {}) != (v.old.get(key) or {}):
            v.add(forbidden(key, "field is immutable when `immutable` is set"))


def _configmap(v: V) -> None:
    obj = v.obj
    if v.old is not None:
        _immutable_data(v, ("data", "binaryData"))
    total = 0
    binary = _d(obj.get("binaryData"))
    for key, value in _d(obj.get("data")).items():
        v.extend(invalid(f"data[{key}]", key, m) for m in is_config_map_key(str(key)))
        if key in binary:
            v.add(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += byte_len(str(value))
    for key, value in binary.items():
        v.extend(invalid(f"binaryData[{key}]", key, m) for m in is_config_map_key(str(key)))
        total += _decoded_len(value)
    if total > MAX_SECRET_SIZE:
        v.add(too_long("", MAX_SECRET_SIZE))
