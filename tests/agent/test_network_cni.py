"""Our CNI plugin's contract with containerd (unknown pods refused, DEL idempotent), IP
assignment checks, and instances of the pod network that never collide."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from nodeless.agent.network.podnetwork import PodNetwork
from tests.fixtures.runtime import RunningRuntime


def _plugin(network: PodNetwork, command: str, cni_args: str, netns: str = ""
            ) -> tuple[int, dict]:
    conf = network.conflist()
    plugin_conf = {"cniVersion": conf["cniVersion"], "name": conf["name"],
                   **conf["plugins"][0]}  # type: ignore[index]
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_ARGS": cni_args,
           "CNI_CONTAINERID": "abc123", "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
           "CNI_PATH": str(network.plugin_dir)}
    result = subprocess.run([str(network.plugin_dir / "nodeless")], input=json.dumps(plugin_conf),
                            env=env, capture_output=True, text=True)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


def test_cni_plugin_refuses_unknown_pods_and_deletes_idempotently(
        container_runtime: RunningRuntime) -> None:
    network = container_runtime.network
    args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=ghost;K8S_POD_UID=u1"
    code, error = _plugin(network, "ADD", args, netns="/var/run/netns/none")
    assert code == 1 and error["code"] == 100
    assert error["msg"] == "pod default/ghost has no IP assigned on this host"
    for _ in range(2):  # DEL of a pod never set up, twice: both succeed
        assert _plugin(network, "DEL", args)[0] == 0

    network.assign("default", "renamed", container_runtime.next_ip(container_runtime.subnets[0]),
                   container_runtime.subnets[0], uid="old-uid")
    try:
        code, error = _plugin(network, "ADD", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=renamed;"
                              "K8S_POD_UID=new-uid", netns="/var/run/netns/none")
        assert code == 1 and "earlier pod of that name (uid old-uid)" in error["details"]
    finally:
        network.release("default", "renamed")
    code, version = _plugin(network, "VERSION", "")
    assert code == 0 and "1.0.0" in version["supportedVersions"]


def test_assign_rejects_addresses_a_pod_cannot_have(container_runtime: RunningRuntime) -> None:
    network = container_runtime.network
    subnet = container_runtime.subnets[0]
    base = subnet.split("/")[0].rsplit(".", 2)[0]
    with pytest.raises(ValueError, match="reserved"):
        network.assign("default", "p", f"{base}.0.1", subnet)
    with pytest.raises(ValueError, match="not in subnet"):
        network.assign("default", "p", "192.168.1.10", subnet)
    assert network.lookup("default", "p") is None


def test_instances_do_not_collide_and_teardown_leaves_nothing(tmp_path: Path) -> None:
    first = PodNetwork(tmp_path / "a", instance="agent-a")
    second = PodNetwork(tmp_path / "b", instance="agent-b")
    assert first.firewall.table != second.firewall.table
    assert first.bridge_name("10.0.0.0/19") != second.bridge_name("10.0.0.0/19")
    assert len(first.bridge_name("10.0.0.0/19")) <= 15
    with pytest.raises(ValueError, match="longer than 15"):
        PodNetwork(tmp_path / "c", instance="c", bridge_prefix="much-too-long")
    first.setup()
    try:
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                                check=True).stdout
        assert f"table inet {first.firewall.table}" in tables
        assert f"table inet {second.firewall.table}" not in tables
    finally:
        first.teardown()
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert first.firewall.table not in tables
    first.teardown()  # twice is fine
