"""One suite for every `Store`: the API server must not be able to tell them apart.

Each test runs against SQLite (a fresh file) and against a real etcd (the session's
server, isolated by a unique key prefix per test). A few tests at the end are about one
backend only: SQLite's single owner and slow-watcher policy, etcd's shared use by two
API servers and its recovery after etcd goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nodeless.apiserver.storage import open_store
from nodeless.apiserver.storage.etcd import EtcdStore
from nodeless.apiserver.storage.protocol import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Progress,
    Store,
    StoreUnavailableError,
    WatchEvent,
    WatchOverflowError,
)
from nodeless.apiserver.storage.sqlite import SQLiteStore
from tests.fixtures.etcd import EtcdProcess, start_etcd

pytestmark = pytest.mark.asyncio(loop_scope="session")

PODS = "/registry/pods/"
WAIT = 30.0
"""Upper bound for anything awaited; a correct store is orders of magnitude faster."""


@dataclass
class Backend:
    """Opens stores of one kind on one location, so a test can "restart" its store."""

    kind: str
    path: Path | None = None
    endpoint: str = ""
    prefix: str = ""
    opened: list[Store] = field(default_factory=list)

    async def open(self, **options: Any) -> Store:
        store: Store
        if self.kind == "sqlite":
            assert self.path is not None
            store = await SQLiteStore.open(self.path, **{"progress_interval": 1.0, **options})
        else:
            store = await EtcdStore.open([self.endpoint], prefix=self.prefix, **options)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=["sqlite", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", path=tmp_path / "state.db")
    etcd: EtcdProcess = request.getfixturevalue("etcd_server")
    return Backend("etcd", endpoint=etcd.endpoint, prefix=f"/test-{uuid.uuid4().hex}")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await backend.close_all()


async def collect(
    watch: AsyncIterator[WatchEvent | Progress], until: int, *, timeout: float = WAIT
) -> list[WatchEvent]:
    """Events from `watch` until one at revision >= `until` (Progress is skipped)."""
    events: list[WatchEvent] = []

    async def run() -> None:
        async for event in watch:
            if isinstance(event, Progress):
                continue
            events.append(event)
            if event.kv.mod_revision >= until:
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def next_event(watch: AsyncIterator[WatchEvent | Progress]) -> WatchEvent:
    """The next change (not heartbeat) from `watch`."""

    async def run() -> WatchEvent:
        while True:
            event = await anext(watch)
            if isinstance(event, WatchEvent):
                return event

    return await asyncio.wait_for(run(), WAIT)


# ---- CRUD and compare-and-swap ---------------------------------------------------------


async def test_create_then_get(store: Store) -> None:
    before = await store.current_revision()
    rev = await store.create(PODS + "default/web", b'{"a":1}')
    assert rev > before
    assert await store.current_revision() == rev
    assert await store.get(PODS + "default/web") == KeyValue(
        PODS + "default/web", b'{"a":1}', rev, rev)
    assert await store.get(PODS + "default/missing") is None


async def test_create_existing_key_raises_key_exists(store: Store) -> None:
    rev = await store.create(PODS + "default/web", b"1")
    with pytest.raises(KeyExistsError) as info:
        await store.create(PODS + "default/web", b"2")
    assert info.value.key == PODS + "default/web"
    assert await store.current_revision() == rev, "a failed create must not bump the revision"
    kv = await store.get(PODS + "default/web")
    assert kv is not None and kv.value == b"1"


async def test_update_is_compare_and_swap(store: Store) -> None:
    key = PODS + "default/web"
    created = await store.create(key, b"v1")
    updated = await store.update(key, b"v2", created)
    assert updated > created
    assert await store.get(key) == KeyValue(key, b"v2", created, updated)

    with pytest.raises(ConflictError) as info:
        await store.update(key, b"stale", created)
    assert info.value.current == KeyValue(key, b"v2", created, updated)
    assert await store.current_revision() == updated

    with pytest.raises(KeyNotFoundError):
        await store.update(PODS + "default/missing", b"x", updated)
    with pytest.raises(ValueError):  # on etcd, mod_revision == 0 would create the key
        await store.update(PODS + "default/missing", b"x", 0)
    assert await store.get(PODS + "default/missing") is None


async def test_delete_returns_last_value_at_deletion_revision(store: Store) -> None:
    key = PODS + "default/web"
    created = await store.create(key, b"v1")
    updated = await store.update(key, b"v2", created)

    with pytest.raises(ConflictError) as info:
        await store.delete(key, expected_revision=created)
    assert info.value.current is not None and info.value.current.mod_revision == updated

    deleted = await store.delete(key, expected_revision=updated)
    assert deleted.key == key and deleted.value == b"v2"
    assert deleted.create_revision == created
    assert deleted.mod_revision > updated
    assert deleted.mod_revision == await store.current_revision()
    assert await store.get(key) is None

    with pytest.raises(KeyNotFoundError):
        await store.delete(key)
    with pytest.raises(KeyNotFoundError):
        await store.update(key, b"v3", updated)

    recreated = await store.create(key, b"again")
    assert await store.get(key) == KeyValue(key, b"again", recreated, recreated)
    gone = await store.delete(key)
    assert gone.value == b"again" and gone.mod_revision > recreated


# ---- list --------------------------------------------------------------------------------


async def test_list_is_in_key_byte_order_within_the_prefix(store: Store) -> None:
    inside = [PODS + "ns1/" + name for name in ("b", "a", "a-1", "a.b", "aa", "B", "a/b", "é")]
    outside = [PODS + "ns10/a", PODS + "ns0/a", "/registry/podsx/ns1/a", "/registry/pods"]
    for key in random.sample(inside + outside, len(inside) + len(outside)):
        await store.create(key, key.encode())
    page = await store.list(PODS + "ns1/")
    assert [kv.key for kv in page.items] == sorted(inside, key=str.encode)
    assert all(kv.value == kv.key.encode() for kv in page.items)
    assert page.more is False and page.remaining == 0
    assert page.revision == await store.current_revision()
    everything = await store.list("")
    assert [kv.key for kv in everything.items] == sorted(inside + outside, key=str.encode)
    assert await store.count(PODS + "ns1/") == len(inside)
    assert await store.count(PODS) == len(inside) + 2


async def test_pages_at_one_revision_stay_consistent_while_writes_continue(
    store: Store,
) -> None:
    names = [f"{PODS}default/pod-{i:03d}" for i in range(30)]
    for key in random.sample(names, len(names)):
        await store.create(key, b"original")
    snapshot = {kv.key: kv for kv in (await store.list(PODS)).items}

    seen: list[KeyValue] = []
    page = await store.list(PODS, limit=7)
    revision = page.revision
    assert revision == await store.current_revision()
    pages = 1
    while True:
        seen.extend(page.items)
        assert page.revision == revision
        if not page.more:
            assert page.remaining == 0
            break
        assert len(page.items) == 7
        assert page.remaining == len(names) - len(seen)
        # Writers keep going between pages: a new key in between, an update of a key
        # already listed, a delete of one not listed yet.
        last = page.items[-1].key
        await store.create(last + "-new", b"new")
        listed = await store.get(names[0])
        assert listed is not None
        await store.update(names[0], b"changed", listed.mod_revision)
        await store.delete(names[len(seen) + 1])
        page = await store.list(PODS, revision=revision, start_key=last + "\x00", limit=7)
        pages += 1

    assert pages == 5
    assert [kv.key for kv in seen] == sorted(names)
    assert {kv.key: kv for kv in seen} == snapshot
    now = {kv.key: kv.value for kv in (await store.list(PODS)).items}
    assert now[names[0]] == b"changed" and names[8] not in now and len(now) == len(names)


async def test_list_at_an_old_revision_shows_the_past(store: Store) -> None:
    a = await store.create(PODS + "ns/a", b"a1")
    await store.create(PODS + "ns/b", b"b1")
    past = await store.current_revision()
    await store.update(PODS + "ns/a", b"a2", a)
    await store.delete(PODS + "ns/b")
    c = await store.create(PODS + "ns/c", b"c1")

    then = await store.list(PODS, revision=past)
    assert then.revision == past
    assert [(kv.key, kv.value) for kv in then.items] == [
        (PODS + "ns/a", b"a1"), (PODS + "ns/b", b"b1")]
    now = await store.list(PODS)
    assert now.revision == c
    assert [(kv.key, kv.value) for kv in now.items] == [
        (PODS + "ns/a", b"a2"), (PODS + "ns/c", b"c1")]


async def test_list_at_a_future_revision_raises(store: Store) -> None:
    await store.create(PODS + "ns/a", b"a")
    current = await store.current_revision()
    with pytest.raises(FutureRevisionError) as info:
        await store.list(PODS, revision=current + 1000)
    assert info.value.requested == current + 1000
    assert info.value.current == current


# ---- watch -------------------------------------------------------------------------------


async def test_watch_replays_from_a_revision_then_follows(store: Store) -> None:
    a = await store.create(PODS + "ns/a", b"a1")
    start = await store.current_revision()
    a2 = await store.update(PODS + "ns/a", b"a2", a)
    b = await store.create(PODS + "ns/b", b"b1")
    await store.create("/registry/services/ns/s", b"not a pod")
    watch = store.watch(PODS, start)
    try:
        replayed = await collect(watch, b)
        assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in replayed] == [
            ("update", PODS + "ns/a", b"a2", a2), ("create", PODS + "ns/b", b"b1", b)]
        assert replayed[0].prev_kv == KeyValue(PODS + "ns/a", b"a1", a, a)
        assert replayed[1].prev_kv is None
        live = await store.update(PODS + "ns/b", b"b2", b)
        event = await next_event(watch)
        assert (event.type, event.kv.value, event.kv.mod_revision) == ("update", b"b2", live)
        assert event.kv.create_revision == b
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_delete_event_carries_last_value_and_deletion_revision(store: Store) -> None:
    key = PODS + "ns/a"
    start = await store.current_revision()
    created = await store.create(key, b"v1")
    updated = await store.update(key, b"v2", created)
    deleted = await store.delete(key)
    watch = store.watch(PODS, start)
    try:
        events = await collect(watch, deleted.mod_revision)
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    assert [e.type for e in events] == ["create", "update", "delete"]
    gone = events[2]
    assert gone.kv == KeyValue(key, b"v2", created, deleted.mod_revision)
    assert gone.prev_kv == KeyValue(key, b"v2", created, updated)
    assert events[1].prev_kv == KeyValue(key, b"v1", created, created)


async def test_watch_misses_and_repeats_nothing_under_concurrent_writes(store: Store) -> None:
    """1,000 writes by 9 writers while three watches start at different points.

    `early` and `late` start from the current revision once 100 and 500 writes are
    done; `replay` starts at 750 writes from before the first one and reads slowly, so
    its replay of the log (more than one SQLite page) and the live writes overlap.
    """
    writes: list[tuple[int, str, str]] = []  # (revision, type, key) as the writers saw them
    warmed_up = asyncio.Event()
    halfway = asyncio.Event()
    three_quarters = asyncio.Event()
    total = 8 * 120 + 40

    async def wrote(rev: int, kind: str, key: str) -> None:
        writes.append((rev, kind, key))
        if len(writes) >= 100:
            warmed_up.set()
        if len(writes) >= total // 2:
            halfway.set()
        if len(writes) >= total * 3 // 4:
            three_quarters.set()
        # SQLite writes complete without suspending; yield so the watches interleave.
        await asyncio.sleep(0)

    async def pod_writer(worker: int) -> None:
        for i in range(40):
            key = f"{PODS}ns/w{worker}-{i}"
            await wrote(await store.create(key, b"0"), "create", key)
            current = await store.get(key)
            assert current is not None
            await wrote(await store.update(key, b"1", current.mod_revision), "update", key)
            await wrote((await store.delete(key)).mod_revision, "delete", key)

    async def other_writer() -> None:
        for i in range(40):
            await wrote(await store.create(f"/registry/services/ns/s{i}", b"x"), "other", "")

    async def read_slowly(watch: AsyncIterator[WatchEvent | Progress]) -> list[WatchEvent]:
        seen: list[WatchEvent] = []
        async for event in watch:
            if isinstance(event, WatchEvent):
                seen.append(event)
                if event.kv.key == sentinel:
                    break
            await asyncio.sleep(0)
        return seen

    sentinel = PODS + "zz/sentinel"
    begin = await store.current_revision()
    writers = asyncio.gather(*(pod_writer(w) for w in range(8)), other_writer())
    watches: dict[str, AsyncIterator[WatchEvent | Progress]] = {}
    tasks: list[asyncio.Future[Any]] = []
    try:
        await asyncio.wait_for(warmed_up.wait(), WAIT)
        early = await store.current_revision()
        watches["early"] = store.watch(PODS, early)
        tasks.append(asyncio.ensure_future(next_event(watches["early"])))
        await asyncio.wait_for(halfway.wait(), WAIT)
        late = await store.current_revision()
        watches["late"] = store.watch(PODS, late)
        tasks.append(asyncio.ensure_future(next_event(watches["late"])))
        await asyncio.wait_for(three_quarters.wait(), WAIT)
        watches["replay"] = store.watch(PODS, begin)
        tasks.append(asyncio.ensure_future(read_slowly(watches["replay"])))
        await asyncio.wait_for(writers, WAIT)
        # A last write after all others: a watch that repeats anything repeats it before.
        last = await store.create(sentinel, b"end")
        writes.append((last, "create", sentinel))
        seen: dict[str, list[WatchEvent]] = {}
        for name, task in zip(("early", "late"), tasks, strict=False):
            first = await asyncio.wait_for(task, WAIT)
            seen[name] = [first, *await collect(watches[name], last)]
        seen["replay"] = await asyncio.wait_for(tasks[2], WAIT)
        # Nothing may follow the sentinel but the next write: no late repeats either.
        end = await store.create(PODS + "zz/end", b"")
        for watch in watches.values():
            assert (await next_event(watch)).kv.mod_revision == end
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watch in watches.values():
            await watch.aclose()  # type: ignore[attr-defined]

    assert len({rev for rev, _, _ in writes}) == len(writes) == total + 1, "unique revisions"
    pods = sorted((rev, kind, key) for rev, kind, key in writes if kind != "other")
    for name, start in (("early", early), ("late", late), ("replay", begin)):
        expected = [w for w in pods if w[0] > start]
        got = [(e.kv.mod_revision, e.type, e.kv.key) for e in seen[name]]
        assert got == expected, f"watch {name} from {start} lost or repeated events"
    by_key: dict[str, list[WatchEvent]] = {}
    for event in seen["replay"][:-1]:
        by_key.setdefault(event.kv.key, []).append(event)
    assert len(by_key) == 8 * 40
    for history in by_key.values():
        assert [e.type for e in history] == ["create", "update", "delete"]
        for before, after in itertools.pairwise(history):
            assert after.prev_kv is not None
            assert after.prev_kv.mod_revision == before.kv.mod_revision
            assert after.kv.create_revision == history[0].kv.mod_revision


async def test_watch_from_a_future_revision_starts_after_it(store: Store) -> None:
    now = await store.current_revision()
    watch = store.watch(PODS, now + 3)
    try:
        pending = asyncio.ensure_future(next_event(watch))
        revs = []
        for i in range(5):
            revs.append(await store.create(f"{PODS}ns/p{i}", b"x"))
            await asyncio.sleep(0)  # let the watch run between writes: it sees them live
        event = await asyncio.wait_for(pending, WAIT)
        assert revs[2] == now + 3
        assert event.kv.mod_revision == revs[3]
        assert (await next_event(watch)).kv.mod_revision == revs[4]
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_quiet_watch_sends_progress(store: Store) -> None:
    rev = await store.create(PODS + "ns/a", b"a")
    watch = store.watch(PODS, rev)

    async def first_progress() -> Progress:
        async for event in watch:
            if isinstance(event, Progress):
                return event
            raise AssertionError(f"unexpected event {event}")
        raise AssertionError("watch ended")

    try:
        progress = await asyncio.wait_for(first_progress(), WAIT)
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    assert progress.revision >= rev


# ---- compaction, restart, close ---------------------------------------------------------


async def test_compaction_forgets_the_past_but_not_the_present(store: Store) -> None:
    key = PODS + "ns/a"
    r1 = await store.create(key, b"v1")
    r2 = await store.update(key, b"v2", r1)
    await store.create(PODS + "ns/gone", b"x")
    r4 = (await store.delete(PODS + "ns/gone")).mod_revision
    r5 = await store.update(key, b"v3", r2)
    r6 = await store.create(PODS + "ns/b", b"b")
    compact_at = r5

    await store.compact(compact_at)
    with pytest.raises(CompactedError) as info:
        await store.list(PODS, revision=compact_at - 1)
    assert info.value.requested == compact_at - 1
    assert info.value.compacted >= compact_at
    at = await store.list(PODS, revision=compact_at)
    assert [(kv.key, kv.value) for kv in at.items] == [(key, b"v3")]
    assert [(kv.key, kv.value) for kv in (await store.list(PODS)).items] == [
        (key, b"v3"), (PODS + "ns/b", b"b")]
    assert await store.get(key) == KeyValue(key, b"v3", r1, r5)

    old = store.watch(PODS, r4 - 1)
    with pytest.raises(CompactedError):
        await asyncio.wait_for(anext(old), WAIT)
    await old.aclose()  # type: ignore[attr-defined]

    recent = store.watch(PODS, compact_at)
    try:
        assert (await next_event(recent)).kv.mod_revision == r6
        r7 = await store.delete(PODS + "ns/b")
        assert (await next_event(recent)).kv.mod_revision == r7.mod_revision
    finally:
        await recent.aclose()  # type: ignore[attr-defined]

    await store.compact(r2)  # at or below the compacted revision: nothing to do
    with pytest.raises(FutureRevisionError):
        await store.compact(await store.current_revision() + 100)


async def test_state_survives_a_restart(backend: Backend, store: Store) -> None:
    a = await store.create(PODS + "ns/a", b"a1")
    a2 = await store.update(PODS + "ns/a", b"a2", a)
    b = await store.create(PODS + "ns/b", b"b")
    gone = await store.delete(PODS + "ns/b")
    c = await store.create(PODS + "ns/c", b"c")
    await store.compact(a2)
    before = await store.list(PODS)
    revision = await store.current_revision()
    await store.close()

    reopened = await backend.open()
    assert await reopened.current_revision() == revision
    assert await reopened.list(PODS) == before
    assert await reopened.get(PODS + "ns/a") == KeyValue(PODS + "ns/a", b"a2", a, a2)
    with pytest.raises(CompactedError):
        await reopened.list(PODS, revision=a2 - 1)
    watch = reopened.watch(PODS, a2)
    try:
        events = await collect(watch, c)
        assert [(e.type, e.kv.mod_revision) for e in events] == [
            ("create", b), ("delete", gone.mod_revision), ("create", c)]
        nxt = await reopened.create(PODS + "ns/d", b"d")
        assert nxt > revision
        assert (await next_event(watch)).kv.mod_revision == nxt
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_closing_the_store_ends_watches(store: Store) -> None:
    rev = await store.create(PODS + "ns/a", b"a")
    watch = store.watch(PODS, rev - 1)
    assert (await next_event(watch)).kv.mod_revision == rev
    pending = asyncio.ensure_future(next_event(watch))
    await asyncio.sleep(0)  # let the watch block on its next event
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(pending, WAIT)
    with pytest.raises(StoreUnavailableError):
        await store.get(PODS + "ns/a")


async def test_open_store_by_name(tmp_path: Path, etcd_server: EtcdProcess) -> None:
    sqlite = await open_store("sqlite", data_dir=tmp_path / "data")
    try:
        assert isinstance(sqlite, SQLiteStore) and isinstance(sqlite, Store)
        assert (tmp_path / "data" / "state.db").exists()
    finally:
        await sqlite.close()
    etcd = await open_store("etcd", data_dir=tmp_path, etcd_endpoints=[etcd_server.endpoint],
                            etcd_prefix=f"/test-{uuid.uuid4().hex}")
    try:
        assert isinstance(etcd, EtcdStore) and isinstance(etcd, Store)
        assert await etcd.count("") == 0
    finally:
        await etcd.close()
    with pytest.raises(ValueError):
        await open_store("postgres", data_dir=tmp_path)


# ---- SQLite only ---------------------------------------------------------------------------


async def test_sqlite_file_has_one_owner(tmp_path: Path) -> None:
    first = await SQLiteStore.open(tmp_path / "state.db")
    try:
        with pytest.raises(StoreUnavailableError):
            await SQLiteStore.open(tmp_path / "state.db")
    finally:
        await first.close()
    again = await SQLiteStore.open(tmp_path / "state.db")
    await again.close()


async def test_sqlite_compaction_deletes_superseded_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SQLiteStore.open(path)
    rev = await store.create(PODS + "ns/a", b"0")
    for i in range(100):
        rev = await store.update(PODS + "ns/a", str(i).encode(), rev)
    await store.create(PODS + "ns/b", b"b")
    await store.delete(PODS + "ns/b")
    keep = await store.create(PODS + "ns/c", b"c")
    await store.compact(keep)
    gone = await store.delete(PODS + "ns/c")
    await store.compact(gone.mod_revision)  # the newest row is now a tombstone
    await store.close()

    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT id, name, deleted FROM kine ORDER BY id").fetchall()
    assert rows == [(rev, PODS + "ns/a", 0), (keep, PODS + "ns/c", 0),
                    (gone.mod_revision, PODS + "ns/c", 1)]
    reopened = await SQLiteStore.open(path)
    try:
        assert await reopened.current_revision() == gone.mod_revision
        assert await reopened.create(PODS + "ns/d", b"d") == gone.mod_revision + 1
    finally:
        await reopened.close()


async def test_sqlite_slow_watcher_is_ended_without_blocking_writers(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "state.db", watch_queue_size=10)
    slow = store.watch(PODS, 0)
    fast = store.watch(PODS, 0)
    try:
        pending = asyncio.ensure_future(next_event(slow))
        first = await store.create(PODS + "ns/0", b"x")
        assert (await asyncio.wait_for(pending, WAIT)).kv.mod_revision == first
        # `slow` is now live and never read again; writers must not wait for it.
        revs = [await store.create(f"{PODS}ns/{i}", b"x") for i in range(1, 50)]
        seen = await collect(fast, revs[-1])
        assert [e.kv.mod_revision for e in seen] == [first, *revs]
        with pytest.raises(WatchOverflowError) as info:
            await next_event(slow)
        assert isinstance(info.value, CompactedError), "the API server answers it with 410"
        assert info.value.requested == first
    finally:
        await slow.aclose()  # type: ignore[attr-defined]
        await fast.aclose()  # type: ignore[attr-defined]
        await store.close()


# ---- etcd only ---------------------------------------------------------------------------


async def test_two_etcd_clients_see_each_others_writes(etcd_server: EtcdProcess) -> None:
    prefix = f"/test-{uuid.uuid4().hex}"
    one = await EtcdStore.open([etcd_server.endpoint], prefix=prefix)
    two = await EtcdStore.open([etcd_server.endpoint], prefix=prefix)
    start = await one.current_revision()
    watches = [one.watch(PODS, start), two.watch(PODS, start)]
    try:
        revs = []
        for i in range(20):
            writer = one if i % 2 else two
            revs.append(await writer.create(f"{PODS}ns/p{i}", str(i).encode()))
        kv = await two.get(f"{PODS}ns/p1")
        assert kv is not None and kv.mod_revision == revs[1]
        revs.append(await one.update(f"{PODS}ns/p1", b"by one", revs[1]))
        with pytest.raises(ConflictError):
            await two.update(f"{PODS}ns/p1", b"by two", revs[1])
        for watch in watches:
            events = await collect(watch, revs[-1])
            assert [e.kv.mod_revision for e in events] == revs
    finally:
        for watch in watches:
            await watch.aclose()  # type: ignore[attr-defined]
        await one.close()
        await two.close()


async def test_etcd_going_away_is_reported_and_survived(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path / "etcd")
    store = await EtcdStore.open([etcd.endpoint], timeout=2.0, reconnect_timeout=60.0)
    watch = store.watch(PODS, 0)
    try:
        first = await store.create(PODS + "ns/a", b"a")
        assert (await next_event(watch)).kv.mod_revision == first
        pending = asyncio.ensure_future(next_event(watch))

        etcd.stop()
        with pytest.raises(StoreUnavailableError):
            await store.get(PODS + "ns/a")
        with pytest.raises(StoreUnavailableError):
            await store.create(PODS + "ns/b", b"b")

        etcd = etcd.restart()
        second = None
        for _ in range(100):  # the channel reconnects with a backoff of up to 2 s
            with contextlib.suppress(StoreUnavailableError):
                second = await store.create(PODS + "ns/b", b"b")
                break
            await asyncio.sleep(0.1)
        assert second is not None, "the store did not reconnect"
        event = await asyncio.wait_for(pending, WAIT)  # the watch resumed by itself
        assert (event.kv.key, event.kv.mod_revision) == (PODS + "ns/b", second)
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
        await store.close()
        etcd.stop()
