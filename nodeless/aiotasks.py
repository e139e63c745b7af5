"""The two halves of "run these tasks together": serve until one of them ends, and cancel
them all on the way out. A controller's informers and workers are meant to run forever,
so any of them ending is an error for the component (and the supervisor) to see."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, NoReturn, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop: every long-running process of ours (API server, scheduler,
    controllers, agent) spends most of its time in TLS and socket I/O, which uvloop does
    in C (the API server serves about a third more requests per CPU second)."""
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
