"""ClusterIP and NodePort allocation for Services, as kube-apiserver does it.

Each allocated address or port is one key in the store, created with create-if-absent,
so two API servers on one etcd can never hand out the same value (the model of kube's
networking.k8s.io IPAddress objects). A random starting point and a scan, as in kube's
allocators, keeps allocation O(1) on average while the range is sparse.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from typing import Any

import orjson

from nodeless.apiserver import errors
from nodeless.apiserver.storage.protocol import KeyExistsError, KeyNotFoundError, Store

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"


class RangeFull(Exception):
    pass


class _KeyedAllocator:
    """Values of a finite range, each allocated by creating one key in the store."""

    def __init__(self, store: Store, prefix: str, size: int) -> None:
        self._store = store
        self._prefix = prefix
        self._size = size

    def _key(self, value: str) -> str:
        return self._prefix + value

    def _value(self, offset: int) -> str:
        raise NotImplementedError

    async def allocate_specific(self, value: str, owner: str) -> bool:
        """Claim `value` for `owner`; False if someone else holds it."""
        try:
            await self._store.create(self._key(value), orjson.dumps({"owner": owner}))
            return True
        except KeyExistsError:
            current = await self._store.get(self._key(value))
            return current is not None and orjson.loads(current.value).get("owner") == owner

    async def allocate_next(self, owner: str) -> str:
        start = random.randrange(self._size)
        for i in range(self._size):
            value = self._value((start + i) % self._size)
            if value is None:
                continue
            try:
                await self._store.create(self._key(value), orjson.dumps({"owner": owner}))
                return value
            except KeyExistsError:
                continue
        raise RangeFull()

    async def release(self, value: str) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self._store.delete(self._key(value))


class ClusterIPAllocator(_KeyedAllocator):
    def __init__(self, store: Store, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        super().__init__(store, IP_PREFIX, self.network.num_addresses)

    def _value(self, offset: int) -> str | None:
        # The network address and broadcast address are never handed out.
        if offset == 0 or offset == self.network.num_addresses - 1:
            return None
        return str(self.network.network_address + offset)

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    def kubernetes_service_ip(self) -> str:
        """The first address, reserved for the `kubernetes` Service as kube does."""
        return str(self.network.network_address + 1)


class NodePortAllocator(_KeyedAllocator):
    def __init__(self, store: Store, low: int, high: int) -> None:
        self.low, self.high = low, high
        super().__init__(store, PORT_PREFIX, high - low + 1)

    def _value(self, offset: int) -> str:
        return str(self.low + offset)


def _owner(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}/{meta.get('uid', '')}"


class ServiceAllocations:
    """Allocates and releases everything a Service holds: cluster IPs and node ports."""

    def __init__(self, store: Store, cidr: str, ports: tuple[int, int]) -> None:
        self.ips = ClusterIPAllocator(store, cidr)
        self.ports = NodePortAllocator(store, *ports)

    async def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None = None) -> list[
        tuple[str, str]
    ]:
        """Fill in clusterIP(s) and nodePorts; returns what was newly taken, to release
        if the write fails. Raises Invalid naming the field when a value is taken."""
        taken: list[tuple[str, str]] = []
        spec = svc.setdefault("spec", {})
        name = svc["metadata"]["name"]
        owner = _owner(svc)
        svc_type = spec.get("type", "ClusterIP")
        old_spec = (old or {}).get("spec") or {}
        try:
            if svc_type != "ExternalName":
                ip = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
                old_ip = old_spec.get("clusterIP")
                if old_ip and old_ip not in ("", "None") and ip in (None, ""):
                    ip = old_ip
                if ip in (None, ""):
                    try:
                        ip = await self.ips.allocate_next(owner)
                    except RangeFull:
                        raise errors.Invalid("Service", name, [errors.invalid(
                            "spec.clusterIPs", "", "no more addresses in the service range "
                            f"{self.ips.network}")]) from None
                    taken.append(("ip", ip))
                elif ip != "None" and ip != old_ip:
                    if not self.ips.contains(ip):
                        raise errors.Invalid("Service", name, [errors.invalid(
                            "spec.clusterIPs", [ip], "failed to allocate IP "
                            f"{ip}: the provided IP ({ip}) is not in the valid range. "
                            f"The range of valid IPs is {self.ips.network}")])
                    if not await self.ips.allocate_specific(ip, owner):
                        raise errors.Invalid("Service", name, [errors.invalid(
                            "spec.clusterIPs", [ip],
                            f"failed to allocate IP {ip}: provided IP is already allocated")])
                    taken.append(("ip", ip))
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
            if svc_type in ("NodePort", "LoadBalancer"):
                old_ports = {
                    (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                    for p in old_spec.get("ports") or [] if p.get("nodePort")
                }
                for i, port in enumerate(spec.get("ports") or []):
                    node_port = port.get("nodePort")
                    previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if not node_port and previous:
                        node_port = previous
                    if not node_port:
                        try:
                            node_port = int(await self.ports.allocate_next(owner))
                        except RangeFull:
                            raise errors.Invalid("Service", name, [errors.invalid(
                                f"spec.ports[{i}].nodePort", 0,
                                "no more ports in the node port range "
                                f"{self.ports.low}-{self.ports.high}")]) from None
                        taken.append(("port", str(node_port)))
                    elif node_port not in old_ports.values():
                        if not self.ports.low <= int(node_port) <= self.ports.high:
                            raise errors.Invalid("Service", name, [errors.invalid(
                                f"spec.ports[{i}].nodePort", node_port,
                                f"provided port is not in the valid range. The range of valid "
                                f"ports is {self.ports.low}-{self.ports.high}")])
                        if not await self.ports.allocate_specific(str(node_port), owner):
                            raise errors.Invalid("Service", name, [errors.invalid(
                                f"spec.ports[{i}].nodePort", node_port,
                                "provided port is already allocated")])
                        taken.append(("port", str(node_port)))
                    port["nodePort"] = int(node_port)
        except BaseException:
            await self.release_values(taken)
            raise
        return taken

    async def release_values(self, values: list[tuple[str, str]]) -> None:
        for kind, value in values:
            await (self.ips if kind == "ip" else self.ports).release(value)

    def held(self, svc: dict[str, Any]) -> list[tuple[str, str]]:
        """What a stored Service holds."""
        spec = svc.get("spec") or {}
        values: list[tuple[str, str]] = []
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP")
                                              else []):
            if ip and ip != "None":
                values.append(("ip", ip))
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                values.append(("port", str(port["nodePort"])))
        return values

    async def release_dropped(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """After an update, free what the old Service held and the new one does not."""
        kept = set(self.held(new))
        await self.release_values([v for v in self.held(old) if v not in kept])
