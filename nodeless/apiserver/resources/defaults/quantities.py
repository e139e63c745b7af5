"""resource.Quantity: parsing, the canonical form, and defaulting ResourceLists."""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any

from nodeless.apiserver.resources.defaults.common import Obj


class QuantityError(ValueError):
    """A quantity kube-apiserver cannot decode (it answers 400 before validation)."""


QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_MESSAGE = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_QUANTITY_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXP = {0: "", **{v: k for k, v in _BINARY_SUFFIXES.items()}}
_NANO = Fraction(1, 10**9)
_MILLI = Fraction(1, 1000)


def parse_quantity(value: Any) -> tuple[Fraction, str]:
    """(exact value, format) of a quantity string or JSON number (cached, see
    `canonical_quantity`).

    The format is "DecimalSI", "BinarySI" or "DecimalExponent", as the suffix says; like
    kube, non-zero values are rounded up (away from zero) to the nanounit."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(QUANTITY_MESSAGE)
    return _parse(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _parse(value: str | int | float) -> tuple[Fraction, str]:
    text = repr(value) if isinstance(value, float) else str(value)
    m = _QUANTITY_RE.match(text)
    if not m or not (m.group(2) or m.group(3)):
        raise QuantityError(QUANTITY_MESSAGE)
    sign, whole, frac, suffix = m.groups()
    digits = (whole or "") + (frac or "")
    amount = Fraction(int(digits or "0"), 10 ** len(frac or ""))
    if suffix in _DECIMAL_SUFFIXES:
        fmt, amount = "DecimalSI", amount * Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        fmt, amount = "BinarySI", amount * 2 ** _BINARY_SUFFIXES[suffix]
    elif suffix[:1] in ("e", "E"):
        try:
            exp = int(suffix[1:])
        except ValueError:
            raise QuantityError(QUANTITY_MESSAGE) from None
        fmt, amount = "DecimalExponent", amount * Fraction(10) ** exp
    else:
        raise QuantityError("unable to parse quantity's suffix")
    if sign == "-":
        amount = -amount
    return _round_up(amount, _NANO), fmt


def _round_up(amount: Fraction, unit: Fraction) -> Fraction:
    """Round away from zero to a multiple of unit, as inf.RoundUp does."""
    units = amount / unit
    if units.denominator == 1:
        return amount
    whole = -((-abs(units.numerator)) // units.denominator)
    return Fraction(whole if amount > 0 else -whole) * unit


def format_quantity(amount: Fraction, fmt: str = "DecimalSI") -> str:
    """The canonical string of a quantity (resource.Quantity.String())."""
    if amount == 0:
        return "0"
    if fmt == "BinarySI" and (abs(amount) < 1024 or amount.denominator != 1):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        mantissa, exp = int(amount), 0
        while mantissa % 1024 == 0 and exp < 60:
            mantissa //= 1024
            exp += 10
        return f"{mantissa}{_BINARY_BY_EXP[exp]}"
    # Decimal: mantissa * 10**exp with exp a multiple of 3 and no trailing factors of 1000.
    exp = 0
    scaled = amount
    while scaled.denominator != 1:
        scaled *= 10
        exp -= 1
    value = int(scaled)
    while value % 10 == 0:
        value //= 10
        exp += 1
    while exp % 3:
        value *= 10
        exp -= 1
    if fmt == "DecimalExponent":
        return f"{value}e{exp}" if exp else str(value)
    suffix = _DECIMAL_BY_EXP.get(exp)
    if suffix is None:
        return f"{value}e{exp}"
    return f"{value}{suffix}"


def canonical_quantity(value: Any, *, milli: bool = False) -> str:
    """Canonical form of a quantity; milli=True rounds up to 1m as ResourceLists do."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(QUANTITY_MESSAGE)
    return _canonical(value, milli)


@functools.lru_cache(maxsize=4096, typed=True)
def _canonical(value: str | int | float, milli: bool) -> str:
    """Cached by type too, so True is never taken for 1: objects repeat a handful of
    quantities ("250m", "512Mi") thousands of times, and exact arithmetic is slow."""
    amount, fmt = _parse(value)
    if milli:
        amount = _round_up(amount, _MILLI)
    return format_quantity(amount, fmt)


def _resource_list(owner: Obj, key: str, errs: list[str]) -> None:
    """Canonicalize a ResourceList (SetDefaults_ResourceList rounds up to milli)."""
    rl = owner.get(key)
    if not isinstance(rl, dict):
        return
    for name, q in rl.items():
        try:
            rl[name] = canonical_quantity(q, milli=True)
        except QuantityError as exc:
            errs.append(str(exc))


def _quantity_field(owner: Obj, key: str, errs: list[str]) -> None:
    if key in owner and owner[key] is not None:
        try:
            owner[key] = canonical_quantity(owner[key])
        except QuantityError as exc:
            errs.append(str(exc))
