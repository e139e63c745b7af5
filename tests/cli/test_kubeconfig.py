"""The kubeconfig we write is one the official client loads as we mean it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kubernetes import client, config

from nodeless.apiserver.pki import ensure_pki
from nodeless.apiserver.tokens import ensure_tokens
from nodeless.cli.kubeconfig import write_kubeconfig


def test_official_client_loads_it(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    token = ensure_tokens(tmp_path)
    path = write_kubeconfig(tmp_path, "https://127.0.0.1:7443", pki.ca_pem(), token)
    assert path == tmp_path / "kubeconfig"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    contexts, current = config.list_kube_config_contexts(config_file=str(path))
    assert current["name"] == "nodeless"
    assert current["context"] == {"cluster": "nodeless", "user": "admin"}
    assert [c["name"] for c in contexts] == ["nodeless"]

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == "https://127.0.0.1:7443"
    assert cfg.verify_ssl
    assert cfg.ssl_ca_cert and Path(cfg.ssl_ca_cert).read_bytes() == pki.ca_pem()
    assert cfg.auth_settings()["BearerToken"]["value"] == f"Bearer {token}"
