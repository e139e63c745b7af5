"""Events as kubelet records them (Pulling, Pulled, Created, Started, Killing, BackOff...),
written off the pod's path: a slow API server delays the Events, never the containers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import uuid
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Event

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
WRITERS = 4


class EventRecorder:
    def __init__(self, client: AsyncClient, host: str) -> None:
        self.client = client
        self.host = host
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write(), name=f"events-{i}")
                       for i in range(WRITERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def pod(self, pod: dict[str, Any], type_: str, reason: str, message: str, *,
                  field_path: str = "") -> None:
        meta = pod["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        involved = {"kind": "Pod", "apiVersion": "v1", "namespace": meta["namespace"],
                    "name": meta["name"], "uid": meta["uid"]}
        if field_path:
            involved["fieldPath"] = field_path
        node = (pod.get("spec") or {}).get("nodeName") or self.host
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                              "namespace": meta["namespace"]},
                 "involvedObject": involved, "type": type_, "reason": reason,
                 "message": message, "source": {"component": "kubelet", "host": node},
                 "reportingComponent": "kubelet", "reportingInstance": node,
                 "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("dropping event %s %s for %s/%s: too many queued", reason, message,
                        meta["namespace"], meta["name"])

    async def _write(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.client.create(Event.from_dict(event))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the namespace went away, the API is down
                log.debug("event %s not written: %s", event["reason"], exc)
