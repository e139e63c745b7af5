"""`nodeless fargate run`: the Fargate components against any cluster.

What `nodeless up` runs next to its own API server, run here against whatever cluster a
kubeconfig (or the pod's service account) names: a kind/k3s/EKS cluster, or a second
nodeless. `deploy/` runs exactly this command in a Deployment.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from nodeless import aiotasks
from nodeless.cli.supervisor import run_until_signalled
from nodeless.fargate.settings import FargateSettings

log = logging.getLogger("nodeless.fargate")

app = typer.Typer(
    name="fargate",
    help="Run the Fargate components (profiles, webhook, EKS API) against any cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_STATE_DIR = Path("~/.local/share/nodeless-fargate")


@app.command()
def run(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(envvar="KUBECONFIG", show_default=False,
                     help="Cluster to run against (default: in-cluster service account)."),
    ] = None,
    state_dir: Annotated[
        Path,
        typer.Option(envvar="NODELESS_FARGATE_STATE_DIR",
                     help="Generated certificates, AWS credentials, markers."),
    ] = DEFAULT_STATE_DIR,
    cluster: Annotated[str, typer.Option(help="Cluster name (in ARNs and the EKS API).")
                       ] = "nodeless",
    region: Annotated[str, typer.Option(help="AWS region the cluster claims.")] = "us-east-1",
    account_id: Annotated[str, typer.Option(help="AWS account the ARNs name.")
                          ] = "000000000000",
    vpc_file: Annotated[
        Path | None,
        typer.Option(show_default=False,
                     help="The VPC (as DATA_DIR/vpc.yaml); default 10.0.0.0/16, two private "
                          "subnets and one public. Written there if missing."),
    ] = None,
    webhook_host: Annotated[str, typer.Option(help="Address the webhook listens on.")
                            ] = "127.0.0.1",
    webhook_port: Annotated[int, typer.Option(help="Webhook port; 0: a free one.")] = 6445,
    webhook_url: Annotated[
        str | None,
        typer.Option(show_default=False,
                     help="Base URL the API server calls the webhook at (default: where it "
                          "listens)."),
    ] = None,
    webhook_service: Annotated[
        str | None,
        typer.Option(show_default=False,
                     help="NAMESPACE/NAME[:PORT] of the Service in front of the webhook "
                          "(in a cluster; instead of --webhook-url)."),
    ] = None,
    cert_dir: Annotated[
        Path | None,
        typer.Option(show_default=False,
                     help="tls.crt, tls.key and ca.crt of the webhook (a kubernetes.io/tls "
                          "Secret); default: generated in the state dir."),
    ] = None,
    register_webhooks: Annotated[
        bool,
        typer.Option("--register-webhooks/--no-register-webhooks",
                     help="Write the webhook configurations (off: apply deploy/webhooks.yaml)."),
    ] = True,
    eks_api: Annotated[bool, typer.Option("--eks-api/--no-eks-api",
                                          help="Serve the EKS-compatible API.")] = True,
    eks_host: Annotated[str, typer.Option(help="Address the EKS API listens on.")
                        ] = "127.0.0.1",
    eks_port: Annotated[int, typer.Option(help="Port of the EKS API.")] = 6444,
    install_crds: Annotated[
        bool,
        typer.Option("--install-crds/--no-install-crds",
                     help="Install the CRDs (off: they come from deploy/crds.yaml)."),
    ] = True,
    default_profile: Annotated[
        bool,
        typer.Option("--default-profile/--no-default-profile",
                     help="Create fp-default (namespaces default, kube-system) once."),
    ] = False,
    profile_activation_delay: Annotated[
        float, typer.Option(help="Seconds a new profile stays CREATING.")] = 0.0,
) -> None:
    """Run the profile controller, the admission webhook and the EKS API until stopped."""
    from nodeless.fargate import vpc as vpc_mod

    _setup_logging()
    state = state_dir.expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if webhook_url and webhook_service:
        raise _fail("give --webhook-url or --webhook-service, not both")
    try:
        service = _parse_service(webhook_service) if webhook_service else None
        vpc = (vpc_mod.load_vpc(vpc_file, cluster, region) if vpc_file
               else vpc_mod.default_vpc(cluster, region))
    except ValueError as e:
        raise _fail(str(e)) from None
    hosts = ["127.0.0.1", "localhost"]
    if webhook_host not in ("0.0.0.0", "::", ""):
        hosts.append(webhook_host)
    if service:
        ns, name, _port = service
        hosts += [f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
    if webhook_url:
        from urllib.parse import urlparse

        hosts.append(urlparse(webhook_url).hostname or "")
    cert, key, ca = _webhook_tls(cert_dir, state, hosts)
    eks_cert, eks_key = _eks_tls(state, eks_host) if eks_api else (None, None)
    settings = FargateSettings(
        kubeconfig=kubeconfig.expanduser().resolve() if kubeconfig else None,
        vpc=vpc, cluster=cluster, region=region, account_id=account_id, state_dir=state,
        webhook_host=webhook_host, webhook_port=webhook_port,
        webhook_cert=cert, webhook_key=key, webhook_ca=ca,
        register_webhooks=register_webhooks and not (webhook_url or service),
        eks_host=eks_host, eks_port=eks_port if eks_api else None,
        eks_cert=eks_cert, eks_key=eks_key,
        default_profile=default_profile,
        default_role_arn=f"arn:aws:iam::{account_id}:role/nodeless-pod-execution-role",
    )
    from nodeless.fargate.components import fargate_components

    parts = fargate_components(settings, install_crds=install_crds,
                               activation_delay=profile_activation_delay)
    target: str | Any = webhook_url
    if service:
        from nodeless.fargate.admission import ServiceRef

        target = ServiceRef(service[0], service[1], service[2])
    if register_webhooks and target:
        parts.append(WebhookRegistration(settings, target))

    def ready() -> None:
        log.info("the Fargate components are running against %s",
                 kubeconfig or "the in-cluster API")

    raise typer.Exit(aiotasks.run(run_until_signalled(parts, on_ready=ready)))


@dataclass
class WebhookRegistration:
    """Points the webhook configurations at `target` (a URL or a Service) instead of
    where the webhook listens: behind a Service the two differ. Runs after the webhook
    is serving, as the webhook's own registration would."""

    settings: FargateSettings
    target: Any
    name: str = field(default="fargate-webhook-registration")

    async def run(self, ready: Callable[[], None]) -> None:
        from nodeless.fargate.admission import register_webhooks, webhook_configurations
        from nodeless.kube import async_client

        ca = self.settings.webhook_ca.read_bytes() if self.settings.webhook_ca else None
        client = async_client(self.settings.kubeconfig, field_manager="fargate-webhook")
        try:
            await register_webhooks(client, webhook_configurations(self.target, ca))
            log.info("registered the Fargate webhooks at %s", self.target)
            ready()
            await asyncio.Event().wait()
        finally:
            await client.close()


def _parse_service(value: str) -> tuple[str, str, int]:
    ns, sep, rest = value.partition("/")
    name, _, port = rest.partition(":")
    if not sep or not ns or not name:
        raise ValueError(f"--webhook-service {value!r}: want NAMESPACE/NAME[:PORT]")
    try:
        return ns, name, int(port or 443)
    except ValueError:
        raise ValueError(f"--webhook-service {value!r}: the port is not a number") from None


def _webhook_tls(cert_dir: Path | None, state: Path, hosts: list[str]
                 ) -> tuple[Path, Path, Path]:
    """(cert, key, CA): from --cert-dir, else issued by a CA of the state dir's own."""
    if cert_dir is not None:
        files = (cert_dir / "tls.crt", cert_dir / "tls.key", cert_dir / "ca.crt")
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise _fail(f"--cert-dir lacks {', '.join(missing)}")
        return files
    from nodeless.apiserver.pki import ensure_leaf, ensure_pki

    pki = ensure_pki(state)
    cert, key = ensure_leaf(pki, state / "fargate" / "webhook", "fargate-webhook",
                            list(dict.fromkeys(h for h in hosts if h)))
    return cert, key, pki.ca_cert


def _eks_tls(state: Path, host: str) -> tuple[Path, Path]:
    from nodeless.apiserver.pki import ensure_leaf, ensure_pki

    hosts = ["127.0.0.1", "localhost", "::1"]
    if host not in ("0.0.0.0", "::", ""):
        hosts.append(host)
    return ensure_leaf(ensure_pki(state), state / "fargate" / "eks", "eks-api",
                       list(dict.fromkeys(hosts)))


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def _setup_logging() -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for chatty in ("httpx", "httpx2", "httpcore", "botocore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if sys.stderr.isatty():
        root.addHandler(RichHandler(console=err, show_path=False, rich_tracebacks=True))
    else:  # a container's log or a test's pipe: plain lines
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.addHandler(handler)
