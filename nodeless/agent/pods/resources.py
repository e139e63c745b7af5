"""CPU and memory figures as kubelet derives them: shares, CFS quota, OOM score, QoS class."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from cri_api.v1 import api_pb2

from nodeless.agent.pods.podutil import (
    Container,
    Pod,
    init_containers,
    int_value,
    is_sidecar,
    milli_value,
    quantity,
    regular_containers,
)

CPU_PERIOD = 100_000
"""CFS period in microseconds (kubelet's default cpuCFSQuotaPeriod)."""
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_QUOTA = 1_000
GUARANTEED_OOM_SCORE_ADJ = -997
BESTEFFORT_OOM_SCORE_ADJ = 1000


def cpu_shares(millicores: int) -> int:
    """MilliCPUToShares: 1024 per CPU, at least 2."""
    if millicores <= 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, millicores * 1024 // 1000))


def cpu_quota(millicores: int, period: int = CPU_PERIOD) -> int:
    """milliCPUToQuota: 0 (no limit) without a limit, else at least 1 ms per period."""
    if millicores <= 0:
        return 0
    return max(MIN_QUOTA, millicores * period // 1000)


def _resources(container: Container, kind: str) -> Mapping[str, Any]:
    return (container.get("resources") or {}).get(kind) or {}


def qos_class(pod: Pod) -> str:
    """GetPodQOS: Guaranteed, Burstable or BestEffort from cpu/memory requests and limits."""
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for c in [*regular_containers(pod), *init_containers(pod)]:
        for name, value in _resources(c, "requests").items():
            if name in ("cpu", "memory") and quantity(value) > 0:
                requests[name] = requests.get(name, Fraction(0)) + quantity(value)
        found = set()
        for name, value in _resources(c, "limits").items():
            if name in ("cpu", "memory") and quantity(value) > 0:
                found.add(name)
                limits[name] = limits.get(name, Fraction(0)) + quantity(value)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _burstable_score(container: Container, memory_capacity: int) -> int:
    request = int_value(_resources(container, "requests").get("memory", "0"))
    return 1000 - (1000 * request) // max(memory_capacity, 1)


def oom_score_adj(pod: Pod, container: Container, memory_capacity: int) -> int:
    """GetContainerOOMScoreAdjust: -997 Guaranteed, 1000 BestEffort, in between for
    Burstable by memory request over the node's capacity (a sidecar never above its main
    containers). containerd's restrict_oom_score_adj raises it to its own if lower."""
    qos = (pod.get("status") or {}).get("qosClass") or qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BESTEFFORT_OOM_SCORE_ADJ
    score = _burstable_score(container, memory_capacity)
    if is_sidecar(container):
        for c in regular_containers(pod):
            score = min(score, _burstable_score(c, memory_capacity))
    if score < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if score == BESTEFFORT_OOM_SCORE_ADJ:
        return score - 1
    return score


def container_resources(pod: Pod, container: Container, memory_capacity: int
                        ) -> api_pb2.LinuxContainerResources:
    """calculateLinuxResources: shares from the cpu request (the limit without one), CFS
    quota from the cpu limit, memory limit, OOM score. No limit leaves the container
    bounded by the pod cgroup only (the provisioned capacity)."""
    requests, limits = _resources(container, "requests"), _resources(container, "limits")
    cpu_limit = milli_value(limits["cpu"]) if "cpu" in limits else 0
    if "cpu" not in requests and "cpu" in limits:
        shares = cpu_shares(cpu_limit)
    else:
        shares = cpu_shares(milli_value(requests.get("cpu", "0")))
    return api_pb2.LinuxContainerResources(
        cpu_period=CPU_PERIOD,
        cpu_quota=cpu_quota(cpu_limit),
        cpu_shares=shares,
        memory_limit_in_bytes=int_value(limits["memory"]) if "memory" in limits else 0,
        oom_score_adj=oom_score_adj(pod, container, memory_capacity),
    )


def sandbox_resources(cpu_millicores: int, memory_bytes: int) -> api_pb2.LinuxContainerResources:
    """Pod-level resources handed to the runtime: the provisioned capacity."""
    return api_pb2.LinuxContainerResources(
        cpu_period=CPU_PERIOD, cpu_quota=cpu_quota(cpu_millicores),
        cpu_shares=cpu_shares(cpu_millicores), memory_limit_in_bytes=memory_bytes)
