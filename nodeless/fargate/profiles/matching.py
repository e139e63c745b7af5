"""Which Fargate profile, if any, a pod runs through.

A pod matches a profile when the profile is ACTIVE and one of its selectors matches:
the selector's namespace, and every one of its labels (`*` and `?` wildcards allowed in
namespaces and label values, as current EKS accepts). The pod label
`eks.amazonaws.com/fargate-profile` chooses among several matching profiles (the pod
must still match the one it names); otherwise nodeless takes the first by name, where
EKS would pick at random.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from nodeless.fargate.names import PROFILE_LABEL, ProfileStatus


@functools.lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    """`*` is any run of characters, `?` exactly one; everything else is literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.DOTALL)


def glob_matches(glob: str, value: str) -> bool:
    if "*" not in glob and "?" not in glob:
        return glob == value
    return _pattern(glob).fullmatch(value) is not None


def selector_matches(selector: Mapping[str, Any], namespace: str,
                     labels: Mapping[str, str]) -> bool:
    if not glob_matches(str(selector.get("namespace", "")), namespace):
        return False
    for key, wanted in (selector.get("labels") or {}).items():
        if key not in labels or not glob_matches(str(wanted), labels[key]):
            return False
    return True


def profile_matches(profile: Mapping[str, Any], namespace: str,
                    labels: Mapping[str, str]) -> bool:
    selectors = (profile.get("spec") or {}).get("selectors") or []
    return any(selector_matches(s, namespace, labels) for s in selectors)


def is_active(profile: Mapping[str, Any]) -> bool:
    meta = profile.get("metadata") or {}
    status = (profile.get("status") or {}).get("status")
    return status == ProfileStatus.ACTIVE and not meta.get("deletionTimestamp")


def choose_profile(profiles: Iterable[Mapping[str, Any]], namespace: str,
                   labels: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The profile the pod runs through, or None: the pod is not a Fargate pod."""
    candidates = sorted(
        (p for p in profiles if is_active(p) and profile_matches(p, namespace, labels)),
        key=lambda p: p["metadata"]["name"])
    chosen = labels.get(PROFILE_LABEL)
    if chosen is not None:
        return next((p for p in candidates if p["metadata"]["name"] == chosen), None)
    return candidates[0] if candidates else None
