"""Helpers of the cluster tests: a private Redis server per test (on a Unix socket, so that a test can stop and
restart it without touching anyone else's), and glide nodes sharing one PostgreSQL database and that Redis."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

PERSIST_NOTHING = ("--save", "", "--appendonly", "no")


class RedisServer:
    """``redis-server`` without persistence, listening on ``<dir>/redis.sock`` only."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.dir = directory
        self.password = password
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"unix://{auth}{self.socket}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash scripts/services installs it)")
        listen = ("--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700")
        if self.password:
            listen += ("--requirepass", self.password)
        self.proc = subprocess.Popen(
            [binary, *listen, *PERSIST_NOTHING, "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        client = self.client()
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, FileNotFoundError):
                    pass
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.01)
        finally:
            client.close()

    def stop(self) -> None:
        """Kill it (its data is gone: nothing is persisted)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        self.socket.unlink(missing_ok=True)

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), password=self.password)
