"""A component of `nodeless up` that runs in a child process of its own.

Python runs one thread of bytecode at a time, so a component that keeps a core busy (the
fargate-scheduler under a burst of pods) would slow the API server it talks to if both
shared a process. In a child it gets a core of its own and still talks to the API server
only over the Kubernetes API, exactly as it would on a real cluster.

Protocol with the child: it prints the line `ready` on stdout once serving; it logs on
stderr as `LEVEL logger: message` (`child_logging`), relayed line by line into this
process's log at that level; SIGTERM stops it cleanly. The kernel sends it SIGTERM if
this process dies first (PR_SET_PDEATHSIG), so a killed `nodeless up` leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from nodeless import aiotasks

log = logging.getLogger(__name__)

READY_LINE = b"ready"
PR_SET_PDEATHSIG = 1
CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "botocore")
"""Libraries that log a line per request at INFO: a burst would drown the log."""


def child_logging(level: int = logging.INFO) -> None:
    """Logging for a child process: stderr, in the form `_relay` parses."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_child(main: Callable[[Callable[[], None] | None], Awaitable[None]], *,
              notify: bool) -> None:
    """A child's whole life: `main(ready)` in a fresh event loop until SIGTERM cancels it
    (so it can give back a Lease or stop what it started on the way out). `ready` is
    `notify_ready` with `--notify-ready`, else None."""
    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await main(notify_ready if notify else None)

    aiotasks.run(run())


def notify_ready() -> None:
    """Called in the child once it serves: tells the parent's ChildProcessComponent."""
    sys.stdout.write(READY_LINE.decode() + "\n")
    sys.stdout.flush()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildProcessComponent:
    """Runs `python -m module *args` as a supervised component."""

    name: str
    module: str
    args: Sequence[str] = ()
    stop_timeout: float = 15.0
    on_exit: Callable[[int], None] | None = field(default=None, repr=False)

    async def run(self, ready: Callable[[], None]) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        assert proc.stdout is not None and proc.stderr is not None
        relays = [asyncio.create_task(self._watch_stdout(proc.stdout, ready)),
                  asyncio.create_task(_relay(proc.stderr, self.name))]
        try:
            code = await proc.wait()
            await asyncio.gather(*relays, return_exceptions=True)
            raise RuntimeError(f"{self.name} (pid {proc.pid}) exited with code {code}")
        finally:
            if proc.returncode is None:
                await asyncio.shield(self._terminate(proc))
            for task in relays:
                task.cancel()

    async def _watch_stdout(self, stream: asyncio.StreamReader,
                            ready: Callable[[], None]) -> None:
        child_log = logging.getLogger(f"nodeless.{self.name}")
        while line := await stream.readline():
            if line.strip() == READY_LINE:
                ready()
            else:
                child_log.info("%s", line.decode(errors="replace").rstrip())

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except TimeoutError:
            log.error("%s did not stop within %.0fs; killing it", self.name,
                      self.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _relay(stream: asyncio.StreamReader, component: str) -> None:
    """The child's stderr into our log, a record per line, at the line's level and under
    its logger's name (a traceback's lines follow at the level of the record before)."""
    level = logging.INFO
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        head, _, rest = text.partition(" ")
        name, colon, message = rest.partition(": ")
        if head in logging.getLevelNamesMapping() and colon and " " not in name:
            level = logging.getLevelNamesMapping()[head]
            logging.getLogger(name).log(level, "%s", message)
        else:
            logging.getLogger(f"nodeless.{component}").log(level, "%s", text)
