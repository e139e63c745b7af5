"""Pod cgroups limited to the provisioned capacity, created and read back from the kernel."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from nodeless.agent.pods.cgroups import CGROUP_ROOT, PodCgroup, is_unified, v1_mounts
from nodeless.agent.pods.podutil import parse_capacity, provisioned_capacity

GIB = 2**30


@pytest.fixture
def pod_uid() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize(("text", "millis", "memory"), [
    ("0.25vCPU 0.5GB", 250, GIB // 2),
    ("2vCPU 9GB", 2000, 9 * GIB),
    ("16vCPU 120GB", 16000, 120 * GIB),
])
def test_capacity_annotation(text: str, millis: int, memory: int) -> None:
    assert parse_capacity(text) == (millis, memory)


def test_capacity_falls_back_to_the_node() -> None:
    assert provisioned_capacity({"metadata": {}}, {"cpu": "500m", "memory": "1Gi"}) == \
        (500, GIB)
    with pytest.raises(ValueError, match="no CapacityProvisioned"):
        provisioned_capacity({"metadata": {}})


def test_pod_cgroup_limits_read_back(pod_uid: str) -> None:
    cg = PodCgroup.create(pod_uid, 250, GIB // 2)
    try:
        assert cg.cgroup_parent == f"/nodeless/pod{pod_uid}"
        assert cg.limits() == (25_000, 100_000, GIB // 2)
        if not is_unified():
            mounts = v1_mounts()
            cpu = os.path.join(mounts["cpu"], "nodeless", f"pod{pod_uid}")
            with open(os.path.join(cpu, "cpu.shares")) as f:
                assert f.read().strip() == "256"
            memsw = os.path.join(mounts["memory"], "nodeless", f"pod{pod_uid}",
                                 "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):           # no swap beyond the memory limit
                with open(memsw) as f:
                    assert int(f.read()) == GIB // 2
        # Resizing the same pod (a restart of the agent with a new size) updates in place.
        cg = PodCgroup.create(pod_uid, 2000, 4 * GIB)
        assert cg.limits() == (200_000, 100_000, 4 * GIB)
        # runc creates the pod's cgroup in every hierarchy: remove() clears them all.
        for h in os.listdir(CGROUP_ROOT):
            if os.path.ismount(os.path.join(CGROUP_ROOT, h)):
                os.makedirs(os.path.join(CGROUP_ROOT, h, "nodeless", f"pod{pod_uid}", "c1"),
                            exist_ok=True)
    finally:
        cg.remove()
    leftovers = [h for h in os.listdir(CGROUP_ROOT)
                 if os.path.exists(os.path.join(CGROUP_ROOT, h, "nodeless", f"pod{pod_uid}"))]
    assert leftovers == []


def test_a_process_in_the_pod_cgroup_is_held_to_its_memory(pod_uid: str) -> None:
    """A process over the limit is OOM-killed by the kernel: the limit is real."""
    cg = PodCgroup.create(pod_uid, 1000, 32 * 2**20)
    procs = [os.path.join(p, "cgroup.procs") for p in cg.paths
             if os.path.exists(os.path.join(p, "memory.limit_in_bytes"))
             or os.path.exists(os.path.join(p, "memory.max"))]
    hog = ("import os\n"
           f"open({procs[0]!r}, 'w').write(str(os.getpid()))\n"
           "x = bytearray(128 * 2**20)\n"
           "for i in range(0, len(x), 4096): x[i] = 1\n"
           "print('survived')\n")
    try:
        result = subprocess.run(["python3", "-c", hog], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == -9, (result.returncode, result.stdout, result.stderr)
        assert "survived" not in result.stdout
    finally:
        cg.remove()


def test_existing_finds_the_cgroup_after_an_agent_restart(pod_uid: str) -> None:
    created = PodCgroup.create(pod_uid, 500, GIB)
    found = PodCgroup.existing(pod_uid)
    assert sorted(found.paths) == sorted(created.paths)
    found.remove()
    assert PodCgroup.existing(pod_uid).paths == []


def test_this_host_layout_is_detected() -> None:
    if is_unified():
        assert os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    else:
        assert {"cpu", "memory"} <= set(v1_mounts())
