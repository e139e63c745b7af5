"""The registry component of `nodeless up`: a fresh data dir gets the example images from
the build cache shared by every data dir ($XDG_CACHE_HOME/nodeless/images), pushed to its
own registry, without running umoci again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from nodeless.agent.component import RegistryComponent, image_cache_dir
from nodeless.agent.runtime.registry import has_manifest


async def seeded(data_dir: Path) -> tuple[str, list[str]]:
    """Run the component until ready; returns its registry's address and what it held."""
    component = RegistryComponent(data_dir)
    ready = asyncio.Event()
    task = asyncio.create_task(component.run(ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 120)
        assert component.registry is not None and component.images is not None
        address = component.registry.address
        held = [repo for repo, tag in (("library/busybox", "latest"),
                                       ("nodeless/http-echo", "latest"),
                                       ("nodeless/pause", "3.9-catatonit"))
                if await asyncio.to_thread(has_manifest, address, repo, tag)]
        assert component.images.busybox == f"{address}/library/busybox:latest"
        return address, held
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_fresh_data_dirs_share_the_image_build_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert image_cache_dir() == tmp_path / "cache" / "nodeless" / "images"
    caplog.set_level(logging.INFO, logger="nodeless.agent.runtime.images")

    first, held = await seeded(tmp_path / "one")
    assert len(held) == 3
    assert any("built image" in r.message for r in caplog.records)
    assert sorted(p.name for p in image_cache_dir().glob("*.key")) == [
        "library_busybox.key", "nodeless_http-echo.key", "nodeless_pause.key"]
    assert not (tmp_path / "one" / "registry" / "build").exists()

    caplog.clear()
    second, held = await seeded(tmp_path / "two")
    assert second != first and len(held) == 3  # its own registry, every image pushed
    assert not any("built image" in r.message for r in caplog.records)
    assert sum("pushed" in r.message for r in caplog.records) == 3
