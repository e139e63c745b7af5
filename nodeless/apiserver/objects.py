"""Kubernetes object semantics over the key-value store: kube's generic registry.

Everything that makes a stored blob a Kubernetes object lives here, once, for every
type: uid and timestamps, resourceVersion from the store's revision, generateName,
optimistic concurrency, the spec/status split, finalizers and graceful deletion, dry
run, the admission chain, lists with selectors and continue tokens, and watches. Type
specifics come from small hooks (strategy, defaults, validation, allocations).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from nodeless.apiserver import errors, strategy
from nodeless.apiserver.admission import webhooks
from nodeless.apiserver.allocators import ServiceAllocations
from nodeless.apiserver.conversion import from_storage, to_storage
from nodeless.apiserver.resources import defaults, structural, validation
from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    field_set,
)
from nodeless.apiserver.stamps import new_uid, now_rfc3339
from nodeless.apiserver.storage.protocol import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Progress,
    Store,
    WatchEvent,
)

NAMESPACE_KEY = "/registry/core/namespaces/"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_MAX_UPDATE_RETRIES = 16


@dataclass
class UserInfo:
    username: str
    uid: str = ""
    groups: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "uid": self.uid, "groups": self.groups}


@dataclass
class RequestContext:
    """Per-request settings every write honours; warnings go back as Warning headers."""

    user: UserInfo
    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    options: dict[str, Any] | None = None
    allocated: list[tuple[str, str]] = field(default_factory=list)
    """Service IPs/ports taken during this write, to release if it does not commit."""


class Admission(Protocol):
    """The admission chain, as the object store calls it (see admission/chain.py)."""

    async def mutate(
        self, op: str, rt: ResourceType, subresource: str, obj: dict[str, Any] | None,
        old: dict[str, Any] | None, ctx: RequestContext,
    ) -> dict[str, Any] | None: ...

    async def validate(
        self, op: str, rt: ResourceType, subresource: str, obj: dict[str, Any] | None,
        old: dict[str, Any] | None, ctx: RequestContext,
    ) -> None: ...


class NoAdmission:
    async def mutate(self, op, rt, subresource, obj, old, ctx):  # type: ignore[no-untyped-def]
        return obj

    async def validate(self, op, rt, subresource, obj, old, ctx):  # type: ignore[no-untyped-def]
        return None


@dataclass
class ListOptions:
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class WatchOptions:
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None
    resource_version: str = ""
    send_initial_events: bool | None = None
    allow_bookmarks: bool = False


@dataclass
class WatchOut:
    """One watch event for the wire: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.

    The same WatchOut (and object) may go to every watcher of a change: treat `object`
    as read-only, copy it to change it."""

    type: str
    object: dict[str, Any]
    encoded: bytes | None = field(default=None, repr=False, compare=False)

    def line(self) -> bytes:
        """The event as one line of a JSON watch stream, encoded once however many
        watchers send it."""
        if self.encoded is None:
            self.encoded = orjson.dumps({"type": self.type, "object": self.object}) + b"\n"
        return self.encoded


class _Decoded:
    """One stored object version, decoded once for every watcher that sees it: the
    storage form, its selectable field sets and the WatchOuts made from it. Nothing here
    is ever changed after it is made."""

    __slots__ = ("key", "value", "obj", "fields", "outs")

    def __init__(self, kv: KeyValue) -> None:
        self.key = kv.key
        self.value = kv.value
        self.obj = decode(kv)
        self.fields: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        self.outs: dict[tuple[str, str, str], WatchOut] = {}


_SHARED_DECODES = 512
"""How many recent object versions stay decoded for watchers; a watcher further behind
than that decodes for itself."""


WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def selectable_fields(rt: ResourceType) -> list[str]:
    """A custom resource's extra selectable fields (CRD spec.versions[].selectableFields)."""
    if not rt.crd:
        return []
    for version in (rt.crd.get("spec") or {}).get("versions") or []:
        if version.get("name") == rt.version:
            return [f.get("jsonPath", "").lstrip(".") for f in
                    version.get("selectableFields") or []]
    return []


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(kv: KeyValue) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta or "managedFields" in meta or "selfLink" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items()
                                   if k not in ("resourceVersion", "managedFields", "selfLink")}}
    return orjson.dumps(obj)


def _parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except (TypeError, ValueError):
        raise errors.BadRequest(f'invalid {what}: "{value}"') from None


def encode_continue(revision: int, start_key: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": start_key}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.BadRequest("continue key is not valid: incorrect encoded start "
                                "resourceVersion (version meta.k8s.io/v1)") from None


def _gone(exc: CompactedError) -> errors.Gone:
    return errors.Gone(
        f"The resourceVersion for the provided list is too old. (requested {exc.requested}, "
        f"oldest available {exc.compacted})"
    )


class ObjectStore:
    """The REST semantics of every resource type, over one `Store`."""

    def __init__(
        self,
        store: Store,
        *,
        services: ServiceAllocations,
        admission: Admission | None = None,
        on_change: Callable[[ResourceType, dict[str, Any], bool], Awaitable[None]]
        | None = None,
    ) -> None:
        """`on_change(rt, obj, deleted)` runs after every committed write of this server,
        so caches of its own (webhook configurations, served CRDs) never lag its writes."""
        self.store = store
        self.services = services
        self.admission: Admission = admission or NoAdmission()
        self._on_change = on_change
        self._decoded: dict[int, _Decoded] = {}
        """Recent object versions by revision (one write, one revision, one value)."""

    # ---- reads ---------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        kv = await self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.NotFound.object(rt.plural, name, rt.group)
        return from_storage(rt, decode(kv))

    async def list(
        self, rt: ResourceType, namespace: str | None, opts: ListOptions
    ) -> dict[str, Any]:
        prefix = rt.prefix(namespace)
        revision = 0
        start = prefix
        if opts.continue_token:
            revision, relative = decode_continue(opts.continue_token)
            start = prefix + relative
        elif opts.resource_version not in ("", "0"):
            rv = _parse_rv(opts.resource_version)
            match = opts.resource_version_match
            if match == "Exact" or (not match and opts.limit):
                revision = rv
            elif match in ("", "NotOlderThan"):
                await self._wait_for_revision(rv)
            else:
                raise errors.BadRequest(
                    f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                    '"Exact", "NotOlderThan"')
        elif opts.resource_version_match:
            raise errors.BadRequest(
                "resourceVersionMatch is forbidden unless resourceVersion is provided")
        items: list[dict[str, Any]] = []
        filtering = opts.label_selector is not None or opts.field_selector is not None
        more = False
        next_start = ""
        remaining = 0
        while True:
            want = opts.limit - len(items) if opts.limit else 0
            try:
                page = await self.store.list(prefix, revision=revision, start_key=start,
                                             limit=want)
            except CompactedError as exc:
                if opts.continue_token:
                    raise errors.Gone(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter, or use the continue token in this response to retrieve "
                        "the remainder of the results. Continuing with the provided token "
                        "results in an inconsistent list - objects that were created, "
                        "modified, or deleted between the time the first chunk was returned "
                        "and now may show up in the list.") from None
                raise _gone(exc) from None
            except FutureRevisionError as exc:
                raise errors.Timeout(
                    f"Too large resource version: {exc.requested}, current: {exc.current}",
                    details={"causes": [{"reason": "ResourceVersionTooLarge",
                                         "message": "Too large resource version"}],
                             "retryAfterSeconds": 1},
                ) from None
            revision = page.revision
            for kv in page.items:
                obj = decode(kv)
                if filtering and not self._matches(rt, obj, opts):
                    continue
                items.append(from_storage(rt, obj))
            if not page.more:
                more = False
                break
            last = page.items[-1].key if page.items else start
            next_start = last + "\x00"
            if opts.limit and len(items) >= opts.limit:
                more = True
                remaining = page.remaining if not filtering else 0
                break
            start = next_start
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if more:
            meta["continue"] = encode_continue(revision, next_start[len(prefix):])
            if remaining:
                meta["remainingItemCount"] = remaining
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta,
                "items": items}

    async def _wait_for_revision(self, rv: int) -> None:
        """NotOlderThan: a revision from another API server may still be arriving."""
        for _ in range(30):
            if await self.store.current_revision() >= rv:
                return
            await asyncio.sleep(0.1)
        current = await self.store.current_revision()
        raise errors.Timeout(
            f"Too large resource version: {rv}, current: {current}",
            details={"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1},
        )

    @staticmethod
    def _matches(rt: ResourceType, obj: dict[str, Any], opts: ListOptions | WatchOptions) -> bool:
        if opts.label_selector is not None and not opts.label_selector.matches(
            (obj.get("metadata") or {}).get("labels") or {}
        ):
            return False
        return opts.field_selector is None or opts.field_selector.matches(
            field_set(rt.kind if not rt.is_custom else "", obj, selectable_fields(rt))
        )

    # ---- watch ---------------------------------------------------------------------

    async def watch(
        self, rt: ResourceType, namespace: str | None, opts: WatchOptions
    ) -> AsyncIterator[WatchOut]:
        """Events as kube sends them; initial ADDED events when no revision is given."""
        prefix = rt.prefix(namespace)
        initial = opts.send_initial_events
        if initial is None:
            initial = opts.resource_version in ("", "0")
        start_rev = 0
        if opts.resource_version not in ("", "0"):
            start_rev = _parse_rv(opts.resource_version)
        if initial:
            listing = await self.list(rt, namespace, ListOptions(
                label_selector=opts.label_selector, field_selector=opts.field_selector,
                resource_version="" if not start_rev else str(start_rev),
            ))
            start_rev = int(listing["metadata"]["resourceVersion"])
            for item in listing["items"]:
                yield WatchOut("ADDED", item)
            if opts.send_initial_events:
                yield self._bookmark(rt, start_rev, initial_end=True)
        elif start_rev == 0:
            start_rev = await self.store.current_revision()
        filtering = opts.label_selector is not None or opts.field_selector is not None
        last_rev = start_rev
        stream = self.store.watch(prefix, start_rev)
        try:
            async for event in stream:
                if isinstance(event, Progress):
                    last_rev = max(last_rev, event.revision)
                    if opts.allow_bookmarks:
                        yield self._bookmark(rt, last_rev)
                    continue
                out = self._translate(rt, event, opts, filtering)
                last_rev = event.kv.mod_revision
                if out is not None:
                    yield out
        except CompactedError as exc:
            yield WatchOut("ERROR", errors.Gone(
                f"too old resource version: {exc.requested} ({exc.compacted})").status())
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def _bookmark(self, rt: ResourceType, revision: int, *, initial_end: bool = False) -> WatchOut:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return WatchOut("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                     "metadata": meta})

    def _translate(
        self, rt: ResourceType, event: WatchEvent, opts: WatchOptions, filtering: bool
    ) -> WatchOut | None:
        current = self._shared(event.kv)
        if event.type == "delete":
            if filtering and not self._shared_matches(rt, current, opts):
                return None
            return self._shared_out(rt, current, "DELETED")
        if not filtering:
            return self._shared_out(rt, current,
                                    "ADDED" if event.type == "create" else "MODIFIED")
        now_matches = self._shared_matches(rt, current, opts)
        was_matching = event.prev_kv is not None and self._shared_matches(
            rt, self._shared(event.prev_kv), opts)
        if now_matches and was_matching:
            return self._shared_out(rt, current, "MODIFIED")
        if now_matches:
            return self._shared_out(rt, current, "ADDED")
        if was_matching:
            return self._shared_out(rt, current, "DELETED")
        return None

    def _shared(self, kv: KeyValue) -> _Decoded:
        """`kv` decoded, shared with every other watcher of the same version.

        A revision names one write of one key, so it finds the same bytes again (the
        kv of an event and the prev_kv of the next change of that key alike); checking
        key and value keeps a hit exact even for a store that reuses revisions."""
        found = self._decoded.get(kv.mod_revision)
        if found is not None and found.key == kv.key and (
                found.value is kv.value or found.value == kv.value):
            return found
        found = _Decoded(kv)
        cache = self._decoded
        if len(cache) >= _SHARED_DECODES:
            del cache[next(iter(cache))]
        cache[kv.mod_revision] = found
        return found

    @staticmethod
    def _shared_matches(rt: ResourceType, decoded: _Decoded, opts: WatchOptions) -> bool:
        """`_matches` on a shared version, its field set computed once per type."""
        obj = decoded.obj
        if opts.label_selector is not None and not opts.label_selector.matches(
            (obj.get("metadata") or {}).get("labels") or {}
        ):
            return False
        if opts.field_selector is None:
            return True
        kind = rt.kind if not rt.is_custom else ""
        selectable = tuple(selectable_fields(rt))
        fields = decoded.fields.get((kind, selectable))
        if fields is None:
            fields = decoded.fields[(kind, selectable)] = field_set(kind, obj, selectable)
        return opts.field_selector.matches(fields)

    @staticmethod
    def _shared_out(rt: ResourceType, decoded: _Decoded, type_: str) -> WatchOut:
        """The event for watchers of `rt`, made (and later encoded) once for all."""
        key = (type_, rt.api_version, rt.kind)
        out = decoded.outs.get(key)
        if out is None:
            out = decoded.outs[key] = WatchOut(type_, from_storage(rt, decoded.obj))
        return out

    # ---- create --------------------------------------------------------------------

    def _check_body(self, rt: ResourceType, obj: Any, namespace: str | None) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.BadRequest(
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json, application/yaml")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version is None and kind is None:
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        elif api_version != rt.api_version or kind != rt.kind:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})" if kind == rt.kind else
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
                if api_version == rt.api_version else
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                f"couldn't find type {kind} in {api_version}")
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.BadRequest(
                "json: cannot unmarshal " + type(meta).__name__ + " into Go struct field "
                f"{rt.kind}.metadata of type v1.ObjectMeta")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request")
            if namespace:
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _structural(self, rt: ResourceType, obj: dict[str, Any], ctx: RequestContext) -> None:
        result = structural.check(obj, schema_ref=rt.schema_ref, crd_schema=rt.crd_schema)
        structural.report(result, ctx.field_validation, ctx.warnings, kind=rt.qualified_kind,
                          name=(obj.get("metadata") or {}).get("name") or "")

    def _defaults(self, rt: ResourceType, obj: dict[str, Any], *, create: bool = True) -> None:
        if rt.is_custom:
            structural.apply_crd_defaults(obj, rt.crd_schema)
        else:
            defaults.apply_defaults(rt, obj, create=create)
            if rt.kind in WEBHOOK_KINDS and rt.group == "admissionregistration.k8s.io":
                webhooks.default_configuration(obj)

    def _validate(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        errs = validation.validate(rt, obj, old)
        if rt.kind in WEBHOOK_KINDS and rt.group == "admissionregistration.k8s.io":
            errs = errs + webhooks.validate_configuration(obj)
        if rt.is_custom:
            errs = errs + structural.validate_crd(obj, rt.crd_schema)
        if errs:
            raise errors.Invalid(rt.kind, (obj.get("metadata") or {}).get("name") or "",
                                 errs, group=rt.group)

    async def _require_namespace(self, rt: ResourceType, namespace: str | None, name: str
                                 ) -> None:
        """NamespaceLifecycle admission: the namespace exists and is not being deleted."""
        if not rt.namespaced:
            return
        if not namespace:
            raise errors.BadRequest("the server could not find the requested resource: "
                                    "a namespace is required for " + rt.qualified_plural)
        kv = await self.store.get(NAMESPACE_KEY + namespace)
        if kv is None:
            raise errors.NotFound.object("namespaces", namespace)
        ns = orjson.loads(kv.value)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.Forbidden(
                f"{rt.plural} \"{name}\" is forbidden: unable to create new content in "
                f"namespace {namespace} because it is being terminated",
                details={"causes": [{"reason": "NamespaceTerminating",
                                     "message": f"namespace {namespace} is being terminated",
                                     "field": "metadata.namespace"}]})

    async def create(
        self, rt: ResourceType, namespace: str | None, body: Any, ctx: RequestContext
    ) -> dict[str, Any]:
        obj = self._check_body(rt, body, namespace)
        self._structural(rt, obj, ctx)
        self._defaults(rt, obj)
        meta = obj["metadata"]
        await self._require_namespace(rt, meta.get("namespace"), meta.get("name") or "")
        mutated = await self.admission.mutate("CREATE", rt, "", obj, None, ctx)
        if mutated is not obj and mutated is not None:
            obj = mutated
            self._defaults(rt, obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices(_NAME_CHARS, k=5))
        for field_name in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                           "managedFields", "selfLink"):
            meta.pop(field_name, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        strategy.prepare_for_create(rt, obj)
        if not rt.is_custom:
            if rt.kind == "Job" and rt.group == "batch":
                defaults.generate_job_selector(obj)
            # Once more, as kube decodes what it stores: zero-valued status fields, the
            # labels of a generated name, the Job's labels from its template.
            defaults.apply_defaults(rt, obj, create=False)
        self._validate(rt, obj, None)
        await self.admission.validate("CREATE", rt, "", obj, None, ctx)
        name = meta["name"]
        if ctx.dry_run:
            return obj
        taken: list[tuple[str, str]] = []
        if rt.kind == "Service" and not rt.group:
            taken = await self.services.allocate(obj)
        stored = to_storage(rt, obj)
        try:
            rev = await self.store.create(rt.key(meta.get("namespace"), name), encode(stored))
        except KeyExistsError:
            await self.services.release_values(taken)
            raise errors.AlreadyExists.object(rt.plural, name, rt.group) from None
        except BaseException:
            await self.services.release_values(taken)
            raise
        meta["resourceVersion"] = str(rev)
        if self._on_change is not None:
            await self._on_change(rt, obj, False)
        return obj

    # ---- update --------------------------------------------------------------------

    async def _guaranteed_update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        try_update: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
        ctx: RequestContext,
        *,
        precondition_rv: str | None = None,
    ) -> dict[str, Any]:
        """Read, change, compare-and-swap; retry on a lost race unless the client pinned
        a resourceVersion (then the race is the client's 409). Returns the stored object.
        `try_update` returns None to mean "no change"."""
        key = rt.key(namespace, name)
        try:
            return await self._update_loop(rt, key, name, try_update, ctx, precondition_rv)
        finally:
            # Values allocated by an attempt that did not commit go back to the pool.
            if ctx.allocated:
                await self.services.release_values(ctx.allocated)
                ctx.allocated.clear()

    async def _update_loop(
        self,
        rt: ResourceType,
        key: str,
        name: str,
        try_update: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
        ctx: RequestContext,
        precondition_rv: str | None,
    ) -> dict[str, Any]:
        for _ in range(_MAX_UPDATE_RETRIES):
            if ctx.allocated:
                await self.services.release_values(ctx.allocated)
                ctx.allocated.clear()
            kv = await self.store.get(key)
            if kv is None:
                raise errors.NotFound.object(rt.plural, name, rt.group)
            current = from_storage(rt, decode(kv))
            if precondition_rv and precondition_rv != str(kv.mod_revision):
                raise errors.Conflict.stale(rt.plural, name, rt.group)
            new = await try_update(current)
            if new is None:
                return from_storage(rt, decode(kv))
            old_for_cmp = from_storage(rt, decode(kv))
            new.setdefault("metadata", {}).pop("resourceVersion", None)
            old_for_cmp["metadata"].pop("resourceVersion", None)
            if new == old_for_cmp:
                return from_storage(rt, decode(kv))
            finalize = self._deletion_complete(rt, new)
            if ctx.dry_run:
                new["metadata"]["resourceVersion"] = str(kv.mod_revision)
                return new
            try:
                if finalize:
                    await self.store.delete(key, kv.mod_revision)
                    await self._after_delete(rt, new)
                    new["metadata"]["resourceVersion"] = str(kv.mod_revision)
                    return new
                rev = await self.store.update(key, encode(to_storage(rt, new)), kv.mod_revision)
            except ConflictError:
                if precondition_rv:
                    raise errors.Conflict.stale(rt.plural, name, rt.group) from None
                continue
            except KeyNotFoundError:
                raise errors.NotFound.object(rt.plural, name, rt.group) from None
            new["metadata"]["resourceVersion"] = str(rev)
            if rt.kind == "Service" and not rt.group:
                ctx.allocated.clear()  # committed: they belong to the Service now
                await self.services.release_dropped(new, current)
            if self._on_change is not None:
                await self._on_change(rt, new, False)
            return new
        raise errors.Conflict.stale(rt.plural, name, rt.group)

    @staticmethod
    def _deletion_complete(rt: ResourceType, obj: dict[str, Any]) -> bool:
        """An object being deleted whose last finalizer is gone and whose grace is over
        (a namespace also waits for its spec finalizers, dropped through /finalize)."""
        meta = obj.get("metadata") or {}
        if rt.kind == "Namespace" and not rt.group and (obj.get("spec") or {}).get(
                "finalizers"):
            return False
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and (
            meta.get("deletionGracePeriodSeconds") in (None, 0))

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        ctx: RequestContext,
        *,
        subresource: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """PUT. Returns (object, created) — leases, endpoints and events may be created."""
        obj = self._check_body(rt, body, namespace)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})")
        meta["name"] = name
        self._structural(rt, obj, ctx)
        rv = meta.get("resourceVersion") or None
        if rv is None and rt.kind in ("Lease", "Endpoints", "Event") and not subresource:
            existing = await self.store.get(rt.key(namespace, name))
            if existing is None:
                return await self.create(rt, namespace, obj, ctx), True

        async def try_update(current: dict[str, Any]) -> dict[str, Any]:
            new = orjson.loads(orjson.dumps(obj))
            return await self._prepare_update(rt, new, current, subresource, ctx)

        return await self._guaranteed_update(rt, namespace, name, try_update, ctx,
                                             precondition_rv=rv), False

    async def _prepare_update(
        self,
        rt: ResourceType,
        new: dict[str, Any],
        current: dict[str, Any],
        subresource: str,
        ctx: RequestContext,
    ) -> dict[str, Any]:
        """Everything between "the client's new object" and "what gets stored"."""
        if subresource != "status":
            self._defaults(rt, new, create=False)
        strategy.prepare_for_update(rt, new, current, subresource)
        self._check_finalizers(rt, new, current)
        mutated = await self.admission.mutate("UPDATE", rt, subresource, new, current, ctx)
        if mutated is not None and mutated is not new:
            new = mutated
            if subresource != "status":
                self._defaults(rt, new, create=False)
            strategy.prepare_for_update(rt, new, current, subresource)
        self._validate(rt, new, current)
        await self.admission.validate("UPDATE", rt, subresource, new, current, ctx)
        if rt.kind == "Service" and not rt.group and not ctx.dry_run:
            # Released again by _guaranteed_update if the write does not happen.
            ctx.allocated.extend(await self.services.allocate(new, current))
        return new

    def _check_finalizers(
        self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any]
    ) -> None:
        old_meta = old.get("metadata") or {}
        if not old_meta.get("deletionTimestamp"):
            return
        added = set((new.get("metadata") or {}).get("finalizers") or []) - set(
            old_meta.get("finalizers") or [])
        if added:
            raise errors.Invalid(rt.kind, old_meta.get("name", ""), [errors.forbidden(
                "metadata.finalizers",
                f"no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {sorted(added)}")], group=rt.group)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        body: bytes,
        ctx: RequestContext,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        from nodeless.apiserver.patch import apply_patch

        async def try_update(current: dict[str, Any]) -> dict[str, Any]:
            original = orjson.loads(orjson.dumps(current))
            patched = apply_patch(content_type, original, body, rt.schema_ref)
            if not isinstance(patched, dict):
                raise errors.BadRequest("the patched object is not a JSON object")
            patched_meta = patched.get("metadata")
            if not isinstance(patched_meta, dict):
                raise errors.BadRequest("metadata: the patched object has no metadata object")
            if patched_meta.get("name") != name:
                raise errors.BadRequest(
                    f"the name of the object ({patched_meta.get('name')}) does not match the "
                    f"name on the URL ({name})")
            if patched.get("apiVersion") != rt.api_version or patched.get("kind") != rt.kind:
                raise errors.BadRequest("the patch may not change apiVersion or kind")
            pinned = patched_meta.get("resourceVersion")
            if pinned and pinned != current["metadata"].get("resourceVersion"):
                raise errors.Conflict.stale(rt.plural, name, rt.group)
            self._structural(rt, patched, ctx)
            return await self._prepare_update(rt, patched, current, subresource, ctx)

        return await self._guaranteed_update(rt, namespace, name, try_update, ctx)

    # ---- delete --------------------------------------------------------------------

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any],
        ctx: RequestContext,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE. Returns (object, deleted_now): pending deletions (finalizers, a bound
        pod's grace period) leave the object in place with a deletionTimestamp."""
        key = rt.key(namespace, name)
        preconditions = options.get("preconditions") or {}
        grace = options.get("gracePeriodSeconds")
        propagation = options.get("propagationPolicy")
        if options.get("orphanDependents") is not None and propagation is None:
            propagation = "Orphan" if options["orphanDependents"] else "Background"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.BadRequest(
                f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                '"Foreground", "Background", "Orphan"')
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            if isinstance(grace, int) and grace < 0:
                grace = 1  # kube treats a negative grace period as 1 second
            else:
                raise errors.BadRequest("gracePeriodSeconds must be an integer")
        for _ in range(_MAX_UPDATE_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.NotFound.object(rt.plural, name, rt.group)
            current = from_storage(rt, decode(kv))
            meta = current["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise errors.Conflict(
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in "
                    f"object meta: {meta.get('uid')}",
                    details={"name": name, "kind": rt.plural, "group": rt.group} if rt.group
                    else {"name": name, "kind": rt.plural})
            if preconditions.get("resourceVersion") and preconditions[
                    "resourceVersion"] != meta.get("resourceVersion"):
                raise errors.Conflict(
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                    details={"name": name, "kind": rt.plural})
            if self._is_protected(rt, name):
                raise errors.Forbidden(
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    details={"name": name, "kind": "namespaces"})
            await self.admission.validate("DELETE", rt, "", None, current, ctx)
            pending = self._pending_deletion(rt, current, grace, propagation)
            if pending is not None:
                if pending is current:
                    return current, False
                if ctx.dry_run:
                    return pending, False
                try:
                    rev = await self.store.update(key, encode(to_storage(rt, pending)),
                                                  kv.mod_revision)
                except ConflictError:
                    continue
                pending["metadata"]["resourceVersion"] = str(rev)
                if self._on_change is not None:
                    await self._on_change(rt, pending, False)
                return pending, False
            if ctx.dry_run:
                return current, True
            try:
                deleted = await self.store.delete(key, kv.mod_revision)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.NotFound.object(rt.plural, name, rt.group) from None
            current["metadata"]["resourceVersion"] = str(deleted.mod_revision)
            await self._after_delete(rt, current)
            return current, True
        raise errors.Conflict.stale(rt.plural, name, rt.group)

    @staticmethod
    def _is_protected(rt: ResourceType, name: str) -> bool:
        return rt.kind == "Namespace" and not rt.group and name in (
            "default", "kube-system", "kube-public")

    def _pending_deletion(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        grace: int | None,
        propagation: str | None,
    ) -> dict[str, Any] | None:
        """The object as it stays while deletion waits, `current` if nothing changes,
        or None when it can go now."""
        meta = current["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if rt.kind == "Namespace" and not rt.group:
            spec_finalizers = (current.get("spec") or {}).get("finalizers") or []
            if spec_finalizers or finalizers:
                if meta.get("deletionTimestamp"):
                    return current
                pending = orjson.loads(orjson.dumps(current))
                pending["metadata"]["deletionTimestamp"] = now_rfc3339()
                pending["metadata"]["deletionGracePeriodSeconds"] = 0
                pending["metadata"]["finalizers"] = finalizers or None
                if not pending["metadata"]["finalizers"]:
                    pending["metadata"].pop("finalizers")
                pending.setdefault("status", {})["phase"] = "Terminating"
                return pending
        graceful_pod = (rt.kind == "Pod" and not rt.group
                        and (current.get("spec") or {}).get("nodeName")
                        and not strategy.is_pod_terminal(current))
        if graceful_pod:
            if grace is None:
                grace = meta.get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if grace == 0 and not finalizers:
                return None
        else:
            grace = 0
        if not finalizers and not grace:
            return None
        existing_grace = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and (
            existing_grace is None or grace >= existing_grace
        ) and finalizers == list(meta.get("finalizers") or []):
            return current
        pending = orjson.loads(orjson.dumps(current))
        pmeta = pending["metadata"]
        deadline = datetime.now(UTC) + timedelta(seconds=grace or 0)
        if not pmeta.get("deletionTimestamp") or grace < (existing_grace or 0):
            pmeta["deletionTimestamp"] = _rfc3339(deadline)
        pmeta["deletionGracePeriodSeconds"] = grace or 0
        if finalizers:
            pmeta["finalizers"] = finalizers
        return pending

    async def _after_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.kind == "Service" and not rt.group:
            await self.services.release_values(self.services.held(obj))
        if self._on_change is not None:
            await self._on_change(rt, obj, True)

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        list_opts: ListOptions,
        options: dict[str, Any],
        ctx: RequestContext,
    ) -> dict[str, Any]:
        listing = await self.list(rt, namespace, list_opts)
        deleted = []
        for item in listing["items"]:
            meta = item["metadata"]
            try:
                obj, _ = await self.delete(rt, meta.get("namespace"), meta["name"], options, ctx)
                deleted.append(obj)
            except errors.NotFound:
                continue
        return {"kind": rt.list_kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": listing["metadata"]["resourceVersion"]},
                "items": deleted}

    # ---- pods/binding --------------------------------------------------------------

    async def bind_pod(
        self, rt: ResourceType, namespace: str, name: str, binding: Any, ctx: RequestContext
    ) -> None:
        if not isinstance(binding, dict) or not isinstance(binding.get("target"), dict):
            raise errors.BadRequest("a Binding needs a target")
        target = binding["target"]
        node = target.get("name")
        if not node:
            raise errors.Invalid("Binding", name, [errors.required("target.name")])
        if target.get("kind", "Node") not in ("Node", ""):
            raise errors.Invalid("Binding", name, [errors.unsupported(
                "target.kind", target.get("kind"), ["Node"])])
        binding_meta = binding.get("metadata") or {}
        if binding_meta.get("name") and binding_meta["name"] != name:
            raise errors.BadRequest(
                f"the name of the object ({binding_meta['name']}) does not match the name "
                f"on the URL ({name})")
        await self.admission.validate("CREATE", rt, "binding", binding, None, ctx)

        async def assign(current: dict[str, Any]) -> dict[str, Any]:
            meta = current["metadata"]
            uid = binding_meta.get("uid")
            if uid and uid != meta.get("uid"):
                raise errors.Conflict(f"Precondition failed: UID in precondition: {uid}, UID "
                                      f"in object meta: {meta.get('uid')}")
            if meta.get("deletionTimestamp"):
                raise errors.Conflict(f"pod {name} is being deleted, cannot be assigned to "
                                      "a host")
            spec = current.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.Conflict(
                    f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
            spec["nodeName"] = node
            annotations = binding_meta.get("annotations") or {}
            if annotations:
                meta.setdefault("annotations", {}).update(annotations)
            status = current.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or []
                          if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True",
                               "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conditions
            return current

        await self._guaranteed_update(rt, namespace, name, assign, ctx)
