"""The REST verbs of every resource, served generically from the registry's table.

A request is parsed into (type, namespace, name, subresource, verb), query parameters
into options, and handed to the object store; responses are the object, a list, a
Table, a Status, or a watch stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from nodeless.apiserver import errors, strategy
from nodeless.apiserver.http import codec
from nodeless.apiserver.http.request import RequestInfo, parse_resource_path
from nodeless.apiserver.kubelet import log_container
from nodeless.apiserver.objects import (
    ListOptions,
    RequestContext,
    UserInfo,
    WatchOptions,
    WatchOut,
    selectable_fields,
)
from nodeless.apiserver.resources import tables
from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.selectors import (
    label_selector_string,
    parse_field_selector,
    parse_label_selector,
)

if TYPE_CHECKING:
    from nodeless.apiserver.server import APIServer

log = logging.getLogger(__name__)

USER = web.RequestKey("user", UserInfo)
METRICS_VERB = web.RequestKey("metrics_verb", str)
METRICS_RESOURCE = web.RequestKey("metrics_resource", str)

_BOOKMARK_INTERVAL = 60.0
_LOG_PARAMS = {"follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime",
               "limitBytes"}
_FIELD_VALIDATION = {"Strict", "Warn", "Ignore"}


def _query_bool(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0", ""):
        return False
    raise errors.BadRequest(f'invalid value for {name}: "{value}"')


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f'invalid value for {name}: "{value}"') from None


def _context(request: web.Request) -> RequestContext:
    dry_run = request.query.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise errors.BadRequest(
                f'dryRun: Unsupported value: "{value}": supported values: "All"')
    field_validation = request.query.get("fieldValidation") or "Warn"
    if field_validation not in _FIELD_VALIDATION:
        raise errors.BadRequest(
            f'fieldValidation: Unsupported value: "{field_validation}": supported values: '
            '"Ignore", "Strict", "Warn"')
    user: UserInfo = request[USER]
    return RequestContext(user=user, dry_run=bool(dry_run), field_validation=field_validation)


def _selectors(request: web.Request, rt: ResourceType) -> tuple[Any, Any]:
    label = request.query.get("labelSelector")
    field = request.query.get("fieldSelector")
    return (parse_label_selector(label) if label else None,
            parse_field_selector(field, rt.kind, rt.group, custom=rt.is_custom,
                                 namespaced=rt.namespaced,
                                 selectable=selectable_fields(rt)) if field else None)


class ResourceHandler:
    """Dispatches /api and /apis resource requests to the object store."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    def _type(self, info: RequestInfo) -> ResourceType:
        rt = self.server.registry.get(info.group, info.version, info.resource)
        if rt is None:
            raise errors.NotFound("the server could not find the requested resource")
        if info.namespace is not None and not rt.namespaced:
            raise errors.NotFound("the server could not find the requested resource")
        if info.subresource and not rt.has_subresource(info.subresource) and not (
            info.subresource == "finalize" and rt.kind == "Namespace"
        ):
            raise errors.NotFound("the server could not find the requested resource")
        return rt

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = parse_resource_path(request.path)
        rt = self._type(info)
        method = request.method
        request[METRICS_RESOURCE] = rt.plural
        codec.check_acceptable(request)
        if method == "GET":
            if info.subresource == "log":
                request[METRICS_VERB] = "GET"
                return await self._logs(request, rt, info)
            if info.name and not info.legacy_watch:
                request[METRICS_VERB] = "GET"
                return await self._get(request, rt, info)
            if info.legacy_watch or _query_bool(request, "watch"):
                request[METRICS_VERB] = "WATCH"
                return await self._watch(request, rt, info)
            request[METRICS_VERB] = "LIST"
            return await self._list(request, rt, info)
        request[METRICS_VERB] = method
        if method == "POST":
            if info.subresource == "binding" or (info.name and not info.subresource
                                                 and rt.kind == "Pod"
                                                 and request.path.endswith("/binding")):
                return await self._bind(request, rt, info)
            if info.name:
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource")
            return await self._create(request, rt, info)
        if method == "PUT" and info.name:
            return await self._update(request, rt, info)
        if method == "PATCH" and info.name:
            return await self._patch(request, rt, info)
        if method == "DELETE":
            if info.name and not info.subresource:
                return await self._delete(request, rt, info)
            if not info.name:
                return await self._delete_collection(request, rt, info)
        raise errors.MethodNotAllowed(
            "the server does not allow this method on the requested resource")

    # ---- reads -------------------------------------------------------------------------

    async def _get(self, request: web.Request, rt: ResourceType, info: RequestInfo
                   ) -> web.Response:
        obj = await self.server.objects.get(rt, info.namespace, info.name)
        if info.subresource == "scale":
            return codec.json_response(_scale_of(rt, obj))
        return self._respond_object(request, rt, obj)

    async def _logs(self, request: web.Request, rt: ResourceType, info: RequestInfo
                    ) -> web.StreamResponse:
        """pods/log: the pod's agent streams it (kubelet's /containerLogs), relayed as is."""
        if rt.kind != "Pod" or rt.group or not info.name:
            raise errors.NotFound("the server could not find the requested resource")
        pod = await self.server.objects.get(rt, info.namespace, info.name)
        container = log_container(pod, request.query.get("container"))
        node = await self.server.objects.get(self.server.node_type(), None,
                                             pod["spec"]["nodeName"])
        query = {k: v for k, v in request.query.items() if k in _LOG_PARAMS}
        upstream = await self.server.kubelets().container_logs(
            node, info.namespace or "", info.name, container, query)
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()

    def _respond_object(self, request: web.Request, rt: ResourceType, obj: dict[str, Any],
                        status: int = 200, warnings: list[str] | None = None) -> web.Response:
        table_version = codec.wants_table(request)
        if table_version:
            table = tables.to_table(rt, [obj], include_object=request.query.get(
                "includeObject", "Metadata"), api_version=f"meta.k8s.io/{table_version}")
            return codec.json_response(table, status, warnings)
        partial = codec.wants_partial_metadata(request)
        if partial:
            return codec.json_response(_partial(obj), status, warnings)
        return codec.json_response(obj, status, warnings, as_yaml=codec.wants_yaml(request))

    def _list_options(self, request: web.Request, rt: ResourceType) -> ListOptions:
        label, field = _selectors(request, rt)
        limit = _query_int(request, "limit") or 0
        if limit < 0:
            raise errors.BadRequest(f"limit: Invalid value: {limit}: must be >= 0")
        return ListOptions(
            label_selector=label, field_selector=field, limit=limit,
            continue_token=request.query.get("continue", ""),
            resource_version=request.query.get("resourceVersion", ""),
            resource_version_match=request.query.get("resourceVersionMatch", ""),
        )

    async def _list(self, request: web.Request, rt: ResourceType, info: RequestInfo
                    ) -> web.Response:
        listing = await self.server.objects.list(rt, info.namespace,
                                                 self._list_options(request, rt))
        table_version = codec.wants_table(request)
        if table_version:
            table = tables.to_table(rt, listing["items"], include_object=request.query.get(
                "includeObject", "Metadata"), list_meta=listing["metadata"],
                api_version=f"meta.k8s.io/{table_version}")
            return codec.json_response(table)
        if codec.wants_partial_metadata(request):
            return codec.json_response({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": listing["metadata"],
                "items": [_partial(o) for o in listing["items"]],
            })
        return codec.json_response(listing, as_yaml=codec.wants_yaml(request))

    async def _watch(self, request: web.Request, rt: ResourceType, info: RequestInfo
                     ) -> web.StreamResponse:
        label, field = _selectors(request, rt)
        if info.name:  # legacy /watch/.../NAME: a watch of one object
            text = f"metadata.name={info.name}"
            if request.query.get("fieldSelector"):
                text = f"{request.query['fieldSelector']},{text}"
            field = parse_field_selector(text)
        opts = WatchOptions(
            label_selector=label, field_selector=field,
            resource_version=request.query.get("resourceVersion", ""),
            send_initial_events=_query_bool(request, "sendInitialEvents"),
            allow_bookmarks=bool(_query_bool(request, "allowWatchBookmarks")),
        )
        if opts.send_initial_events and request.query.get(
                "resourceVersionMatch") != "NotOlderThan":
            raise errors.Invalid("ListOptions", "", [errors.forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")])
        timeout = _query_int(request, "timeoutSeconds")
        if timeout is None:
            timeout = int(1800 * (1 + random.random()))
        table_version = codec.wants_table(request)
        include_object = request.query.get("includeObject", "Metadata")
        events = self.server.objects.watch(rt, info.namespace, opts)
        # Open the watch before answering, so a 410 for a compacted revision arrives as
        # an ERROR event on an otherwise healthy stream, as kube-apiserver sends it.
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json", "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache, private"})
        await response.prepare(request)
        self.server.metrics.watchers.labels(resource=rt.plural).inc()
        handler_task = asyncio.current_task()
        if handler_task is not None:
            self.server.watch_tasks.add(handler_task)
        queue: asyncio.Queue[WatchOut | None] = asyncio.Queue(maxsize=1024)

        async def pump() -> None:
            end: WatchOut | None = None
            try:
                async for event in events:
                    if queue.full():
                        await queue.put(event)
                    else:
                        queue.put_nowait(event)
            except errors.APIError as exc:
                end = WatchOut("ERROR", exc.status())
            except Exception as exc:  # a broken store: end the watch, the client re-lists
                log.warning("watch of %s ended: %s", rt.plural, exc)
                end = WatchOut("ERROR", errors.InternalError(f"watch ended: {exc}").status())
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            if end is not None:
                await queue.put(end)
            await queue.put(None)

        task = asyncio.create_task(pump())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_rv = opts.resource_version if opts.resource_version not in ("", "0") else ""
        first_table = True
        finished = False
        try:
            while not finished:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    if not queue.empty():  # under load: no task and timer for a wait
                        first = queue.get_nowait()
                    else:
                        first = await asyncio.wait_for(
                            queue.get(), min(remaining, _BOOKMARK_INTERVAL))
                except TimeoutError:
                    if opts.allow_bookmarks and last_rv and loop.time() < deadline:
                        first = WatchOut("BOOKMARK", {
                            "kind": rt.kind, "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": last_rv}})
                    else:
                        continue
                # Under write load many events wait; send all of them in one chunk, so a
                # watcher keeps up with writers instead of taking one event per loop turn.
                batch = [first]
                while not queue.empty() and len(batch) < 1000:
                    batch.append(queue.get_nowait())
                chunk = bytearray()
                for event in batch:
                    if event is None:
                        finished = True
                        break
                    if event.type == "BOOKMARK" and not opts.allow_bookmarks and not (
                            opts.send_initial_events):
                        continue
                    obj = event.object
                    if event.type != "ERROR":
                        last_rv = (obj.get("metadata") or {}).get("resourceVersion", last_rv)
                    if table_version and event.type in ("ADDED", "MODIFIED", "DELETED"):
                        obj = tables.to_table(rt, [obj], include_object=include_object,
                                              api_version=f"meta.k8s.io/{table_version}",
                                              no_headers=not first_table)
                        first_table = False
                        chunk += orjson.dumps({"type": event.type, "object": obj})
                        chunk += b"\n"
                    else:  # encoded once for every watcher of the same change
                        chunk += event.line()
                    if event.type == "ERROR":
                        finished = True
                        break
                if chunk:
                    await response.write(bytes(chunk))
        except ConnectionResetError:
            pass  # the client went away
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.server.watch_tasks.discard(handler_task)  # type: ignore[arg-type]
            self.server.metrics.watchers.labels(resource=rt.plural).dec()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # ---- writes ------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        raw = await codec.read_body(request, self.server.config.max_request_bytes)
        return codec.decode_object(raw, codec.media_type(request))

    async def _create(self, request: web.Request, rt: ResourceType, info: RequestInfo
                      ) -> web.Response:
        if rt.namespaced and info.namespace is None:
            raise errors.MethodNotAllowed(
                f"the server does not allow this method on the requested resource: "
                f"{rt.plural} must be created in a namespace")
        ctx = _context(request)
        body = await self._body(request)
        obj = await self.server.objects.create(rt, info.namespace, body, ctx)
        return self._respond_object(request, rt, obj, 201, ctx.warnings)

    async def _update(self, request: web.Request, rt: ResourceType, info: RequestInfo
                      ) -> web.Response:
        ctx = _context(request)
        body = await self._body(request)
        if info.subresource == "scale":
            return codec.json_response(await self._set_scale(rt, info, ctx, body))
        if info.subresource == "finalize":
            return self._respond_object(request, rt, await self._finalize(rt, info, ctx, body))
        obj, created = await self.server.objects.update(
            rt, info.namespace, info.name, body, ctx, subresource=info.subresource)
        return self._respond_object(request, rt, obj, 201 if created else 200, ctx.warnings)

    async def _patch(self, request: web.Request, rt: ResourceType, info: RequestInfo
                     ) -> web.Response:
        ctx = _context(request)
        content_type = codec.media_type(request)
        from nodeless.apiserver.patch import check_media_type

        check_media_type(content_type, "io.k8s.api.autoscaling.v1.Scale"
                         if info.subresource == "scale" else rt.schema_ref)
        raw = await codec.read_body(request, self.server.config.max_request_bytes)
        if info.subresource == "scale":
            from nodeless.apiserver.patch import apply_patch

            current = await self.server.objects.get(rt, info.namespace, info.name)
            scale = apply_patch(content_type, _scale_of(rt, current), raw,
                                "io.k8s.api.autoscaling.v1.Scale")
            return codec.json_response(await self._set_scale(rt, info, ctx, scale))
        obj = await self.server.objects.patch(
            rt, info.namespace, info.name, content_type, raw, ctx,
            subresource=info.subresource)
        return self._respond_object(request, rt, obj, 200, ctx.warnings)

    async def _set_scale(self, rt: ResourceType, info: RequestInfo, ctx: RequestContext,
                         scale: Any) -> dict[str, Any]:
        if not isinstance(scale, dict):
            raise errors.BadRequest("a Scale object is required")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid("Scale", info.name, [errors.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")],
                group="autoscaling")
        pinned = (scale.get("metadata") or {}).get("resourceVersion")
        patch = {"spec": {"replicas": replicas}}
        if pinned:
            patch["metadata"] = {"resourceVersion": pinned}
        obj = await self.server.objects.patch(
            rt, info.namespace, info.name, "application/merge-patch+json",
            orjson.dumps(patch), ctx)
        return _scale_of(rt, obj)

    async def _finalize(self, rt: ResourceType, info: RequestInfo, ctx: RequestContext,
                        body: Any) -> dict[str, Any]:
        """PUT namespaces/NAME/finalize: the namespace controller's way to drop spec
        finalizers; the namespace goes once none is left."""
        if not isinstance(body, dict):
            raise errors.BadRequest("a Namespace object is required")
        finalizers = (body.get("spec") or {}).get("finalizers") or []
        patch = {"spec": {"finalizers": finalizers}}
        obj = await self.server.objects.patch(
            rt, None, info.name, "application/merge-patch+json", orjson.dumps(patch), ctx,
            subresource="finalize")
        if not finalizers and (obj.get("metadata") or {}).get("deletionTimestamp") and not (
                obj["metadata"].get("finalizers")):
            with contextlib.suppress(errors.NotFound):
                obj, _ = await self.server.objects.delete(rt, None, info.name, {}, ctx)
        return obj

    async def _bind(self, request: web.Request, rt: ResourceType, info: RequestInfo
                    ) -> web.Response:
        if rt.kind != "Pod" or rt.group:
            raise errors.NotFound("the server could not find the requested resource")
        ctx = _context(request)
        body = await self._body(request)
        await self.server.objects.bind_pod(rt, info.namespace or "", info.name, body, ctx)
        return codec.json_response(codec.success_status({}, 201), 201, ctx.warnings)

    def _delete_options(self, request: web.Request, body: Any) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if isinstance(body, dict):
            options.update(body)
        elif body is not None:
            raise errors.BadRequest("DeleteOptions must be an object")
        grace = _query_int(request, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        orphan = _query_bool(request, "orphanDependents")
        if orphan is not None:
            options["orphanDependents"] = orphan
        return options

    async def _delete_body(self, request: web.Request) -> Any:
        raw = await codec.read_body(request, self.server.config.max_request_bytes)
        if not raw.strip():
            return None
        return codec.decode_object(raw, codec.media_type(request))

    async def _delete(self, request: web.Request, rt: ResourceType, info: RequestInfo
                      ) -> web.Response:
        ctx = _context(request)
        options = self._delete_options(request, await self._delete_body(request))
        if options.get("dryRun"):
            ctx.dry_run = True
        obj, deleted_now = await self.server.objects.delete(
            rt, info.namespace, info.name, options, ctx)
        if deleted_now and not strategy.returns_deleted_object(rt):
            meta = obj.get("metadata") or {}
            details = {"name": info.name, "kind": rt.plural, "uid": meta.get("uid")}
            if rt.group:
                details["group"] = rt.group
            return codec.json_response(codec.success_status(details), 200, ctx.warnings)
        status = 200
        if not deleted_now and options.get("orphanDependents") is False:
            status = 202
        return self._respond_object(request, rt, obj, status, ctx.warnings)

    async def _delete_collection(self, request: web.Request, rt: ResourceType,
                                 info: RequestInfo) -> web.Response:
        if "deletecollection" not in rt.verbs:
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource")
        ctx = _context(request)
        options = self._delete_options(request, await self._delete_body(request))
        result = await self.server.objects.delete_collection(
            rt, info.namespace, self._list_options(request, rt), options, ctx)
        return codec.json_response(result, 200, ctx.warnings)


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or StatefulSet."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": label_selector_string(selector) if selector else ""},
    }


def now() -> datetime:
    return datetime.now(UTC)
