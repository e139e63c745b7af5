"""The uid and timestamps every write stamps on objects, made cheaply: the API server
makes several per request."""

from __future__ import annotations

import os
import time

_clock: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """The current UTC second as kube writes timestamps; formatted once per second."""
    global _clock
    second = int(time.time())
    if second != _clock[0]:
        _clock = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _clock[1]


_VARIANT = "89ab"


def new_uid() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` gives it, at half the
    cost: every create makes one."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
