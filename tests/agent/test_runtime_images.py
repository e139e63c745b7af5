"""The example images: built offline once, then neither rebuilt nor pushed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeless.agent.runtime.images import seed_registry
from nodeless.agent.runtime.registry import LocalRegistry, has_manifest
from tests.fixtures.runtime import RunningRuntime

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_seeding_again_reuses_the_built_images(container_runtime: RunningRuntime) -> None:
    workdir = container_runtime.state_dir / "images"
    keys = sorted(workdir.glob("*.key"))
    assert [k.stem for k in keys] == ["library_busybox", "nodeless_http-echo", "nodeless_pause"]
    built = {k: k.stat().st_mtime_ns for k in keys}
    images = await seed_registry(container_runtime.registry, workdir)
    assert images == container_runtime.images
    assert {k: k.stat().st_mtime_ns for k in keys} == built


async def test_fresh_registry_gets_the_cached_layouts(container_runtime: RunningRuntime,
                                                      tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    await registry.start()
    try:
        images = await seed_registry(registry.address, container_runtime.state_dir / "images")
        assert images.busybox == f"{registry.address}/library/busybox:latest"
        assert has_manifest(registry.address, "nodeless/http-echo", "latest")
        assert not has_manifest(registry.address, "nodeless/nothing", "latest")
    finally:
        await registry.stop()
