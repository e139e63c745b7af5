"""Objects survive restarts; several API servers on one etcd serve and watch the same data."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from kubernetes import client, watch

from tests.fixtures.apiserver import start_apiserver
from tests.fixtures.etcd import EtcdProcess


def _cm(name: str, value: str = "0") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"v": value}}


def _snapshot(api: client.CoreV1Api) -> dict[str, tuple[str, str, dict]]:
    items = api.list_namespaced_config_map("default").items
    return {i.metadata.name: (i.metadata.uid, i.metadata.resource_version, i.data)
            for i in items}


def test_sqlite_objects_survive_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_apiserver(data_dir)
    api = client.CoreV1Api(server.client())
    for i in range(5):
        api.create_namespaced_config_map("default", _cm(f"keep-{i}", str(i)))
    api.patch_namespaced_config_map("keep-0", "default", {"data": {"v": "patched"}})
    before = _snapshot(api)
    svc = client.CoreV1Api(server.client()).create_namespaced_service("default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]}})
    server.stop()

    again = start_apiserver(data_dir, port=server.config.port)
    api = client.CoreV1Api(again.client())
    try:
        assert _snapshot(api) == before
        # The revision counter continues: new writes get higher resourceVersions.
        newer = api.create_namespaced_config_map("default", _cm("after"))
        assert int(newer.metadata.resource_version) > max(
            int(rv) for _, rv, _ in before.values())
        # Allocations survive too: a new Service never gets the old one's address.
        other = api.create_namespaced_service("default", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "t"},
            "spec": {"ports": [{"port": 80}]}})
        assert other.spec.cluster_ip != svc.spec.cluster_ip
    finally:
        again.stop()


def test_etcd_restart_and_two_apiservers(tmp_path: Path, etcd_server: EtcdProcess) -> None:
    prefix = f"/cluster-{uuid.uuid4().hex[:8]}"
    shared = {"store": "etcd", "etcd_endpoints": [etcd_server.endpoint], "etcd_prefix": prefix}
    first = start_apiserver(tmp_path / "a", **shared)
    second_dir = tmp_path / "b"
    # The second server shares the first one's PKI and tokens, as replicas do.
    import shutil
    shutil.copytree(tmp_path / "a" / "pki", second_dir / "pki")
    shutil.copy(tmp_path / "a" / "tokens.csv", second_dir / "tokens.csv")
    second = start_apiserver(second_dir, **shared)
    try:
        api_a = client.CoreV1Api(first.client())
        api_b = client.CoreV1Api(second.client())
        start_rv = api_b.list_namespaced_config_map("default").metadata.resource_version
        seen: list[tuple[str, str]] = []
        done = threading.Event()

        def watch_b() -> None:
            for event in watch.Watch().stream(api_b.list_namespaced_config_map, "default",
                                              resource_version=start_rv, timeout_seconds=20):
                seen.append((event["type"], event["object"].metadata.name))
                if len(seen) == 4:
                    done.set()
                    return

        watcher = threading.Thread(target=watch_b)
        watcher.start()
        created = api_a.create_namespaced_config_map("default", _cm("from-a"))
        api_b.create_namespaced_config_map("default", _cm("from-b"))
        api_b.patch_namespaced_config_map("from-a", "default", {"data": {"v": "by-b"}})
        api_a.delete_namespaced_config_map("from-b", "default")
        assert done.wait(20), seen
        watcher.join()
        assert seen == [("ADDED", "from-a"), ("ADDED", "from-b"), ("MODIFIED", "from-a"),
                        ("DELETED", "from-b")]
        got = api_b.read_namespaced_config_map("from-a", "default")
        assert got.metadata.uid == created.metadata.uid and got.data == {"v": "by-b"}
        # Both allocate service IPs from one pool: never the same address twice.
        ips = set()
        for i, api in enumerate([api_a, api_b] * 5):
            svc = api.create_namespaced_service("default", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"},
                "spec": {"ports": [{"port": 80}]}})
            ips.add(svc.spec.cluster_ip)
        assert len(ips) == 10
        before = _snapshot(api_a)
    finally:
        second.stop()
        first.stop()
    restarted = start_apiserver(tmp_path / "a", port=first.config.port, **shared)
    try:
        assert _snapshot(client.CoreV1Api(restarted.client())) == before
    finally:
        restarted.stop()
