"""ConfigMaps and Secrets for env.resolve_env and volumes.PodVolumes, read from the API.

A direct GET per lookup, as kubelet's "Get" strategy does; the worker may put a cache in
front (kubelet's default watches each referenced object). Objects are plain dicts, Secret
data still base64 as the API returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError
from lightkube.resources.core_v1 import ConfigMap, Secret


class ApiObjects:
    """get_configmap / get_secret over a lightkube AsyncClient; None when not found."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(kind, name, namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise
        return obj.to_dict()

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(ConfigMap, namespace, name)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(Secret, namespace, name)


@dataclass
class PodSources(ApiObjects):
    """Everything env.resolve_env needs for one pod: the API lookups plus the pod's and
    node's addresses and the node's allocatable (= the pod's provisioned capacity)."""

    client: Any
    node_allocatable: Mapping[str, Any] = field(default_factory=dict)
    pod_ips: Sequence[str] = ()
    host_ips: Sequence[str] = ()
