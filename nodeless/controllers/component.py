"""The controllers as a component of `nodeless up`: a child process of their own (a
core of their own under load), with their own token and kubeconfig in the data dir."""

from __future__ import annotations

from pathlib import Path

from nodeless.cli.child import ChildProcessComponent

USER = "system:kube-controller-manager"


def prepare_kubeconfig(data_dir: Path, url: str, ca_pem: bytes) -> Path:
    """DATA_DIR/controllers/kubeconfig for the user system:kube-controller-manager."""
    from nodeless.apiserver.tokens import add_token
    from nodeless.cli.kubeconfig import write_kubeconfig

    token = add_token(data_dir, USER, ["system:masters"])
    directory = data_dir / "controllers"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_kubeconfig(directory, url, ca_pem, token)


def controllers_component(kubeconfig: Path) -> ChildProcessComponent:
    return ChildProcessComponent(name="controllers", module="nodeless.controllers",
                                 args=["--kubeconfig", str(kubeconfig), "--notify-ready"])
