"""The EKS-compatible API over HTTP: EKS's REST-JSON protocol, as botocore speaks it.

One handler serves every path: it reads the body, verifies the SigV4 signature, finds
the operation in botocore's EKS model, and calls the service. Every refusal on the way
is an `AwsError`, turned into AWS's error shape in this one place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from nodeless.apiserver.pki import PKI
from nodeless.fargate.eksapi import errors, routes, sigv4
from nodeless.fargate.eksapi.credentials import (
    credentials_path,
    ensure_aws_files,
    read_credentials,
)
from nodeless.fargate.eksapi.errors import AwsError
from nodeless.fargate.eksapi.service import EksService
from nodeless.fargate.settings import FargateSettings
from nodeless.kube import async_client

log = logging.getLogger(__name__)

FIELD_MANAGER = "nodeless-eks-api"
MAX_BODY = 1 << 20

Operation = Callable[[Mapping[str, str], dict[str, Any], Mapping[str, str]],
                     Awaitable[dict[str, Any]]]


class KeyStore:
    """The key pairs of DATA_DIR/aws/credentials, re-read when the file changes, so a
    key added there works without a restart and a removed one stops working."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._pairs: dict[str, str] = {}

    def secret_for(self, key_id: str) -> str | None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._pairs = read_credentials(self.path) if stamp else {}
            self._stamp = stamp
        return self._pairs.get(key_id)


def build_app(service: EksService, keys: KeyStore, region: str) -> web.Application:
    implemented: dict[str, Operation] = {
        "CreateFargateProfile": service.create_fargate_profile,
        "DescribeFargateProfile": service.describe_fargate_profile,
        "ListFargateProfiles": service.list_fargate_profiles,
        "DeleteFargateProfile": service.delete_fargate_profile,
        "DescribeCluster": service.describe_cluster,
        "ListClusters": service.list_clusters,
    }

    async def handle(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        operation = "?"
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise AwsError("SerializationException", (
                    f"the request body is larger than {MAX_BODY} bytes")) from exc
            sigv4.verify(sigv4.SignedRequest(request.method, request.raw_path,
                                             request.headers, body),
                         keys.secret_for, region)
            found = routes.match(request.method, request.raw_path.split("?", 1)[0])
            if found is None:
                raise AwsError("UnknownOperationException", (
                    f"{request.method} {request.path} is no EKS operation; nodeless's EKS API "
                    f"serves {', '.join(sorted(implemented))}"))
            operation = found.operation
            handler = implemented.get(operation)
            if handler is None:
                raise AwsError("InvalidRequestException", (
                    f"{operation} is not supported by nodeless's EKS API; it serves "
                    f"{', '.join(sorted(implemented))}"))
            payload = _json_body(body) if request.method in ("POST", "PUT") else {}
            result = await handler(request.query, payload, found.params)
        except AwsError as exc:
            log.info("%s %s (%s): %s %s", request.method, request.path, operation,
                     exc.code, exc.message)
            return errors.response(exc, request_id)
        except Exception:  # a bug of ours: answer like AWS, log the traceback
            log.exception("%s %s (%s) failed", request.method, request.path, operation)
            return errors.response(AwsError(
                "ServerException", "internal error in nodeless's EKS API; see its log"),
                request_id)
        return web.Response(body=orjson.dumps(result), content_type="application/json",
                            headers={"x-amzn-RequestId": request_id})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AwsError("SerializationException", f"the body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise AwsError("SerializationException", "the body must be a JSON object")
    return parsed


@dataclass
class EksApiComponent:
    """The EKS-compatible API as a component of `nodeless up`.

    Serves HTTPS with `settings.eks_cert`/`eks_key` (issued by the cluster CA) or, when
    there is no certificate, plain HTTP, which is then allowed on loopback only. Writes
    DATA_DIR/aws/{credentials,config} (DATA_DIR = `settings.state_dir`) once it knows its
    port, then calls `ready()`; `url` is set from then on (for endpoints.json).
    """

    settings: FargateSettings
    ca_bundle: Path | None = None
    """CA of eks_cert, written into the AWS config; default: DATA_DIR/pki/ca.crt."""
    service_cidr: str = "10.96.0.0/12"
    """Reported by DescribeCluster as kubernetesNetworkConfig.serviceIpv4Cidr."""
    name: str = field(default="eks-api")
    url: str | None = field(default=None, init=False)

    async def run(self, ready: Callable[[], None]) -> None:
        s = self.settings
        tls = _tls_context(s.eks_cert, s.eks_key)
        if tls is None and s.eks_host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the EKS API has no certificate (eks_cert/eks_key) and would "
                             f"serve plain HTTP on {s.eks_host}: give it one, or bind it to "
                             "127.0.0.1")
        sock = _bind(s.eks_host, s.eks_port or 0)
        port = sock.getsockname()[1]
        host = f"[{s.eks_host}]" if ":" in s.eks_host else s.eks_host
        url = f"{'https' if tls else 'http'}://{host}:{port}"
        ca = self.ca_bundle or PKI.at(s.state_dir).ca_cert
        ensure_aws_files(s.state_dir, s.region, url, ca_bundle=ca if tls else None)
        client = async_client(s.kubeconfig, field_manager=FIELD_MANAGER)
        service = EksService(client, s, service_cidr=self.service_cidr)
        runner = web.AppRunner(build_app(service, KeyStore(credentials_path(s.state_dir)),
                                         s.region), access_log=None, handle_signals=False,
                                         shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.SockSite(runner, sock, ssl_context=tls)
            await site.start()
            self.url = url
            log.info("EKS API serving %s (region %s, cluster %s); AWS config in %s/aws",
                     url, s.region, s.cluster, s.state_dir)
            ready()
            await asyncio.Event().wait()
        finally:
            self.url = None
            await runner.cleanup()
            await client.close()
            sock.close()


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None or key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 becomes a real port the AWS config can name."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock
