"""The data dir is private to the server's user, and one server at a time owns a database (SQLite: a lock
file; PostgreSQL: the node id's advisory lock). A second server is refused with a clear error, in the same
process or as another `glide serve`."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Client, make_config, make_user
from serve_process import ServeProcess

from glide.errors import ConfigError
from glide.server import Server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_dir_and_database_files_are_private(tmp_path: Path) -> None:
    server = Server(make_config(tmp_path))
    await server.start()
    try:
        _, token = await make_user(server, "alice")
        b, _ = await make_user(server, "bob")
        client = await Client.connect(server)
        await client.login(token)
        await client.chat(b, "hi", "c1")  # the WAL exists now
        await client.close()
        data = tmp_path / "data"
        assert mode(data) == 0o700
        files = sorted(p.name for p in data.iterdir())
        assert {"glide.db", "glide.db-wal", "glide.db-shm", "glide.db-indexes", "secret.json"} <= set(files), files
        for name in files:
            assert mode(data / name) == 0o600, (name, oct(mode(data / name)))
    finally:
        await server.stop()


async def test_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "glide.db").touch(mode=0o644)
    server = Server(make_config(tmp_path))
    await server.start()
    await server.stop()
    assert mode(data / "glide.db") == 0o600


async def test_second_server_on_the_same_sqlite_database_is_refused(tmp_path: Path) -> None:
    first = Server(make_config(tmp_path))
    await first.start()
    try:
        second = Server(make_config(tmp_path))
        with pytest.raises(ConfigError, match="another glide server"):
            await second.start()
        await second.stop()
        # Another process: `glide serve` exits with the error instead of serving.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "glide.cli",
                "serve",
                "--ws-port",
                "0",
                "--http-port",
                "0",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert "another glide server" in proc.stderr + proc.stdout
    finally:
        await first.stop()
    # Once the first one stopped, the database is free again.
    again = Server(make_config(tmp_path))
    await again.start()
    await again.stop()


def test_killed_server_frees_its_database(tmp_path: Path) -> None:
    ServeProcess(tmp_path / "data").kill9()
    replacement = ServeProcess(tmp_path / "data")  # a lock does not outlive its process
    replacement.terminate()


async def test_node_id_held_by_a_live_postgres_node_is_refused(tmp_path: Path, pg_url: str) -> None:
    first = Server(make_config(tmp_path, store=pg_url, node_id=3))
    await first.start()
    try:
        clash = Server(make_config(tmp_path, store=pg_url, node_id=3, data_dir=str(tmp_path / "b")))
        with pytest.raises(ConfigError, match="node_id 3 is held by another live glide node"):
            await clash.start()
        await clash.stop()
        other = Server(make_config(tmp_path, store=pg_url, node_id=4, data_dir=str(tmp_path / "c")))
        await other.start()  # another id on the same database is fine
        await other.stop()
    finally:
        await first.stop()
    reuse = Server(make_config(tmp_path, store=pg_url, node_id=3, data_dir=str(tmp_path / "d")))
    await reuse.start()  # released when its holder stopped
    await reuse.stop()
