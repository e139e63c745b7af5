"""client-go's rate-limited work queue, shared by every controller (the Fargate profile
controller, the fargate-scheduler, the workload controllers)."""

from __future__ import annotations

import asyncio
import random
from collections import deque


class WorkQueue:
    """client-go's rate-limited work queue, reduced to what a controller needs.

    A key is handed to one worker at a time; adding a key that is being processed marks
    it dirty so it runs again afterwards (never lost, never concurrent); a failing key
    backs off exponentially, per key, up to `max_delay`.
    """

    def __init__(self, base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Event()
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` in `delay` seconds; an earlier pending add wins over a later one."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        pending = self._timers.get(key)
        if pending is not None:
            if pending.when() <= loop.time() + delay:
                return
            pending.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: str) -> float:
        """Requeue a failed key with its backoff (jittered); returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * 2 ** failures)
        delay *= random.uniform(0.8, 1.2)
        self.add_after(key, delay)
        return delay

    add_rate_limited = retry

    def requeues(self, key: str) -> int:
        """Failures of `key` since it last succeeded."""
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    async def get(self) -> str:
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
