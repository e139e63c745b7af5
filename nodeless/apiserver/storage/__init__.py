"""Storage: one protocol (`protocol.Store`), SQLite and etcd behind it.

The API server opens its store here by name and never learns which one it got.
"""

from __future__ import annotations

from pathlib import Path

from nodeless.apiserver.storage.protocol import Store

__all__ = ["Store", "open_store"]


async def open_store(
    kind: str,
    *,
    data_dir: Path,
    etcd_endpoints: list[str] | None = None,
    etcd_prefix: str = "",
) -> Store:
    """Open the store named `kind`: "sqlite" (DATA_DIR/state.db) or "etcd".

    Imports are local so a SQLite-only install never loads gRPC.
    """
    if kind == "sqlite":
        from nodeless.apiserver.storage.sqlite import SQLiteStore

        return await SQLiteStore.open(Path(data_dir) / "state.db")
    if kind == "etcd":
        from nodeless.apiserver.storage.etcd import EtcdStore

        if not etcd_endpoints:
            raise ValueError("the etcd store needs at least one endpoint")
        return await EtcdStore.open(etcd_endpoints, prefix=etcd_prefix)
    raise ValueError(f'unknown store {kind!r}: expected "sqlite" or "etcd"')
