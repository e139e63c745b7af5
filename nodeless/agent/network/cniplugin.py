"""Our CNI plugin, first in the network list containerd runs for every sandbox.

It does one thing the stock plugins cannot: put the pod on the bridge of *its* subnet with
*its* address, both decided by the fargate-scheduler and recorded by the agent
(assignments.py). The work itself is delegated to the stock `bridge` plugin (with `static`
IPAM carrying the address); `portmap` and `firewall` follow in the list.

containerd execs this through a tiny wrapper in the plugin dir (see PodNetwork.setup):

    CNI_COMMAND=ADD|DEL|CHECK|VERSION, CNI_ARGS="K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;..",
    stdin: {"type": "nodeless", "podsDir": ..., "bridgePrefix": ..., "delegateDir": ...}

DEL is idempotent: a pod without a record, a netns already gone, a second DEL all succeed.
"""

from __future__ import annotations

import json
import os
import sys

from nodeless.agent.network.records import read_record

# Imports are paid on every sandbox start (a fresh interpreter each time): stdlib's
# lightest only, no typing, no dataclasses, no pathlib.

SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
ERR_INVALID_CONFIG = 7
ERR_NO_ASSIGNMENT = 100
"""Plugin-specific codes start at 100 (CNI spec)."""


class CNIError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def cni_args(raw: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split(";") if "=" in item)
    return {key: value for key, value in pairs}


def delegate_config(conf: dict, record: dict | None) -> dict:
    """The `bridge` plugin's config for this pod. Without an assignment (DEL of a pod the
    agent already forgot) only the parts DEL uses matter: it removes the pod's interface
    from its netns."""
    bridge: dict = {
        "cniVersion": conf.get("cniVersion", "1.0.0"),
        "name": conf.get("name", "nodeless"),
        "type": "bridge",
        "isGateway": True,
        "ipMasq": False,  # the firewall table masquerades pods -> outside only
        "hairpinMode": True,
        "ipam": {"type": "static", "addresses": []},
    }
    if record is None:
        bridge["bridge"] = f"{conf.get('bridgePrefix', 'nl')}gone"
        return bridge
    prefix_length = record["subnet"].split("/")[1]
    bridge["bridge"] = record["bridge"]
    bridge["ipam"] = {
        "type": "static",
        "addresses": [{"address": f"{record['ip']}/{prefix_length}",
                       "gateway": record["gateway"]}],
        "routes": [{"dst": "0.0.0.0/0", "gw": record["gateway"]}],
    }
    return bridge


def _delegate(plugin: str, conf: dict, delegate_dir: str) -> int:
    """Run the stock plugin with our environment and `conf`; its stdout is ours."""
    import subprocess

    result = subprocess.run([os.path.join(delegate_dir, plugin)], input=json.dumps(conf),
                            capture_output=True, text=True, env=os.environ)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def run(command: str, conf: dict, env: dict[str, str]) -> int:
    if command == "VERSION":
        print(json.dumps({"cniVersion": conf.get("cniVersion", "1.0.0"),
                          "supportedVersions": SUPPORTED_VERSIONS}))
        return 0
    try:
        pods_dir = conf["podsDir"]
        delegate_dir = conf.get("delegateDir", "/usr/lib/cni")
    except KeyError as missing:
        raise CNIError(ERR_INVALID_CONFIG, f"nodeless CNI config lacks {missing}") from None
    args = cni_args(env.get("CNI_ARGS", ""))
    namespace, name = args.get("K8S_POD_NAMESPACE"), args.get("K8S_POD_NAME")
    record = read_record(pods_dir, namespace, name) if namespace and name else None
    if command == "DEL":
        return _delegate("bridge", delegate_config(conf, record), delegate_dir)
    if command not in ("ADD", "CHECK"):
        raise CNIError(4, f"unknown CNI_COMMAND {command!r}")
    if not namespace or not name:
        raise CNIError(ERR_NO_ASSIGNMENT, "sandbox has no K8S_POD_NAMESPACE/K8S_POD_NAME in "
                       f"CNI_ARGS ({env.get('CNI_ARGS', '')!r}): nodeless networks only pods")
    if record is None:
        raise CNIError(ERR_NO_ASSIGNMENT,
                       f"pod {namespace}/{name} has no IP assigned on this host",
                       "the agent records the scheduler's IP (PodNetwork.assign) before "
                       f"RunPodSandbox; no record in {pods_dir}")
    uid = args.get("K8S_POD_UID", "")
    if record.get("uid") and uid and record["uid"] != uid:
        raise CNIError(ERR_NO_ASSIGNMENT,
                       f"pod {namespace}/{name} (uid {uid}) has no IP assigned on this host",
                       f"the record is for an earlier pod of that name (uid {record['uid']})")
    return _delegate("bridge", delegate_config(conf, record), delegate_dir)


def main() -> int:
    conf: dict = {}
    try:
        raw = sys.stdin.read()
        conf = json.loads(raw) if raw.strip() else {}
        return run(os.environ.get("CNI_COMMAND", ""), conf, dict(os.environ))
    except CNIError as error:
        print(json.dumps({"cniVersion": conf.get("cniVersion", "1.0.0"), "code": error.code,
                          "msg": error.msg, "details": error.details}))
        return 1
    except json.JSONDecodeError as error:
        print(json.dumps({"cniVersion": "1.0.0", "code": 6,
                          "msg": f"nodeless CNI config is not JSON: {error}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
