"""Right-sizing (FARGATE.md, "Sizing"): one table, one row per rule, so a reader sees every
case a Fargate user relies on next to the size EKS would give."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from nodeless.fargate.sizing import (
    COMBINATIONS,
    LARGEST,
    OVERHEAD_BYTES,
    SMALLEST,
    FargateSize,
    Unschedulable,
    pod_requests,
    size_pod,
)


def c(name: str = "app", cpu: str | None = None, mem: str | None = None, *,
      lcpu: str | None = None, lmem: str | None = None, sidecar: bool = False) -> dict[str, Any]:
    """A container; cpu/mem are requests, lcpu/lmem limits."""
    out: dict[str, Any] = {"name": name, "image": "busybox"}
    resources: dict[str, Any] = {}
    for field, pairs in (("requests", (("cpu", cpu), ("memory", mem))),
                         ("limits", (("cpu", lcpu), ("memory", lmem)))):
        rl = {k: v for k, v in pairs if v is not None}
        if rl:
            resources[field] = rl
    if resources:
        out["resources"] = resources
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (),
        resources: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    if resources is not None:
        spec["resources"] = resources
    return spec


CASES: list[tuple[str, dict[str, Any], str]] = [
    # defaults
    ("no containers", {}, "0.25vCPU 0.5GB"),
    ("no resources", pod(c()), "0.25vCPU 0.5GB"),
    ("empty resources", pod({"name": "app", "resources": {}}), "0.25vCPU 0.5GB"),
    ("null requests", pod({"name": "app", "resources": {"requests": None}}), "0.25vCPU 0.5GB"),
    ("only other resources", pod({"name": "app", "resources": {"requests": {
        "ephemeral-storage": "1Gi"}}}), "0.25vCPU 0.5GB"),
    ("cpu only", pod(c(cpu="250m")), "0.25vCPU 0.5GB"),
    ("zero requests", pod(c(cpu="0", mem="0")), "0.25vCPU 0.5GB"),
    # exact boundaries of the smallest vCPU and the overhead
    ("256Mi + overhead = 0.5GB", pod(c(cpu="250m", mem="256Mi")), "0.25vCPU 0.5GB"),
    ("257Mi spills to 1GB", pod(c(cpu="250m", mem="257Mi")), "0.25vCPU 1GB"),
    ("768Mi -> 1GB", pod(c(mem="768Mi")), "0.25vCPU 1GB"),
    ("1792Mi -> 2GB exactly", pod(c(mem="1792Mi")), "0.25vCPU 2GB"),
    # memory-driven vCPU upgrades
    ("1793Mi needs 0.5 vCPU", pod(c(cpu="250m", mem="1793Mi")), "0.5vCPU 3GB"),
    ("0.25 vCPU with 3GB", pod(c(cpu="250m", mem="3Gi")), "0.5vCPU 4GB"),
    ("3840Mi -> 4GB exactly", pod(c(mem="3840Mi")), "0.5vCPU 4GB"),
    ("4GB needs 1 vCPU", pod(c(cpu="500m", mem="4Gi")), "1vCPU 5GB"),
    ("16GB needs 4 vCPU", pod(c(cpu="2", mem="16Gi")), "4vCPU 17GB"),
    # cpu steps
    ("251m -> 0.5 vCPU", pod(c(cpu="251m")), "0.5vCPU 1GB"),
    ("500m", pod(c(cpu="500m")), "0.5vCPU 1GB"),
    ("decimal 0.5 cpu", pod(c(cpu="0.5", mem="1Gi")), "0.5vCPU 2GB"),
    ("1001m -> 2 vCPU", pod(c(cpu="1001m")), "2vCPU 4GB"),
    ("5 vCPU -> 8", pod(c(cpu="5")), "8vCPU 16GB"),
    ("9 vCPU -> 16", pod(c(cpu="9")), "16vCPU 32GB"),
    # the overhead pushing to the next vCPU (FARGATE.md's example)
    ("1 vCPU 8GB -> 2 vCPU 9GB", pod(c(cpu="1", mem="8Gi")), "2vCPU 9GB"),
    ("1 vCPU 7.75GB fits 1 vCPU 8GB", pod(c(cpu="1", mem="7936Mi")), "1vCPU 8GB"),
    ("4 vCPU 30GB -> 8 vCPU 32GB", pod(c(cpu="4", mem="30Gi")), "8vCPU 32GB"),
    ("4 vCPU 29.75GB fits", pod(c(cpu="4", mem="30464Mi")), "4vCPU 30GB"),
    ("8 vCPU 60GB -> 16 vCPU 64GB", pod(c(cpu="8", mem="60Gi")), "16vCPU 64GB"),
    # 8 vCPU in 4GB steps, 16 vCPU in 8GB steps
    ("8 vCPU 33GB -> 36GB", pod(c(cpu="8", mem="33Gi")), "8vCPU 36GB"),
    ("8 vCPU 59.75GB fits 60GB", pod(c(cpu="8", mem="61184Mi")), "8vCPU 60GB"),
    ("16 vCPU 65GB -> 72GB", pod(c(cpu="16", mem="65Gi")), "16vCPU 72GB"),
    ("16 vCPU 119.75GB fits 120GB", pod(c(cpu="16", mem="122624Mi")), "16vCPU 120GB"),
    # units
    ("1.5Gi", pod(c(cpu="1", mem="1.5Gi")), "1vCPU 2GB"),
    ("500M is decimal", pod(c(cpu="250m", mem="500M")), "0.25vCPU 1GB"),
    ("1e9 bytes", pod(c(mem="1e9")), "0.25vCPU 2GB"),
    ("plain bytes 128974848", pod(c(mem="128974848")), "0.25vCPU 0.5GB"),
    ("JSON numbers", pod({"name": "app", "resources": {"requests": {
        "cpu": 2, "memory": 4294967296}}}), "2vCPU 5GB"),
    ("2000m == 2", pod(c(cpu="2000m", mem="3Gi")), "2vCPU 4GB"),
    # sums and init containers
    ("containers sum", pod(c("a", "300m", "1Gi"), c("b", "300m", "1Gi")), "1vCPU 3GB"),
    ("init larger than the sum", pod(c(cpu="250m", mem="512Mi"),
                                     init=(c("setup", "2", "4Gi"),)), "2vCPU 5GB"),
    ("init max per resource, not sum", pod(c(cpu="100m", mem="100Mi"), init=(
        c("i1", "1", "1Gi"), c("i2", "500m", "3Gi"))), "1vCPU 4GB"),
    ("init smaller than the sum", pod(c("a", "1", "2Gi"), c("b", "1", "2Gi"),
                                      init=(c("i", "1", "3Gi"),)), "2vCPU 5GB"),
    ("init cpu, containers memory", pod(c(cpu="250m", mem="6Gi"),
                                        init=(c("i", "2", "1Gi"),)), "2vCPU 7GB"),
    # native sidecars
    ("sidecar adds to containers", pod(c(cpu="1", mem="2Gi"),
                                       init=(c("proxy", "1", "1Gi", sidecar=True),)),
     "2vCPU 4GB"),
    ("init after a sidecar runs beside it", pod(c(cpu="250m", mem="512Mi"), init=(
        c("proxy", "500m", "1Gi", sidecar=True), c("migrate", "1", "2Gi"))), "2vCPU 4GB"),
    ("init before a sidecar runs alone", pod(c(cpu="250m", mem="512Mi"), init=(
        c("migrate", "1", "2Gi"), c("proxy", "500m", "1Gi", sidecar=True))), "1vCPU 3GB"),
    ("sidecar only", pod(init=(c("log", "250m", "256Mi", sidecar=True),)), "0.25vCPU 0.5GB"),
    # limits without requests
    ("limits without requests", pod(c(lcpu="1", lmem="2Gi")), "1vCPU 3GB"),
    ("requests win over limits", pod(c(cpu="250m", mem="256Mi", lcpu="2", lmem="4Gi")),
     "0.25vCPU 0.5GB"),
    ("per resource: request cpu, limit memory", pod(c(cpu="250m", lmem="2Gi")),
     "0.5vCPU 3GB"),
    ("init limits without requests", pod(c(), init=(c("i", lcpu="4", lmem="8Gi"),)),
     "4vCPU 9GB"),
    # pod-level resources (PodLevelResources)
    ("pod-level requests", pod(c(cpu="250m", mem="512Mi"),
                               resources={"requests": {"cpu": "2", "memory": "4Gi"}}),
     "2vCPU 5GB"),
    ("pod-level limits, containers silent", pod(c(), resources={"limits": {"cpu": "1"}}),
     "1vCPU 2GB"),
    ("pod-level limits, containers declare", pod(c(cpu="250m", mem="512Mi"), resources={
        "limits": {"cpu": "4", "memory": "8Gi"}}), "0.25vCPU 1GB"),
]


@pytest.mark.parametrize(("spec", "expected"), [(s, e) for _, s, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_size_pod(spec: dict[str, Any], expected: str) -> None:
    assert size_pod(spec).annotation() == expected


LARGEST_TEXT = "more than the largest Fargate size (16 vCPU 120GB)"
TOO_LARGE: list[tuple[str, dict[str, Any], str]] = [
    ("17 vCPU", pod(c(cpu="17")),
     f"the pod requests 17 vCPU, {LARGEST_TEXT}"),
    ("16001m", pod(c(cpu="16001m")), f"the pod requests 16.001 vCPU, {LARGEST_TEXT}"),
    ("1e3 cores", pod(c(cpu="1e3")), f"the pod requests 1000 vCPU, {LARGEST_TEXT}"),
    ("120Gi + overhead", pod(c(cpu="1", mem="120Gi")),
     "the pod requests 120.25GB of memory (with the 0.25GB Fargate adds for its own "
     f"components), {LARGEST_TEXT}"),
    ("sum over 16", pod(c("a", "6"), c("b", "6"), c("c", "6")),
     f"the pod requests 18 vCPU, {LARGEST_TEXT}"),
    ("init over 16", pod(c(), init=(c("i", "32"),)),
     f"the pod requests 32 vCPU, {LARGEST_TEXT}"),
    ("both", pod(c(cpu="20", mem="200Gi")),
     "the pod requests 20 vCPU and 200.25GB of memory (with the 0.25GB Fargate adds for "
     f"its own components), {LARGEST_TEXT}"),
]


@pytest.mark.parametrize(("spec", "reason"), [(s, r) for _, s, r in TOO_LARGE],
                         ids=[name for name, _, _ in TOO_LARGE])
def test_too_large(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unschedulable) as exc:
        size_pod(spec)
    assert exc.value.reason == reason
    assert str(exc.value) == reason


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("garbage cpu", pod(c("web", cpu="lots")),
     "container \"web\": resources.requests.cpu 'lots' is not a valid quantity"),
    ("bad suffix", pod(c("web", mem="1.5Xi")),
     "container \"web\": resources.requests.memory '1.5Xi' is not a valid quantity"),
    ("empty string", pod(c("web", mem="")),
     "container \"web\": resources.requests.memory '' is not a valid quantity"),
    ("negative memory limit", pod(c("web", lmem="-1Gi")),
     "container \"web\": resources.limits.memory '-1Gi' is negative"),
    ("negative init cpu", pod(c(), init=(c("setup", cpu="-100m"),)),
     "init container \"setup\": resources.requests.cpu '-100m' is negative"),
    ("null quantity", pod({"name": "web", "resources": {"requests": {"cpu": None}}}),
     "container \"web\": resources.requests.cpu None is not a valid quantity"),
    ("pod-level garbage", pod(c(), resources={"requests": {"memory": "x"}}),
     "the pod: spec.resources.requests.memory 'x' is not a valid quantity"),
    ("resources not an object", pod({"name": "web", "resources": "big"}),
     "container \"web\": resources is not an object"),
]


@pytest.mark.parametrize(("spec", "reason"), [(s, r) for _, s, r in BAD],
                         ids=[name for name, _, _ in BAD])
def test_bad_quantities(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unschedulable) as exc:
        size_pod(spec)
    assert exc.value.reason == reason


def test_table_is_fargates() -> None:
    """74 combinations, ascending, matching FARGATE.md's table row by row."""
    assert len(COMBINATIONS) == 74
    assert list(COMBINATIONS) == sorted(set(COMBINATIONS))
    rows: dict[Fraction, list[Fraction]] = {}
    for s in COMBINATIONS:
        rows.setdefault(s.vcpu, []).append(s.memory_gib)
    assert rows == {
        Fraction(1, 4): [Fraction(1, 2), 1, 2],
        Fraction(1, 2): [1, 2, 3, 4],
        Fraction(1): list(range(2, 9)),
        Fraction(2): list(range(4, 17)),
        Fraction(4): list(range(8, 31)),
        Fraction(8): list(range(16, 61, 4)),
        Fraction(16): list(range(32, 121, 8)),
    }
    assert FargateSize(Fraction(1, 4), Fraction(1, 2)) == SMALLEST
    assert FargateSize(Fraction(16), Fraction(120)) == LARGEST


@pytest.mark.parametrize("size", COMBINATIONS, ids=str)
def test_every_combination_is_reachable_exactly(size: FargateSize) -> None:
    """Requesting exactly a combination (less the overhead) gets that combination."""
    memory = f"{size.memory_bytes() - OVERHEAD_BYTES}"
    assert size_pod(pod(c(cpu=size.cpu_quantity(), mem=memory))) == size


@pytest.mark.parametrize(("vcpu", "gib", "annotation", "cpu", "memory", "millis", "nbytes"), [
    (Fraction(1, 4), Fraction(1, 2), "0.25vCPU 0.5GB", "250m", "512Mi", 250, 512 * 2**20),
    (Fraction(1, 2), Fraction(3), "0.5vCPU 3GB", "500m", "3Gi", 500, 3 * 2**30),
    (Fraction(1), Fraction(2), "1vCPU 2GB", "1", "2Gi", 1000, 2 * 2**30),
    (Fraction(2), Fraction(9), "2vCPU 9GB", "2", "9Gi", 2000, 9 * 2**30),
    (Fraction(16), Fraction(120), "16vCPU 120GB", "16", "120Gi", 16000, 120 * 2**30),
])
def test_formats(vcpu: Fraction, gib: Fraction, annotation: str, cpu: str, memory: str,
                 millis: int, nbytes: int) -> None:
    """The annotation as EKS writes it; node capacity in canonical Kubernetes quantities."""
    size = FargateSize(vcpu, gib)
    assert size.annotation() == annotation
    assert str(size) == annotation
    assert size.cpu_quantity() == cpu
    assert size.memory_quantity() == memory
    assert size.cpu_millis() == millis
    assert size.memory_bytes() == nbytes


def test_pod_requests_are_exact() -> None:
    """No float rounding: 500M stays 500,000,000 bytes and 250m a quarter core."""
    cpu, memory = pod_requests(pod(c("a", "250m", "500M"), c("b", "0.1", "1.5Gi")))
    assert cpu == Fraction(7, 20)
    assert memory == 500_000_000 + 3 * 2**29


def test_sizes_order_and_hash() -> None:
    """Frozen and ordered: usable as dict keys and sortable by cost class."""
    a = FargateSize(Fraction(1), Fraction(8))
    b = FargateSize(Fraction(2), Fraction(4))
    assert a < b
    assert {a: 1}[FargateSize(Fraction(1), Fraction(8))] == 1
