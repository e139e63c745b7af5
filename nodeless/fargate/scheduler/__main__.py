"""`python -m nodeless.fargate.scheduler`: one scheduler replica alone, against any API
server (the tests run two of these and kill one; `nodeless up` runs it as a component)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from nodeless.cli.child import child_logging, run_child
from nodeless.fargate.scheduler.component import Scheduler, SchedulerOptions
from nodeless.kube import async_client

app = typer.Typer(add_completion=False)


@app.command()
def main(
    kubeconfig: Annotated[Path | None, typer.Option(help="Credentials; else $KUBECONFIG.")] = None,
    region: Annotated[str, typer.Option(help="Region in micro-node names.")] = "us-east-1",
    workers: Annotated[int, typer.Option(help="Pods placed at once.")] = 96,
    lease_seconds: Annotated[float, typer.Option(help="Leader lease duration.")] = 15.0,
    renew_every: Annotated[float, typer.Option(help="Leader renewal period.")] = 2.0,
    identity: Annotated[str | None, typer.Option(help="Leader identity.")] = None,
    recreate_pending_pods: Annotated[bool, typer.Option(
        help="Recreate controller-owned pods created before their profile.")] = False,
    gc_interval: Annotated[float, typer.Option(
        help="Seconds between garbage collections (also on every pod deletion).")] = 30.0,
    notify: Annotated[bool, typer.Option(
        "--notify-ready", help="Print `ready` on stdout once serving (nodeless up).")] = False,
) -> None:
    """Run the fargate-scheduler (leader-elected) until interrupted."""
    child_logging()
    options = SchedulerOptions(region=region, workers=workers, lease_seconds=lease_seconds,
                               renew_every=renew_every, identity=identity,
                               recreate_pending_pods=recreate_pending_pods,
                               gc_interval=gc_interval)

    async def run(ready: Callable[[], None] | None) -> None:
        client = async_client(kubeconfig, field_manager="fargate-scheduler")
        try:
            await Scheduler(client, options).run(ready)
        finally:
            await client.close()

    run_child(run, notify=notify)


if __name__ == "__main__":
    app()
