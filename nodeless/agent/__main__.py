"""`python -m nodeless.agent`: the host agent of one host, against any API server.

It starts containerd with a config of its own (or attaches to one with
`--containerd-socket`), sets up pod networking, registers the host and runs every pod
the fargate-scheduler places here. `nodeless up` runs it as a component; on a cluster,
run one per worker host.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from nodeless.agent.host import HostOffer
from nodeless.agent.wiring import AgentSetup, run_agent
from nodeless.cli.child import child_logging, run_child

app = typer.Typer(add_completion=False)
log = logging.getLogger("nodeless.agent")


def _default_address() -> str:
    """The address the host's default route leaves from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@app.command()
def main(
    state_dir: Annotated[Path, typer.Option(help="Where the agent keeps containerd, "
                                            "network, volumes and logs.")],
    kubeconfig: Annotated[Path | None, typer.Option(help="Credentials; else $KUBECONFIG.")] = None,
    host_name: Annotated[str | None, typer.Option(help="The FargateHost name; else the "
                                                  "machine's hostname.")] = None,
    address: Annotated[str | None, typer.Option(help="The host's IP (pods' hostIP).")] = None,
    zones: Annotated[str, typer.Option(help="Comma-separated zones served; empty: every "
                                       "zone with a published subnet.")] = "",
    cpu: Annotated[str | None, typer.Option(help="vCPUs offered; else this machine's.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory offered; else this machine's.")]
    = None,
    pods: Annotated[int, typer.Option(help="Micro-nodes this host runs at most.")] = 110,
    overcommit_cpu: Annotated[float, typer.Option(help="CPU offered = cpu x this (1.0 is "
                                                  "Fargate's guarantee).")] = 1.0,
    overcommit_memory: Annotated[float, typer.Option(help="Memory offered = memory x this.")]
    = 1.0,
    containerd_socket: Annotated[Path | None, typer.Option(
        help="Attach to this containerd instead of starting one.")] = None,
    pause_image: Annotated[str | None, typer.Option(help="Sandbox (pause) image reference.")]
    = None,
    registry: Annotated[list[str] | None, typer.Option(
        help="host:port of a plain-HTTP registry (repeatable).")] = None,
    listen: Annotated[str, typer.Option(help="host:port of the agent endpoint (logs).")]
    = "127.0.0.1:10250",
    tls_cert: Annotated[Path | None, typer.Option(help="Serving certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its key.")] = None,
    client_ca: Annotated[Path | None, typer.Option(
        help="CA of the API server's client certificate; else the kubeconfig's CA.")] = None,
    stop_pods_on_exit: Annotated[bool, typer.Option(
        help="On SIGTERM remove every pod's sandbox and the pod network (nodeless down); "
        "else pods keep running and a restarted agent adopts them.")] = False,
    notify: Annotated[bool, typer.Option(
        "--notify-ready", help="Print `ready` on stdout once serving (nodeless up).")] = False,
) -> None:
    """Run the host agent until interrupted (SIGTERM: pods keep running)."""
    child_logging()
    name = (host_name or socket.gethostname()).lower()
    listen_host, _, listen_port = listen.rpartition(":")
    offer = HostOffer(name=name, address=address or _default_address(), endpoint="",
                      pods=pods, overcommit_cpu=overcommit_cpu,
                      overcommit_memory=overcommit_memory,
                      zones=[z.strip() for z in zones.split(",") if z.strip()])
    if cpu:
        offer.cpu = cpu
    if memory:
        offer.memory = memory
    setup = AgentSetup(state_dir=state_dir.resolve(), kubeconfig=kubeconfig, offer=offer,
                       containerd_socket=containerd_socket, pause_image=pause_image,
                       registries=list(registry or []), listen_host=listen_host or "127.0.0.1",
                       listen_port=int(listen_port or 10250), tls_cert=tls_cert,
                       tls_key=tls_key, client_ca=client_ca,
                       stop_pods_on_exit=stop_pods_on_exit)

    run_child(lambda ready: run_agent(setup, ready), notify=notify)


if __name__ == "__main__":
    app()
