"""The base runtime spec's limits: Fargate's numbers, capped where the host cannot give them."""

from __future__ import annotations

import logging
import resource

import pytest

from nodeless.agent.runtime.spec import base_runtime_spec, container_rlimits


def test_rlimits_capped_at_the_host_hard_limit_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with caplog.at_level(logging.WARNING, logger="nodeless.agent.runtime.spec"):
        nofile = {limit.type: limit for limit in container_rlimits()}["RLIMIT_NOFILE"]
    assert (nofile.soft, nofile.hard) == (1024, min(host_hard, 65535))
    if host_hard < 65535:
        assert (f"RLIMIT_NOFILE: containers get hard limit {host_hard}, not Fargate's 65535"
                in caplog.text)


def test_base_spec_carries_the_limits_and_containerd_defaults() -> None:
    spec = base_runtime_spec()
    limits = {r["type"]: (r["soft"], r["hard"]) for r in spec["process"]["rlimits"]}
    assert limits == {r.type: (r.soft, r.hard) for r in container_rlimits()}
    assert {m["destination"] for m in spec["mounts"]} >= {"/proc", "/dev", "/sys"}
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
