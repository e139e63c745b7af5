"""The webhook as a component of `nodeless up` (and of `nodeless fargate run` on a real
cluster): cache, HTTPS server, registration, in that order, so that the API server is
never pointed at a webhook that would answer from an empty cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nodeless.apiserver import pki
from nodeless.cli.child import ChildProcessComponent
from nodeless.fargate.admission.cache import FargateCache
from nodeless.fargate.admission.registration import register_webhooks, webhook_configurations
from nodeless.fargate.admission.server import (
    AdmissionWebhook,
    KubeVolumes,
    WebhookServer,
    server_ssl_context,
)
from nodeless.fargate.settings import FargateSettings
from nodeless.kube import async_client

log = logging.getLogger(__name__)


def issue_serving_certificate(material: pki.PKI, directory: Path,
                              hosts: Sequence[str] = ("127.0.0.1", "localhost")
                              ) -> tuple[Path, Path]:
    """A fresh serving certificate for the webhook, signed by the cluster CA (whose
    certificate is then the caBundle); returns (cert, key) paths. Issued anew each
    start: it takes milliseconds, and nothing else trusts the leaf."""
    cert, key = pki.issue_certificate(material, "fargate-webhook", list(hosts))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / "webhook.crt", directory / "webhook.key"
    pki.write_atomic(key_path, key, 0o600)
    pki.write_atomic(cert_path, cert, 0o644)
    return cert_path, key_path


@dataclass
class WebhookComponent:
    """Serves the admission webhook from `settings` until cancelled."""

    settings: FargateSettings
    name: str = "fargate-webhook"
    webhook: AdmissionWebhook | None = field(default=None, init=False)
    """Once ready: the webhook (its cache is what reviews read)."""
    url: str = field(default="", init=False)
    """Once ready: the base URL the configurations point at."""

    async def run(self, ready: Callable[[], None]) -> None:
        s = self.settings
        if s.webhook_cert is None or s.webhook_key is None:
            raise ValueError("the Fargate webhook needs webhook_cert and webhook_key "
                             "(see issue_serving_certificate)")
        context = server_ssl_context(s.webhook_cert, s.webhook_key)
        client = async_client(s.kubeconfig, field_manager="fargate-webhook")
        cache = FargateCache()
        watching = asyncio.create_task(cache.run(client), name="fargate-webhook-cache")
        server: WebhookServer | None = None
        try:
            synced = asyncio.ensure_future(cache.wait_synced())
            await asyncio.wait([synced, watching], return_when=asyncio.FIRST_COMPLETED)
            if not synced.done():
                synced.cancel()
                watching.result()  # raises why the watch ended
            webhook = AdmissionWebhook(cache, cluster=s.cluster, vpc_id=s.vpc.id,
                                       volumes=KubeVolumes(client))
            webhook.ready = True
            server = WebhookServer(webhook, s.webhook_host, s.webhook_port, context)
            await server.start()
            if s.register_webhooks:
                ca = s.webhook_ca.read_bytes() if s.webhook_ca else None
                await register_webhooks(client, webhook_configurations(server.url, ca))
                log.info("registered the Fargate webhooks at %s", server.url)
            self.webhook, self.url = webhook, server.url
            ready()
            await watching  # runs until cancelled
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
            if server is not None:
                await server.stop()
            await client.close()


def webhook_component(settings: FargateSettings) -> ChildProcessComponent:
    """`nodeless up`'s and `nodeless fargate run`'s webhook, in a process of its own
    (`python -m nodeless.fargate.admission`): a burst of pod creations is a burst of
    reviews, whose work belongs on another core than the API server's."""
    s = settings
    if s.webhook_cert is None or s.webhook_key is None:
        raise ValueError("the Fargate webhook needs webhook_cert and webhook_key "
                         "(see issue_serving_certificate)")
    args = ["--cert", str(s.webhook_cert), "--key", str(s.webhook_key),
            "--host", s.webhook_host, "--port", str(s.webhook_port), "--cluster", s.cluster,
            "--vpc-id", s.vpc.id, "--notify-ready"]
    if s.kubeconfig is not None:  # else $KUBECONFIG or in-cluster, as this process
        args += ["--kubeconfig", str(s.kubeconfig)]
    if s.webhook_ca is not None:
        args += ["--ca", str(s.webhook_ca)]
    if not s.register_webhooks:
        args.append("--no-register")
    return ChildProcessComponent(name="fargate-webhook", module="nodeless.fargate.admission",
                                 args=args)
