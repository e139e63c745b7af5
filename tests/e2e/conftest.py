"""The session's `nodeless up` with a host agent, started only by the tests that ask."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.upcluster import UpCluster, start, stop


@pytest.fixture(scope="session")
def up_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    up = start(tmp_path_factory.mktemp("nodeless-up") / "data")
    try:
        yield up
    finally:
        stop(up)
