"""The fargate-scheduler as a process: leader election around the scheduler, its garbage
collector and (opt-in) the recreation of stranded pods.

Everything that acts runs only while this replica leads, so a second replica is a hot
standby: it watches nothing and writes nothing but its bid for the Lease. Its host pool
and IP allocator are started fresh on every term, so a new leader begins from what the
API says, not from what it remembered as a follower.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient
from lightkube.operators import not_equal
from lightkube.resources.core_v1 import Pod

from nodeless.aiotasks import cancel_all, until_one_ends
from nodeless.cli.child import ChildProcessComponent
from nodeless.fargate.ipam import IPAllocator
from nodeless.fargate.names import SCHEDULER_NAME
from nodeless.fargate.scheduler.cache import ObjectCache
from nodeless.fargate.scheduler.controller import SchedulerController
from nodeless.fargate.scheduler.gc import GarbageCollector
from nodeless.fargate.scheduler.hosts import HostPool
from nodeless.fargate.scheduler.leader import LeaderElector
from nodeless.fargate.scheduler.pending import PendingPodRecreator
from nodeless.fargate.settings import FargateSettings

log = logging.getLogger(__name__)

FIELD_MANAGER = SCHEDULER_NAME


@dataclass
class SchedulerOptions:
    region: str = "us-east-1"
    workers: int = 96
    recreate_pending_pods: bool = False
    gc_interval: float = 30.0
    lease_seconds: float = 15.0
    renew_every: float = 2.0
    leader_election: bool = True
    identity: str | None = None

    @classmethod
    def from_settings(cls, settings: FargateSettings) -> SchedulerOptions:
        return cls(region=settings.region, workers=settings.scheduler_workers,
                   recreate_pending_pods=settings.recreate_pending_pods,
                   lease_seconds=settings.scheduler_lease_seconds)


class Scheduler:
    """One scheduler replica on one client (tests run several in one event loop)."""

    def __init__(self, client: AsyncClient, options: SchedulerOptions) -> None:
        self.client = client
        self.options = options
        self.elector = LeaderElector(client, identity=options.identity,
                                     lease_seconds=options.lease_seconds,
                                     renew_every=options.renew_every)
        self.controller: SchedulerController | None = None
        self.gc: GarbageCollector | None = None
        self.pending: PendingPodRecreator | None = None
        self.terms = 0

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        if ready is not None:
            ready()  # a follower is ready too: it is standing by
        if self.options.leader_election:
            await self.elector.run(self.lead)
        else:
            await self.lead()

    async def lead(self) -> None:
        """One term as leader: runs until cancelled (leadership lost or shutdown)."""
        self.terms += 1
        hosts, allocator = HostPool(self.client), IPAllocator(self.client)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await asyncio.gather(hosts.start(), allocator.start())
            gc = GarbageCollector(self.client, host_pool=hosts, allocator=allocator,
                                  interval=self.options.gc_interval)
            controller = SchedulerController(self.client, region=self.options.region,
                                             host_pool=hosts, allocator=allocator,
                                             workers=self.options.workers)
            self.controller, self.gc = controller, gc
            # Bound pods only: a deletion frees what a bound pod holds (an unbound one's
            # run gives back what it took when its binding fails), and each pod costs
            # this watch one event (bound), not three (created, bound, deleted).
            deletions = ObjectCache(
                self.client, Pod, namespace="*",
                fields={"spec.schedulerName": SCHEDULER_NAME, "spec.nodeName": not_equal("")},
                handler=lambda kind, _key, _pod: gc.trigger() if kind == "DELETED" else None,
                name="bound fargate pods (deletions)")
            tasks = [asyncio.create_task(controller.run(), name="scheduler"),
                     asyncio.create_task(deletions.run(), name="scheduler-deletions"),
                     asyncio.create_task(gc.run(), name="scheduler-gc")]
            if self.options.recreate_pending_pods:
                pending = PendingPodRecreator(self.client, controller.profiles.objects,
                                              synced=controller.profiles.synced)
                self.pending = pending
                controller.profiles.handler = lambda *_: pending.trigger()
                tasks.append(asyncio.create_task(pending.run(), name="pending-pods"))
            await until_one_ends(tasks, "a fargate-scheduler task")
        finally:
            await cancel_all(tasks)
            await asyncio.gather(hosts.stop(), allocator.stop(), return_exceptions=True)


def scheduler_component(settings: FargateSettings) -> ChildProcessComponent:
    """`nodeless up`'s and `nodeless fargate run`'s fargate-scheduler, in a process of its
    own: under a burst it keeps a core busy, which must not be the API server's."""
    args = ["--region", settings.region, "--workers", str(settings.scheduler_workers),
            "--lease-seconds", str(settings.scheduler_lease_seconds), "--notify-ready"]
    if settings.kubeconfig is not None:  # else in-cluster, as this process
        args += ["--kubeconfig", str(settings.kubeconfig)]
    if settings.recreate_pending_pods:
        args.append("--recreate-pending-pods")
    return ChildProcessComponent(name=SCHEDULER_NAME, module="nodeless.fargate.scheduler",
                                 args=args)
