"""All controllers in one process over one set of shared informers: every informer has
listed before any worker runs, so a restarted manager starts from complete caches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient

from nodeless.aiotasks import cancel_all, until_one_ends
from nodeless.controllers.base import Controller
from nodeless.controllers.daemonset import DaemonSetController
from nodeless.controllers.deployment import DeploymentController
from nodeless.controllers.endpoints import EndpointsController
from nodeless.controllers.gc import GarbageCollector
from nodeless.controllers.informer import SharedInformers
from nodeless.controllers.job import JobController
from nodeless.controllers.namespace import NamespaceController
from nodeless.controllers.replicaset import ReplicaSetController


@dataclass
class ManagerOptions:
    job_backoff: float = 10.0
    """Seconds before a failed Job pod is replaced, doubled per failure (kube: 10 s)."""


class ControllerManager:
    def __init__(self, client: AsyncClient, options: ManagerOptions | None = None) -> None:
        self.options = options or ManagerOptions()
        self.informers = SharedInformers(client)
        self.controllers: list[Controller] = [
            DeploymentController(client, self.informers),
            ReplicaSetController(client, self.informers),
            JobController(client, self.informers, backoff_base=self.options.job_backoff),
            DaemonSetController(client, self.informers),
            EndpointsController(client, self.informers),
            GarbageCollector(client, self.informers),
            NamespaceController(client, self.informers),
        ]

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        tasks: list[asyncio.Task[Any]] = self.informers.start()
        try:
            await self.informers.wait_synced()
            tasks += [asyncio.create_task(c.run(), name=c.name) for c in self.controllers]
            if ready is not None:
                ready()
            await until_one_ends(tasks, "a controller")
        finally:
            await cancel_all(tasks)
