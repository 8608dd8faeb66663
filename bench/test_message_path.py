"""``message_path.py`` as a test: every message of a few rounds is stored, pushed, acknowledged and its receipt
reaches the sender (the workload waits for each frame and fails on any error frame); nothing about time."""

from __future__ import annotations

import asyncio

from message_path import measure


def test_message_path_round_trips_every_message() -> None:
    for batch in (1, 5):
        result = asyncio.run(measure(batch, 4, users=6))
        assert result["batch"] == batch and result["rounds"] == 4
        assert result["cpu_us"] > 0 and result["wall_median_us"] > 0
