"""Pod-level cgroups limited to the provisioned capacity, for containerd's cgroupfs driver.

Each pod gets `/nodeless/pod<uid>` (kubelet's cgroupfs naming under a `nodeless` parent
instead of `kubepods`); the path is the sandbox's `linux.cgroup_parent`, so runc creates
every container of the pod beneath it and the kernel holds the pod to its size whatever
the containers ask for. cgroup v2 (unified) writes cpu.max, cpu.weight and memory.max;
v1 and hybrid hosts (like the development machine) write cpu.cfs_quota_us/cfs_period_us,
cpu.shares and memory.limit_in_bytes in their own hierarchies.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from nodeless.agent.pods.resources import CPU_PERIOD, cpu_quota, cpu_shares
from nodeless.agent.runtime.cgroups import remove_cgroup

CGROUP_ROOT = "/sys/fs/cgroup"
PARENT = "nodeless"
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")
"""v1 hierarchies the pod cgroup is created in (runc joins all; limits go to cpu, memory)."""


def is_unified(root: str = CGROUP_ROOT) -> bool:
    """cgroup v2 only: the root is a cgroup2 mount with cgroup.controllers."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def v1_mounts(root: str = CGROUP_ROOT) -> dict[str, str]:
    """controller -> v1 hierarchy directory (`cpu` may live in `cpu,cpuacct`)."""
    out: dict[str, str] = {}
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for name in sorted(names):
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        for ctrl in name.split(","):
            if ctrl in V1_CONTROLLERS:
                out.setdefault(ctrl, path)
    return out


def cpu_weight(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 shares (the runtime spec's conversion)."""
    return 1 + ((shares - 2) * 9999) // 262142


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@dataclass
class PodCgroup:
    """The cgroup of one pod; `cgroup_parent` goes in PodSandboxConfig.linux."""

    pod_uid: str
    cgroup_parent: str
    paths: list[str]

    @classmethod
    def create(cls, pod_uid: str, cpu_millicores: int, memory_bytes: int, *,
               root: str = CGROUP_ROOT) -> PodCgroup:
        """Create (or update) `/nodeless/pod<uid>` with the pod's CPU and memory limits."""
        parent = f"/{PARENT}/pod{pod_uid.replace('/', '_')}"
        quota, shares = cpu_quota(cpu_millicores), cpu_shares(cpu_millicores)
        paths: list[str] = []
        if is_unified(root):
            _enable_v2_controllers(root, os.path.join(root, PARENT))
            path = os.path.join(root, parent.lstrip("/"))
            os.makedirs(path, exist_ok=True)
            _write(os.path.join(path, "cpu.max"), f"{quota or 'max'} {CPU_PERIOD}")
            _write(os.path.join(path, "cpu.weight"), str(cpu_weight(shares)))
            _write(os.path.join(path, "memory.max"), str(memory_bytes))
            swap = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap):
                _write(swap, "0")  # Fargate pods have no swap
            paths.append(path)
        else:
            mounts = v1_mounts(root)
            missing = {"cpu", "memory"} - set(mounts)
            if missing:
                raise RuntimeError(f"cgroup v1 controllers not mounted under {root}: "
                                   f"{', '.join(sorted(missing))}")
            for ctrl, mount in mounts.items():
                path = os.path.join(mount, parent.lstrip("/"))
                os.makedirs(path, exist_ok=True)
                if path not in paths:
                    paths.append(path)
                if ctrl == "cpu":
                    _write(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD))
                    _write(os.path.join(path, "cpu.cfs_quota_us"), str(quota or -1))
                    _write(os.path.join(path, "cpu.shares"), str(shares))
                elif ctrl == "memory":
                    _set_v1_memory(path, memory_bytes)
        return cls(pod_uid, parent, paths)

    def limits(self) -> tuple[int, int, int]:
        """(cfs quota µs or -1, period µs, memory bytes) read back from the kernel."""
        for path in self.paths:
            if os.path.exists(os.path.join(path, "cpu.max")):
                quota, period = _read(os.path.join(path, "cpu.max")).split()
                return (-1 if quota == "max" else int(quota), int(period),
                        int(_read(os.path.join(path, "memory.max"))))
        quota = period = memory = -1
        for path in self.paths:
            if os.path.exists(os.path.join(path, "cpu.cfs_quota_us")):
                quota = int(_read(os.path.join(path, "cpu.cfs_quota_us")))
                period = int(_read(os.path.join(path, "cpu.cfs_period_us")))
            if os.path.exists(os.path.join(path, "memory.limit_in_bytes")):
                memory = int(_read(os.path.join(path, "memory.limit_in_bytes")))
        return quota, period, memory

    def remove(self, timeout: float = 5.0, *, root: str = CGROUP_ROOT) -> None:
        """Remove the pod's cgroup from every hierarchy (runc creates it in all of them,
        blkio, devices, freezer, the named systemd one...), children first; retried while
        the kernel still counts exiting tasks. OSError if some stay busy."""
        busy = remove_cgroup(self.cgroup_parent, Path(root), wait=timeout)
        if busy:
            raise OSError(errno.EBUSY, f"cgroups still in use: {', '.join(busy)}")

    @classmethod
    def existing(cls, pod_uid: str, root: str = CGROUP_ROOT) -> PodCgroup:
        """The pod's cgroup as found on disk (after an agent restart), for remove()."""
        parent = f"/{PARENT}/pod{pod_uid}"
        if is_unified(root):
            candidates = [os.path.join(root, parent.lstrip("/"))]
        else:
            candidates = list(dict.fromkeys(os.path.join(m, parent.lstrip("/"))
                                            for m in v1_mounts(root).values()))
        return cls(pod_uid, parent, [p for p in candidates if os.path.isdir(p)])


def _set_v1_memory(path: str, memory_bytes: int) -> None:
    """memory.limit_in_bytes, and memory+swap to the same value where the kernel accounts
    swap (Fargate pods have none). memsw may never be below the memory limit, so the
    order depends on whether the limit grows or shrinks."""
    limit = os.path.join(path, "memory.limit_in_bytes")
    memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
    if not os.path.exists(memsw):
        _write(limit, str(memory_bytes))
        return
    current = int(_read(limit))
    if memory_bytes > current:
        _write(memsw, str(memory_bytes))
        _write(limit, str(memory_bytes))
    else:
        _write(limit, str(memory_bytes))
        _write(memsw, str(memory_bytes))


def _enable_v2_controllers(root: str, parent: str) -> None:
    """Let the `nodeless` parent and its children use cpu, memory and pids."""
    os.makedirs(parent, exist_ok=True)
    for directory in (root, parent):
        control = os.path.join(directory, "cgroup.subtree_control")
        try:
            enabled = set(_read(control).split())
            available = set(_read(os.path.join(directory, "cgroup.controllers")).split())
        except OSError:
            continue
        for ctrl in ("cpu", "memory", "pids"):
            if ctrl in available and ctrl not in enabled:
                _write(control, f"+{ctrl}")
