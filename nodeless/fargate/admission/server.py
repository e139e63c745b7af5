"""The webhook's HTTPS server: four AdmissionReview endpoints and health checks.

Exceptions become wire format here and only here: a body we cannot read is a 400 (or
413), a review we can read but not accept is a denial that says why, and a bug of ours
is a denial naming it, never a 500 or a dropped connection (kube-apiserver would report
those as "failed calling webhook" with nothing the user can act on).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim
from lightkube.resources.storage_v1 import StorageClass

from nodeless.fargate.admission import pods
from nodeless.fargate.admission.cache import FargateCache
from nodeless.fargate.admission.profiles import ProfileReviewer
from nodeless.fargate.admission.review import (
    ALLOW,
    Answer,
    BadReview,
    Review,
    as_dict,
    deny,
    encode,
    parse,
    status_body,
    string_map,
)
from nodeless.fargate.names import GROUP, SCHEDULER_NAME, VERSION
from nodeless.fargate.profiles.matching import choose_profile

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
"""An AdmissionReview holds the object and the old object; kube caps a request at 3 MiB."""

MUTATE_PODS = "/mutate-pods"
VALIDATE_PODS = "/validate-pods"
MUTATE_PROFILES = "/mutate-fargateprofiles"
VALIDATE_PROFILES = "/validate-fargateprofiles"

Handler = Callable[[Review], Awaitable[Answer]]


class AdmissionWebhook:
    """The reviews, over a cache of profiles and subnets; `volumes` reads claims for the
    EBS check (None: claims are not checked, e.g. in tests without an API)."""

    def __init__(self, cache: FargateCache, *, cluster: str, vpc_id: str,
                 volumes: pods.VolumeLookup | None = None) -> None:
        self.cache = cache
        self.volumes = volumes
        self.profiles = ProfileReviewer(cluster, vpc_id, lambda: cache.profiles,
                                        lambda: cache.subnets)
        self.ready = False
        """Whether /readyz says so: set once the cache has synced."""

    # ---- reviews -----------------------------------------------------------------------

    def _pod(self, review: Review
             ) -> tuple[dict[str, Any], str, Mapping[str, Any] | None] | Answer:
        """The pod, its namespace and the profile it matches; an Answer when there is
        nothing to review."""
        if review.operation != "CREATE":
            return ALLOW  # admission decides once, at create, as on EKS
        if (review.group, review.version, review.kind) != ("", "v1", "Pod"):
            return _wrong_kind(review, "v1 Pod")
        pod = review.object
        if pod is None:
            return deny("the review carries no pod (request.object)", code=400,
                        reason="BadRequest")
        meta = as_dict(pod.get("metadata"))
        namespace = review.namespace or meta.get("namespace")
        if not isinstance(namespace, str):
            namespace = ""
        profile = choose_profile(self.cache.profiles, namespace, string_map(meta.get("labels")))
        return pod, namespace, profile

    async def mutate_pod(self, review: Review) -> Answer:
        found = self._pod(review)
        if isinstance(found, Answer):
            return found
        pod, _, profile = found
        if profile is None:
            return ALLOW
        ops = pods.mutation(pod, profile["metadata"]["name"])
        return Answer(patch=ops) if ops else ALLOW

    async def validate_pod(self, review: Review) -> Answer:
        found = self._pod(review)
        if isinstance(found, Answer):
            return found
        pod, namespace, profile = found
        if profile is None and as_dict(pod.get("spec")).get("schedulerName") != SCHEDULER_NAME:
            return ALLOW  # not a Fargate pod: none of our business
        violations = pods.unsupported(pod)
        warnings: list[str] = []
        if self.volumes is not None and pods.needs_lookups(pod):
            ebs, warnings = await pods.ebs_claims(pod, namespace, self.volumes)
            violations.extend(ebs)
        name = profile["metadata"]["name"] if profile is not None else None
        if violations:
            answer = deny(pods.denial_message(violations, name), causes=[
                {"reason": "FieldValueForbidden", "field": f, "message": why}
                for f, why in violations])
            answer.warnings = warnings
            return answer
        return Answer(warnings=warnings) if warnings else ALLOW

    async def mutate_profile(self, review: Review) -> Answer:
        if not _is_profile(review):
            return _wrong_kind(review, "FargateProfile")
        if review.operation not in ("CREATE", "UPDATE"):
            return ALLOW
        return self.profiles.mutate(review)

    async def validate_profile(self, review: Review) -> Answer:
        if not _is_profile(review):
            return _wrong_kind(review, "FargateProfile")
        if review.operation not in ("CREATE", "UPDATE"):
            return ALLOW
        return self.profiles.validate(review)

    # ---- HTTP --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(MUTATE_PODS, _endpoint(self.mutate_pod))
        app.router.add_post(VALIDATE_PODS, _endpoint(self.validate_pod))
        app.router.add_post(MUTATE_PROFILES, _endpoint(self.mutate_profile))
        app.router.add_post(VALIDATE_PROFILES, _endpoint(self.validate_profile))
        app.router.add_get("/healthz", _ok)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ok")
        return web.Response(status=503, text="profile cache not synced")


def _endpoint(review: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json(413, status_body(413, f"the AdmissionReview is larger than the "
                                               f"{MAX_BODY} bytes this webhook reads"))
        try:
            parsed = parse(body)
        except BadReview as e:
            if e.uid is None:
                return _json(400, status_body(400, f"malformed AdmissionReview: {e.message}"))
            return _json(200, encode(e.api_version, e.uid, deny(
                f"malformed AdmissionReview: {e.message}", code=400, reason="BadRequest")))
        try:
            answer = await review(parsed)
        except Exception as e:  # a bug of ours: say so, in the answer the user reads
            log.exception("review %s failed", parsed.uid)
            answer = deny(f"the Fargate admission webhook failed on this request: "
                          f"{type(e).__name__}: {e}", code=500, reason="InternalError")
        return _json(200, encode(parsed.api_version, parsed.uid, answer))

    return handle


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _is_profile(review: Review) -> bool:
    return (review.group, review.version, review.kind) == (GROUP, VERSION, "FargateProfile")


def _wrong_kind(review: Review, expected: str) -> Answer:
    """A review of something else: a misconfigured webhook rule, said loudly."""
    got = f"{review.group}/{review.version}" if review.group else review.version
    return deny(f"this webhook reviews {expected} objects, not {review.kind or '?'} of "
                f"{got or '?'}: check the webhook configuration's rules", code=400,
                reason="BadRequest")


class KubeVolumes:
    """`pods.VolumeLookup` through the API (get on PVCs, PVs and StorageClasses)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _get(self, res: Any, name: str, namespace: str | None = None
                   ) -> Mapping[str, Any] | None:
        try:
            if namespace is None:
                obj = await self._client.get(res, name)
            else:
                obj = await self._client.get(res, name, namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise
        found: dict[str, Any] = obj.to_dict()
        return found

    async def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return await self._get(PersistentVolumeClaim, name, namespace)

    async def volume(self, name: str) -> Mapping[str, Any] | None:
        return await self._get(PersistentVolume, name)

    async def storage_class(self, name: str) -> Mapping[str, Any] | None:
        return await self._get(StorageClass, name)


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class WebhookServer:
    """The app served over TLS on (host, port); port 0 picks a free one."""

    def __init__(self, webhook: AdmissionWebhook, host: str, port: int,
                 ssl_context: ssl.SSLContext) -> None:
        self.webhook = webhook
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL the API server calls (a wildcard bind is reached on loopback)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.webhook.app(), access_log=None,
                                     handle_signals=False, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl,
                           reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        log.info("Fargate admission webhook listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
