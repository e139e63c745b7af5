"""`python -m nodeless.controllers`: the workload controllers against any API server
(`nodeless up` runs this as a child process; on a real cluster kube-controller-manager
does this work and this is not started)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from nodeless.cli.child import child_logging, run_child
from nodeless.controllers.manager import ControllerManager, ManagerOptions
from nodeless.kube import async_client

app = typer.Typer(add_completion=False)


@app.command()
def main(
    kubeconfig: Annotated[Path | None, typer.Option(help="Credentials; else $KUBECONFIG.")] = None,
    job_backoff: Annotated[float, typer.Option(
        help="Seconds before a failed Job pod is replaced, doubled per failure.")] = 10.0,
    notify: Annotated[bool, typer.Option(
        "--notify-ready", help="Print `ready` on stdout once serving (nodeless up).")] = False,
) -> None:
    """Run Deployment, ReplicaSet, Job, DaemonSet, Endpoints, garbage collection and
    namespace controllers until interrupted."""
    child_logging()

    async def run(ready: Callable[[], None] | None) -> None:
        client = async_client(kubeconfig, field_manager="kube-controller-manager")
        try:
            await ControllerManager(client, ManagerOptions(job_backoff=job_backoff)).run(ready)
        finally:
            await client.close()

    run_child(run, notify=notify)


if __name__ == "__main__":
    app()
