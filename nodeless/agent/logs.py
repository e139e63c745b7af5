"""Container logs as kubelet serves them: CRI log files in, `kubectl logs` bytes out.

containerd writes every line a container prints to the file the agent named in
CreateContainer, in the CRI format `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`: `F`
ends a line, `P` is a partial one the runtime split (long lines). kubelet's log endpoint
joins partials, filters by time, keeps the last N lines, optionally prefixes timestamps,
and with `follow` keeps streaming until the container exits. The files are named
`<log dir>/<container>/<restartCount>.log`, so `--previous` is the file before the newest.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

FOLLOW_POLL_SECONDS = 0.1
_TAIL_CHUNK = 64 * 1024


class LogError(Exception):
    """What kubectl shows when there is nothing to read (kubelet answers 400/404)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LogOptions:
    """`PodLogOptions` as kubectl sends them in the query string."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime.datetime | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: dict[str, str], now: datetime.datetime | None = None
                   ) -> LogOptions:
        """Parse kubelet's query parameters; a malformed value is a LogError (400)."""
        def flag(name: str) -> bool:
            return query.get(name, "false").lower() in ("true", "1")

        def integer(name: str) -> int | None:
            raw = query.get(name)
            if raw is None or raw == "":
                return None
            try:
                value = int(raw)
            except ValueError:
                raise LogError(f"{name}: invalid value {raw!r}: must be an integer") from None
            if value < 0 or (value == 0 and name != "tailLines"):
                raise LogError(f"{name}: invalid value {value}: must be greater than 0")
            return value

        since = None
        if (seconds := integer("sinceSeconds")) is not None:
            since = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(
                seconds=seconds)
        elif raw := query.get("sinceTime"):
            since = parse_time(raw)
            if since is None:
                raise LogError(f"sinceTime: invalid value {raw!r}: must be RFC3339")
        return cls(follow=flag("follow"), previous=flag("previous"),
                   timestamps=flag("timestamps"), tail_lines=integer("tailLines"),
                   since=since, limit_bytes=integer("limitBytes"))


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime.datetime | None:
    """RFC3339 with up to nanoseconds (Python keeps microseconds)."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class LogLine:
    time: datetime.datetime
    raw_time: bytes
    stream: bytes
    text: bytes  # with its newline

    def render(self, timestamps: bool) -> bytes:
        return self.raw_time + b" " + self.text if timestamps else self.text


class LineParser:
    """Joins the CRI format's partial records into whole lines, per stream."""

    def __init__(self) -> None:
        self._partial: dict[bytes, bytes] = {}

    def feed(self, record: bytes) -> LogLine | None:
        parts = record.rstrip(b"\n").split(b" ", 3)
        if len(parts) < 3:
            return None  # not a CRI record (a truncated write): skip it like kubelet
        raw_time, stream, tag = parts[0], parts[1], parts[2]
        text = parts[3] if len(parts) == 4 else b""
        if tag == b"P":
            self._partial[stream] = self._partial.get(stream, b"") + text
            return None
        text = self._partial.pop(stream, b"") + text + b"\n"
        when = parse_time(raw_time.decode(errors="replace"))
        if when is None:
            return None
        return LogLine(when, raw_time, stream, text)


def container_log_path(log_directory: Path, container: str, restart_count: int) -> Path:
    """Where the agent asks containerd to write one run of a container."""
    return log_directory / container / f"{restart_count}.log"


def pick_log_file(log_directory: Path, container: str, previous: bool) -> Path:
    """The newest run's file, or the one before it for `--previous`."""
    directory = log_directory / container
    runs = sorted((int(p.stem), p) for p in directory.glob("*.log") if p.stem.isdigit()) \
        if directory.is_dir() else []
    if previous:
        if len(runs) < 2:
            raise LogError(f'previous terminated container "{container}" not found')
        return runs[-2][1]
    if not runs:
        raise LogError(f'container "{container}" has not started yet: no logs')
    return runs[-1][1]


def _tail_records(path: Path, lines: int) -> tuple[list[bytes], int]:
    """The last `lines` complete records of the file and the offset after them, reading
    backwards in chunks so a long log costs what the tail costs."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        if lines == 0:
            return [], end
        data, pos = b"", end
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    records = complete.splitlines(keepends=True)
    if pos > 0:
        records = records[1:]  # the first may be cut in the middle
    return records, (pos + len(complete)) if complete else end


async def stream_log(path: Path, options: LogOptions,
                     running: Callable[[], bool] = lambda: False) -> AsyncIterator[bytes]:
    """The bytes `kubectl logs` prints for one run's file. With `follow`, keeps reading
    as the file grows until `running()` turns false and the file is drained."""
    parser = LineParser()
    budget = options.limit_bytes
    offset = 0
    if options.tail_lines is not None and options.since is None:
        # Partial records ahead of the tail are dropped: a tail counts whole lines.
        records, offset = _tail_records(path, options.tail_lines * 4 + 16)
        lines = [line for r in records if (line := parser.feed(r)) is not None]
        pending = lines[-options.tail_lines:] if options.tail_lines else []
    else:
        pending = []
    tail_done = options.tail_lines is not None and options.since is None

    def emit(line: LogLine) -> bytes | None:
        nonlocal budget
        if options.since is not None and line.time < options.since:
            return None
        out = line.render(options.timestamps)
        if budget is not None:
            out = out[:budget]
            budget -= len(out)
        return out

    for line in pending:
        if (out := emit(line)) is not None:
            yield out
    if budget is not None and budget <= 0:
        return
    collected: list[LogLine] = []
    with path.open("rb") as f:
        f.seek(offset)
        buffer = b""
        while True:
            chunk = f.read(_TAIL_CHUNK)
            if not chunk:
                if not tail_done and options.tail_lines is not None:
                    kept = [ln for ln in collected
                            if options.since is None or ln.time >= options.since]
                    for line in kept[-options.tail_lines:] if options.tail_lines else []:
                        if (out := emit(line)) is not None:
                            yield out
                    tail_done = True
                if not options.follow:
                    return
                if running():
                    await asyncio.sleep(FOLLOW_POLL_SECONDS)
                    continue
                chunk = f.read()  # the container stopped: its last lines, then the end
                if not chunk:
                    return
            buffer += chunk
            *records, buffer = buffer.split(b"\n")
            for record in records:
                line = parser.feed(record)
                if line is None:
                    continue
                if not tail_done and options.tail_lines is not None:
                    collected.append(line)  # since + tail: filter first, then tail
                    continue
                if (out := emit(line)) is not None:
                    yield out
                    if budget is not None and budget <= 0:
                        return
