"""Removing a pod's cgroup parent once its sandbox is gone.

runc creates the directories of a sandbox's `cgroup_parent` (mkdir -p) but removes only
the container's own, so every pod would leave an empty directory per controller behind.
Kubelet owns its pod cgroups for that reason; so does the agent: this removes them.
Works on cgroup v1 (one hierarchy per controller, as on this host) and v2 (unified).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """The mounted hierarchies: the root itself on v2, each controller's dir on v1."""
    if (root / "cgroup.controllers").exists():
        return [root]
    return [p for p in sorted(root.iterdir())
            if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()]


def remove_cgroup(parent: str, root: Path = CGROUP_ROOT, *, wait: float = 0.0
                  ) -> list[str]:
    """Remove `parent` (an absolute cgroup path such as "/nodeless/pod-uid") and its empty
    descendants in every hierarchy, deepest first. Idempotent. A directory the kernel
    still counts exiting tasks in (EBUSY) is tried again for up to `wait` seconds.
    Returns the paths that could not be removed (still holding processes), each also
    logged."""
    relative = parent.strip("/")
    if not relative:
        raise ValueError("refusing to remove the root cgroup")
    deadline = time.monotonic() + wait
    busy = []
    for hierarchy in hierarchies(root):
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            while True:
                try:
                    os.rmdir(dirpath)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    if error.errno == errno.EBUSY and time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    busy.append(dirpath)
                    log.warning("cgroup %s not removed: %s", dirpath, error.strerror)
                break
    return busy


def remove_empty_parent(parent: str, root: Path = CGROUP_ROOT) -> None:
    """Remove `parent` in every hierarchy if it is empty (a shared parent of pod cgroups
    once its last pod is gone); silently keeps it otherwise."""
    for hierarchy in hierarchies(root):
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / parent.strip("/"))
