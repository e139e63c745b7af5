"""A pod's volumes on the host, laid out as kubelet lays them out.

`<root>/<pod uid>/volumes/kubernetes.io~<plugin>/<volume name>` holds each volume:
emptyDir (a directory, or tmpfs for `medium: Memory`), configMap, secret, downwardAPI
and projected (files written by an atomic writer: a timestamped directory, `..data`
pointing to it and one symlink per top-level name, so a container never sees a half
update), and nfs (mounted on the host, then bind-mounted by the runtime). hostPath and
every other type are refused with the reason. `setup` is idempotent: call it again to
publish ConfigMap/Secret/label changes and to refresh tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import os
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nodeless.agent.pods.env import field_value, resource_value
from nodeless.agent.pods.errors import MountError
from nodeless.agent.pods.podutil import Pod, find_container, int_value

DEFAULT_MODE = 0o644
TOKEN_EXPIRATION = 3600
DATA_DIR = "..data"

PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected", "nfs": "kubernetes.io~nfs",
}
READ_ONLY_KINDS = {"configMap", "secret", "downwardAPI", "projected"}
"""Volumes kubelet always mounts read-only (their files are the API's, not the app's)."""


class ObjectSource(Protocol):
    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The ConfigMap, or None when it does not exist."""

    async def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The Secret (data base64-encoded), or None when it does not exist."""


class TokenSource(Protocol):
    async def request_token(self, namespace: str, service_account: str, *,
                            audiences: list[str], expiration_seconds: int, pod_name: str,
                            pod_uid: str) -> tuple[str, float]:
        """A token bound to the pod (TokenRequest) and its expiry (unix seconds). Raises
        with the API's message when it cannot (no such account, API not served)."""


@dataclass(frozen=True)
class Volume:
    """A set-up volume: where it is on the host and whether it must be mounted read-only."""

    name: str
    kind: str
    path: str
    read_only: bool


class ApiTokenSource:
    """TokenSource over the API server's `serviceaccounts/<name>/token` (lightkube)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def request_token(self, namespace: str, service_account: str, *,
                            audiences: list[str], expiration_seconds: int, pod_name: str,
                            pod_uid: str) -> tuple[str, float]:
        from lightkube import ApiError
        from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import ServiceAccount

        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=service_account, namespace=namespace),
            spec=TokenRequestSpec(
            audiences=audiences, expirationSeconds=expiration_seconds,
            boundObjectRef=BoundObjectReference(kind="Pod", apiVersion="v1", name=pod_name,
                                                uid=pod_uid)))
        try:
            result = await self.client.create(request, name=service_account,
                                              namespace=namespace)
        except ApiError as e:
            if e.status.code == 404 and service_account not in (e.status.message or ""):
                raise RuntimeError("the API server does not serve serviceaccounts/token "
                                   "(TokenRequest), needed for projected service account "
                                   "tokens") from None
            raise RuntimeError(e.status.message or str(e)) from None
        expiry = result.status.expirationTimestamp
        return result.status.token, expiry.timestamp() if expiry else time.time() + \
            expiration_seconds


# --- the atomic writer ---------------------------------------------------------------

@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int
    uid: int = -1


def _validate_path(path: str) -> None:
    if not path or os.path.isabs(path) or ".." in path.split("/") or path.startswith(".."):
        raise ValueError(f"invalid path {path!r}")


def _read_current(target: str) -> dict[str, FileProjection] | None:
    data_dir = os.path.join(target, DATA_DIR)
    if not os.path.islink(data_dir):
        return None
    current: dict[str, FileProjection] = {}
    base = os.path.realpath(data_dir)
    for dirpath, _, files in os.walk(base):
        for f in files:
            full = os.path.join(dirpath, f)
            st = os.stat(full)
            with open(full, "rb") as fh:
                current[os.path.relpath(full, base)] = FileProjection(
                    fh.read(), st.st_mode & 0o7777, -1)
    return current


def write_atomic(target: str, payload: Mapping[str, FileProjection], *,
                 fs_group: int | None = None) -> bool:
    """Publish payload (relative path -> file) in target the way kubelet's AtomicWriter
    does; returns False when the files already hold exactly this payload.

    fs_group: files and directories get that group, files at least group-readable and
    directories setgid (kubelet's SetVolumeOwnership for read-only volumes)."""
    for path in payload:
        _validate_path(path)
    os.makedirs(target, exist_ok=True)
    wanted = {p: FileProjection(f.data, _final_mode(f.mode, fs_group)) for p, f in payload.items()}
    current = _read_current(target)
    if current is not None and current == wanted:
        return False
    ts_dir = _new_ts_dir(target)
    for path, f in payload.items():
        full = os.path.join(ts_dir, path)
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(f.data)
        if f.uid >= 0 or fs_group is not None:
            os.chown(full, f.uid, -1 if fs_group is None else fs_group)
        os.chmod(full, _final_mode(f.mode, fs_group))
    if fs_group is not None:
        for dirpath, dirs, _ in os.walk(ts_dir):
            for d in [dirpath, *(os.path.join(dirpath, x) for x in dirs)]:
                os.chown(d, -1, fs_group)
                os.chmod(d, (os.stat(d).st_mode & 0o7777) | 0o2550)
    old_ts = os.path.realpath(os.path.join(target, DATA_DIR)) if current is not None else None
    tmp_link = os.path.join(target, DATA_DIR + "_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(ts_dir), tmp_link)
    os.rename(tmp_link, os.path.join(target, DATA_DIR))
    top = {p.split("/", 1)[0] for p in payload}
    for name in top:
        link = os.path.join(target, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(DATA_DIR, name), link)
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        if name not in top and os.path.islink(os.path.join(target, name)):
            os.unlink(os.path.join(target, name))
    if old_ts and os.path.isdir(old_ts) and old_ts != os.path.realpath(ts_dir):
        shutil.rmtree(old_ts, ignore_errors=True)
    return True


def _new_ts_dir(target: str) -> str:
    """`..2006_01_02_15_04_05.<digits>`, the timestamped directory kubelet's writer uses."""
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    while True:
        path = os.path.join(target, f"{stamp}{random.randrange(10**9, 10**10)}")
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)
        return path


def _final_mode(mode: int, fs_group: int | None) -> int:
    return mode | 0o440 if fs_group is not None else mode


# --- payloads ----------------------------------------------------------------------

def _items(data: Mapping[str, bytes], items: list[Mapping[str, Any]] | None, default_mode: int,
           missing: str, optional: bool = False) -> dict[str, FileProjection]:
    """All keys, or the listed items (key -> path, mode); a listed key must exist unless
    the source is optional (then it is left out)."""
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise KeyError(f"{missing}: {key}")
        mode = item.get("mode")
        out[item.get("path") or key] = FileProjection(
            data[key], int(mode) if mode is not None else default_mode)
    return out


def _secret_bytes(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret data is not valid base64") from None


class PodVolumes:
    """Sets up and tears down the volumes of the pods of one agent under `root`."""

    def __init__(self, root: str, objects: ObjectSource, tokens: TokenSource | None = None, *,
                 mount_timeout: float = 60.0, clock: Any = time.time) -> None:
        self.root = root
        self.objects = objects
        self.tokens = tokens
        self.mount_timeout = mount_timeout
        self.clock = clock
        self._tokens: dict[tuple[str, str, str], tuple[str, float, float]] = {}

    def pod_dir(self, pod_uid: str) -> str:
        return os.path.join(self.root, pod_uid)

    def volume_path(self, pod_uid: str, kind: str, name: str) -> str:
        return os.path.join(self.pod_dir(pod_uid), "volumes", PLUGIN_DIRS[kind], name)

    async def setup(self, pod: Pod, *, memory_limit: int,
                    allocatable: Mapping[str, Any] | None = None) -> dict[str, Volume]:
        """Every volume of the pod, by name. memory_limit: the pod's memory (bytes), the
        size of a Memory emptyDir without a smaller sizeLimit. allocatable: the node's
        (for downward API limits). Raises MountError ("MountVolume.SetUp failed for
        volume ...") naming the first volume that cannot be set up."""
        out: dict[str, Volume] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol.get("name", "")
            kind = next((k for k in vol if k != "name"), "")
            if kind == "hostPath":
                raise MountError(name, "hostPath volumes are not supported on Fargate")
            if kind not in PLUGIN_DIRS:
                raise MountError(name, f"{kind or 'this'} volumes are not supported by nodeless"
                                       " (emptyDir, configMap, secret, downwardAPI, projected, "
                                       "nfs are)")
            path = self.volume_path(pod["metadata"]["uid"], kind, name)
            try:
                await getattr(self, f"_setup_{kind}")(pod, vol[kind] or {}, path,
                                                      memory_limit=memory_limit,
                                                      allocatable=allocatable or {})
            except MountError:
                raise
            except (KeyError, ValueError, RuntimeError, OSError) as e:
                raise MountError(name, str(e.args[0]) if isinstance(e, KeyError) else str(e)
                                 ) from None
            out[name] = Volume(name, kind, path, kind in READ_ONLY_KINDS)
        return out

    # emptyDir -------------------------------------------------------------------------

    async def _setup_emptyDir(self, pod: Pod, src: Mapping[str, Any], path: str, *,
                              memory_limit: int, **_: Any) -> None:
        os.makedirs(path, exist_ok=True)
        if src.get("medium") == "Memory" and not os.path.ismount(path):
            size = memory_limit
            if src.get("sizeLimit"):
                limit = int_value(src["sizeLimit"])
                if 0 < limit < size:
                    size = limit
            await self._mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", path])
        os.chmod(path, 0o777)
        group = _fs_group(pod)
        if group is not None:
            os.chown(path, -1, group)
            os.chmod(path, 0o2777)

    # configMap, secret, downwardAPI, projected ----------------------------------------

    async def _configmap_files(self, pod: Pod, src: Mapping[str, Any], default_mode: int
                               ) -> dict[str, FileProjection]:
        ns, name = pod["metadata"].get("namespace", ""), src.get("name", "")
        obj = await self.objects.get_configmap(ns, name)
        if obj is None:
            if src.get("optional"):
                return {}
            raise RuntimeError(f'configmap "{name}" not found')
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = _secret_bytes(v)
        return _items(data, src.get("items"), default_mode,
                      "configmap references non-existent config key", bool(src.get("optional")))

    async def _secret_files(self, pod: Pod, src: Mapping[str, Any], name: str,
                            default_mode: int) -> dict[str, FileProjection]:
        ns = pod["metadata"].get("namespace", "")
        obj = await self.objects.get_secret(ns, name)
        if obj is None:
            if src.get("optional"):
                return {}
            raise RuntimeError(f'secret "{name}" not found')
        data = {k: _secret_bytes(v) for k, v in (obj.get("data") or {}).items()}
        return _items(data, src.get("items"), default_mode,
                      "references non-existent secret key", bool(src.get("optional")))

    def _downward_files(self, pod: Pod, items: list[Mapping[str, Any]], default_mode: int,
                        allocatable: Mapping[str, Any]) -> dict[str, FileProjection]:
        out = {}
        for item in items:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""))
            elif "resourceFieldRef" in item:
                ref = item["resourceFieldRef"]
                container = find_container(pod, ref.get("containerName", ""))
                if container is None:
                    raise RuntimeError(f"container {ref.get('containerName', '')!r} not found")
                value = resource_value(pod, container, ref, allocatable)
            else:
                raise RuntimeError(f"downwardAPI item {item.get('path')!r} names no field")
            mode = item.get("mode")
            out[item.get("path", "")] = FileProjection(
                value.encode(), int(mode) if mode is not None else default_mode)
        return out

    async def _setup_configMap(self, pod: Pod, src: Mapping[str, Any], path: str,
                               **_: Any) -> None:
        mode = int(src.get("defaultMode", DEFAULT_MODE))
        files = await self._configmap_files(pod, src, mode)
        write_atomic(path, files, fs_group=_fs_group(pod))

    async def _setup_secret(self, pod: Pod, src: Mapping[str, Any], path: str,
                            **_: Any) -> None:
        mode = int(src.get("defaultMode", DEFAULT_MODE))
        files = await self._secret_files(pod, src, src.get("secretName", ""), mode)
        write_atomic(path, files, fs_group=_fs_group(pod))

    async def _setup_downwardAPI(self, pod: Pod, src: Mapping[str, Any], path: str, *,
                                 allocatable: Mapping[str, Any], **_: Any) -> None:
        mode = int(src.get("defaultMode", DEFAULT_MODE))
        files = self._downward_files(pod, list(src.get("items") or []), mode, allocatable)
        write_atomic(path, files, fs_group=_fs_group(pod))

    async def _setup_projected(self, pod: Pod, src: Mapping[str, Any], path: str, *,
                               allocatable: Mapping[str, Any], **_: Any) -> None:
        mode = int(src.get("defaultMode", DEFAULT_MODE))
        files: dict[str, FileProjection] = {}
        for source in src.get("sources") or []:
            if "configMap" in source:
                files.update(await self._configmap_files(pod, source["configMap"], mode))
            elif "secret" in source:
                s = source["secret"]
                files.update(await self._secret_files(pod, s, s.get("name", ""), mode))
            elif "downwardAPI" in source:
                files.update(self._downward_files(
                    pod, list(source["downwardAPI"].get("items") or []), mode, allocatable))
            elif "serviceAccountToken" in source:
                files.update(await self._token_file(pod, source["serviceAccountToken"], path,
                                                    mode))
            else:
                kind = next(iter(source), "?")
                raise RuntimeError(f"projected {kind} sources are not supported by nodeless")
        write_atomic(path, files, fs_group=_fs_group(pod))

    async def _token_file(self, pod: Pod, src: Mapping[str, Any], volume_path: str,
                          mode: int) -> dict[str, FileProjection]:
        """A bound service account token, re-requested at 80% of its lifetime (kubelet's
        rule); 0600 (then group-readable) when the pod sets fsGroup, as kubelet writes it."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        file_path = src.get("path", "token")
        key = (meta.get("uid", ""), volume_path, file_path)
        now = self.clock()
        cached = self._tokens.get(key)
        if cached is None or now >= cached[1] + 0.8 * (cached[2] - cached[1]):
            if self.tokens is None:
                raise RuntimeError("failed to fetch token: no token source (TokenRequest API) "
                                   "is configured")
            account = spec.get("serviceAccountName") or "default"
            audiences = [src["audience"]] if src.get("audience") else []
            try:
                token, expiry = await self.tokens.request_token(
                    meta.get("namespace", ""), account, audiences=audiences,
                    expiration_seconds=int(src.get("expirationSeconds") or TOKEN_EXPIRATION),
                    pod_name=meta.get("name", ""), pod_uid=meta.get("uid", ""))
            except Exception as e:  # the source's own error, shown as kubelet shows it
                raise RuntimeError(f"failed to fetch token: {e}") from None
            cached = (token, now, expiry)
            self._tokens[key] = cached
        sc = spec.get("securityContext") or {}
        uid = -1
        if sc.get("fsGroup") is not None:
            mode = 0o600
            uid = int(sc.get("runAsUser", -1))
        return {file_path: FileProjection(cached[0].encode(), mode, uid)}

    # nfs ------------------------------------------------------------------------------

    async def _setup_nfs(self, pod: Pod, src: Mapping[str, Any], path: str, **_: Any) -> None:
        os.makedirs(path, exist_ok=True)
        if os.path.ismount(path):
            return
        args = ["-t", "nfs"]
        if src.get("readOnly"):
            args += ["-o", "ro"]
        args += [f"{src.get('server', '')}:{src.get('path', '')}", path]
        await self._mount(args)

    async def _mount(self, args: list[str]) -> None:
        """Run mount(8); a failure carries kubelet's "mount failed" details."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "mount", *args, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
        except FileNotFoundError:
            raise RuntimeError("mount failed: mount(8) is not installed") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.mount_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"mount failed: timed out after {self.mount_timeout:g}s\n"
                               f"Mounting command: mount\nMounting arguments: {' '.join(args)}"
                               ) from None
        if proc.returncode != 0:
            raise RuntimeError(
                f"mount failed: exit status {proc.returncode}\nMounting command: mount\n"
                f"Mounting arguments: {' '.join(args)}\n"
                f"Output: {out.decode(errors='replace').strip()}")

    # teardown -------------------------------------------------------------------------

    async def cleanup(self, pod_uid: str) -> None:
        """Unmount everything under the pod's directory (deepest first) and remove it."""
        base = os.path.realpath(self.pod_dir(pod_uid))
        for mount_point in sorted(_mounts_under(base), key=len, reverse=True):
            proc = await asyncio.create_subprocess_exec(
                "umount", mount_point, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
            if proc.returncode != 0:
                proc = await asyncio.create_subprocess_exec("umount", "-l", mount_point)
                await proc.wait()
        shutil.rmtree(base, ignore_errors=True)
        for key in [k for k in self._tokens if k[0] == pod_uid]:
            del self._tokens[key]


def _fs_group(pod: Pod) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(value) if value is not None else None


def _mounts_under(base: str) -> list[str]:
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].replace("\\040", " ")
                if point == base or point.startswith(base + os.sep):
                    out.append(point)
    except OSError:
        pass
    return out
