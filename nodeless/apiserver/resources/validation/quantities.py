"""Resource names and quantities of containers: requests, limits, hugepages."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.defaults import QuantityError, parse_quantity
from nodeless.apiserver.resources.names import is_qualified_name
from nodeless.apiserver.resources.validation.context import _d
from nodeless.apiserver.resources.validation.field import forbidden, invalid, required

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "storage", "pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
    "configmaps", "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
    "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage"}


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_native(name: str) -> bool:
    return "/" not in name or name.startswith("kubernetes.io/") or ".kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not _is_hugepages(name)


def _quantity(value: Any) -> Fraction | None:
    try:
        return parse_quantity(value)[0]
    except QuantityError:
        return None


def _container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            errs.append(invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and (
            name.startswith("requests.") or is_qualified_name("requests." + name)):
        errs.append(invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_resource_requirements(resources: Any, path: str) -> list[FieldError]:
    """validateResourceRequirements for containers: names, quantities, requests <= limits."""
    errs: list[FieldError] = []
    resources = _d(resources)
    limits = _d(resources.get("limits"))
    requests = _d(resources.get("requests"))
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    compute = {"cpu", "memory"}
    has_compute = has_huge = False
    for name, value in limits.items():
        p = f"{lim_path}[{name}]"
        errs.extend(_container_resource_name(str(name), p))
        q = _quantity(value)
        if q is not None and q < 0:
            errs.append(invalid(p, str(value), "must be greater than or equal to 0"))
        has_compute |= name in compute
        has_huge |= _is_hugepages(str(name))
    for name, value in requests.items():
        p = f"{req_path}[{name}]"
        errs.extend(_container_resource_name(str(name), p))
        q = _quantity(value)
        if q is not None and q < 0:
            errs.append(invalid(p, str(value), "must be greater than or equal to 0"))
        if name in limits:
            lim = _quantity(limits[name])
            if q is not None and lim is not None:
                if q != lim and not _overcommit_allowed(str(name)):
                    errs.append(invalid(req_path, str(value),
                                        f"must be equal to {name} limit of {limits[name]}"))
                elif q > lim:
                    errs.append(invalid(req_path, str(value), f"must be less than or equal to "
                                                              f"{name} limit of {limits[name]}"))
        elif not _overcommit_allowed(str(name)):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        has_compute |= name in compute
        has_huge |= _is_hugepages(str(name))
    if has_huge and not has_compute:
        errs.append(forbidden(path, "HugePages require cpu or memory"))
    return errs
