"""Right-sizing a pod to a Fargate combination (FARGATE.md, "Sizing").

Pure functions, no API calls: the scheduler sizes a pod before it reserves anything, so a
pod that can never fit is rejected with a reason the user can act on instead of waiting.

The pod's request follows kube's own rule (k8s.io/component-helpers resource.PodRequests),
so a pod gets the size `kubectl describe` would lead its author to expect:

- a container requests its `resources.requests`, else its `limits` (kube defaults missing
  requests to limits), else nothing, per resource;
- native sidecars (init containers with `restartPolicy: Always`) run for the pod's whole
  life, so they add to the long-running sum; an ordinary init container runs next to the
  sidecars started before it, so its effective request includes them;
- pod request = max(largest init container, long-running sum), per resource; pod-level
  `spec.resources` (PodLevelResources), when set for a resource, replaces that sum;
- then 256 MiB of memory for the node's own components, rounded up to the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nodeless.apiserver.resources.defaults import QuantityError, format_quantity, parse_quantity

GIB = 2**30
MIB = 2**20
OVERHEAD_BYTES = 256 * MIB
"""Memory Fargate adds for kubelet, kube-proxy and containerd on the micro-node."""

_RESOURCES = ("cpu", "memory")


@dataclass(frozen=True, order=True)
class FargateSize:
    """One Fargate combination; ordered by vCPU then memory, i.e. from the cheapest up."""

    vcpu: Fraction
    memory_gib: Fraction
    """Fargate's "GB" are GiB: 0.5GB is 512Mi on the node."""

    def annotation(self) -> str:
        """The `CapacityProvisioned` value, byte for byte as EKS writes it ("1vCPU 2GB")."""
        return f"{_number(self.vcpu)}vCPU {_number(self.memory_gib)}GB"

    def cpu_quantity(self) -> str:
        """Node capacity for cpu in canonical Kubernetes form ("250m", "2")."""
        return format_quantity(self.vcpu, "DecimalSI")

    def memory_quantity(self) -> str:
        """Node capacity for memory in canonical Kubernetes form ("512Mi", "9Gi")."""
        return format_quantity(Fraction(self.memory_bytes()), "BinarySI")

    def cpu_millis(self) -> int:
        """vCPU in millicores, for host capacity accounting in integers."""
        return int(self.vcpu * 1000)

    def memory_bytes(self) -> int:
        """Memory in bytes, for host capacity accounting in integers."""
        return int(self.memory_gib * GIB)

    def __str__(self) -> str:
        return self.annotation()


def _steps(vcpu: Fraction, memories: Iterable[Fraction]) -> list[FargateSize]:
    return [FargateSize(vcpu, Fraction(m)) for m in memories]


_Q = Fraction(1, 4)
_H = Fraction(1, 2)
COMBINATIONS: tuple[FargateSize, ...] = tuple(sorted(
    _steps(_Q, [_H, Fraction(1), Fraction(2)])
    + _steps(_H, map(Fraction, range(1, 5)))
    + _steps(Fraction(1), map(Fraction, range(2, 9)))
    + _steps(Fraction(2), map(Fraction, range(4, 17)))
    + _steps(Fraction(4), map(Fraction, range(8, 31)))
    + _steps(Fraction(8), map(Fraction, range(16, 61, 4)))
    + _steps(Fraction(16), map(Fraction, range(32, 121, 8)))
))
"""Every size Fargate offers, ascending (FARGATE.md's table)."""

SMALLEST = COMBINATIONS[0]
LARGEST = COMBINATIONS[-1]


class Unschedulable(Exception):
    """The pod can never run on Fargate; `reason` follows "Pod not supported on Fargate: "."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def size_pod(spec: Mapping[str, Any]) -> FargateSize:
    """The smallest combination holding the pod's request plus the 256 MiB overhead.

    `spec` is a pod's `spec` as the API returns it. Raises Unschedulable when a quantity is
    unreadable or negative, or when the pod needs more than the largest combination."""
    cpu, memory = pod_requests(spec)
    memory_gib = (memory + OVERHEAD_BYTES) / GIB
    for size in COMBINATIONS:
        if size.vcpu >= cpu and size.memory_gib >= memory_gib:
            return size
    too_much = []
    if cpu > LARGEST.vcpu:
        too_much.append(f"{_number(cpu)} vCPU")
    if memory_gib > LARGEST.memory_gib:
        too_much.append(f"{_number(memory_gib)}GB of memory (with the 0.25GB Fargate adds "
                        f"for its own components)")
    raise Unschedulable(f"the pod requests {' and '.join(too_much)}, more than the largest "
                        f"Fargate size ({_number(LARGEST.vcpu)} vCPU "
                        f"{_number(LARGEST.memory_gib)}GB)")


def pod_requests(spec: Mapping[str, Any]) -> tuple[Fraction, Fraction]:
    """(cores, bytes) the pod requests, before the overhead, by kube's PodRequests rule."""
    declared = [False, False]
    long_running = [Fraction(0), Fraction(0)]
    for c in _list(spec, "containers"):
        long_running = _add(long_running, _container_requests(c, "container", declared))
    sidecars = [Fraction(0), Fraction(0)]
    init = [Fraction(0), Fraction(0)]
    for c in _list(spec, "initContainers"):
        reqs = _container_requests(c, "init container", declared)
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always":
            long_running = _add(long_running, reqs)
            sidecars = _add(sidecars, reqs)
            effective = sidecars
        else:
            effective = _add(sidecars, reqs)
        init = [max(a, b) for a, b in zip(init, effective, strict=True)]
    pod = [max(a, b) for a, b in zip(long_running, init, strict=True)]
    cpu, memory = _pod_level(spec, pod, declared)
    return cpu, memory


def _pod_level(spec: Mapping[str, Any], pod: list[Fraction],
               declared: list[bool]) -> list[Fraction]:
    """Apply pod-level `spec.resources` as kube's defaultPodRequests does.

    A pod-level request wins; a pod-level limit stands in for the request only when no
    container declares that resource (else the containers' aggregate is the request)."""
    resources = spec.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise Unschedulable("spec.resources is not an object")
    requests = _resource_list(resources, "requests", "the pod", "spec.resources")
    limits = _resource_list(resources, "limits", "the pod", "spec.resources")
    out = []
    for i in range(len(_RESOURCES)):
        req, lim = requests[i], limits[i]
        if req is not None:
            out.append(req)
        elif lim is not None and not declared[i]:
            out.append(lim)
        else:
            out.append(pod[i])
    return out


def _list(spec: Mapping[str, Any], key: str) -> list[Any]:
    value = spec.get(key)
    return value if isinstance(value, list) else []


def _add(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _container_requests(container: Any, kind: str, declared: list[bool]) -> list[Fraction]:
    """One container's [cpu, memory]: requests, else limits (kube's defaulting), else 0.

    Marks in `declared` the resources the container names, for pod-level limits."""
    if not isinstance(container, Mapping):
        raise Unschedulable(f"a {kind} is not an object")
    name = container.get("name", "")
    who = f'{kind} "{name}"'
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise Unschedulable(f"{who}: resources is not an object")
    requests = _resource_list(resources, "requests", who, "resources")
    limits = _resource_list(resources, "limits", who, "resources")
    out = []
    for i in range(len(_RESOURCES)):
        value = requests[i] if requests[i] is not None else limits[i]
        declared[i] = declared[i] or value is not None
        out.append(value if value is not None else Fraction(0))
    return out


def _resource_list(resources: Mapping[str, Any], field: str, who: str,
                   path: str) -> list[Fraction | None]:
    """[cpu, memory] of one ResourceList, None where the resource is absent."""
    rl = resources.get(field) or {}
    if not isinstance(rl, Mapping):
        raise Unschedulable(f"{who}: {path}.{field} is not an object")
    return [_quantity(rl[name], f"{who}: {path}.{field}.{name}") if name in rl else None
            for name in _RESOURCES]


def _quantity(raw: Any, where: str) -> Fraction:
    """An exact, non-negative quantity, or Unschedulable naming where it was found."""
    try:
        amount, _ = parse_quantity(raw)
    except QuantityError:
        raise Unschedulable(f"{where} {raw!r} is not a valid quantity") from None
    if amount < 0:
        raise Unschedulable(f"{where} {raw!r} is negative")
    return amount


def _number(x: Fraction) -> str:
    """A plain decimal ("0.25", "9", "120.25"); at most 3 decimals, rounded up."""
    if x.denominator == 1:
        return str(x.numerator)
    thousandths = -((-x.numerator * 1000) // x.denominator)
    whole, frac = divmod(thousandths, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".")
