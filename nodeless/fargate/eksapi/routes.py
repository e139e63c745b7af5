"""Which EKS operation a request is, read from botocore's own EKS service model.

Routing from the model (method + requestUri template) rather than a hand-written table
means an operation nodeless does not implement is still recognised by name, so the
refusal can say "CreateNodegroup is not supported" instead of a bare 404.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.loaders import create_loader


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    literal: int
    """Characters of the template outside its labels: the most literal route wins."""


@dataclass(frozen=True)
class Match:
    operation: str
    params: dict[str, str]
    """URI labels (locationName -> decoded value)."""


def _compile(template: str) -> tuple[re.Pattern[str], int]:
    path = template.split("?", 1)[0]
    regex, literal, pos = "", 0, 0
    for label in re.finditer(r"\{([^}]+)\}", path):
        chunk = path[pos:label.start()]
        regex += re.escape(chunk)
        literal += len(chunk)
        name = label.group(1)
        greedy = name.endswith("+")
        name = name.rstrip("+")
        regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        pos = label.end()
    regex += re.escape(path[pos:])
    literal += len(path) - pos
    return re.compile(regex), literal


@functools.lru_cache(maxsize=1)
def routes() -> tuple[Route, ...]:
    model: dict[str, Any] = create_loader().load_service_model("eks", "service-2")
    table = []
    for name, operation in model["operations"].items():
        pattern, literal = _compile(operation["http"]["requestUri"])
        table.append(Route(name, operation["http"]["method"].upper(), pattern, literal))
    return tuple(sorted(table, key=lambda r: -r.literal))


def match(method: str, path: str) -> Match | None:
    """The operation `method path` calls (path without query, percent-encoded)."""
    for route in routes():
        if route.method != method.upper():
            continue
        found = route.pattern.fullmatch(path)
        if found:
            return Match(route.operation, {k: unquote(v) for k, v in found.groupdict().items()})
    return None
