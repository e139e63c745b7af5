"""Endpoints and EndpointSlices (discovery.k8s.io/v1) for every Service with a selector:
the IPs of the pods it selects, ready ones as addresses, the others as
notReadyAddresses (or, in a slice, with `ready: false`), each port resolved by number or
by the name of the pod's containerPort. On Fargate a pod's IP is its micro-node's IP: the
target a load balancer uses.

Services without a selector are left alone (their Endpoints are the user's). Endpoints
go with their Service; slices carry an owner reference, so the garbage collector removes
them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Endpoints, Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice

from nodeless.controllers.base import Controller, is_not_found
from nodeless.controllers.expectations import Expectations
from nodeless.controllers.informer import Obj, SharedInformers, key_of, plain, split_key
from nodeless.controllers.objects import (
    controller_ref,
    is_deleting,
    is_ready,
    is_terminal,
    labels,
    owner_reference,
)
from nodeless.controllers.selectors import map_selector_matches

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def resolve_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod's port for a Service port: targetPort as a number, or the containerPort
    of that name (None when the pod has none: it is not an endpoint of that port)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _port_entry(service_port: Obj, number: int) -> Obj:
    entry = {"port": number, "protocol": service_port.get("protocol", "TCP")}
    if service_port.get("name"):
        entry["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        entry["appProtocol"] = service_port["appProtocol"]
    return entry


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"]}


def endpoint_groups(service: Obj, pods: list[Obj]) -> dict[tuple[Any, ...], list[tuple[Obj, bool]]]:
    """Pods grouped by their resolved port list: {ports: [(pod, ready)]}."""
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[Any, ...], list[tuple[Obj, bool]]] = {}
    for pod in pods:
        if not (pod.get("status") or {}).get("podIP") or is_terminal(pod):
            continue
        ready = False if is_deleting(pod) and not publish else publish or is_ready(pod)
        ports = []
        for sp in spec.get("ports") or []:
            number = resolve_port(sp, pod)
            if number is not None:
                ports.append(_port_entry(sp, number))
        if spec.get("ports") and not ports:
            continue
        key = tuple(sorted((p.get("name", ""), p["port"], p["protocol"],
                            p.get("appProtocol", "")) for p in ports))
        groups.setdefault(key, []).append((pod, ready))
    return groups


def _ports_of(key: tuple[Any, ...]) -> list[Obj]:
    out = []
    for name, port, protocol, app in key:
        entry: Obj = {"port": port, "protocol": protocol}
        if name:
            entry["name"] = name
        if app:
            entry["appProtocol"] = app
        out.append(entry)
    return out


def endpoints_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    subsets = []
    for key, members in sorted(endpoint_groups(service, pods).items()):
        ready, not_ready = [], []
        for pod, is_up in sorted(members, key=lambda m: m[0]["status"]["podIP"]):
            if is_deleting(pod) and not (service.get("spec") or {}).get(
                    "publishNotReadyAddresses"):
                continue  # Endpoints drop terminating pods; slices keep them
            address: Obj = {"ip": pod["status"]["podIP"], "targetRef": _target_ref(pod)}
            if (pod.get("spec") or {}).get("nodeName"):
                address["nodeName"] = pod["spec"]["nodeName"]
            (ready if is_up else not_ready).append(address)
        if not ready and not not_ready:
            continue
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if key:
            subset["ports"] = _ports_of(key)
        subsets.append(subset)
    return subsets


def slice_endpoints(members: list[tuple[Obj, bool]]) -> list[Obj]:
    out = []
    for pod, ready in sorted(members, key=lambda m: m[0]["status"]["podIP"]):
        terminating = is_deleting(pod)
        endpoint: Obj = {"addresses": [pod["status"]["podIP"]],
                         "conditions": {"ready": ready and not terminating,
                                        "serving": is_ready(pod),
                                        "terminating": terminating},
                         "targetRef": _target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            endpoint["nodeName"] = pod["spec"]["nodeName"]
        out.append(endpoint)
    return out


class EndpointsController(Controller):
    """Endpoints and EndpointSlices are one controller here: both are a function of the
    same Service and the same pods."""

    name = "endpoints"
    workers = 2

    def __init__(self, client: Any, informers: SharedInformers) -> None:
        super().__init__(client, informers)
        self.services = informers.get(Service)
        self.pods = informers.get(Pod)
        self.endpoints = informers.get(Endpoints)
        self.slices = informers.get(EndpointSlice)
        self.services.add_handler(lambda o, n: self.enqueue(key_of(n or o)))  # type: ignore[arg-type]
        self.pods.add_handler(self._on_pod)
        self.slices.add_handler(self._on_slice)
        self.expectations = Expectations()  # slices created, not yet seen

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        if old is not None and new is not None and labels(old) == labels(new) and (
                old.get("status") == new.get("status")) and is_deleting(old) == is_deleting(new):
            return
        for svc in self.services.list(pod["metadata"]["namespace"]):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and any(map_selector_matches(selector, labels(p))
                                for p in (old, new) if p is not None):
                self.enqueue(key_of(svc))

    def _on_slice(self, old: Obj | None, new: Obj | None) -> None:
        s = new or old
        assert s is not None
        if labels(s).get(MANAGED_BY_LABEL) == MANAGED_BY and labels(s).get(SERVICE_NAME_LABEL):
            key = f"{s['metadata']['namespace']}/{labels(s)[SERVICE_NAME_LABEL]}"
            if old is None:
                self.expectations.creation_observed(key)
            self.enqueue(key)

    async def sync(self, key: str) -> None:
        service = self.services.get(key)
        namespace, name = split_key(key)
        assert namespace is not None
        if service is None:
            await self._delete_endpoints(namespace, name)
            return
        selector = (service.get("spec") or {}).get("selector")
        if not selector or is_deleting(service):
            return
        pods = [p for p in self.pods.list(namespace) if map_selector_matches(selector, labels(p))]
        await self._sync_endpoints(service, pods)
        if self.expectations.satisfied(key):  # else the slice just made comes back
            await self._sync_slices(service, pods)

    async def _delete_endpoints(self, namespace: str, name: str) -> None:
        if self.endpoints.get(f"{namespace}/{name}") is None:
            return
        try:
            await self.client.delete(Endpoints, name, namespace=namespace)
        except ApiError as exc:
            if not is_not_found(exc):
                raise

    async def _sync_endpoints(self, service: Obj, pods: list[Obj]) -> None:
        meta = service["metadata"]
        subsets = endpoints_subsets(service, pods)
        wanted_labels = dict(meta.get("labels") or {})
        if (service.get("spec") or {}).get("clusterIP") == "None":
            wanted_labels[HEADLESS_LABEL] = ""
        current = self.endpoints.get(key_of(service))
        if current is not None and (current.get("subsets") or []) == subsets and (
                current["metadata"].get("labels") or {}) == wanted_labels:
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "labels": wanted_labels or None},
                "subsets": subsets or None}
        if current is None:
            try:
                await self.client.create(Endpoints.from_dict(body), namespace=meta["namespace"])
                return
            except ApiError as exc:
                if exc.status.code != 409:
                    raise
                current = plain(await self.client.get(Endpoints, meta["name"],
                                                      namespace=meta["namespace"]))
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.client.replace(Endpoints.from_dict(body), namespace=meta["namespace"])

    async def _sync_slices(self, service: Obj, pods: list[Obj]) -> None:
        meta = service["metadata"]
        uid = meta["uid"]
        existing = [s for s in self.slices.list(meta["namespace"])
                    if labels(s).get(SERVICE_NAME_LABEL) == meta["name"]
                    and labels(s).get(MANAGED_BY_LABEL) == MANAGED_BY
                    and (controller_ref(s) or {}).get("uid") == uid]
        groups = endpoint_groups(service, pods)
        if not groups:
            groups = {(): []}  # an empty slice says "no endpoints", as kube writes it
        wanted_labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"],
                         MANAGED_BY_LABEL: MANAGED_BY}
        spare = sorted(existing, key=lambda s: s["metadata"]["name"])
        writes, creates = [], 0
        for key in sorted(groups):
            body: Obj = {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"namespace": meta["namespace"], "labels": wanted_labels,
                             "ownerReferences": [owner_reference(service)]},
                "addressType": "IPv4",
                "endpoints": slice_endpoints(groups[key]),
                "ports": _ports_of(key) or None,
            }
            match = next((s for s in spare if tuple(sorted(
                (p.get("name", ""), p.get("port"), p.get("protocol", "TCP"),
                 p.get("appProtocol", "")) for p in s.get("ports") or [])) == key), None)
            match = match or (spare[0] if spare else None)
            if match is None:
                body["metadata"]["generateName"] = f"{meta['name']}-"
                creates += 1
                writes.append(self.client.create(EndpointSlice.from_dict(body),
                                                 namespace=meta["namespace"]))
                continue
            spare.remove(match)
            if (match.get("endpoints") or []) == body["endpoints"] and (
                    match.get("ports") or None) == body["ports"] and labels(match) == wanted_labels:
                continue
            body["metadata"]["name"] = match["metadata"]["name"]
            body["metadata"]["resourceVersion"] = match["metadata"]["resourceVersion"]
            writes.append(self.client.replace(EndpointSlice.from_dict(body),
                                              namespace=meta["namespace"]))
        for s in spare:
            writes.append(self.client.delete(EndpointSlice, s["metadata"]["name"],
                                             namespace=meta["namespace"]))
        self.expectations.expect_creations(key_of(service), creates)
        results = await asyncio.gather(*writes, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not is_not_found(result):
                self.expectations.forget(key_of(service))
                raise result
