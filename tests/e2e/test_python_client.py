"""The official `kubernetes` Python client: watch resume, conflicts, 410, pagination."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.fixtures.apiserver import RunningAPIServer, start_apiserver


def _cm(name: str, value: str = "0") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"v": value}}


def test_watch_resume_loses_and_duplicates_nothing(apiserver: RunningAPIServer,
                                                   namespace: str) -> None:
    """1,000 writes while a watcher disconnects every ~100 events and resumes from the
    last resourceVersion it saw: it must see every write exactly once, in order."""
    api = client.CoreV1Api(apiserver.client())
    start_rv = api.list_namespaced_config_map(namespace).metadata.resource_version
    total = 1000
    writes_done = threading.Event()

    def writer() -> None:
        writer_api = client.CoreV1Api(apiserver.client())
        for i in range(total):
            name = f"cm-{i % 50}"
            if i < 50:
                writer_api.create_namespaced_config_map(namespace, _cm(name, str(i)))
            else:
                writer_api.patch_namespaced_config_map(name, namespace, {"data": {"v": str(i)}})
        writes_done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[tuple[str, str, str]] = []
    rv = start_rv
    deadline = time.time() + 120
    while len(seen) < total and time.time() < deadline:
        w = watch.Watch()
        got = 0
        for event in w.stream(api.list_namespaced_config_map, namespace, resource_version=rv,
                              timeout_seconds=10, allow_watch_bookmarks=True):
            obj = event["object"]
            rv = obj.metadata.resource_version
            if event["type"] == "BOOKMARK":
                continue
            seen.append((event["type"], obj.metadata.name, obj.data["v"]))
            got += 1
            if got >= 100:
                w.stop()  # disconnect; resume from rv
                break
    thread.join()
    assert writes_done.is_set()
    assert len(seen) == total
    assert [int(v) for _, _, v in seen] == list(range(total))
    assert [t for t, _, _ in seen[:50]] == ["ADDED"] * 50
    assert {t for t, _, _ in seen[50:]} == {"MODIFIED"}


def test_stale_update_conflicts(apiserver: RunningAPIServer, namespace: str) -> None:
    api = client.CoreV1Api(apiserver.client())
    created = api.create_namespaced_config_map(namespace, _cm("stale"))
    api.patch_namespaced_config_map("stale", namespace, {"data": {"v": "1"}})
    created.data = {"v": "2"}
    with pytest.raises(ApiException) as info:
        api.replace_namespaced_config_map("stale", namespace, created)
    assert info.value.status == 409
    assert "the object has been modified" in info.value.body
    assert api.read_namespaced_config_map("stale", namespace).data == {"v": "1"}


def test_pagination_with_limit_and_continue(apiserver: RunningAPIServer, namespace: str
                                            ) -> None:
    api = client.CoreV1Api(apiserver.client())
    for i in range(23):
        api.create_namespaced_config_map(namespace, _cm(f"page-{i:02d}"))
    names: list[str] = []
    token = None
    pages = 0
    first_rv = None
    while True:
        page = api.list_namespaced_config_map(namespace, limit=5, _continue=token)
        pages += 1
        first_rv = first_rv or page.metadata.resource_version
        assert page.metadata.resource_version == first_rv  # one consistent snapshot
        names += [i.metadata.name for i in page.items]
        if pages == 1:
            # Changes after the first page do not show in later pages of the same list.
            api.create_namespaced_config_map(namespace, _cm("page-99"))
            assert page.metadata.remaining_item_count == 18
        token = page.metadata._continue
        if not token:
            break
    assert pages == 5
    assert names == [f"page-{i:02d}" for i in range(23)]


@pytest.fixture
def compacting_server(tmp_path: Path) -> Iterator[RunningAPIServer]:
    server = start_apiserver(tmp_path / "compacting", compaction_interval=0.5)
    yield server
    server.stop()


def test_watch_from_compacted_revision_is_gone(compacting_server: RunningAPIServer) -> None:
    api = client.CoreV1Api(compacting_server.client())
    old_rv = api.create_namespaced_config_map("default", _cm("old")).metadata.resource_version
    for i in range(5):
        api.patch_namespaced_config_map("old", "default", {"data": {"v": str(i)}})
    time.sleep(2)  # two compaction intervals: old_rv is now history
    with pytest.raises(ApiException) as info:
        for _ in watch.Watch().stream(api.list_namespaced_config_map, "default",
                                      resource_version=old_rv, timeout_seconds=5):
            pass
    assert info.value.status == 410
    with pytest.raises(ApiException) as listed:
        api.list_namespaced_config_map("default", resource_version=old_rv,
                                       resource_version_match="Exact")
    assert listed.value.status == 410
