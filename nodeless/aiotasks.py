"""How our processes run their event loop (`run`), and the two halves of "run these
tasks together": serve until one of them ends, and cancel them all on the way out. A
controller's informers and workers are meant to run forever, so any of them ending is
an error for the component (and the supervisor) to see."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine, Iterable
from typing import Any, NoReturn, TypeVar

import uvloop

T = TypeVar("T")


GC_GEN0_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default: 700). A server
of ours allocates and frees thousands of small dicts per request burst, nearly none in
cycles; at 700 the collector ran every few requests (about 2% of the API server)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop, for every long-running process of ours (API server,
    scheduler, webhook, controllers, agent): they spend most of their time in TLS and
    socket I/O, which uvloop does in C. What was imported before is frozen out of the
    cyclic collector's sight (it lives as long as the process), and young collections
    run less often: see GC_GEN0_THRESHOLD."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)
    return uvloop.run(main)


async def until_one_ends(tasks: Iterable[asyncio.Future[Any]], what: str) -> NoReturn:
    """Wait until one of `tasks` ends; raise what stopped it, or RuntimeError naming
    `what` if it returned."""
    done, _ = await asyncio.wait(list(tasks), return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()
    raise RuntimeError(f"{what} ended")


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until every one has finished (errors are theirs)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
