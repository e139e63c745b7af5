"""How every component reaches the Kubernetes API: an async lightkube client built from a
kubeconfig, the same on the embedded API server and on a real cluster."""

from __future__ import annotations

import os
from pathlib import Path

from lightkube import AsyncClient, KubeConfig


def async_client(kubeconfig: Path | str | None = None, *, field_manager: str = "nodeless"
                 ) -> AsyncClient:
    """A client for `kubeconfig` (else $KUBECONFIG, else in-cluster/~/.kube/config)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    config = KubeConfig.from_file(path) if path else KubeConfig.from_env()
    return AsyncClient(config, field_manager=field_manager, trust_env=False)
