"""Pod networking for one agent: the CNI setup containerd uses, IP records, the firewall.

    <state>/bin/        the CNI plugin dir containerd is given: our `nodeless` wrapper and
                        a link to every stock plugin (containerd 1.6 takes one directory)
    <state>/net.d/      10-nodeless.conflist: nodeless (-> bridge + static) , portmap,
                        firewall
    <state>/pods/       one JSON record per pod (assignments.py)

Each private subnet gets a bridge whose address is the subnet's .1 (AWS reserves .1-.3
of every subnet, so no pod has it), the pods' gateway. Pods of different subnets reach
each other through the host, which routes between its bridges.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nodeless
from nodeless.agent.network import assignments
from nodeless.agent.network.assignments import Assignment, short_hash
from nodeless.agent.network.firewall import Firewall
from nodeless.fargate.ipam import reserved_addresses

log = logging.getLogger(__name__)

SYSTEM_CNI_BIN_DIR = Path("/usr/lib/cni")
NETWORK_NAME = "nodeless"
CNI_VERSION = "1.0.0"


def _gateway(subnet: str) -> str:
    return str(ipaddress.ip_network(subnet).network_address + 1)


def plugin_wrapper(python: str) -> str:
    """The executable containerd runs as CNI plugin `nodeless`. Python without `site`
    (-S) and with only our package on its path: the interpreter starts in ~25 ms instead
    of ~90 ms with the venv's site, on every sandbox start."""
    package_root = Path(nodeless.__file__).resolve().parent.parent
    code = (f"import sys; sys.path.insert(0, {str(package_root)!r}); "
            "from nodeless.agent.network.cniplugin import main; sys.exit(main())")
    return ("#!/bin/sh\n# nodeless CNI plugin (nodeless/agent/network/cniplugin.py)\n"
            f"exec {shlex.quote(python)} -I -S -c {shlex.quote(code)}\n")


@dataclass
class PodNetwork:
    """Pod networking of the agent `instance` (any string unique on this host: names of its
    bridges and nftables table derive from it, so instances never collide)."""

    state_dir: Path
    instance: str
    bridge_prefix: str = ""
    """Prefix of our bridge names (<= 11 chars); default "nl" + a hash of `instance`."""
    allowed_host_tcp_ports: tuple[int, ...] = ()
    allowed_host_udp_ports: tuple[int, ...] = ()
    cni_bin_dir_system: Path = SYSTEM_CNI_BIN_DIR
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if not self.bridge_prefix:
            self.bridge_prefix = f"nl{short_hash(self.instance, 5)}"
        assignments.bridge_name(self.bridge_prefix, "10.0.0.0/8")  # checks the length
        self.firewall = Firewall(
            table=f"nodeless_{short_hash(self.instance, 8)}", bridge_prefix=self.bridge_prefix,
            allowed_tcp_ports=self.allowed_host_tcp_ports,
            allowed_udp_ports=self.allowed_host_udp_ports)

    @property
    def plugin_dir(self) -> Path:
        return self.state_dir / "bin"

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "net.d"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    def setup(self) -> None:
        """Plugin dir, network list, firewall table. Call before containerd starts (its
        CRI reports the network not ready until a network list exists)."""
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        for plugin in self.cni_bin_dir_system.iterdir():
            link = self.plugin_dir / plugin.name
            if not link.is_symlink():
                link.unlink(missing_ok=True)
                link.symlink_to(plugin)
        wrapper = self.plugin_dir / NETWORK_NAME
        tmp = wrapper.with_suffix(".tmp")
        tmp.write_text(plugin_wrapper(self.python))
        tmp.chmod(0o755)
        os.replace(tmp, wrapper)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = self.conf_dir / "10-nodeless.conflist"
        conflist.write_text(json.dumps(self.conflist(), indent=2))
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.firewall.apply()
        log.info("pod network ready: bridges %s*, nftables table inet %s",
                 self.bridge_prefix, self.firewall.table)

    def conflist(self) -> dict[str, object]:
        return {
            "cniVersion": CNI_VERSION,
            "name": NETWORK_NAME,
            "plugins": [
                {"type": NETWORK_NAME, "podsDir": str(self.pods_dir),
                 "bridgePrefix": self.bridge_prefix,
                 "delegateDir": str(self.cni_bin_dir_system)},
                {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
                {"type": "firewall"},
            ],
        }

    def bridge_name(self, subnet: str) -> str:
        return assignments.bridge_name(self.bridge_prefix, subnet)

    def assign(self, namespace: str, name: str, ip: str, subnet_cidr: str,
               uid: str = "") -> Assignment:
        """Record that pod `namespace/name` gets `ip` in `subnet_cidr`; call before
        RunPodSandbox. With `uid` (= the sandbox's metadata.uid) the plugin refuses the
        record for a sandbox of another pod of that name. Raises ValueError if the address
        cannot be a pod's in that subnet."""
        subnet = ipaddress.ip_network(subnet_cidr)
        address = ipaddress.ip_address(ip)
        if address.version != 4 or subnet.version != 4:
            raise ValueError(f"pod {namespace}/{name}: only IPv4 pod addresses are supported "
                             f"(got {ip} in {subnet_cidr})")
        if address not in subnet:
            raise ValueError(f"pod {namespace}/{name}: IP {ip} is not in subnet {subnet}")
        if str(address) in reserved_addresses(str(subnet)):
            raise ValueError(f"pod {namespace}/{name}: IP {ip} is reserved in subnet {subnet} "
                             "(network address, .1-.3 or broadcast)")
        record = Assignment(namespace=namespace, name=name, ip=str(address),
                            subnet=str(subnet), bridge=self.bridge_name(str(subnet)),
                            gateway=_gateway(str(subnet)), uid=uid)
        assignments.write(self.pods_dir, record)
        return record

    def lookup(self, namespace: str, name: str) -> Assignment | None:
        return assignments.read(self.pods_dir, namespace, name)

    def release(self, namespace: str, name: str) -> None:
        """Forget the pod's record; call after RemovePodSandbox. Idempotent."""
        assignments.record_path(self.pods_dir, namespace, name).unlink(missing_ok=True)

    def assigned(self) -> list[Assignment]:
        """Every recorded pod (an agent restart re-reads them)."""
        found = []
        for path in sorted(self.pods_dir.glob("*.json")):
            namespace, _, name = path.stem.partition("_")
            if record := assignments.read(self.pods_dir, namespace, name):
                found.append(record)
        return found

    def bridges(self) -> list[str]:
        """Our bridges that exist on the host now."""
        out = subprocess.run(["ip", "-j", "link", "show", "type", "bridge"],
                             capture_output=True, text=True, check=True).stdout
        return [link["ifname"] for link in json.loads(out or "[]")
                if link["ifname"].startswith(self.bridge_prefix)]

    def teardown(self) -> None:
        """Remove the firewall table and our bridges (after every sandbox is removed:
        a bridge still holding pods' veths takes their connectivity with it)."""
        self.firewall.remove()
        for bridge in self.bridges():
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        log.info("pod network removed: bridges %s*, table inet %s", self.bridge_prefix,
                 self.firewall.table)
