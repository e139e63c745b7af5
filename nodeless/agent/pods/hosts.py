"""The pod's /etc/hosts, written by the agent and mounted into every container (as kubelet)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

HEADER = "# Kubernetes-managed hosts file.\n"


def etc_hosts(pod_ips: Sequence[str], hostname: str, domain: str = "",
              host_aliases: Iterable[Mapping[str, Any]] = ()) -> str:
    """kubelet's managedHostsFileContent: localhost lines, the pod's IPs with its
    hostname (FQDN first when it has a subdomain), then spec.hostAliases."""
    lines = [HEADER, "127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n",
             "fe00::0\tip6-localnet\n", "fe00::0\tip6-mcastprefix\n", "fe00::1\tip6-allnodes\n",
             "fe00::2\tip6-allrouters\n"]
    for ip in pod_ips:
        names = f"{hostname}.{domain}\t{hostname}" if domain else hostname
        lines.append(f"{ip}\t{names}\n")
    aliases = list(host_aliases)
    if aliases:
        lines.append("\n# Entries added by HostAliases.\n")
        for alias in aliases:
            lines.append(f"{alias.get('ip', '')}\t{chr(9).join(alias.get('hostnames') or [])}\n")
    return "".join(lines)


def write_etc_hosts(pod_dir: str, content: str) -> str:
    """Write `<pod_dir>/etc-hosts` (0644) and return its path, for container_mounts."""
    os.makedirs(pod_dir, exist_ok=True)
    path = os.path.join(pod_dir, "etc-hosts")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path
