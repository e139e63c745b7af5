"""Volumes on disk as kubelet lays them out: contents, modes, atomic updates, mounts."""

from __future__ import annotations

import base64
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nodeless.agent.pods.errors import MountError
from nodeless.agent.pods.volumes import FileProjection, PodVolumes, write_atomic

MIB = 2**20



@dataclass
class Objects:
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get((namespace, name))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get((namespace, name))


@dataclass
class Tokens:
    """A token source standing in for the TokenRequest API: counts requests."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    async def request_token(self, namespace: str, service_account: str, **kw: Any
                            ) -> tuple[str, float]:
        if self.error:
            raise RuntimeError(self.error)
        self.requests.append({"namespace": namespace, "account": service_account, **kw})
        return f"token-{len(self.requests)}", time.time() + kw["expiration_seconds"]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def make_pod(volumes: list[dict[str, Any]], **sc: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web"}},
            "spec": {"serviceAccountName": "builder", "securityContext": sc,
                     "containers": [{"name": "app", "resources": {"limits": {"cpu": "500m"}}}],
                     "volumes": volumes}}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def objects() -> Objects:
    return Objects(
        configmaps={("shop", "cfg"): {"data": {"app.conf": "debug=1", "extra": "x"},
                                      "binaryData": {"blob": b64("\x00\x01")}}},
        secrets={("shop", "creds"): {"data": {"password": b64("s3cret"), "user": b64("me")}}})


async def test_config_map_secret_and_atomic_updates(tmp_path: Path, objects: Objects) -> None:
    vols = PodVolumes(str(tmp_path), objects)
    p = make_pod([{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o644}},
                  {"name": "picked", "configMap": {"name": "cfg", "items": [
                      {"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}]}},
                  {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    got = await vols.setup(p, memory_limit=512 * MIB)
    cfg = Path(got["cfg"].path)
    assert cfg == tmp_path / "u-1" / "volumes" / "kubernetes.io~configmap" / "cfg"
    assert got["cfg"].read_only and got["creds"].read_only
    assert (cfg / "app.conf").read_text() == "debug=1"
    assert (cfg / "blob").read_bytes() == b"\x00\x01"
    assert os.readlink(cfg / "app.conf") == "..data/app.conf"
    ts_dir = os.readlink(cfg / "..data")
    assert re.fullmatch(r"\.\.\d{4}(_\d\d){5}\.\d+", ts_dir) and (cfg / ts_dir).is_dir()
    assert mode(cfg / "app.conf") == 0o644
    picked = Path(got["picked"].path)
    assert set(os.listdir(picked)) == {"..data", ts_for(picked), "conf"}
    assert (picked / "conf" / "app.conf").read_text() == "debug=1"
    assert mode(picked / "conf" / "app.conf") == 0o600
    creds = Path(got["creds"].path)
    assert (creds / "password").read_text() == "s3cret"
    assert mode(creds / "password") == 0o400

    # Unchanged data: nothing rewritten. Changed data: a new directory, swapped at once.
    await vols.setup(p, memory_limit=512 * MIB)
    assert os.readlink(cfg / "..data") == ts_dir
    objects.configmaps[("shop", "cfg")] = {"data": {"app.conf": "debug=0"}}
    await vols.setup(p, memory_limit=512 * MIB)
    assert os.readlink(cfg / "..data") != ts_dir
    assert not (cfg / ts_dir).exists()
    assert (cfg / "app.conf").read_text() == "debug=0"
    assert not os.path.lexists(cfg / "extra")      # a key gone is gone from the volume


def ts_for(path: Path) -> str:
    return os.readlink(path / "..data")


async def test_secret_files_default_to_0644(tmp_path: Path, objects: Objects) -> None:
    # The API server defaults defaultMode to 420 (0644); without it the same applies.
    vols = PodVolumes(str(tmp_path), objects)
    got = await vols.setup(make_pod([{"name": "s", "secret": {"secretName": "creds"}}]),
                           memory_limit=MIB)
    assert mode(Path(got["s"].path) / "user") == 0o644


async def test_fs_group_makes_files_group_readable(tmp_path: Path, objects: Objects) -> None:
    vols = PodVolumes(str(tmp_path), objects)
    p = make_pod([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                  {"name": "scratch", "emptyDir": {}}], fsGroup=2000)
    got = await vols.setup(p, memory_limit=MIB)
    f = Path(got["s"].path) / "password"
    assert os.stat(f).st_gid == 2000 and mode(f) == 0o440
    scratch = Path(got["scratch"].path)
    assert os.stat(scratch).st_gid == 2000 and mode(scratch) == 0o2777


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "v", "configMap": {"name": "nope"}},
     'MountVolume.SetUp failed for volume "v" : configmap "nope" not found'),
    ({"name": "v", "secret": {"secretName": "nope"}},
     'MountVolume.SetUp failed for volume "v" : secret "nope" not found'),
    ({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k"}]}},
     'MountVolume.SetUp failed for volume "v" : configmap references non-existent config '
     "key: k"),
    ({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}},
     'MountVolume.SetUp failed for volume "v" : references non-existent secret key: k'),
    ({"name": "v", "hostPath": {"path": "/etc"}},
     'MountVolume.SetUp failed for volume "v" : hostPath volumes are not supported on '
     "Fargate"),
    ({"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1"}},
     'MountVolume.SetUp failed for volume "v" : awsElasticBlockStore volumes are not '
     "supported by nodeless"),
])
async def test_failed_mounts(tmp_path: Path, objects: Objects, volume: dict[str, Any],
                             message: str) -> None:
    with pytest.raises(MountError) as err:
        await PodVolumes(str(tmp_path), objects).setup(make_pod([volume]), memory_limit=MIB)
    assert str(err.value).startswith(message)
    assert err.value.reason == "FailedMount"


async def test_optional_sources_give_empty_volumes(tmp_path: Path, objects: Objects) -> None:
    got = await PodVolumes(str(tmp_path), objects).setup(make_pod([
        {"name": "a", "configMap": {"name": "nope", "optional": True}},
        {"name": "b", "secret": {"secretName": "nope", "optional": True}},
        {"name": "c", "configMap": {"name": "cfg", "optional": True, "items": [
            {"key": "absent", "path": "absent"}, {"key": "extra", "path": "extra"}]}}]),
        memory_limit=MIB)
    assert [n for n in os.listdir(got["a"].path) if not n.startswith("..")] == []
    assert [n for n in os.listdir(got["c"].path) if not n.startswith("..")] == ["extra"]


async def test_downward_api(tmp_path: Path, objects: Objects) -> None:
    p = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu",
                                             "divisor": "1m"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                             "resource": "limits.memory"}}]}}])
    got = await PodVolumes(str(tmp_path), objects).setup(
        p, memory_limit=MIB, allocatable={"cpu": "1", "memory": "2Gi"})
    d = Path(got["info"].path)
    assert (d / "labels").read_text() == 'app="web"'
    assert (d / "name").read_text() == "web" and mode(d / "name") == 0o600
    assert (d / "cpu").read_text() == "500"
    assert (d / "mem").read_text() == str(2 * 2**30)      # no limit: the node's allocatable
    # Labels change: the file follows on the next setup.
    p["metadata"]["labels"]["tier"] = "front"
    await PodVolumes(str(tmp_path), objects).setup(p, memory_limit=MIB,
                                                   allocatable={"cpu": "1", "memory": "2Gi"})
    assert (d / "labels").read_text() == 'app="web"\ntier="front"'


def projected_api_access() -> dict[str, Any]:
    """The volume kube-apiserver's ServiceAccount admission adds to every pod."""
    return {"name": "kube-api-access", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}


async def test_projected_service_account_token(tmp_path: Path, objects: Objects) -> None:
    tokens = Tokens()
    now = [time.time()]
    vols = PodVolumes(str(tmp_path), objects, tokens, clock=lambda: now[0])
    got = await vols.setup(make_pod([projected_api_access()]), memory_limit=MIB)
    d = Path(got["kube-api-access"].path)
    assert d.parent.name == "kubernetes.io~projected"
    assert (d / "token").read_text() == "token-1"
    assert (d / "ca.crt").read_text() == "debug=1"
    assert (d / "namespace").read_text() == "shop"
    assert tokens.requests == [{"namespace": "shop", "account": "builder", "audiences": [],
                                "expiration_seconds": 3607, "pod_name": "web",
                                "pod_uid": "u-1"}]
    await vols.setup(make_pod([projected_api_access()]), memory_limit=MIB)
    assert len(tokens.requests) == 1            # still fresh: not requested again
    now[0] += 0.81 * 3607                       # past 80% of its life: refreshed
    await vols.setup(make_pod([projected_api_access()]), memory_limit=MIB)
    assert (d / "token").read_text() == "token-2"


async def test_token_with_fs_group_is_owner_only_then_group_readable(
        tmp_path: Path, objects: Objects) -> None:
    vols = PodVolumes(str(tmp_path), objects, Tokens())
    got = await vols.setup(make_pod([projected_api_access()], fsGroup=2000, runAsUser=1000),
                           memory_limit=MIB)
    token = Path(got["kube-api-access"].path) / "token"
    assert mode(token) == 0o640
    assert (os.stat(token).st_uid, os.stat(token).st_gid) == (1000, 2000)


async def test_token_errors_are_clear(tmp_path: Path, objects: Objects) -> None:
    with pytest.raises(MountError, match='failed to fetch token: serviceaccounts "builder" '
                                         "not found"):
        await PodVolumes(str(tmp_path), objects,
                         Tokens(error='serviceaccounts "builder" not found')).setup(
            make_pod([projected_api_access()]), memory_limit=MIB)
    with pytest.raises(MountError, match="failed to fetch token: no token source"):
        await PodVolumes(str(tmp_path), objects).setup(make_pod([projected_api_access()]),
                                                       memory_limit=MIB)


async def test_empty_dirs_and_memory_medium(tmp_path: Path, objects: Objects) -> None:
    vols = PodVolumes(str(tmp_path), objects)
    p = make_pod([{"name": "scratch", "emptyDir": {}},
                  {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                  {"name": "ram-all", "emptyDir": {"medium": "Memory"}}])
    got = await vols.setup(p, memory_limit=64 * MIB)
    try:
        scratch = Path(got["scratch"].path)
        assert scratch.parent.name == "kubernetes.io~empty-dir" and mode(scratch) == 0o777
        ram, ram_all = got["ram"].path, got["ram-all"].path
        assert os.path.ismount(ram) and os.path.ismount(ram_all)
        assert os.statvfs(ram).f_blocks * os.statvfs(ram).f_frsize == 16 * MIB
        assert os.statvfs(ram_all).f_blocks * os.statvfs(ram_all).f_frsize == 64 * MIB
        assert mode(Path(ram)) == 0o777
        await vols.setup(p, memory_limit=64 * MIB)            # idempotent: not mounted twice
        with open("/proc/self/mountinfo") as f:
            assert sum(1 for line in f if line.split()[4] == ram) == 1
    finally:
        await vols.cleanup("u-1")
    assert not os.path.ismount(ram) and not (tmp_path / "u-1").exists()


async def test_nfs_mount_failure_is_a_clear_failed_mount(tmp_path: Path,
                                                         objects: Objects) -> None:
    vols = PodVolumes(str(tmp_path), objects, mount_timeout=20)
    p = make_pod([{"name": "shared", "nfs": {"server": "127.0.0.1", "path": "/exports"}}])
    with pytest.raises(MountError) as err:
        await vols.setup(p, memory_limit=MIB)
    text = str(err.value)
    assert text.startswith('MountVolume.SetUp failed for volume "shared" : mount failed: ')
    assert "Mounting arguments: -t nfs 127.0.0.1:/exports " in text
    await vols.cleanup("u-1")


def test_atomic_writer_rejects_escaping_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        write_atomic(str(tmp_path), {"../x": FileProjection(b"", 0o644)})


async def test_api_token_source_against_the_api_server(apiserver: Any) -> None:
    """The real API server: a token when it serves TokenRequest, else an error saying so
    (the embedded server does not serve serviceaccounts/token yet)."""
    from nodeless.agent.pods.volumes import ApiTokenSource
    from nodeless.kube import async_client

    client = async_client(apiserver.kubeconfig)
    try:
        source = ApiTokenSource(client)
        try:
            token, expiry = await source.request_token(
                "default", "default", audiences=[], expiration_seconds=3600, pod_name="p",
                pod_uid="u")
        except RuntimeError as e:
            assert str(e) == ("the API server does not serve serviceaccounts/token "
                              "(TokenRequest), needed for projected service account tokens")
        else:
            assert token and expiry > time.time()
    finally:
        await client.close()
