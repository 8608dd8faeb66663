"""``group_sends.py`` as a test: every message of a few rounds is stored as a new message of its group (the
workload fails on an error or a duplicate), on SQLite; nothing about time."""

from __future__ import annotations

import asyncio

from group_sends import measure


def test_group_sends_store_every_message() -> None:
    for batch in (1, 7):
        result = asyncio.run(measure(batch, 4, users=40))
        assert result["batch"] == batch and result["rounds"] == 4
        assert result["cpu_us"] > 0 and result["wall_median_us"] > 0 and result["server_cpu_us"] is None
