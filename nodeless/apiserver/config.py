"""Settings of one API server process; the CLI builds this from its flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class APIServerConfig:
    data_dir: Path
    """Holds the SQLite database, the PKI (`pki/`), the tokens file and the kubeconfig."""
    host: str = "127.0.0.1"
    port: int = 6443
    store: str = "sqlite"
    """"sqlite" (embedded, in data_dir) or "etcd"."""
    etcd_endpoints: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    etcd_prefix: str = ""
    """Key prefix in etcd, so that several clusters can share one etcd."""
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    compaction_interval: float = 300.0
    """Seconds between compactions; each keeps the history of one interval, as kube does."""
    max_request_bytes: int = 3 * 1024 * 1024
    cluster_name: str = "nodeless"
    region: str = "us-east-1"
    extra_sans: list[str] = field(default_factory=list)
    """More DNS names / IPs for the serving certificate."""
