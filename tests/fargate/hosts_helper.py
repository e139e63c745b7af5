"""A registered test host without containers: a FargateHost and its renewed Lease, as
the host agent writes them, so scheduler tests can place micro-nodes with no agent."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Namespace

from nodeless.fargate.names import HOST_LEASE_NAMESPACE, HOST_LEASE_SECONDS
from nodeless.fargate.resources import FargateHost

DEFAULT_ZONES = ("us-east-1a", "us-east-1b")


async def register_test_host(client: AsyncClient, name: str, *, cpu: str = "4",
                             memory: str = "16Gi", pods: int = 110,
                             zones: Sequence[str] = DEFAULT_ZONES,
                             overcommit: tuple[float, float] = (1.0, 1.0)) -> None:
    """Create the FargateHost `name` offering this capacity and a freshly renewed
    Lease for it (renew with `renew_test_host`, let it lapse with `expire_test_host`)."""
    await client.create(FargateHost({
        "metadata": {"name": name},
        "spec": {"capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                 "overcommit": {"cpu": overcommit[0], "memory": overcommit[1]},
                 "zones": list(zones), "address": "127.0.0.1",
                 "agentEndpoint": f"https://127.0.0.1:10250/{name}"},
    }))
    await renew_test_host(client, name)


async def set_lease(client: AsyncClient, name: str, renewed: datetime.datetime) -> None:
    """Create or update the host's Lease with this renewTime."""
    await _ensure_namespace(client)
    lease = Lease(metadata=ObjectMeta(name=name, namespace=HOST_LEASE_NAMESPACE),
                  spec=LeaseSpec(holderIdentity=name, leaseDurationSeconds=HOST_LEASE_SECONDS,
                                 renewTime=renewed))
    try:
        current = await client.get(Lease, name, namespace=HOST_LEASE_NAMESPACE)
    except ApiError as e:
        if e.status.code != 404:
            raise
        await client.create(lease)
        return
    lease.metadata.resourceVersion = current.metadata.resourceVersion  # type: ignore[union-attr]
    await client.replace(lease)


async def _ensure_namespace(client: AsyncClient) -> None:
    """kube-node-lease exists on a real cluster; a bare test server may lack it."""
    try:
        await client.create(Namespace(metadata=ObjectMeta(name=HOST_LEASE_NAMESPACE)))
    except ApiError as e:
        if e.status.code != 409:
            raise


async def renew_test_host(client: AsyncClient, name: str) -> None:
    """Renew the host's lease now, as its agent's heartbeat does."""
    await set_lease(client, name, datetime.datetime.now(datetime.UTC))


async def expire_test_host(client: AsyncClient, name: str) -> None:
    """Make the host's lease look lapsed (last renewed two lease periods ago)."""
    await set_lease(client, name, datetime.datetime.now(datetime.UTC)
                    - datetime.timedelta(seconds=2 * HOST_LEASE_SECONDS))


async def delete_test_host(client: AsyncClient, name: str) -> None:
    """Remove the host and its lease (missing is fine)."""
    for res, ns in ((FargateHost, None), (Lease, HOST_LEASE_NAMESPACE)):
        try:
            if ns:
                await client.delete(res, name, namespace=ns)
            else:
                await client.delete(res, name)
        except ApiError as e:
            if e.status.code != 404:
                raise
