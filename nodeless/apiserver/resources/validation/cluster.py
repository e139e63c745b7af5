"""Other core and cluster kinds: Namespace, Node, PersistentVolumeClaim, Lease."""

from __future__ import annotations

from nodeless.apiserver.resources.names import go_quote, is_label_value, is_qualified_name
from nodeless.apiserver.resources.validation.context import V, _d, _l
from nodeless.apiserver.resources.validation.field import (
    GoValue,
    duplicate,
    forbidden,
    invalid,
    required,
    unsupported,
)
from nodeless.apiserver.resources.validation.formats import _cidr_errors
from nodeless.apiserver.resources.validation.meta import _STANDARD_FINALIZERS, name_is_dns_subdomain
from nodeless.apiserver.resources.validation.pods import _TAINT_EFFECTS
from nodeless.apiserver.resources.validation.quantities import _quantity
from nodeless.apiserver.resources.validation.selectors import validate_label_selector


def _namespace(v: V) -> None:
    for finalizer in _l(_d(v.obj.get("spec")).get("finalizers")):
        v.extend(invalid("spec.finalizers", finalizer, m)
                 for m in is_qualified_name(str(finalizer)))
        if "/" not in str(finalizer) and finalizer not in _STANDARD_FINALIZERS:
            v.add(invalid("spec.finalizers", finalizer,
                          "name is neither a standard finalizer name nor is it fully qualified"))


def _node(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(_l(spec.get("taints"))):
        taint = _d(taint)
        p = f"metadata.taints[{i}]"
        key, value, effect = str(taint.get("key") or ""), taint.get("value") or "", taint.get(
            "effect") or ""
        v.extend(invalid(f"{p}.key", key, m) for m in is_qualified_name(key))
        msgs = is_label_value(str(value))
        if msgs:
            v.add(invalid(f"{p}.value", value, ";".join(msgs)))
        if not effect:
            v.add(required(f"{p}.effect"))
        elif effect not in _TAINT_EFFECTS:
            v.add(unsupported(f"{p}.effect", effect, _TAINT_EFFECTS))
        if (effect, key) in seen:
            error = duplicate(p, GoValue(
                f"core.Taint{{Key:{go_quote(key)}, Value:{go_quote(str(value))}, "
                f"Effect:{go_quote(effect)}, TimeAdded:<nil>}}"))
            error.detail = "taints must be unique by key and effect pair"
            v.add(error)
            continue
        seen.add((effect, key))
    for i, cidr in enumerate(_l(spec.get("podCIDRs"))):
        v.extend(_cidr_errors(f"spec.podCIDRs[{i}]", cidr))
    if v.old is not None:
        old_spec = _d(v.old.get("spec"))
        old_cidrs = _l(old_spec.get("podCIDRs"))
        if old_cidrs and old_cidrs != _l(spec.get("podCIDRs")):
            v.add(forbidden("spec.podCIDRs",
                            'node updates may not change podCIDR except from "" to valid'))
        if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
            v.add(forbidden("spec.providerID",
                            'node updates may not change providerID except from "" to valid'))


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _pvc(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    modes = _l(spec.get("accessModes"))
    if not modes:
        v.add(required("spec.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        v.extend(validate_label_selector(spec["selector"], "spec.selector"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            v.add(unsupported("spec.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m != "ReadWriteOncePod" and m in _ACCESS_MODES
                                           for m in modes):
        v.add(forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access "
                                            "modes"))
    storage = _d(_d(spec.get("resources")).get("requests")).get("storage")
    if storage is None:
        v.add(required("spec.resources[storage]"))
    else:
        q = _quantity(storage)
        if q is not None and q <= 0:
            v.add(invalid("spec.resources[storage]", str(storage), "must be greater than zero"))
    if spec.get("storageClassName"):
        v.extend(invalid("spec.storageClassName", spec["storageClassName"], m)
                 for m in name_is_dns_subdomain(str(spec["storageClassName"]), False))
    if spec.get("volumeMode") is not None and spec["volumeMode"] not in ("Block", "Filesystem"):
        v.add(unsupported("spec.volumeMode", spec["volumeMode"], ("Block", "Filesystem")))


def _lease(v: V) -> None:
    spec = _d(v.obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        v.add(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        v.add(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None and strategy != "OldestEmulationVersion":
        v.add(unsupported("spec.strategy", strategy, ("OldestEmulationVersion",)))
    if spec.get("preferredHolder") and not strategy:
        v.add(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
