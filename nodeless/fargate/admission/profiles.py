"""The profile webhooks: the same EKS rules for a profile written with kubectl as for one
created through the EKS-compatible API (which checks them itself, with `rules`).

Mutation fills what EKS fills (clusterName, the VPC's private subnets) and adds the
cleanup finalizer, so that a kubectl-made profile reads back as an EKS-made one and its
pods are deleted with it. Validation refuses with the RuleError's message and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nodeless.fargate.admission.review import Answer, Review, as_dict, deny, pointer
from nodeless.fargate.names import PROFILE_FINALIZER
from nodeless.fargate.profiles.rules import (
    IN_USE,
    INVALID_PARAMETER,
    RuleError,
    check_can_create,
    check_spec,
    check_update,
)

DEFAULTED = ("clusterName", "subnets")
"""The spec fields mutation may fill; an update that leaves them out keeps the old ones."""
_STAND_IN_NAME = "generated"
"""Checked in place of a name still to be generated (generateName): the validating
webhook sees, and checks, the real one."""


class ProfileReviewer:
    """Reviews FargateProfile writes against the cluster's current profiles and subnets."""

    def __init__(self, cluster: str, vpc_id: str,
                 profiles: Callable[[], tuple[Mapping[str, Any], ...]],
                 subnets: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self.cluster = cluster
        self.vpc_id = vpc_id
        self._profiles = profiles
        self._subnets = subnets

    def _normalised(self, name: str, spec: Any) -> dict[str, Any]:
        check_types(spec)
        return check_spec(name or _STAND_IN_NAME, spec, cluster=self.cluster,
                          subnets=self._subnets(), vpc_id=self.vpc_id)

    def mutate(self, review: Review) -> Answer:
        obj = review.object
        if obj is None:
            return Answer()
        meta = as_dict(obj.get("metadata"))
        spec = obj.get("spec")
        ops: list[dict[str, Any]] = []
        if review.operation == "CREATE":
            try:
                normalised = self._normalised(_name(review), spec)
            except RuleError:
                normalised = None  # left for the validating webhook to refuse, by field
            if normalised is not None and normalised != spec:
                ops.append({"op": "add", "path": "/spec", "value": normalised})
            finalizers = meta.get("finalizers")
            if not isinstance(finalizers, list):
                ops.append({"op": "add", "path": "/metadata/finalizers",
                            "value": [PROFILE_FINALIZER]})
            elif PROFILE_FINALIZER not in finalizers:
                ops.append({"op": "add", "path": "/metadata/finalizers/-",
                            "value": PROFILE_FINALIZER})
            if ops and not isinstance(obj.get("metadata"), dict):
                ops = [{"op": "add", "path": "/metadata", "value": {}}, *ops]
        elif review.operation == "UPDATE" and not meta.get("deletionTimestamp"):
            # `kubectl replace` of the original manifest leaves out what mutation filled
            # in at create; keep it rather than refuse the update as a spec change.
            old_spec = as_dict(as_dict(review.old_object).get("spec"))
            if isinstance(spec, dict):
                ops = [{"op": "add", "path": pointer("spec", key), "value": old_spec[key]}
                       for key in DEFAULTED if not spec.get(key) and old_spec.get(key)]
        return Answer(patch=ops) if ops else Answer()

    def validate(self, review: Review) -> Answer:
        obj = review.object
        if obj is None:
            return deny("the review carries no FargateProfile object", code=400,
                        reason="BadRequest")
        name = _name(review)
        try:
            if review.operation == "CREATE":
                self._normalised(name, obj.get("spec"))
                if name:
                    check_can_create(name, self._profiles(), self.cluster)
            elif review.operation == "UPDATE":
                check_update(review.old_object or {}, obj)
        except RuleError as e:
            return refusal(e)
        return Answer()


def check_types(spec: Any) -> None:
    """The shapes the CRD schema requires. The mutating webhook runs before the API
    server checks the schema, and `rules` assume them; so refuse a wrong type here, by
    field, rather than fail on it."""
    if not isinstance(spec, dict):
        raise RuleError(INVALID_PARAMETER, "a FargateProfile needs a spec object", "spec")
    for key in ("clusterName", "podExecutionRoleArn"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise RuleError(INVALID_PARAMETER, f"{key} must be a string", f"spec.{key}")
    subnets = spec.get("subnets")
    if subnets is not None and not (isinstance(subnets, list)
                                    and all(isinstance(s, str) for s in subnets)):
        raise RuleError(INVALID_PARAMETER, "subnets must be a list of subnet ids",
                        "spec.subnets")
    _string_map(spec.get("tags"), "spec.tags")
    selectors = spec.get("selectors")
    if selectors is None:
        return
    if not isinstance(selectors, list):
        raise RuleError(INVALID_PARAMETER, "selectors must be a list", "spec.selectors")
    for i, selector in enumerate(selectors):
        if not isinstance(selector, dict):
            raise RuleError(INVALID_PARAMETER, f"selectors[{i}] must be an object with a "
                            "namespace and optional labels", f"spec.selectors[{i}]")
        if selector.get("namespace") is not None and not isinstance(selector["namespace"], str):
            raise RuleError(INVALID_PARAMETER, f"selectors[{i}].namespace must be a string",
                            f"spec.selectors[{i}].namespace")
        _string_map(selector.get("labels"), f"spec.selectors[{i}].labels")


def _string_map(value: Any, field: str) -> None:
    if value is not None and not (isinstance(value, dict) and all(
            isinstance(v, str) for v in value.values())):
        raise RuleError(INVALID_PARAMETER, f"{field.rpartition('.')[2]} must map strings to "
                        "strings", field)


def refusal(error: RuleError) -> Answer:
    """A RuleError as a denial: `FIELD: MESSAGE (AWS code)`, 409 when another change is
    in progress (retry later), else 403."""
    message = f"{error.field}: {error.message}" if error.field else error.message
    message = f"{message} ({error.code})"
    if error.code == IN_USE:
        return deny(message, code=409, reason="Conflict")
    causes = [{"reason": error.code, "message": error.message, "field": error.field}] \
        if error.field else None
    return deny(message, causes=causes)


def _name(review: Review) -> str:
    name = as_dict(as_dict(review.object).get("metadata")).get("name") or review.name
    return name if isinstance(name, str) else ""

