"""What pods may not reach, in an nftables table of our own.

Fargate pods cannot reach the instance metadata service (169.254.169.254: it hands out the
host's credentials) nor anything the host serves to itself. A table per agent instance,
applied and removed as a whole with `nft -f`, so two agents on one host (or a test run
beside `nodeless up`) never touch each other's rules, and stopping leaves nothing behind.

Pod traffic is recognised by the interface it enters on (our bridges share a name prefix),
which a pod cannot spoof, unlike its source address. Rules:

- forward: pod -> 169.254.169.254 and pod -> 127.0.0.0/8 rejected (admin-prohibited:
  callers fail at once with "host unreachable" instead of hanging);
- input: pod -> any of the host's own addresses rejected, except replies to connections
  the host opened (probes, port-forward) and the ports listed as allowed;
- postrouting: pod -> outside (not one of our bridges) masqueraded behind the host, while
  pod -> pod keeps its source address, as in a VPC.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

METADATA_ADDRESS = "169.254.169.254"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class FirewallError(RuntimeError):
    """nft refused our ruleset (its message is included)."""


def _ports(ports: Sequence[int]) -> str:
    return "{ " + ", ".join(str(p) for p in ports) + " }"


@dataclass(frozen=True)
class Firewall:
    """The nftables table `table` (family inet) for pods on bridges named `bridge_prefix*`."""

    table: str
    bridge_prefix: str
    allowed_tcp_ports: tuple[int, ...] = ()
    """Host ports pods may reach on the host's addresses (e.g. a node-local DNS)."""
    allowed_udp_ports: tuple[int, ...] = ()

    def ruleset(self) -> str:
        pods = f'iifname "{self.bridge_prefix}*"'
        reject = "reject with icmpx type admin-prohibited"
        allowed = []
        if self.allowed_tcp_ports:
            allowed.append(f"    tcp dport {_ports(self.allowed_tcp_ports)} accept")
        if self.allowed_udp_ports:
            allowed.append(f"    udp dport {_ports(self.allowed_udp_ports)} accept")
        allowed_rules = "\n".join(allowed)
        return f"""\
table inet {self.table} {{
  chain forward {{
    type filter hook forward priority filter - 5; policy accept;
    {pods} ip daddr {METADATA_ADDRESS} counter {reject} comment "instance metadata"
    {pods} ip daddr 127.0.0.0/8 counter drop comment "host loopback"
  }}
  chain input {{
    type filter hook input priority filter - 5; policy accept;
    iifname != "{self.bridge_prefix}*" accept
    ct state established,related accept
    icmp type echo-request accept
{allowed_rules}
    counter {reject} comment "host services"
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat + 5; policy accept;
    {pods} oifname != "{self.bridge_prefix}*" counter masquerade comment "pods to outside"
  }}
}}
"""

    def apply(self) -> None:
        """Replace our table atomically (one nft transaction) and enable IPv4 forwarding."""
        script = (f"table inet {self.table}\n"  # so that the delete never fails
                  f"delete table inet {self.table}\n" + self.ruleset())
        _nft(script)
        if IP_FORWARD.read_text().strip() != "1":
            IP_FORWARD.write_text("1\n")
            log.info("enabled net.ipv4.ip_forward for pod traffic")

    def remove(self) -> None:
        """Delete our table; a no-op if it is not there. ip_forward stays on: other
        users of this host (other agents, bridges) may rely on it."""
        _nft(f"table inet {self.table}\ndelete table inet {self.table}\n")

    def counters(self) -> dict[str, int]:
        """Packets rejected/dropped per rule comment (for tests and diagnostics)."""
        out = subprocess.run(["nft", "list", "table", "inet", self.table],
                             capture_output=True, text=True, check=True).stdout
        counts: dict[str, int] = {}
        for line in out.splitlines():
            if "counter packets" in line and 'comment "' in line:
                packets = int(line.split("counter packets", 1)[1].split()[0])
                counts[line.split('comment "', 1)[1].split('"', 1)[0]] = packets
        return counts


def _nft(script: str) -> None:
    result = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise FirewallError(f"nft -f rejected the ruleset: {result.stderr.strip()}\n{script}")
