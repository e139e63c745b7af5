"""Child daemons (containerd, the local registry) that must not outlive the agent.

A daemon we start is ours to stop: the kernel sends it SIGTERM if our process dies first
(PR_SET_PDEATHSIG, as `nodeless/cli/child.py` does for components), so a killed agent or
test run leaves no containerd holding sockets and mounts behind. The kernel ties this to
the *thread* that forked: start daemons from a thread that lives as long as they should
(the event loop's thread, which is where asyncio forks).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def spawn(argv: Sequence[str], log_file: Path) -> asyncio.subprocess.Process:
    """Start `argv` with its output appended to `log_file`, dying with this process."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            preexec_fn=die_with_parent, start_new_session=True)


async def terminate(proc: asyncio.subprocess.Process, what: str, timeout: float) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log.error("%s (pid %d) did not stop within %.0fs; killing it", what, proc.pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a daemon's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
