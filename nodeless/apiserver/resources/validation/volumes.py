"""Pod volumes: one source each, its required fields, paths and file modes."""

from __future__ import annotations

from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.names import is_dns1123_label
from nodeless.apiserver.resources.validation.context import Obj, _d, _l
from nodeless.apiserver.resources.validation.field import (
    duplicate,
    forbidden,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.quantities import _quantity

_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                    "CharDevice", "BlockDevice")
_VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)
_SOURCE_PATHS = {"gcePersistentDisk": "persistentDisk", "downwardAPI": "downwarAPI"}


def _path_no_backsteps(value: str, path: str) -> list[FieldError]:
    parts = value.replace("\\", "/").split("/")
    if ".." in parts:
        return [invalid(path, value, "must not contain '..'")]
    return []


def _local_descending_path(value: str, path: str) -> list[FieldError]:
    if value.startswith("/"):
        return [invalid(path, value, "must be a relative path")]
    return _path_no_backsteps(value, path)


def _local_non_reserved_path(value: str, path: str) -> list[FieldError]:
    errs = _local_descending_path(value, path)
    if value.startswith("..") and not value.startswith("../"):
        errs.append(invalid(path, value, "must not start with '..'"))
    return errs


def _mode(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not 0 <= value <= 0o777:
        return [invalid(path, value, _FILE_MODE_MSG)]
    return []


def _key_to_paths(items: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(_l(items)):
        item = _d(item)
        p = f"{path}.items[{i}]"
        if not item.get("key"):
            errs.append(required(f"{p}.key"))
        if not item.get("path"):
            errs.append(required(f"{p}.path"))
        else:
            errs.extend(_local_non_reserved_path(str(item["path"]), f"{p}.path"))
        errs.extend(_mode(item.get("mode"), f"{p}.mode"))
    return errs


def _volume_source(vol: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for key in _VOLUME_SOURCES:
        source = vol.get(key)
        if source is None:
            continue
        p = f"{path}.{_SOURCE_PATHS.get(key, key)}"
        if count:
            errs.append(forbidden(f"{path}.{key}", "may not specify more than 1 volume type"))
            continue
        count += 1
        source = _d(source)
        if key == "emptyDir":
            q = _quantity(source.get("sizeLimit")) if source.get("sizeLimit") else None
            if q is not None and q < 0:
                errs.append(forbidden(f"{p}.sizeLimit",
                                      "SizeLimit field must be a valid resource quantity"))
        elif key == "hostPath":
            host_path = str(source.get("path") or "")
            if not host_path:
                errs.append(required(f"{p}.path"))
            else:
                errs.extend(_path_no_backsteps(host_path, f"{p}.path"))
                if source.get("type") not in _HOST_PATH_TYPES and source.get("type") is not None:
                    errs.append(unsupported(f"{p}.type", source.get("type"),
                                            _HOST_PATH_TYPES))
        elif key == "secret":
            if not source.get("secretName"):
                errs.append(required(f"{p}.secretName"))
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
            errs.extend(_key_to_paths(source.get("items"), p))
        elif key == "configMap":
            if not source.get("name"):
                errs.append(required(f"{p}.name"))
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
            errs.extend(_key_to_paths(source.get("items"), p))
        elif key == "persistentVolumeClaim":
            if not source.get("claimName"):
                errs.append(required(f"{p}.claimName"))
        elif key == "nfs":
            if not source.get("server"):
                errs.append(required(f"{p}.server"))
            if not source.get("path"):
                errs.append(required(f"{p}.path"))
            elif not str(source["path"]).startswith("/"):
                errs.append(invalid(f"{p}.path", source["path"], "must be an absolute path"))
        elif key == "csi":
            if not source.get("driver"):
                errs.append(required(f"{p}.driver"))
        elif key in ("downwardAPI", "projected"):
            errs.extend(_mode(source.get("defaultMode"), f"{p}.defaultMode"))
        elif key == "ephemeral":
            if not isinstance(source.get("volumeClaimTemplate"), dict):
                errs.append(required(f"{p}.volumeClaimTemplate"))
        elif key == "image" and not source.get("reference"):
            errs.append(required(f"{p}.reference"))
    if not count:
        errs.append(required(path, "must specify a volume type"))
    return errs


def _volumes(spec: Obj, path: str) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(_l(spec.get("volumes"))):
        vol = _d(vol)
        p = f"{path}[{i}]"
        name = vol.get("name") or ""
        el = _volume_source(vol, p)
        if not name:
            el.append(required(f"{p}.name"))
        else:
            el.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(str(name)))
        if name in names:
            el.append(duplicate(f"{p}.name", name))
        if el:
            errs.extend(el)
        else:
            names.add(name)
    return names, errs
