"""What the webhook does to a pod: the mutation that sends it to Fargate, and the checks
that refuse what Fargate cannot run.

Every refusal names the field (`spec.containers[0].securityContext.privileged`) and all
of them are reported at once: users complain about Fargate's vague and one-at-a-time
reasons (aws/containers-roadmap#1382), and a pod with three problems should take one
round trip to fix, not three.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from nodeless.fargate.admission.review import as_dict, as_list, pointer
from nodeless.fargate.names import PROFILE_ANNOTATION, SCHEDULER_NAME

log = logging.getLogger(__name__)

Violation = tuple[str, str]
"""(field path, why Fargate cannot run it)."""

CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")
FARGATE_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
EBS_CSI_DRIVER = "ebs.csi.aws.com"
_EBS_HINT = "EBS volumes are not supported; use EFS (NFS or the efs.csi.aws.com CSI driver)"
LOOKUP_TIMEOUT = 2.0
"""Seconds the claim/volume/class lookups of one review may take; the webhook's own
timeout is longer, so a slow API yields a warning, not a failed webhook call."""


def mutation(pod: Mapping[str, Any], profile: str) -> list[dict[str, Any]]:
    """JSONPatch that sends the pod to the fargate-scheduler through `profile`; empty
    when it already is (a reinvocation)."""
    ops: list[dict[str, Any]] = []
    meta = pod.get("metadata")
    if not isinstance(meta, dict):
        ops.append({"op": "add", "path": "/metadata",
                    "value": {"annotations": {PROFILE_ANNOTATION: profile}}})
    else:
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            ops.append({"op": "add", "path": "/metadata/annotations",
                        "value": {PROFILE_ANNOTATION: profile}})
        elif annotations.get(PROFILE_ANNOTATION) != profile:
            ops.append({"op": "add", "path": pointer("metadata", "annotations",
                                                     PROFILE_ANNOTATION), "value": profile})
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        ops.append({"op": "add", "path": "/spec", "value": {"schedulerName": SCHEDULER_NAME}})
    elif spec.get("schedulerName") != SCHEDULER_NAME:
        ops.append({"op": "add", "path": "/spec/schedulerName", "value": SCHEDULER_NAME})
    return ops


def unsupported(pod: Mapping[str, Any]) -> list[Violation]:
    """Everything in the pod Fargate cannot run, except what needs API lookups (EBS
    claims: `ebs_claims`)."""
    spec = as_dict(pod.get("spec"))
    found: list[Violation] = []
    for key, what in (("hostNetwork", "host networking is not supported"),
                      ("hostPID", "sharing the host's PID namespace is not supported"),
                      ("hostIPC", "sharing the host's IPC namespace is not supported")):
        if spec.get(key) is True:
            found.append((f"spec.{key}", what))
    for kind in CONTAINER_KINDS:
        for i, container in enumerate(as_list(spec.get(kind))):
            if isinstance(container, dict):
                found.extend(_container(container, f"spec.{kind}[{i}]"))
    found.extend(_resources(as_dict(spec.get("resources")), "spec.resources"))
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        if isinstance(volume, dict):
            found.extend(_volume(volume, f"spec.volumes[{i}]"))
    meta = as_dict(pod.get("metadata"))
    for i, owner in enumerate(as_list(meta.get("ownerReferences"))):
        if isinstance(owner, dict) and owner.get("kind") == "DaemonSet":
            found.append((f"metadata.ownerReferences[{i}]",
                          'DaemonSet pods are not supported (owner DaemonSet '
                          f'"{owner.get("name")}"); run the agent as a sidecar container'))
    return found


def _container(container: Mapping[str, Any], path: str) -> list[Violation]:
    found: list[Violation] = []
    if as_dict(container.get("securityContext")).get("privileged") is True:
        found.append((f"{path}.securityContext.privileged",
                      "privileged containers are not supported"))
    for j, port in enumerate(as_list(container.get("ports"))):
        if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
            found.append((f"{path}.ports[{j}].hostPort", "host ports are not supported "
                          "(a Fargate pod is reached at its own IP)"))
    found.extend(_resources(as_dict(container.get("resources")), f"{path}.resources"))
    return found


def _resources(resources: Mapping[str, Any], path: str) -> list[Violation]:
    found: list[Violation] = []
    seen: set[str] = set()  # kube copies extended limits to requests: report one of them
    for part in ("limits", "requests"):
        for name in as_dict(resources.get(part)):
            if name in FARGATE_RESOURCES or name in seen:
                continue
            seen.add(name)
            where = f"{path}.{part}[{name}]"
            if isinstance(name, str) and name.endswith("/gpu"):
                found.append((where, "GPUs are not supported"))
            else:
                found.append((where, f"resource {name} is not supported (Fargate provides "
                              "cpu, memory and ephemeral-storage)"))
    return found


def _volume(volume: Mapping[str, Any], path: str) -> list[Violation]:
    if "hostPath" in volume:
        return [(f"{path}.hostPath", "hostPath volumes are not supported")]
    if "awsElasticBlockStore" in volume:
        return [(f"{path}.awsElasticBlockStore", _EBS_HINT)]
    if as_dict(volume.get("csi")).get("driver") == EBS_CSI_DRIVER:
        return [(f"{path}.csi.driver", _EBS_HINT)]
    return []


def needs_lookups(pod: Mapping[str, Any]) -> bool:
    """Whether the pod has claims whose volumes only the API can tell (the common pod
    has none, and then a review makes no API call)."""
    for volume in as_list(as_dict(pod.get("spec")).get("volumes")):
        if isinstance(volume, dict) and ("persistentVolumeClaim" in volume
                                         or "ephemeral" in volume):
            return True
    return False


class VolumeLookup(Protocol):
    """Reads of the objects that tell whether a claim is EBS; None when absent."""

    async def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def volume(self, name: str) -> Mapping[str, Any] | None: ...

    async def storage_class(self, name: str) -> Mapping[str, Any] | None: ...


async def ebs_claims(pod: Mapping[str, Any], namespace: str, lookup: VolumeLookup
                     ) -> tuple[list[Violation], list[str]]:
    """EBS behind the pod's claims: a bound volume that is EBS, or a class whose
    provisioner makes EBS. Returns violations and warnings; a claim that cannot be read
    (missing, API slow or down) is a warning, not a refusal: the pod may well be fine,
    and blocking every pod with a claim while the API hiccups would be worse."""
    checks = []
    for i, volume in enumerate(as_list(as_dict(pod.get("spec")).get("volumes"))):
        if not isinstance(volume, dict):
            continue
        path = f"spec.volumes[{i}]"
        claim = as_dict(volume.get("persistentVolumeClaim")).get("claimName")
        if isinstance(claim, str) and claim:
            checks.append(_claim(f"{path}.persistentVolumeClaim.claimName", namespace, claim,
                                 lookup))
        template = as_dict(as_dict(volume.get("ephemeral")).get("volumeClaimTemplate"))
        cls = as_dict(template.get("spec")).get("storageClassName")
        if isinstance(cls, str) and cls:
            checks.append(_class(f"{path}.ephemeral.volumeClaimTemplate.spec.storageClassName",
                                 cls, lookup, "the ephemeral volume's"))
    if not checks:
        return [], []
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            results = await asyncio.gather(*checks, return_exceptions=True)
    except TimeoutError:
        return [], [f"Fargate webhook: volume claims were not checked for EBS: the API did "
                    f"not answer within {LOOKUP_TIMEOUT:g}s"]
    violations: list[Violation] = []
    warnings: list[str] = []
    for result in results:
        if isinstance(result, BaseException):
            log.warning("EBS lookup failed: %s", result)
            warnings.append(f"Fargate webhook: a volume claim was not checked for EBS: "
                            f"{type(result).__name__}: {result}")
        elif result is not None:
            violations.append(result)
    return violations, warnings


async def _claim(path: str, namespace: str, name: str, lookup: VolumeLookup
                 ) -> Violation | None:
    claim = await lookup.claim(namespace, name)
    if claim is None:
        return None  # kube admits pods whose claim comes later; so do we
    spec = as_dict(claim.get("spec"))
    bound = spec.get("volumeName")
    if isinstance(bound, str) and bound:
        volume = await lookup.volume(bound)
        if volume is not None:
            vspec = as_dict(volume.get("spec"))
            if "awsElasticBlockStore" in vspec:
                return (path, f'claim "{name}" is bound to volume "{bound}", an EBS volume '
                        f"(awsElasticBlockStore); {_EBS_HINT}")
            if as_dict(vspec.get("csi")).get("driver") == EBS_CSI_DRIVER:
                return (path, f'claim "{name}" is bound to volume "{bound}", an EBS volume '
                        f"(CSI driver {EBS_CSI_DRIVER}); {_EBS_HINT}")
            return None
    cls = spec.get("storageClassName") or as_dict(as_dict(claim.get("metadata")).get(
        "annotations")).get("volume.beta.kubernetes.io/storage-class")
    if isinstance(cls, str) and cls:
        return await _class(path, cls, lookup, f'claim "{name}"\'s')
    return None


async def _class(path: str, name: str, lookup: VolumeLookup, whose: str) -> Violation | None:
    storage_class = await lookup.storage_class(name)
    provisioner = (storage_class or {}).get("provisioner")
    if provisioner in EBS_PROVISIONERS:
        return (path, f'{whose} StorageClass "{name}" provisions EBS volumes ({provisioner}); '
                f"{_EBS_HINT}")
    return None


def denial_message(violations: list[Violation], profile: str | None) -> str:
    """`Pod not supported on Fargate: FIELD: WHY; FIELD: WHY. (Why it is a Fargate pod.)`:
    the first words are EKS's, so searches for them find the Fargate docs."""
    reasons = "; ".join(f"{field}: {why}" for field, why in violations)
    why = (f'Fargate profile "{profile}" selects this pod' if profile
           else f"the pod names the {SCHEDULER_NAME}")
    return f"Pod not supported on Fargate: {reasons}. ({why}.)"
