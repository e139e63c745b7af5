"""Runs the components of `nodeless up` in one process, in order, and stops them cleanly.

Each component is a coroutine that serves until cancelled and says when it is ready.
They start one after another, each once the previous is ready, because later ones
(controllers, scheduler, agent) are clients of earlier ones (the API server). If one
dies the others are stopped in reverse order: a half-running control plane is worse
than a stopped one, since it looks healthy while pods stay Pending.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nodeless.apiserver.config import APIServerConfig

log = logging.getLogger(__name__)


class Component(Protocol):
    """One long-running part of `nodeless up`."""

    name: str

    async def run(self, ready: Callable[[], None]) -> None:
        """Serve until cancelled; call `ready()` (on the loop) once serving."""
        ...


class ComponentFailed(Exception):
    """A component returned or raised while it should have been serving."""

    def __init__(self, name: str, cause: BaseException | None) -> None:
        what = f"{type(cause).__name__}: {cause}" if cause else "exited"
        super().__init__(f"{name} stopped unexpectedly ({what})")
        self.name = name
        self.cause = cause


@dataclass
class APIServerComponent:
    """The embedded Kubernetes API server; always the first component."""

    config: APIServerConfig
    name: str = field(default="apiserver")

    async def run(self, ready: Callable[[], None]) -> None:
        from nodeless.apiserver.server import serve

        await serve(self.config, ready=ready)


async def supervise(
    components: Sequence[Component],
    stop: asyncio.Event,
    *,
    on_ready: Callable[[], None] | None = None,
    on_component_ready: Callable[[str], None] | None = None,
    shutdown_timeout: float = 20.0,
) -> None:
    """Start `components` in order, call `on_component_ready(name)` as each becomes ready
    and `on_ready` when all are, return once `stop` is set. Raises ComponentFailed
    (after stopping the rest) if one of them ends."""
    running: list[tuple[Component, asyncio.Task[None]]] = []
    stop_wait = asyncio.ensure_future(stop.wait())
    try:
        for component in components:
            became_ready = asyncio.Event()
            task = asyncio.create_task(component.run(became_ready.set), name=component.name)
            running.append((component, task))
            log.info("starting %s", component.name)
            await _first(became_ready.wait(), task, stop_wait)
            if task.done():
                raise ComponentFailed(component.name, _exception(task))
            if stop.is_set():
                return
            log.info("%s is ready", component.name)
            if on_component_ready:
                on_component_ready(component.name)
        if on_ready:
            on_ready()
        tasks = [task for _, task in running]
        done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for component, task in running:
            if task in done:
                raise ComponentFailed(component.name, _exception(task))
    finally:
        stop_wait.cancel()
        for component, task in reversed(running):
            await _stop(component, task, shutdown_timeout)


async def _first(*aws: Awaitable[object]) -> None:
    """Wait until the first of `aws` completes; the others keep running."""
    futures = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f, a in zip(futures, aws, strict=True):
            if f is not a:  # a wrapper we made: do not leave it pending
                f.cancel()


async def _stop(component: Component, task: asyncio.Task[None], timeout: float) -> None:
    if task.done():
        return  # it ended by itself: ComponentFailed already carries why
    log.info("stopping %s", component.name)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        log.error("%s did not stop within %.0fs", component.name, timeout)
        return
    exc = _exception(task)
    if exc is not None:
        log.error("%s failed while stopping: %s", component.name, exc, exc_info=exc)


def _exception(task: asyncio.Task[None]) -> BaseException | None:
    if task.cancelled():
        return None
    return task.exception()


async def run_until_signalled(
    components: Sequence[Component],
    *,
    on_ready: Callable[[], None] | None = None,
    on_component_ready: Callable[[str], None] | None = None,
) -> int:
    """Supervise `components` until SIGTERM or SIGINT: the exit code of a process that
    runs them (0 after a clean stop, 1 when one of them failed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        log.info("%s received, shutting down", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await supervise(components, stop, on_ready=on_ready,
                        on_component_ready=on_component_ready)
    except ComponentFailed as e:
        log.error("%s", e, exc_info=e.cause)
        return 1
    return 0
