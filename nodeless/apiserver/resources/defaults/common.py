"""What every defaulter shares: the per-call context and the set-if-unset helpers."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _set_if_missing(d: Obj, key: str, value: Any) -> None:
    if d.get(key) is None:
        d[key] = value


def _set_if_empty(d: Obj, key: str, value: Any) -> None:
    if not d.get(key):
        d[key] = value


def _dict_at(d: Obj, key: str) -> Obj:
    """The object at d[key], made an empty one first if it is missing or not an object."""
    value = d.get(key)
    if not isinstance(value, dict):
        value = d[key] = {}
    return value


class _Ctx:
    """One apply_defaults call: decode errors found so far, and create or update."""

    __slots__ = ("errs", "create")

    def __init__(self, create: bool | None) -> None:
        self.errs: list[str] = []
        self.create = create

    def is_create(self, obj: Obj) -> bool:
        """Unless told, an object without a uid is new: only stored objects have one."""
        if self.create is not None:
            return self.create
        return not (obj.get("metadata") or {}).get("uid")
