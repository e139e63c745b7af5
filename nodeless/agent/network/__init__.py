"""Pod networking: each pod on the bridge of its private subnet with the IP the
fargate-scheduler chose, through CNI plugins run by containerd, behind an nftables table.

- podnetwork.py   PodNetwork: setup/teardown, assign/release a pod's IP (the agent's API)
- assignments.py  the per-pod records our CNI plugin reads
- cniplugin.py    the CNI plugin containerd execs (delegates to bridge + static IPAM)
- firewall.py     nftables: no instance metadata, no host services, NAT to the outside

Stdlib only, and this package imports nothing up front: cniplugin.py runs in a fresh
interpreter for every sandbox, and each import there is time on every pod's start.
"""

from __future__ import annotations

__all__ = ["Assignment", "PodNetwork"]


def __getattr__(name: str) -> type:
    if name == "PodNetwork":
        from nodeless.agent.network.podnetwork import PodNetwork
        return PodNetwork
    if name == "Assignment":
        from nodeless.agent.network.assignments import Assignment
        return Assignment
    raise AttributeError(name)
