"""The one shape of every controller: a work queue of keys, workers that call `sync(key)`,
a failed sync requeued with per-key backoff. `sync` is level-triggered: it reads the
current state from the caches and makes the world match, so calling it twice, or after a
restart, does no harm."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from nodeless.controllers.informer import SharedInformers
from nodeless.workqueue import WorkQueue

log = logging.getLogger(__name__)


class Requeue(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a sync to come back to the key later without counting a failure."""

    def __init__(self, after: float = 1.0) -> None:
        super().__init__(f"requeue in {after}s")
        self.after = after


class Controller:
    name = "controller"
    workers = 2

    def __init__(self, client: AsyncClient, informers: SharedInformers) -> None:
        self.client = client
        self.informers = informers
        self.queue = WorkQueue(base_delay=0.005, max_delay=60.0)
        self.log = logging.getLogger(f"nodeless.controllers.{self.name}")

    def enqueue(self, key: str | None) -> None:
        if key:
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Requeue as again:
                self.queue.add_after(key, again.after)
            except ApiError as exc:
                level = logging.DEBUG if exc.status.code == 409 else logging.WARNING
                self.log.log(level, "%s %s: %s (retrying)", self.name, key,
                             exc.status.message)
                self.queue.add_rate_limited(key)
            except Exception:
                self.log.exception("%s %s failed (retrying)", self.name, key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.status.code == 404


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.status.code == 409


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning status `old` into `new` (None: no change); fields that
    are no longer set are removed, as omitempty does for kube's zero values."""
    old = old or {}
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch or None
