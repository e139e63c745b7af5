"""The validation context kind validators append to, and the helpers they share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nodeless.apiserver.errors import FieldError
from nodeless.apiserver.resources.registry import ResourceType
from nodeless.apiserver.resources.validation.field import invalid

Obj = dict[str, Any]


class V:
    """Collects the errors of one object; kind validators append to it."""

    __slots__ = ("errs", "rt", "obj", "old")

    def __init__(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        self.errs: list[FieldError] = []
        self.rt = rt
        self.obj = obj
        self.old = old

    def add(self, *errs: FieldError) -> None:
        self.errs.extend(errs)

    def extend(self, errs: Iterable[FieldError]) -> None:
        self.errs.extend(errs)


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nonneg(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []
