"""What the benchmarks share: a foreground `nodeless up` on free ports in a temp dir, and
percentiles."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightkube import AsyncClient  # noqa: E402
from lightkube.core.exceptions import ApiError  # noqa: E402

from nodeless.fargate.resources import FargateProfile  # noqa: E402
from nodeless.kube import async_client  # noqa: E402
from tests.fixtures.apiserver import free_port  # noqa: E402


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Up:
    """`nodeless up` in the foreground, on a free port, in a temp dir named `prefix`…;
    `args` are its extra flags. Ready once every component is and fp-default is ACTIVE
    (and, with
    `wait_for_containerd`, once endpoints.json names the agent's containerd)."""

    def __init__(self, prefix: str, args: Sequence[str], *, start_timeout: float = 90,
                 stop_timeout: float = 20, wait_for_containerd: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.log = self.dir / "up.log"
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.wait_for_containerd = wait_for_containerd
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nodeless.cli.main", "up", "--data-dir", str(self.dir),
                 "--port", str(self.port), "--eks-port", "0", *args],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)

    @property
    def endpoints(self) -> dict[str, str]:
        path = self.dir / "endpoints.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def ready(self) -> bool:
        """Every component of `nodeless up` is ready (its run.json says so): the webhook
        is registered, the scheduler leads. Not merely the API answering: a pod created
        before the webhook is registered would go unmutated, to the default scheduler."""
        try:
            return bool(json.loads((self.dir / "run.json").read_text()).get("ready"))
        except (OSError, ValueError):
            return False

    async def client(self) -> AsyncClient:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            if self.ready and (not self.wait_for_containerd or self.endpoints.get("containerd")):
                client = async_client(self.dir / "kubeconfig")
                try:
                    profile = await client.get(FargateProfile, "fp-default")
                    if (profile.get("status") or {}).get("status") == "ACTIVE":
                        return client
                except (ApiError, OSError, Exception):  # starting up: try again
                    pass
                await client.close()
            await asyncio.sleep(0.3)
        raise TimeoutError(f"nodeless up did not make fp-default ACTIVE in "
                           f"{self.start_timeout:.0f}s")

    def stop(self, keep: bool) -> None:
        """SIGTERM, and `stop_timeout` for it to go (with an agent: time to remove every
        sandbox; a `nodeless up` killed sooner leaves its pods running)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            print(f"nodeless up did not stop in {self.stop_timeout:.0f}s: killed; its pods may "
                  f"be left ({self.dir})")
            keep = True
        if keep:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
