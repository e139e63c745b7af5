"""AdmissionReview v1 on the wire: parsing a request defensively, encoding an answer.

The webhook sits in the write path of every pod, so the one thing it must never do is
fail in a way the API server reads as "webhook broken" (a 500, a dropped connection):
with failurePolicy Fail that blocks the pod with an unhelpful message. So every input
is either a review we understand or a `BadReview`, which the server turns into a clear
denial (or a 400 when there is no uid to answer to).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")


class BadReview(Exception):
    """The body is not a usable AdmissionReview; `uid` is set when we can still answer."""

    def __init__(self, message: str, uid: str | None = None,
                 api_version: str = REVIEW_VERSIONS[0]) -> None:
        super().__init__(message)
        self.message = message
        self.uid = uid
        self.api_version = api_version


@dataclass(slots=True)
class Review:
    """The parts of an AdmissionReview request the webhook reads."""

    api_version: str
    uid: str
    group: str
    version: str
    kind: str
    operation: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None


@dataclass(slots=True)
class Answer:
    """An AdmissionResponse without its uid."""

    allowed: bool = True
    patch: list[dict[str, Any]] | None = None
    status: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


ALLOW = Answer()
"""Shared: never mutated (answers that add warnings build their own)."""


def deny(message: str, *, code: int = 403, reason: str = "Forbidden",
         causes: list[dict[str, str]] | None = None) -> Answer:
    """A refusal as kube-apiserver shows it: `admission webhook "..." denied the request:
    <message>`; `causes` carry the fields for clients that read them."""
    status: dict[str, Any] = {"code": code, "reason": reason, "message": message}
    if causes:
        status["details"] = {"causes": causes}
    return Answer(allowed=False, status=status)


def parse(body: bytes) -> Review:
    """Decode and check a review; raises BadReview naming what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadReview(f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadReview("the body is not an AdmissionReview object")
    request = data.get("request")
    if not isinstance(request, dict):
        raise BadReview("the AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("the AdmissionReview request has no uid")
    api_version = data.get("apiVersion")
    if api_version not in REVIEW_VERSIONS or data.get("kind") != "AdmissionReview":
        raise BadReview(
            f"expected an AdmissionReview of admission.k8s.io/v1, got kind "
            f"{data.get('kind')!r} of {api_version!r}", uid)
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise BadReview("request.kind is missing", uid, api_version)
    obj, old = request.get("object"), request.get("oldObject")
    if obj is not None and not isinstance(obj, dict):
        raise BadReview("request.object is not an object", uid, api_version)
    if old is not None and not isinstance(old, dict):
        raise BadReview("request.oldObject is not an object", uid, api_version)
    return Review(
        api_version=api_version, uid=uid,
        group=_str(kind.get("group")), version=_str(kind.get("version")),
        kind=_str(kind.get("kind")), operation=_str(request.get("operation")),
        namespace=_str(request.get("namespace")), name=_str(request.get("name")),
        object=obj, old_object=old,
    )


def encode(api_version: str, uid: str, answer: Answer) -> bytes:
    response: dict[str, Any] = {"uid": uid, "allowed": answer.allowed}
    if answer.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(answer.patch)).decode()
    if answer.status is not None:
        response["status"] = answer.status
    if answer.warnings:
        response["warnings"] = answer.warnings
    return orjson.dumps({"apiVersion": api_version, "kind": "AdmissionReview",
                         "response": response})


def status_body(code: int, message: str) -> bytes:
    """A metav1.Status for non-200 answers: kube-apiserver quotes its message."""
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "code": code, "message": message})


def pointer(*tokens: str) -> str:
    """An RFC 6901 JSON pointer: `~` and `/` in keys escaped (annotation keys have `/`)."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def as_dict(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else empty: odd input reads as absent, never raises."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def string_map(value: Any) -> dict[str, str]:
    """Labels as str -> str; anything else in them is dropped (a pod's labels are strings
    by the time kube sends them; fuzzed input need not be)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
