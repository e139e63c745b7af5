"""A small real cluster for the host agent's tests: an API server with the Fargate CRDs,
two private subnets and a profile, the fargate-scheduler and the host agent as the
processes `nodeless up` runs (the agent with a containerd of its own), the session's
local registry for images. Tests drive it with kubectl, as a user would."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lightkube import AsyncClient
from lightkube.types import PatchType

from nodeless.agent.wiring import instance_id
from nodeless.fargate.resources import FargateProfile
from nodeless.fargate.vpc import VPC, SubnetSpec
from tests.fixtures.apiserver import RunningAPIServer
from tests.fixtures.fargate import fargate_apiserver
from tests.fixtures.runtime import RunningRuntime

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "pods"
PROFILE = "fp-pods"
HOST = "agent-test-host"


def random_vpc() -> VPC:
    """Two private /19s in 10.X.0.0/16, X random in 200-250: apart from `nodeless up`'s
    10.0/16 and the runtime fixture's 10.100-199."""
    octet = random.randint(200, 250)
    return VPC(f"vpc-agent{octet}", f"10.{octet}.0.0/16", (
        SubnetSpec(f"subnet-a{octet}", f"10.{octet}.0.0/19", "us-east-1a"),
        SubnetSpec(f"subnet-b{octet}", f"10.{octet}.32.0/19", "us-east-1b")))


async def install_profile(client: AsyncClient, vpc: VPC) -> None:
    """An ACTIVE profile for NAMESPACE, as the profile controller leaves one."""
    from lightkube import codecs

    await client.create(codecs.from_dict({"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": NAMESPACE}}))
    await client.create(FargateProfile({
        "metadata": {"name": PROFILE},
        "spec": {"podExecutionRoleArn": "arn:aws:iam::123456789012:role/pods",
                 "subnets": [s.id for s in vpc.private_subnets()],
                 "selectors": [{"namespace": NAMESPACE}]}}))
    await client.patch(FargateProfile.Status, PROFILE, {"status": {"status": "ACTIVE"}},
                       patch_type=PatchType.MERGE)


@contextmanager
def agent_cluster(workdir: Path, runtime: RunningRuntime) -> Iterator[AgentCluster]:
    """API server (random VPC, a profile), scheduler and a started agent in `workdir`;
    every pod deleted and everything stopped on exit."""
    vpc = random_vpc()
    with fargate_apiserver(workdir / "api", vpc=vpc,
                           setup=lambda client: install_profile(client, vpc)) as server:
        cluster = AgentCluster(server, runtime, vpc, workdir)
        try:
            cluster.start_agent()
            yield cluster
        finally:
            cluster.stop()


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=out)


class AgentCluster:
    def __init__(self, server: RunningAPIServer, runtime: RunningRuntime, vpc: VPC,
                 workdir: Path) -> None:
        self.server, self.runtime, self.vpc, self.workdir = server, runtime, vpc, workdir
        self.state_dir = workdir / "agent"
        self.agent: subprocess.Popen[bytes] | None = None
        self.scheduler = _spawn(["nodeless.fargate.scheduler", "--kubeconfig",
                                 str(server.kubeconfig), "--lease-seconds", "3",
                                 "--renew-every", "0.5"], workdir / "scheduler.log")

    # ---- processes ---------------------------------------------------------------------

    def start_agent(self) -> None:
        self.agent = _spawn([
            "nodeless.agent", "--state-dir", str(self.state_dir),
            "--kubeconfig", str(self.server.kubeconfig), "--host-name", HOST,
            "--address", "127.0.0.1", "--zones", "us-east-1a,us-east-1b",
            "--pause-image", self.runtime.images.pause, "--registry", self.runtime.registry,
            "--listen", "127.0.0.1:0", "--cpu", "4", "--memory", "8Gi",
            "--stop-pods-on-exit"],
            self.workdir / "agent.log")
        self.wait(lambda: self._host_registered(), 60, "the agent registers its host")

    def _host_registered(self) -> bool:
        assert self.agent is not None
        if self.agent.poll() is not None:
            raise AssertionError(f"the agent exited:\n{self.log('agent')}")
        found = self.kubectl("get", "fargatehost", HOST, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        endpoint = json.loads(found.stdout)["spec"].get("agentEndpoint", "")
        return endpoint.startswith("https://127.0.0.1:") and not endpoint.endswith(":0")

    def kill_agent(self, sig: int = signal.SIGKILL) -> None:
        assert self.agent is not None
        self.agent.send_signal(sig)
        self.agent.wait(30)
        self.agent = None

    def stop(self) -> None:
        """Delete every pod (the agent tears them down), then stop the processes and
        remove what might be left (sandboxes, bridges, nftables table)."""
        try:
            if self.agent is not None:
                self.kubectl("delete", "pods", "--all", "-n", NAMESPACE, "--wait=false",
                             check=False)
                self.wait(lambda: not self.pods(), 60, "every pod gone", fail=False)
        finally:
            for proc in (self.agent, self.scheduler):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        script = (
            "import asyncio, sys\n"
            "from pathlib import Path\n"
            "from nodeless.agent.network.podnetwork import PodNetwork\n"
            "from nodeless.agent.runtime.containerd import Containerd, ContainerdConfig\n"
            "from nodeless.agent.runtime.stack import remove_all_sandboxes\n"
            "state = Path(sys.argv[1])\n"
            "net = PodNetwork(state / 'network', instance=sys.argv[2])\n"
            "async def main():\n"
            "    if (state / 'containerd' / 'config.toml').exists():\n"
            "        c = Containerd.managed(ContainerdConfig(state_dir=state / 'containerd',\n"
            "            sandbox_image=sys.argv[3], cni_bin_dir=net.plugin_dir,\n"
            "            cni_conf_dir=net.conf_dir))\n"
            "        await c.start()\n"
            "        try:\n"
            "            await remove_all_sandboxes(str(c.socket), net)\n"
            "        finally:\n"
            "            await c.stop()\n"
            "    net.teardown()\n"
            "asyncio.run(main())\n")
        done = subprocess.run([sys.executable, "-c", script, str(self.state_dir),
                               instance_id(self.state_dir.resolve()), self.runtime.images.pause],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"cleaning up after the agent failed:\n{done.stderr}"

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    # ---- kubectl -----------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.server.kubectl(*args, input=input, check=check, timeout=timeout)

    def apply(self, manifest: dict[str, Any]) -> None:
        manifest.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def pod(self, name: str) -> dict[str, Any] | None:
        got = self.kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    def pods(self) -> list[dict[str, Any]]:
        got = self.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json")
        return list(json.loads(got.stdout)["items"])

    def node(self, name: str) -> dict[str, Any] | None:
        got = self.kubectl("get", "node", name, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    def events(self, name: str) -> list[dict[str, Any]]:
        got = self.kubectl("get", "events", "-n", NAMESPACE, "-o", "json",
                           "--field-selector", f"involvedObject.name={name}")
        return list(json.loads(got.stdout)["items"])

    def wait(self, check: Callable[[], T], timeout: float, what: str, *, fail: bool = True
             ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                if not fail:
                    return result
                pods = self.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
                raise AssertionError(f"timed out waiting for {what}\n{pods}\n--- agent log:\n"
                                     f"{self.log('agent')}\n--- scheduler log:\n"
                                     f"{self.log('scheduler')}")
            time.sleep(0.2)

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            pod = self.pod(name)
            return pod if pod and (pod.get("status") or {}).get("phase") == phase else None
        return self.wait(reached, timeout, f"pod {name} {phase}")

    def container_status(self, name: str, container: str) -> dict[str, Any]:
        pod = self.pod(name) or {}
        statuses = [*((pod.get("status") or {}).get("initContainerStatuses") or []),
                    *((pod.get("status") or {}).get("containerStatuses") or [])]
        return next((s for s in statuses if s["name"] == container), {})

    def exec_in(self, name: str, *command: str) -> str:
        """Run a command in the pod's first container through the agent's containerd."""
        pod = self.pod(name)
        assert pod is not None
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        script = ("import asyncio, sys, json\n"
                  "from cri_api.v1 import api_pb2\n"
                  "from nodeless.agent.runtime.cri import CRIClient\n"
                  "async def main():\n"
                  "    async with CRIClient(sys.argv[1]) as cri:\n"
                  "        r = await cri.runtime.ExecSync(api_pb2.ExecSyncRequest(\n"
                  "            container_id=sys.argv[2], cmd=json.loads(sys.argv[3]),\n"
                  "            timeout=20))\n"
                  "        print(r.exit_code)\n"
                  "        sys.stdout.write((r.stdout + r.stderr).decode(errors='replace'))\n"
                  "asyncio.run(main())\n")
        done = subprocess.run([sys.executable, "-c", script, str(self.containerd_socket), cid,
                               json.dumps(list(command))], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env={**os.environ})
        assert done.returncode == 0, done.stderr
        return done.stdout

    def sandbox_pods(self) -> list[str]:
        """Names of the pods whose sandbox the agent's containerd runs (READY)."""
        script = ("import asyncio, sys\n"
                  "from cri_api.v1 import api_pb2\n"
                  "from nodeless.agent.runtime.cri import CRIClient\n"
                  "async def main():\n"
                  "    async with CRIClient(sys.argv[1]) as cri:\n"
                  "        r = await cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())\n"
                  "        for s in r.items:\n"
                  "            if s.state == api_pb2.SANDBOX_READY:\n"
                  "                print(s.metadata.name)\n"
                  "asyncio.run(main())\n")
        done = subprocess.run([sys.executable, "-c", script, str(self.containerd_socket)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"


def busybox_pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    """A pod as the admission webhook leaves one for the profile (schedulerName and
    profile annotation are what the webhook would set)."""
    container = {"name": "main", "image": image, "command": ["sh", "-c", script],
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "annotations": {"eks.amazonaws.com/fargate-profile": PROFILE}},
            "spec": {"schedulerName": "fargate-scheduler", "containers": [container],
                     "terminationGracePeriodSeconds": 5, **spec}}
