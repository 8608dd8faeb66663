"""`--store memory`: the full server on a throwaway RAM-backed store (benchmarks' in-memory mode)."""

from __future__ import annotations

from pathlib import Path

from helpers import make_config, online

from glide.server import Server
from glide.store.sqlite.store import SqliteStore


async def test_memory_store_serves_and_leaves_nothing_behind(tmp_path: Path) -> None:
    server = Server(make_config(tmp_path, store="memory"))
    await server.start()
    try:
        assert server.ctx is not None
        store = server.ctx.store
        assert isinstance(store, SqliteStore) and store.discard_on_close
        db = Path(store.engine.path)
        assert db.exists() and not db.is_relative_to(tmp_path)
        _, alice = await online(server, "alice")
        bob_uid, bob = await online(server, "bob")
        ack = await alice.chat(bob_uid, "in memory", "m1")
        assert (await bob.expect("message.chat"))["data"]["mid"] == ack["data"]["mid"]
    finally:
        await server.stop()
    assert not db.exists() and not Path(f"{db}-wal").exists()
    assert not (tmp_path / "data" / "glide.db").exists()
