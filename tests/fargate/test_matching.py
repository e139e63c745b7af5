"""Which profile a pod runs through (FARGATE.md, "Fargate profiles"): one table, one row
per rule, so a reader sees every case EKS users rely on next to its answer."""

from __future__ import annotations

from typing import Any

import pytest

from nodeless.fargate.names import PROFILE_LABEL
from nodeless.fargate.profiles.matching import choose_profile, glob_matches


def profile(name: str, *selectors: dict[str, Any], status: str | None = "ACTIVE",
            deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    obj: dict[str, Any] = {"metadata": meta, "spec": {"selectors": list(selectors)}}
    if status is not None:
        obj["status"] = {"status": status}
    return obj


def sel(namespace: str, **labels: str) -> dict[str, Any]:
    return {"namespace": namespace, "labels": labels} if labels else {"namespace": namespace}


DEFAULT = profile("fp-default", sel("default"), sel("kube-system"))
WEB = profile("web", sel("prod", app="web"))
WEB_TIER = profile("web-tier", sel("prod", app="web", tier="frontend"))
WILD_NS = profile("wild-ns", sel("team-*"))
ONE_CHAR = profile("one-char", sel("env-?"))
WILD_LABEL = profile("wild-label", sel("apps", app="api-*", version="v?"))
BOTH_A = profile("a-first", sel("shared"))
BOTH_B = profile("b-second", sel("shared"))
CREATING = profile("creating", sel("new"), status="CREATING")
NO_STATUS = profile("no-status", sel("new"), status=None)
FAILED = profile("failed", sel("new"), status="CREATE_FAILED")
DELETING_STATE = profile("deleting-state", sel("old"), status="DELETING")
BEING_DELETED = profile("being-deleted", sel("old"), deleting=True)
TWO_SELECTORS = profile("two-selectors", sel("x", role="db"), sel("y"))

ALL = [DEFAULT, WEB, WEB_TIER, WILD_NS, ONE_CHAR, WILD_LABEL, BOTH_A, BOTH_B, CREATING,
       NO_STATUS, FAILED, DELETING_STATE, BEING_DELETED, TWO_SELECTORS]

CASES: list[tuple[str, str, dict[str, str], str | None]] = [
    # (case, namespace, pod labels, expected profile)
    ("namespace only", "default", {}, "fp-default"),
    ("namespace only, labels ignored", "kube-system", {"k8s-app": "kube-dns"}, "fp-default"),
    ("namespace only, other namespace", "staging", {}, None),
    ("labels: all present", "prod", {"app": "web"}, "web"),
    ("labels: pod has more than asked", "prod", {"app": "web", "extra": "1"}, "web"),
    ("labels: one missing", "prod", {"tier": "frontend"}, None),
    ("labels: wrong value", "prod", {"app": "db"}, None),
    ("labels: two profiles match, first by name", "prod",
     {"app": "web", "tier": "frontend"}, "web"),
    ("labels: right labels, wrong namespace", "dev", {"app": "web"}, None),
    ("wildcard * in namespace", "team-blue", {}, "wild-ns"),
    ("wildcard * matches empty run", "team-", {}, "wild-ns"),
    ("wildcard * is anchored", "my-team-blue", {}, None),
    ("wildcard ? is exactly one character", "env-a", {}, "one-char"),
    ("wildcard ? needs a character", "env-", {}, None),
    ("wildcard ? is one, not two", "env-ab", {}, None),
    ("wildcards in label values", "apps", {"app": "api-gateway", "version": "v2"},
     "wild-label"),
    ("wildcard label value mismatch", "apps", {"app": "api-gateway", "version": "v10"}, None),
    ("wildcard label key must exist", "apps", {"app": "api-x"}, None),
    ("several profiles, no label: first by name", "shared", {}, "a-first"),
    ("several profiles, label chooses the second", "shared", {PROFILE_LABEL: "b-second"},
     "b-second"),
    ("several profiles, label chooses the first", "shared", {PROFILE_LABEL: "a-first"},
     "a-first"),
    ("label names a profile that does not match the pod", "shared", {PROFILE_LABEL: "web"},
     None),
    ("label names a profile that does not exist", "shared", {PROFILE_LABEL: "nope"}, None),
    ("label on a pod only one profile matches", "default", {PROFILE_LABEL: "fp-default"},
     "fp-default"),
    ("label naming a profile with labels the pod lacks", "prod",
     {PROFILE_LABEL: "web-tier", "app": "web"}, None),
    ("label choosing among label selectors", "prod",
     {PROFILE_LABEL: "web-tier", "app": "web", "tier": "frontend"}, "web-tier"),
    ("profile CREATING does not match yet", "new", {}, None),
    ("profile without status (just created) does not match", "new", {}, None),
    ("profile CREATE_FAILED never matches", "new", {}, None),
    ("label naming a CREATING profile", "new", {PROFILE_LABEL: "creating"}, None),
    ("profile DELETING does not match", "old", {}, None),
    ("profile with a deletionTimestamp does not match", "old", {}, None),
    ("second selector of a profile", "y", {}, "two-selectors"),
    ("first selector of a profile, with its label", "x", {"role": "db"}, "two-selectors"),
    ("first selector of a profile, without its label", "x", {}, None),
    ("a pod outside every profile", "nowhere", {"app": "web"}, None),
]


@pytest.mark.parametrize(("case", "namespace", "labels", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_choose_profile(case: str, namespace: str, labels: dict[str, str],
                        expected: str | None) -> None:
    chosen = choose_profile(ALL, namespace, labels)
    assert (chosen["metadata"]["name"] if chosen else None) == expected, case


def test_choice_does_not_depend_on_list_order() -> None:
    for profiles in (ALL, list(reversed(ALL))):
        chosen = choose_profile(profiles, "shared", {})
        assert chosen is not None and chosen["metadata"]["name"] == "a-first"


def test_no_profiles() -> None:
    assert choose_profile([], "default", {}) is None


@pytest.mark.parametrize(("glob", "value", "expected"), [
    ("default", "default", True),
    ("default", "defaults", False),
    ("*", "", True),
    ("*", "anything", True),
    ("a*c", "abbbc", True),
    ("a*c", "abbb", False),
    ("a?c", "abc", True),
    ("a?c", "ac", False),
    ("a.c", "abc", False),  # regex characters are literal
    ("a+", "aa", False),
    ("[ab]", "a", False),
    ("a\\*", "a\\x", True),
])
def test_glob(glob: str, value: str, expected: bool) -> None:
    assert glob_matches(glob, value) is expected
