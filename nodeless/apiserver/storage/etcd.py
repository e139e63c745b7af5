"""The replicated store: etcd v3 itself, through aetcd's connection and gRPC stubs.

etcd already has the semantics the protocol is shaped after, so this module is mostly
translation: keys get an optional prefix (several clusters can share one etcd), writes
are single transactions whose compare is the precondition (create: create_revision == 0;
update and conditional delete: mod_revision == expected), and watches are etcd watches
from `revision + 1` with prev_kv.

aetcd 1.0 is used for what it does well (the channel, auth metadata, the generated
stubs), but not for its high-level calls: its range has no revision/limit/count (the
request builder leaves them TODO), its multiplexed Watcher drops progress notifications
and header revisions, and a watch whose start was compacted can only be seen as an
exception from a callback. So reads, txns and watches are built from `aetcd.rpc`
messages here, one gRPC stream per watch. etcd itself never lets a slow watcher block
writers (it parks it as a "victim" and catches it up later), and an unread stream only
fills its own HTTP/2 window, so no client-side overflow policy is needed.

Availability: gRPC reconnects by itself (with short backoff set here). An RPC that fails
because etcd is unreachable raises StoreUnavailableError and moves on to the next
endpoint; reads are retried once on it, writes never (a create that timed out may have
been applied). A watch resumes on its own from its last revision for up to
`reconnect_timeout`, then raises StoreUnavailableError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import rpc

from nodeless.apiserver.storage.protocol import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Progress,
    StorageError,
    StoreUnavailableError,
    WatchEvent,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

_CHANNEL_OPTIONS: dict[str, Any] = {
    # Lists of many objects exceed gRPC's 4 MiB default; kube sets no limit either.
    "grpc.max_receive_message_length": 2**31 - 1,
    "grpc.max_send_message_length": 2**31 - 1,
    # Come back quickly after etcd restarts (the default backoff grows to 2 minutes).
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    # Notice a dead peer under a quiet watch; etcd accepts pings every 5 s or slower.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.http2.max_pings_without_data": 0,
}


def _span(prefix: bytes) -> tuple[bytes, bytes]:
    """etcd's [key, range_end) for every key starting with `prefix`.

    The end is the prefix with its last byte below 0xff incremented; an empty prefix is
    spelled key=range_end=b"\0" (etcd rejects an empty key).
    """
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return prefix, bytes(end)
        end.pop()
    return prefix or b"\x00", b"\x00"


def _parse_endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"unsupported etcd endpoint {url!r}: only http:// is supported")
    if parts.hostname is None:
        raise ValueError(f"etcd endpoint {url!r} has no host")
    return parts.hostname, parts.port or 2379


class EtcdStore:
    """`Store` on an etcd v3 cluster. Open with `EtcdStore.open`."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        prefix: str = "",
        timeout: float = 10.0,
        reconnect_timeout: float = 10.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self._clients = [
            aetcd.Client(host, port, timeout=None, options=dict(_CHANNEL_OPTIONS))
            for host, port in map(_parse_endpoint, endpoints)
        ]
        self._endpoints = endpoints
        self._current = 0
        self._prefix = prefix
        self._bprefix = prefix.encode()
        self._timeout = timeout
        self._reconnect_timeout = reconnect_timeout
        self._compacted = 0
        """The highest compacted revision seen; etcd's range error does not carry it."""
        self._closed = False

    @classmethod
    async def open(
        cls,
        endpoints: list[str],
        *,
        prefix: str = "",
        timeout: float = 10.0,
        reconnect_timeout: float = 10.0,
    ) -> EtcdStore:
        """Connect and make one read, so a wrong endpoint fails at start-up, not later.

        `timeout` bounds each RPC; `reconnect_timeout` is how long a watch keeps trying
        to resume after etcd went away before it gives up.
        """
        store = cls(endpoints, prefix=prefix, timeout=timeout,
                    reconnect_timeout=reconnect_timeout)
        try:
            await store.current_revision()
        except BaseException:
            await store.close()
            raise
        return store

    # ---- plumbing ------------------------------------------------------------------

    async def _client(self) -> aetcd.Client:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        client = self._clients[self._current]
        try:
            await client.connect()
        except aetcd.ClientError as exc:
            raise StoreUnavailableError(f"cannot connect to etcd: {exc}") from exc
        return client

    def _failover(self) -> None:
        """Use the next endpoint for the next call (no-op with a single endpoint)."""
        self._current = (self._current + 1) % len(self._clients)

    def _raise_if_closed(self) -> None:
        """Closing the channel cancels its calls, which gRPC reports as CancelledError.

        That is not a cancellation of the caller's task: report the store as closed,
        unless the task really is being cancelled.
        """
        task = asyncio.current_task()
        if self._closed and task is not None and not task.cancelling():
            raise StoreUnavailableError("the store is closed") from None

    def _error(self, exc: grpc.aio.AioRpcError, requested: int = 0) -> StorageError:
        """Translate one gRPC error to the storage error the API server understands."""
        code, details = exc.code(), exc.details() or ""
        if code in _UNAVAILABLE:
            self._failover()
            return StoreUnavailableError(f"etcd unavailable: {details or code.name}")
        if code == grpc.StatusCode.CANCELLED and self._closed:
            return StoreUnavailableError("the store is closed")
        if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
            return CompactedError(requested, max(self._compacted, requested + 1))
        if code == grpc.StatusCode.OUT_OF_RANGE and "future revision" in details:
            return FutureRevisionError(requested, requested - 1)
        return StorageError(f"etcd error {code.name}: {details}")

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[T]], *, read: bool,
                    requested: int = 0) -> T:
        """Run one RPC; on an unreachable etcd retry reads once on the next endpoint."""
        attempts = 2 if read and len(self._clients) > 1 else 1
        for attempt in range(attempts):
            client = await self._client()
            try:
                return await op(client)
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise
            except grpc.aio.AioRpcError as exc:
                error = self._error(exc, requested)
                if isinstance(error, StoreUnavailableError) and attempt + 1 < attempts:
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    def _key(self, key: str) -> bytes:
        return self._bprefix + key.encode()

    def _kv(self, kv: Any) -> KeyValue:
        return KeyValue(kv.key.decode()[len(self._prefix):], kv.value,
                        kv.create_revision, kv.mod_revision)

    async def _range(self, request: rpc.RangeRequest, requested: int = 0) -> Any:
        async def op(client: aetcd.Client) -> Any:
            return await client.kvstub.Range(request, timeout=self._timeout,
                                             metadata=client.metadata)
        return await self._call(op, read=True, requested=requested)

    async def _txn(self, request: rpc.TxnRequest) -> Any:
        async def op(client: aetcd.Client) -> Any:
            return await client.kvstub.Txn(request, timeout=self._timeout,
                                           metadata=client.metadata)
        return await self._call(op, read=False)

    # ---- reads ---------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._range(rpc.RangeRequest(key=self._key(key)))
        return self._kv(resp.kvs[0]) if resp.kvs else None

    async def list(
        self,
        prefix: str,
        *,
        revision: int = 0,
        start_key: str = "",
        limit: int = 0,
    ) -> ListResult:
        if revision < 0:
            raise ValueError("revision must not be negative")
        first, end = _span(self._key(prefix))
        if start_key > prefix:
            first = self._key(start_key)
        request = rpc.RangeRequest(key=first, range_end=end, revision=revision,
                                   limit=max(limit, 0))
        try:
            resp = await self._range(request, requested=revision)
        except FutureRevisionError:
            raise FutureRevisionError(revision, await self.current_revision()) from None
        items = [self._kv(kv) for kv in resp.kvs]
        more = bool(resp.more)
        return ListResult(items=items, revision=revision or resp.header.revision,
                          more=more, remaining=resp.count - len(items) if more else 0)

    async def count(self, prefix: str) -> int:
        first, end = _span(self._key(prefix))
        resp = await self._range(rpc.RangeRequest(key=first, range_end=end, count_only=True))
        return int(resp.count)

    async def current_revision(self) -> int:
        # Any linearizable read reports the store's revision in its header.
        resp = await self._range(rpc.RangeRequest(key=b"\x00", count_only=True))
        return int(resp.header.revision)

    # ---- writes --------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        k = self._key(key)
        resp = await self._txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE,
                                 result=rpc.Compare.EQUAL, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
        ))
        if not resp.succeeded:
            raise KeyExistsError(key)
        return int(resp.header.revision)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        if expected_revision <= 0:
            raise ValueError("update needs the mod_revision it was read at")
        k = self._key(key)
        resp = await self._txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL,
                                 mod_revision=expected_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        ))
        if resp.succeeded:
            return int(resp.header.revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFoundError(key)
        raise ConflictError(key, self._kv(kvs[0]))

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        k = self._key(key)
        if expected_revision:
            compare = rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL,
                                  mod_revision=expected_revision)
        else:
            compare = rpc.Compare(key=k, target=rpc.Compare.VERSION,
                                  result=rpc.Compare.GREATER, version=0)
        resp = await self._txn(rpc.TxnRequest(
            compare=[compare],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(
                key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        ))
        if resp.succeeded:
            prev = resp.responses[0].response_delete_range.prev_kvs[0]
            return KeyValue(key, prev.value, prev.create_revision, int(resp.header.revision))
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFoundError(key)
        raise ConflictError(key, self._kv(kvs[0]))

    # ---- watch ---------------------------------------------------------------------

    def _event(self, event: Any) -> WatchEvent:
        prev = self._kv(event.prev_kv) if event.HasField("prev_kv") else None
        if event.type == rpc.Event.DELETE:
            # etcd's delete event has only the key and the deletion revision; the last
            # value comes from prev_kv (empty if that was compacted away).
            kv = KeyValue(self._kv(event.kv).key, prev.value if prev else b"",
                          prev.create_revision if prev else 0, event.kv.mod_revision)
            return WatchEvent("delete", kv, prev)
        kv = self._kv(event.kv)
        if kv.create_revision == kv.mod_revision:
            return WatchEvent("create", kv)
        return WatchEvent("update", kv, prev)

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent | Progress]:
        """One etcd watch stream from `revision + 1`, resumed after connection loss.

        After a disconnect the stream is re-created from the revision after the last
        event delivered, so a resume neither skips nor repeats events; if etcd compacted
        that revision meanwhile, the watch ends with CompactedError like any other.
        """
        first, end = _span(self._key(prefix))
        start = revision + 1
        down_since: float | None = None
        while True:
            client = await self._client()
            call = rpc.WatchStub(client.channel).Watch(metadata=client.metadata)
            try:
                await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                    key=first, range_end=end, start_revision=start,
                    prev_kv=True, progress_notify=True)))
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        raise StoreUnavailableError("etcd closed the watch stream")
                    down_since = None
                    if resp.compact_revision:
                        self._compacted = max(self._compacted, resp.compact_revision)
                        raise CompactedError(start - 1, resp.compact_revision)
                    if resp.canceled:
                        raise StorageError(f"etcd canceled the watch: {resp.cancel_reason}")
                    if not resp.events:
                        if not resp.created:
                            yield Progress(resp.header.revision)
                        continue
                    for event in resp.events:
                        out = self._event(event)
                        start = out.kv.mod_revision + 1
                        yield out
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise
            except grpc.aio.AioRpcError as exc:
                error = self._error(exc, start - 1)
                if not isinstance(error, StoreUnavailableError) or self._closed:
                    raise error from exc
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self._reconnect_timeout:
                    raise error from exc
                log.info("etcd watch on %r lost (%s); resuming from revision %d",
                         prefix, error, start)
                await asyncio.sleep(0.2)
            finally:
                call.cancel()

    # ---- maintenance ---------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        async def op(client: aetcd.Client) -> Any:
            return await client.kvstub.Compact(rpc.CompactionRequest(revision=revision),
                                               timeout=self._timeout,
                                               metadata=client.metadata)
        try:
            await self._call(op, read=False, requested=revision)
        except CompactedError:
            return  # already compacted at or past `revision`: nothing to forget
        except FutureRevisionError:
            raise FutureRevisionError(revision, await self.current_revision()) from None
        self._compacted = max(self._compacted, revision)

    async def close(self) -> None:
        """Close every channel; open watches end with StoreUnavailableError."""
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.close()
