"""Fixtures: a real glide node on ephemeral ports in the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config

from glide.server import Server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(make_config(tmp_path))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with custom config or clock; all stopped at teardown."""
    started: list[Server] = []

    async def start(*, clock: Callable[[], int] | None = None, **overrides: Any) -> Server:
        srv = Server(make_config(tmp_path, **overrides), **({"clock": clock} if clock else {}))
        await srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        await srv.stop()
