"""The admin kubeconfig that `nodeless up` hands to users and tools.

The CA is embedded (certificate-authority-data) rather than referenced by path, so the
file keeps working when copied elsewhere; it holds the admin token, hence mode 0600.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from nodeless.apiserver.pki import write_atomic

KUBECONFIG_FILE = "kubeconfig"


def kubeconfig_path(data_dir: Path) -> Path:
    return Path(data_dir) / KUBECONFIG_FILE


def build_kubeconfig(
    server: str, ca_pem: bytes, token: str, *, cluster: str = "nodeless", user: str = "admin"
) -> dict[str, object]:
    """A kubeconfig with one cluster, one user and one context, all current."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }


def write_kubeconfig(
    data_dir: Path,
    server: str,
    ca_pem: bytes,
    token: str,
    *,
    cluster: str = "nodeless",
    user: str = "admin",
) -> Path:
    """Write DATA_DIR/kubeconfig (0600) and return its path."""
    path = kubeconfig_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = build_kubeconfig(server, ca_pem, token, cluster=cluster, user=user)
    write_atomic(path, yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    return path
