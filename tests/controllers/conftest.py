"""Fixtures: the controllers as the child process `nodeless up` runs, against the
session's test API server, and a stand-in kubelet (tests/controllers/kubelet_helper.py)
until the host agent lands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controllers.kubelet_helper import FakeKubelet
from tests.fixtures.apiserver import RunningAPIServer


class ControllersProcess:
    """`python -m nodeless.controllers` against `kubeconfig`; restartable."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nodeless.controllers", "--kubeconfig",
                 str(self.kubeconfig), "--job-backoff", "0.2", "--notify-ready"],
                stdout=subprocess.PIPE, stderr=logf, env=os.environ.copy())
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == b"ready":
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"controllers did not start; see {self.log}: "
                           f"{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def controllers(apiserver: RunningAPIServer, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[ControllersProcess]:
    log = tmp_path_factory.mktemp("controllers") / "controllers.log"
    process = ControllersProcess(apiserver.kubeconfig, log)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def kubelet(apiserver: RunningAPIServer, request: pytest.FixtureRequest) -> Iterator[FakeKubelet]:
    name = f"worker-{request.module.__name__.rsplit('.', 1)[-1].replace('_', '-')}"
    helper = FakeKubelet(apiserver.client(), name).start()
    yield helper
    helper.stop()
