"""Small readers of pod dicts shared by the modules of this package."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

from nodeless.apiserver.resources.defaults.quantities import QuantityError, parse_quantity

Pod = Mapping[str, Any]
Container = Mapping[str, Any]

GIB = 1024**3


def is_sidecar(container: Container) -> bool:
    """A native sidecar: an init container with `restartPolicy: Always`."""
    return container.get("restartPolicy") == "Always"


def init_containers(pod: Pod) -> list[Container]:
    return list((pod.get("spec") or {}).get("initContainers") or [])


def regular_containers(pod: Pod) -> list[Container]:
    return list((pod.get("spec") or {}).get("containers") or [])


def all_containers(pod: Pod) -> Iterator[Container]:
    yield from init_containers(pod)
    yield from regular_containers(pod)


def find_container(pod: Pod, name: str) -> Container | None:
    return next((c for c in all_containers(pod) if c.get("name") == name), None)


def format_pod(pod: Pod) -> str:
    """`name_namespace(uid)`, as kubelet's format.Pod writes a pod in messages."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def quantity(value: Any) -> Fraction:
    """The exact value of a resource quantity (admission has validated it)."""
    amount, _ = parse_quantity(value)
    return amount


def milli_value(value: Any) -> int:
    """Quantity.MilliValue(): rounded up to a whole milli-unit."""
    return math.ceil(quantity(value) * 1000)


def int_value(value: Any) -> int:
    """Quantity.Value(): rounded up to a whole unit."""
    return math.ceil(quantity(value))


_CAPACITY = re.compile(r"\s*([0-9.]+)\s*vCPU\s+([0-9.]+)\s*GB\s*\Z")


def parse_capacity(annotation: str) -> tuple[int, int]:
    """`0.25vCPU 0.5GB` -> (250 millicores, 512 MiB in bytes); Fargate's GB are GiB."""
    m = _CAPACITY.match(annotation or "")
    if not m:
        raise ValueError(f"CapacityProvisioned {annotation!r} is not of the form '1vCPU 2GB'")
    return math.ceil(Fraction(m.group(1)) * 1000), math.ceil(Fraction(m.group(2)) * GIB)


def provisioned_capacity(pod: Pod, node_allocatable: Mapping[str, Any] | None = None
                         ) -> tuple[int, int]:
    """(millicores, bytes) the pod may use: its CapacityProvisioned annotation, else the
    node's allocatable cpu and memory."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if "CapacityProvisioned" in annotations:
        return parse_capacity(annotations["CapacityProvisioned"])
    if node_allocatable and "cpu" in node_allocatable and "memory" in node_allocatable:
        try:
            return milli_value(node_allocatable["cpu"]), int_value(node_allocatable["memory"])
        except QuantityError as e:
            raise ValueError(f"node allocatable is not readable: {e}") from None
    raise ValueError("the pod has no CapacityProvisioned annotation and no node capacity is known")


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String() writes whole seconds: 10s, 1m20s, 5m0s."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"


def go_quote(value: str) -> str:
    """Go's %q of a string (strconv.Quote): double quotes, backslash escapes."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_map(values: Mapping[str, str]) -> str:
    """Labels or annotations as the downward API writes them: sorted `key="value"` lines."""
    return "\n".join(f"{k}={go_quote(str(values[k]))}" for k in sorted(values))
