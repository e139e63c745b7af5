"""The base OCI runtime spec every container starts from (containerd's `base_runtime_spec`).

Why our own: Fargate gives every container `nofile` and `nproc` soft 1024 / hard 65535,
and neither CRI nor the pod spec can say so; containerd's built-in default has nofile
1024/1024 and no nproc. The rest is containerd's default Linux spec (mounts, masked and
read-only paths, default capabilities, namespaces); CRI then applies the pod's settings
on top of it, as it does on its own default.

A process without CAP_SYS_RESOURCE cannot raise a hard limit above its own, and runc would
fail to start every container if we asked, so hard limits are capped at this host's.

Known gap, in runc itself: Debian 12's runc 1.1.5, built with Go 1.19, races with Go's
runtime (which raises its own soft RLIMIT_NOFILE to the hard one) when it sets the limits
of a process started by exec (ExecSync, kubectl exec, exec probes): now and then (~1 in
10 here) such a process gets nofile soft = hard (runc issue #4195, fixed in later runc).
The container's own processes always get the spec's values. The pause container is not
built from this spec (containerd 1.6) and keeps the shim's limits.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FARGATE_SOFT = 1024
FARGATE_HARD = 65535

DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


@dataclass(frozen=True)
class Rlimit:
    type: str
    soft: int
    hard: int


def _host_hard(kind: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return hard if hard != resource.RLIM_INFINITY else 2**63 - 1


def container_rlimits() -> list[Rlimit]:
    """Fargate's nofile and nproc limits, hard values capped at this host's hard limits
    (logged as a warning when that happens, so the number users see is explained)."""
    limits = []
    for name, kind in (("RLIMIT_NOFILE", resource.RLIMIT_NOFILE),
                       ("RLIMIT_NPROC", resource.RLIMIT_NPROC)):
        host = _host_hard(kind)
        hard = min(FARGATE_HARD, host)
        if hard < FARGATE_HARD:
            log.warning("%s: containers get hard limit %d, not Fargate's %d: this host's "
                        "hard limit is %d and raising it needs CAP_SYS_RESOURCE",
                        name, hard, FARGATE_HARD, host)
        limits.append(Rlimit(name, min(FARGATE_SOFT, hard), hard))
    return limits


def base_runtime_spec(rlimits: list[Rlimit] | None = None) -> dict[str, Any]:
    """containerd's default Linux spec with our rlimits, as a JSON-able dict."""
    rlimits = container_rlimits() if rlimits is None else rlimits
    no_exec = ["nosuid", "noexec", "nodev"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "cwd": "/",
            "capabilities": {key: list(DEFAULT_CAPABILITIES)
                             for key in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": r.type, "hard": r.hard, "soft": r.soft} for r in rlimits],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": no_exec},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": [*no_exec, "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": no_exec},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": [*no_exec, "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
