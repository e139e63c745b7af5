"""Assembles one API server process: store, registry, admission, HTTP, and serves it.

Several processes may serve one etcd: nothing here keeps state that is not in the store
or rebuilt from it by a watch (served CRDs, webhook configurations).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from nodeless.apiserver import crds, errors, pki, tokens
from nodeless.apiserver.admission.chain import WEBHOOK_KINDS, AdmissionChain, WebhookConfigurations
from nodeless.apiserver.allocators import ServiceAllocations
from nodeless.apiserver.config import APIServerConfig
from nodeless.apiserver.http import codec
from nodeless.apiserver.http.discovery import add_discovery_routes
from nodeless.apiserver.http.handlers import (
    METRICS_RESOURCE,
    METRICS_VERB,
    USER,
    ResourceHandler,
)
from nodeless.apiserver.http.openapi import add_openapi_routes
from nodeless.apiserver.kubelet import KubeletClient, ensure_client_certificate
from nodeless.apiserver.metrics import Metrics
from nodeless.apiserver.objects import (
    ListOptions,
    ObjectStore,
    RequestContext,
    UserInfo,
    WatchOptions,
)
from nodeless.apiserver.resources.registry import Registry, ResourceType
from nodeless.apiserver.storage import open_store
from nodeless.apiserver.storage.protocol import Store, StoreUnavailableError

log = logging.getLogger("nodeless.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version"}
_SYSTEM_USER = UserInfo("system:apiserver", groups=["system:masters"])


class Authenticator:
    """Bearer tokens from the static token file, re-read when the file changes."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = path
        self._mtime = -1.0
        self._checked = 0.0
        self._users: dict[str, UserInfo] = {}

    def _reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._users = {}
            return
        if mtime != self._mtime:
            self._mtime = mtime
            self._users = {
                token: UserInfo(u.username, u.uid, list(u.groups))
                for token, u in tokens.load_tokens(self.path).items()
            }

    def authenticate(self, header: str | None) -> UserInfo | None:
        if not header or not header.startswith("Bearer "):
            return None
        self._reload()
        return self._users.get(header[7:].strip())


class APIServer:
    """The parts of one API server process and their wiring."""

    def __init__(self, config: APIServerConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.registry = Registry()
        self.metrics = Metrics()
        self.webhook_configs = WebhookConfigurations()
        self.services = ServiceAllocations(store, config.service_cidr, config.node_port_range)
        self.admission = AdmissionChain(self.webhook_configs, self._namespace_labels,
                                        self._resolve_service)
        self.objects = ObjectStore(store, services=self.services, admission=self.admission,
                                   on_change=self._on_change)
        self.authenticator = Authenticator(config.data_dir / "tokens.csv")
        self._kubelets: KubeletClient | None = None
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []
        self.watch_tasks: set[asyncio.Task[Any]] = set()
        """Handlers streaming a watch; cancelled at shutdown so none holds it up."""

    # ---- callbacks the object store and admission use -----------------------------------

    async def _namespace_labels(self, namespace: str) -> dict[str, str] | None:
        rt = self._type("", "v1", "namespaces")
        try:
            ns = await self.objects.get(rt, None, namespace)
        except errors.NotFound:
            return None
        return (ns.get("metadata") or {}).get("labels") or {}

    async def _resolve_service(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        """A webhook Service reference: its cluster IP has no route on one machine, so use
        a ready endpoint address instead (what kube-apiserver does without kube-proxy)."""
        endpoints = await self.objects.get(self._type("", "v1", "endpoints"), namespace, name)
        svc = await self.objects.get(self._type("", "v1", "services"), namespace, name)
        target = port
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("port") == port:
                target = p.get("targetPort", port) if isinstance(p.get("targetPort"), int) \
                    else port
        for subset in endpoints.get("subsets") or []:
            for address in subset.get("addresses") or []:
                return address["ip"], target
        raise errors.ServiceUnavailable(f'service "{namespace}/{name}" has no ready endpoints')

    async def _on_change(self, rt: ResourceType, obj: dict[str, Any], deleted: bool) -> None:
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            await self._crd_changed(obj, deleted)
        elif rt.group == "admissionregistration.k8s.io" and rt.kind in WEBHOOK_KINDS:
            if deleted:
                self.webhook_configs.remove(obj)
            else:
                self.webhook_configs.put(obj)

    async def _crd_changed(self, crd: dict[str, Any], deleted: bool) -> None:
        meta = crd.get("metadata") or {}
        if deleted:
            crds.sync_registry(self.registry, crd, deleted=True)
            return
        if meta.get("deletionTimestamp"):
            await self._delete_custom_objects(crd)
            return
        crds.sync_registry(self.registry, crd)
        if not crds.is_established(crd):
            rt = self._type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            updated = dict(crd, status=crds.accepted_status(crd))
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.objects.update(rt, None, meta["name"], updated,
                                          RequestContext(_SYSTEM_USER),
                                          subresource="status")

    async def _delete_custom_objects(self, crd: dict[str, Any]) -> None:
        """The CRD's cleanup finalizer: delete every object of it, then let the CRD go."""
        types = crds.resource_types(crd)
        ctx = RequestContext(_SYSTEM_USER)
        if types:
            rt = types[0]
            listing = await self.objects.list(rt, None, ListOptions())
            for item in listing["items"]:
                m = item["metadata"]
                with contextlib.suppress(errors.NotFound):
                    await self.objects.delete(rt, m.get("namespace"), m["name"],
                                              {"gracePeriodSeconds": 0}, ctx)
        crds.sync_registry(self.registry, crd, deleted=True)
        crd_rt = self._type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        name = crd["metadata"]["name"]

        async def drop_finalizer(current: dict[str, Any]) -> dict[str, Any]:
            finalizers = [f for f in current["metadata"].get("finalizers") or []
                          if f != crds.CLEANUP_FINALIZER]
            current["metadata"]["finalizers"] = finalizers
            if not finalizers:
                current["metadata"].pop("finalizers")
            return current

        with contextlib.suppress(errors.NotFound):
            await self.objects._guaranteed_update(crd_rt, None, name, drop_finalizer, ctx)

    def node_type(self) -> ResourceType:
        return self._type("", "v1", "nodes")

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, version, plural)
        assert rt is not None, plural
        return rt

    # ---- start-up ---------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """The objects every cluster has from the start, created once."""
        ctx = RequestContext(_SYSTEM_USER)
        ns_rt = self._type("", "v1", "namespaces")
        for name in SYSTEM_NAMESPACES:
            with contextlib.suppress(errors.AlreadyExists):
                await self.objects.create(ns_rt, None, {
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, ctx)
        sa_rt = self._type("", "v1", "serviceaccounts")
        for name in SYSTEM_NAMESPACES:
            with contextlib.suppress(errors.AlreadyExists):
                await self.objects.create(sa_rt, name, {
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name}}, ctx)
        svc_rt = self._type("", "v1", "services")
        with contextlib.suppress(errors.AlreadyExists, errors.Invalid):
            await self.objects.create(svc_rt, "default", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": self.services.ips.kubernetes_service_ip(),
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                    "targetPort": self.config.port}]},
            }, ctx)
        ep_rt = self._type("", "v1", "endpoints")
        with contextlib.suppress(errors.AlreadyExists):
            await self.objects.create(ep_rt, "default", {
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                             "ports": [{"name": "https", "port": self.config.port,
                                        "protocol": "TCP"}]}],
            }, ctx)

    async def start_background(self) -> None:
        await self._load_and_watch(
            self._type("apiextensions.k8s.io", "v1", "customresourcedefinitions"))
        for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            await self._load_and_watch(self._type("admissionregistration.k8s.io", "v1", plural))
        self._tasks.append(asyncio.create_task(self._compact_loop()))

    async def _load_and_watch(self, rt: ResourceType) -> None:
        """List once (so the first request sees them), then follow changes made by other
        API servers on the same store."""
        listing = await self.objects.list(rt, None, ListOptions())
        for item in listing["items"]:
            await self._on_change(rt, item, False)
        self._tasks.append(asyncio.create_task(
            self._follow(rt, listing["metadata"]["resourceVersion"])))

    async def _follow(self, rt: ResourceType, rv: str) -> None:
        while True:
            try:
                async for event in self.objects.watch(
                        rt, None, WatchOptions(resource_version=rv)):
                    if event.type == "ERROR":
                        break
                    rv = event.object["metadata"].get("resourceVersion", rv)
                    if event.type in ("ADDED", "MODIFIED", "DELETED"):
                        # Other watchers share the event's object: keep a copy of our own.
                        await self._on_change(rt, orjson.loads(orjson.dumps(event.object)),
                                              event.type == "DELETED")
                else:
                    continue
                rv = ""  # history lost: start again from a fresh list
                listing = await self.objects.list(rt, None, ListOptions())
                for item in listing["items"]:
                    await self._on_change(rt, item, False)
                rv = listing["metadata"]["resourceVersion"]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch of %s failed; retrying", rt.plural)
                await asyncio.sleep(1)

    async def _compact_loop(self) -> None:
        """Every interval, forget history older than the previous interval, as
        kube-apiserver compacts etcd: watchers an interval behind get 410 and re-list."""
        previous = await self.store.current_revision()
        while True:
            await asyncio.sleep(self.config.compaction_interval)
            try:
                current = await self.store.current_revision()
                if previous > 0:
                    await self.store.compact(previous)
                previous = current
            except StoreUnavailableError as exc:
                log.warning("compaction skipped: %s", exc)
            except Exception:
                log.exception("compaction failed")

    def kubelets(self) -> KubeletClient:
        """The client for node agents (`kubectl logs`), with the server's own certificate."""
        if self._kubelets is None:
            material = pki.ensure_pki(self.config.data_dir, extra_sans=self.config.extra_sans)
            self._kubelets = KubeletClient(*ensure_client_certificate(material))
        return self._kubelets

    async def close(self) -> None:
        if self._kubelets is not None:
            await self._kubelets.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.admission.close()
        await self.store.close()

    # ---- HTTP -------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors_middleware, self._auth_middleware],
            client_max_size=self.config.max_request_bytes + 1,
        )
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/livez", self._health)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        add_discovery_routes(app, self.registry)
        add_openapi_routes(app, self.registry)
        handler = ResourceHandler(self)
        app.router.add_route("*", "/api/{tail:.+}", handler.handle)
        app.router.add_route("*", "/apis/{tail:.+}", handler.handle)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, request: web.Request) -> web.Response:
        if not self.ready:
            return web.Response(status=503, text="[-]bootstrap not finished\nreadyz check failed")
        try:
            await asyncio.wait_for(self.store.current_revision(), 2)
        except Exception as exc:
            return web.Response(status=503, text=f"[-]etcd failed: {exc}\nreadyz check failed")
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(),
                            content_type="text/plain", charset="utf-8")

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Callable[..., Any]
                               ) -> web.StreamResponse:
        if request.path in _PUBLIC_PATHS:
            request[USER] = UserInfo("system:anonymous", groups=["system:unauthenticated"])
            return await handler(request)
        user = self.authenticator.authenticate(request.headers.get("Authorization"))
        if user is None:
            raise errors.Unauthorized("Unauthorized")
        request[USER] = user
        return await handler(request)

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Callable[..., Any]
                                 ) -> web.StreamResponse:
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except errors.APIError as exc:
            code = exc.code
            return codec.status_response(exc)
        except web.HTTPException as exc:
            code = exc.status
            if exc.status == 413:
                return codec.status_response(errors.RequestEntityTooLarge(
                    "the request body is too large"))
            if exc.status == 404:
                return codec.status_response(errors.NotFound(
                    "the server could not find the requested resource"))
            if exc.status == 405:
                return codec.status_response(errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource"))
            raise
        except StoreUnavailableError as exc:
            code = 503
            return codec.status_response(errors.ServiceUnavailable(f"storage unavailable: {exc}"))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            return codec.status_response(errors.InternalError(f"Internal error occurred: {exc}"))
        finally:
            verb = request.get(METRICS_VERB, request.method)
            resource = request.get(METRICS_RESOURCE, "")
            self.metrics.record_request(
                verb, resource, str(code),
                None if verb == "WATCH" else time.perf_counter() - started)


async def serve(config: APIServerConfig, *, ready: Callable[[], None] | None = None) -> None:
    """Serve until cancelled. `ready` is called once /readyz would answer ok."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    material = pki.ensure_pki(config.data_dir, extra_sans=config.extra_sans)
    tokens.ensure_tokens(config.data_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(material.server_cert, material.server_key)
    store = await open_store(config.store, data_dir=config.data_dir,
                             etcd_endpoints=config.etcd_endpoints,
                             etcd_prefix=config.etcd_prefix)
    server = APIServer(config, store)
    runner = web.AppRunner(server.build_app(), access_log=None, handle_signals=False,
                           shutdown_timeout=2)
    try:
        await server.bootstrap()
        await server.start_background()
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=context,
                           reuse_address=True)
        await site.start()
        server.ready = True
        log.info("API server listening on https://%s:%d (%s store)", config.host, config.port,
                 config.store)
        if ready:
            ready()
        await asyncio.Event().wait()
    finally:
        for task in list(server.watch_tasks):
            task.cancel()
        await runner.cleanup()
        await server.close()
