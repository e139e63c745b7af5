"""The EKS operations, as a facade over the Kubernetes API.

Profiles are FargateProfile objects and nothing else: the API keeps no state of its own,
so what `aws eks` shows is what `kubectl get fargateprofiles` shows, and the profile
controller (not this API) moves a profile through its states. The EKS rules are the
shared ones (`profiles.rules`); this module only adds the wire shapes and the checks on
request fields that botocore's types cannot express.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx2 as httpx  # the HTTP library lightkube uses (its errors, its Timeout)
from lightkube import AsyncClient
from lightkube.config.client_adapter import AsyncClient as HttpxClient
from lightkube.config.client_adapter import ConnectionParams
from lightkube.core.exceptions import ApiError

from nodeless.fargate.eksapi.errors import AwsError, cluster_not_found, profile_not_found
from nodeless.fargate.names import API_VERSION, PROFILE_FINALIZER, ProfileStatus
from nodeless.fargate.profiles import rules
from nodeless.fargate.resources import FargateProfile, Subnet
from nodeless.fargate.settings import FargateSettings

log = logging.getLogger(__name__)

TOKEN_ANNOTATION = "fargate.nodeless.io/client-request-token"
"""clientRequestToken of the create that made a profile: a retried create answers the
same instead of ResourceInUseException, as EKS's idempotent creates do."""
DEFAULT_PAGE = 100
MAX_TAGS = 50

Json = dict[str, Any]


def invalid(message: str, **fields: str) -> AwsError:
    return AwsError("InvalidParameterException", message, **fields)


class EksService:
    """EKS's operations for the one cluster `settings` describes."""

    def __init__(self, client: AsyncClient, settings: FargateSettings, *,
                 service_cidr: str = "10.96.0.0/12") -> None:
        self.client = client
        self.settings = settings
        self.service_cidr = service_cidr
        self.started = time.time()
        self._changes = asyncio.Lock()
        """Held from the rule checks to the write of a create or delete, so two requests
        to this API cannot both pass "one change at a time"."""
        self._version: str | None = None

    # ------------------------------------------------------------- clusters

    async def list_clusters(self, query: Mapping[str, str], body: Json, uri: Mapping[str, str]
                            ) -> Json:
        names, token = _page([self.settings.cluster], query)
        return {"clusters": names, **({"nextToken": token} if token else {})}

    async def describe_cluster(self, query: Mapping[str, str], body: Json,
                               uri: Mapping[str, str]) -> Json:
        name = uri["name"]
        self._check_cluster(name)
        s = self.settings
        cluster = self.client.config.cluster
        ca = cluster.certificate_auth_data
        if not ca and cluster.certificate_auth:
            path = self.client.config.abs_file(cluster.certificate_auth)
            with open(path, "rb") as f:
                ca = base64.b64encode(f.read()).decode()
        version = await self._kube_version()
        return {"cluster": {
            "name": s.cluster,
            "arn": s.cluster_arn(),
            "createdAt": await self._cluster_created(),
            **({"version": version} if version else {}),
            "endpoint": cluster.server,
            "roleArn": f"arn:aws:iam::{s.account_id}:role/nodeless-cluster-role",
            "resourcesVpcConfig": {
                "subnetIds": [sub.id for sub in s.vpc.subnets],
                "securityGroupIds": [],
                "vpcId": s.vpc.id,
                "endpointPublicAccess": True,
                "endpointPrivateAccess": True,
                "publicAccessCidrs": ["0.0.0.0/0"],
            },
            "kubernetesNetworkConfig": {
                "serviceIpv4Cidr": self.service_cidr,
                "ipFamily": "ipv4",
                "elasticLoadBalancing": {"enabled": False},
            },
            "logging": {"clusterLogging": [{"types": [
                "api", "audit", "authenticator", "controllerManager", "scheduler"],
                "enabled": False}]},
            "status": "ACTIVE",
            "certificateAuthority": {"data": ca or ""},
            "platformVersion": "nodeless.1",
            "tags": {},
            "health": {"issues": []},
            "accessConfig": {"authenticationMode": "CONFIG_MAP"},
            "upgradePolicy": {"supportType": "STANDARD"},
        }}

    # ------------------------------------------------------------- profiles

    async def create_fargate_profile(self, query: Mapping[str, str], body: Json,
                                     uri: Mapping[str, str]) -> Json:
        cluster = uri["name"]
        self._check_cluster(cluster)
        name = _string(body, "fargateProfileName", required=True)
        spec = {
            "clusterName": cluster,
            "podExecutionRoleArn": _string(body, "podExecutionRoleArn", required=True),
            "subnets": _string_list(body, "subnets"),
            "selectors": _selectors(body.get("selectors")),
            "tags": _tags(body.get("tags")),
        }
        token = _string(body, "clientRequestToken")
        async with self._changes:
            profiles = await self._profiles()
            same = next((p for p in profiles if p["metadata"]["name"] == name), None)
            if same is not None and token and _annotations(same).get(TOKEN_ANNOTATION) == token:
                return {"fargateProfile": self._describe(same)}
            subnets = await self._subnets()
            try:
                spec = rules.check_spec(name, spec, cluster=cluster, subnets=subnets,
                                        vpc_id=self.settings.vpc.id)
                rules.check_can_create(name, [_with_status(p) for p in profiles], cluster)
            except rules.RuleError as exc:
                raise AwsError(exc.code, exc.message, clusterName=cluster,
                               fargateProfileName=name) from exc
            obj: Json = {
                "apiVersion": API_VERSION, "kind": "FargateProfile",
                "metadata": {"name": name, "finalizers": [PROFILE_FINALIZER],
                             **({"annotations": {TOKEN_ANNOTATION: token}} if token else {})},
                "spec": spec,
            }
            try:
                created = await self.client.create(FargateProfile.from_dict(obj))
            except ApiError as exc:
                if exc.status.code == 409:
                    raise AwsError("ResourceInUseException",
                                   f"Fargate Profile already exists with name: {name}",
                                   clusterName=cluster) from exc
                raise _refused(exc, f"creating Fargate profile {name}") from exc
        log.info("created Fargate profile %s", name)
        return {"fargateProfile": self._describe(_plain(created))}

    async def describe_fargate_profile(self, query: Mapping[str, str], body: Json,
                                       uri: Mapping[str, str]) -> Json:
        cluster, name = uri["name"], uri["fargateProfileName"]
        self._check_cluster(cluster)
        return {"fargateProfile": self._describe(await self._profile(name))}

    async def list_fargate_profiles(self, query: Mapping[str, str], body: Json,
                                    uri: Mapping[str, str]) -> Json:
        self._check_cluster(uri["name"])
        names = sorted(p["metadata"]["name"] for p in await self._profiles())
        page, token = _page(names, query)
        return {"fargateProfileNames": page, **({"nextToken": token} if token else {})}

    async def delete_fargate_profile(self, query: Mapping[str, str], body: Json,
                                     uri: Mapping[str, str]) -> Json:
        cluster, name = uri["name"], uri["fargateProfileName"]
        self._check_cluster(cluster)
        async with self._changes:
            profiles = await self._profiles()
            target = next((p for p in profiles if p["metadata"]["name"] == name), None)
            if target is None:
                raise profile_not_found(cluster, name)
            if target["metadata"].get("deletionTimestamp"):
                return {"fargateProfile": self._describe(target)}  # already going
            try:
                rules.check_can_delete(name, [_with_status(p) for p in profiles], cluster)
            except rules.RuleError as exc:
                raise AwsError(exc.code, exc.message, clusterName=cluster,
                               fargateProfileName=name) from exc
            try:
                await self.client.delete(FargateProfile, name)
            except ApiError as exc:
                if exc.status.code == 404:
                    raise profile_not_found(cluster, name) from exc
                raise _refused(exc, f"deleting Fargate profile {name}") from exc
        log.info("deleting Fargate profile %s", name)
        described = self._describe(target)
        described["status"] = ProfileStatus.DELETING.value
        return {"fargateProfile": described}

    # ------------------------------------------------------------- helpers

    def _check_cluster(self, name: str) -> None:
        if name != self.settings.cluster:
            raise cluster_not_found(name)

    async def _profiles(self) -> list[Json]:
        """This cluster's profiles (a profile made with kubectl may name no cluster)."""
        try:
            found = [_plain(p) async for p in self.client.list(FargateProfile)]
        except ApiError as exc:
            raise _refused(exc, "listing Fargate profiles") from exc
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        return [p for p in found
                if (p.get("spec") or {}).get("clusterName") in (None, "", self.settings.cluster)]

    async def _profile(self, name: str) -> Json:
        try:
            found = _plain(await self.client.get(FargateProfile, name))
        except ApiError as exc:
            if exc.status.code == 404:
                raise profile_not_found(self.settings.cluster, name) from exc
            raise _refused(exc, f"reading Fargate profile {name}") from exc
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if (found.get("spec") or {}).get("clusterName") not in (None, "", self.settings.cluster):
            raise profile_not_found(self.settings.cluster, name)
        return found

    async def _subnets(self) -> dict[str, Json]:
        try:
            return {s["metadata"]["name"]: s
                    for s in [_plain(obj) async for obj in self.client.list(Subnet)]}
        except ApiError as exc:
            raise _refused(exc, "listing subnets") from exc
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc

    def _describe(self, profile: Mapping[str, Any]) -> Json:
        """A FargateProfile object in EKS's FargateProfile shape."""
        meta = profile.get("metadata") or {}
        spec = profile.get("spec") or {}
        status = profile.get("status") or {}
        described: Json = {
            "fargateProfileName": meta.get("name"),
            "fargateProfileArn": status.get("fargateProfileArn")
            or self.settings.profile_arn(meta.get("name", ""), meta.get("uid", "")),
            "clusterName": spec.get("clusterName") or self.settings.cluster,
            "createdAt": _epoch(status.get("createdAt") or meta.get("creationTimestamp")),
            "podExecutionRoleArn": spec.get("podExecutionRoleArn"),
            "subnets": list(spec.get("subnets") or []),
            "selectors": [dict(s) for s in spec.get("selectors") or []],
            "status": _status(profile),
            "tags": dict(spec.get("tags") or {}),
        }
        issues = (status.get("health") or {}).get("issues")
        described["health"] = {"issues": list(issues or [])}
        return {k: v for k, v in described.items() if v is not None}

    async def _kube_version(self) -> str | None:
        """"1.37" from the API server's /version, as EKS reports a cluster's version."""
        if self._version is None:
            try:
                async with HttpxClient(self.client.config, ConnectionParams(
                        trust_env=False, timeout=httpx.Timeout(5))) as http:
                    response = await http.get("/version")
                    response.raise_for_status()
                    info = response.json()
                minor = "".join(c for c in str(info.get("minor", "")) if c.isdigit())
                self._version = f"{info.get('major')}.{minor}"
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.warning("cannot read the Kubernetes version: %s", exc)
                return None
        return self._version

    async def _cluster_created(self) -> float:
        """When the cluster was made: the creation of its `default` namespace."""
        from lightkube.resources.core_v1 import Namespace

        try:
            ns = await self.client.get(Namespace, "default")
            stamp = ns.metadata.creationTimestamp if ns.metadata else None
        except (ApiError, httpx.HTTPError):
            stamp = None
        if isinstance(stamp, datetime):
            return stamp.timestamp()
        return self.started


# ----------------------------------------------------------------- request fields


def _string(body: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise invalid(f"{key} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    return value


def _string_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid(f"{key} must be a list of non-empty strings")
    return list(dict.fromkeys(value))


def _selectors(value: Any) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("selectors must be a list of {namespace, labels}")
    selectors = []
    for i, selector in enumerate(value):
        if not isinstance(selector, dict):
            raise invalid(f"selectors[{i}] must be an object with a namespace and labels")
        unknown = sorted(set(selector) - {"namespace", "labels"})
        if unknown:
            raise invalid(f"selectors[{i}] has unknown fields {unknown}: a selector has a "
                          "namespace and labels")
        out: Json = {}
        if selector.get("namespace") is not None:
            if not isinstance(selector["namespace"], str):
                raise invalid(f"selectors[{i}].namespace must be a string")
            out["namespace"] = selector["namespace"]
        labels = selector.get("labels")
        if labels is not None:
            if not isinstance(labels, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                raise invalid(f"selectors[{i}].labels must map label names to string values")
            if labels:
                out["labels"] = dict(labels)
        selectors.append(out)
    return selectors


def _tags(value: Any) -> dict[str, str]:
    """EKS's TagMap rules: at most 50, keys 1-128 and values up to 256 characters, and
    the `aws:` prefix reserved for AWS."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid("tags must map tag keys to string values")
    if len(value) > MAX_TAGS:
        raise invalid(f"a resource may have at most {MAX_TAGS} tags; {len(value)} were given")
    for key, val in value.items():
        if not 1 <= len(key) <= 128:
            raise invalid(f"tag key {key!r} must be 1 to 128 characters long")
        if len(val) > 256:
            raise invalid(f"the value of tag {key!r} is longer than 256 characters")
        if key.lower().startswith("aws:"):
            raise invalid(f"tag key {key!r}: the prefix 'aws:' is reserved for AWS")
    return dict(value)


def _page(items: list[str], query: Mapping[str, str]) -> tuple[list[str], str | None]:
    """One page of `items` (sorted, unique) after the query's nextToken, at most
    maxResults long, and the token of the next page (None on the last). The token names
    the last item returned, so a page stays right when items come and go between calls."""
    raw = query.get("maxResults")
    limit = DEFAULT_PAGE
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise invalid(f"maxResults must be an integer from 1 to 100, not {raw!r}") from None
        if not 1 <= limit <= 100:
            raise invalid(f"maxResults must be from 1 to 100, not {limit}")
    start = 0
    token = query.get("nextToken")
    if token:
        after = _decode_token(token)
        start = next((i for i, item in enumerate(items) if item > after), len(items))
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, (_encode_token(page[-1]) if more and page else None)


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{after}".encode()).decode()


def _decode_token(token: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded.startswith("v1:"):
        raise invalid(f"nextToken {token!r} is not a token this API returned")
    return decoded[3:]


# ----------------------------------------------------------------- objects


def _plain(obj: Any) -> Json:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def _annotations(profile: Mapping[str, Any]) -> Mapping[str, str]:
    return (profile.get("metadata") or {}).get("annotations") or {}


def _status(profile: Mapping[str, Any]) -> str:
    """The EKS state: the controller's, DELETING as soon as the object is being deleted
    (before the controller has said so), CREATING before the controller has seen it."""
    status = (profile.get("status") or {}).get("status")
    if (profile.get("metadata") or {}).get("deletionTimestamp") and \
            status != ProfileStatus.DELETE_FAILED:
        return ProfileStatus.DELETING.value
    return str(status or ProfileStatus.CREATING.value)


def _with_status(profile: Json) -> Json:
    return {**profile, "status": {**(profile.get("status") or {}), "status": _status(profile)}}


def _epoch(stamp: Any) -> float | None:
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _refused(exc: ApiError, doing: str) -> AwsError:
    """A Kubernetes refusal in AWS's terms: the request's fault (a webhook's denial, a
    schema violation) is InvalidParameterException, anything else a server fault."""
    status = exc.status
    message = status.message or status.reason or str(exc)
    if status.code in (400, 422) or (status.code == 403 and "admission webhook" in message):
        return invalid(message)
    return AwsError("ServerException", f"the Kubernetes API refused {doing}: "
                    f"{status.code} {message}")


def _unreachable(exc: httpx.HTTPError) -> AwsError:
    return AwsError("ServiceUnavailableException",
                    f"the Kubernetes API is unreachable: {type(exc).__name__}: {exc}")
