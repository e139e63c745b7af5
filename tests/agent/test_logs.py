"""kubectl logs options over CRI log files, as kubelet serves them."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest

from nodeless.agent.logs import (
    LogError,
    LogOptions,
    container_log_path,
    pick_log_file,
    stream_log,
)

T0 = datetime.datetime(2026, 11, 23, 12, 0, 0, tzinfo=datetime.UTC)


def record(seconds: float, text: str, stream: str = "stdout", tag: str = "F") -> str:
    when = (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{when}123Z {stream} {tag} {text}\n"


async def read(path: Path, options: LogOptions, running=lambda: False) -> bytes:
    return b"".join([chunk async for chunk in stream_log(path, options, running)])


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = container_log_path(tmp_path, "app", 0)
    path.parent.mkdir(parents=True)
    path.write_text(record(0, "one") + record(1, "tw", tag="P") + record(1, "o")
                    + record(2, "oops", stream="stderr") + record(3, "four"))
    return path


async def test_whole_file_joins_partial_lines(log_file: Path) -> None:
    assert await read(log_file, LogOptions()) == b"one\ntwo\noops\nfour\n"


@pytest.mark.parametrize(("tail", "expected"), [
    (0, b""), (1, b"four\n"), (2, b"oops\nfour\n"), (10, b"one\ntwo\noops\nfour\n"),
])
async def test_tail(log_file: Path, tail: int, expected: bytes) -> None:
    assert await read(log_file, LogOptions(tail_lines=tail)) == expected


async def test_since_and_since_with_tail(log_file: Path) -> None:
    since = T0 + datetime.timedelta(seconds=1.5)
    assert await read(log_file, LogOptions(since=since)) == b"oops\nfour\n"
    assert await read(log_file, LogOptions(since=T0, tail_lines=1)) == b"four\n"


async def test_timestamps_and_limit_bytes(log_file: Path) -> None:
    out = await read(log_file, LogOptions(timestamps=True, tail_lines=1))
    assert out == b"2026-11-23T12:00:03.000000123Z four\n"
    assert await read(log_file, LogOptions(limit_bytes=6)) == b"one\ntw"


async def test_follow_streams_until_the_container_stops(log_file: Path) -> None:
    state = {"running": True}
    got: list[bytes] = []

    async def follow() -> None:
        async for chunk in stream_log(log_file, LogOptions(follow=True, tail_lines=1),
                                      lambda: state["running"]):
            got.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    with log_file.open("a") as f:
        f.write(record(4, "five"))
    await asyncio.sleep(0.3)
    assert got == [b"four\n", b"five\n"]
    with log_file.open("a") as f:
        f.write(record(5, "last words"))
    state["running"] = False
    await asyncio.wait_for(task, 5)
    assert got[-1] == b"last words\n"


def test_previous_picks_the_run_before(tmp_path: Path) -> None:
    for run in (0, 1, 2):
        path = container_log_path(tmp_path, "app", run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(record(run, f"run {run}"))
    assert pick_log_file(tmp_path, "app", previous=False).name == "2.log"
    assert pick_log_file(tmp_path, "app", previous=True).name == "1.log"
    with pytest.raises(LogError, match='previous terminated container "other" not found'):
        pick_log_file(tmp_path, "other", previous=True)


@pytest.mark.parametrize(("query", "message"), [
    ({"tailLines": "x"}, "tailLines: invalid value 'x'"),
    ({"sinceSeconds": "0"}, "sinceSeconds: invalid value 0"),
    ({"sinceTime": "yesterday"}, "sinceTime: invalid value 'yesterday'"),
])
def test_bad_query_is_a_clear_400(query: dict[str, str], message: str) -> None:
    with pytest.raises(LogError, match=message) as caught:
        LogOptions.from_query(query)
    assert caught.value.code == 400
