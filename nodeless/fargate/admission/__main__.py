"""`python -m nodeless.fargate.admission`: the Fargate admission webhook alone, against
any API server. `nodeless up` runs it so, as a child process: every pod created is a
review it answers, and that work is better on the other core than in the API server's
process, which is busy serving the request that called it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from nodeless.cli.child import child_logging, run_child
from nodeless.fargate.admission.component import WebhookComponent
from nodeless.fargate.settings import FargateSettings
from nodeless.fargate.vpc import VPC

app = typer.Typer(add_completion=False)


@app.command()
def main(
    cert: Annotated[Path, typer.Option(help="Serving certificate (PEM).")],
    key: Annotated[Path, typer.Option(help="Its private key (PEM).")],
    kubeconfig: Annotated[Path | None, typer.Option(help="Credentials; else $KUBECONFIG.")] = None,
    ca: Annotated[Path | None, typer.Option(
        help="CA of the certificate: the caBundle of the registered configurations.")] = None,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on; 0: a free one.")] = 0,
    cluster: Annotated[str, typer.Option(help="The EKS cluster name pods are told.")] = "nodeless",
    vpc_id: Annotated[str, typer.Option(help="The VPC the profiles' subnets are in.")] = "",
    register: Annotated[bool, typer.Option(
        help="Write the webhook configurations pointing at this server.")] = True,
    notify: Annotated[bool, typer.Option(
        "--notify-ready", help="Print `ready` on stdout once serving (nodeless up).")] = False,
) -> None:
    """Serve the Fargate admission webhook until interrupted."""
    child_logging()
    settings = FargateSettings(
        kubeconfig=kubeconfig, vpc=VPC(id=vpc_id, cidr=""), cluster=cluster,
        webhook_host=host, webhook_port=port, webhook_cert=cert, webhook_key=key,
        webhook_ca=ca, register_webhooks=register)

    async def run(ready: Callable[[], None] | None) -> None:
        await WebhookComponent(settings).run(ready or (lambda: None))

    run_child(run, notify=notify)


if __name__ == "__main__":
    app()
