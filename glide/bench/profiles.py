"""The load profiles of ``glide bench`` (GlideIM's published tests and ours) and how ``--scale`` shrinks them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """A load shape. 1:1 profiles: every client sends ``messages`` chats to one random online peer."""

    name: str
    description: str
    clients: int
    messages: int = 0
    interval_ms: tuple[int, int] = (60, 200)
    connect_interval_ms: float = 5.0
    hold_s: float = 0.0
    group: bool = False
    senders: int | None = None
    # saturate: first offered rate (msg/s), growth per step, seconds per step, the p99 bound (ms)
    start_rate: float = 0.0
    growth: float = 1.5
    step_s: float = 10.0
    p99_limit_ms: float = 50.0

    @property
    def kind(self) -> str:
        if self.name in ("saturate", "cluster"):
            return self.name
        if self.hold_s > 0 and self.messages == 0:
            return "idle"
        return "group" if self.group else "chat"

    def scaled(self, factor: float) -> Profile:
        """Shrinks (or grows) clients, messages and, for saturate, the step and rates by ``factor``."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"scale: a positive number, got {factor}")
        if factor == 1:
            return self
        clients = max(2, round(self.clients * factor))
        messages = max(1, round(self.messages * factor)) if self.messages else 0
        changes: dict[str, object] = {"clients": clients, "messages": messages}
        if self.senders is not None:
            changes["senders"] = max(1, min(clients, round(self.senders * factor)))
        if self.hold_s:
            changes["hold_s"] = max(2.0, self.hold_s * min(1.0, factor * 10))
        if self.start_rate:
            changes["start_rate"] = max(20.0, self.start_rate * factor)
            changes["step_s"] = max(2.0, self.step_s * min(1.0, factor * 10))
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def offered_rate(self) -> float:
        """Messages per second the senders offer once all are sending."""
        senders = self.senders if self.senders is not None else self.clients
        mean_gap_s = (self.interval_ms[0] + self.interval_ms[1]) / 2000
        return senders / mean_gap_s if mean_gap_s > 0 else float("inf")


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "case1",
            "GlideIM case 1: 2,000 clients, one message every 60-200 ms each, 600 each (1.2 M messages)",
            clients=2000,
            messages=600,
            interval_ms=(60, 200),
            connect_interval_ms=5.0,
        ),
        Profile(
            "case2",
            "GlideIM case 2: 10,000 connections (one every 10 ms), one message every 50-100 ms each, 800 each",
            clients=10000,
            messages=800,
            interval_ms=(50, 100),
            connect_interval_ms=10.0,
        ),
        Profile(
            "saturate",
            "raise the offered rate until p99 > 50 ms or delivery < 100 %; report the highest rate that held",
            clients=1000,
            connect_interval_ms=1.0,
            start_rate=2000.0,
            growth=1.5,
            step_s=10.0,
        ),
        Profile(
            "fanout",
            "one group of 1,000 online members; 10 of them send 100 messages each into it (200-400 ms apart)",
            clients=1000,
            messages=100,
            interval_ms=(200, 400),
            connect_interval_ms=2.0,
            group=True,
            senders=10,
        ),
        Profile(
            "cluster",
            "two nodes of one cluster, 1,000 clients, 300 messages each: all on one node, then every peer on the "
            "other; server CPU per message, cross-node vs same-node",
            clients=1000,
            messages=300,
            interval_ms=(60, 200),
            connect_interval_ms=2.0,
        ),
        Profile(
            "idle",
            "N idle logged-in connections; server memory per connection (RSS delta / N)",
            clients=10000,
            connect_interval_ms=0.5,
            hold_s=15.0,
        ),
    )
}


def saturate_step(profile: Profile, rate: float) -> tuple[tuple[int, int], int]:
    """Send interval and messages per client that offer ``rate`` msg/s for about ``profile.step_s`` seconds."""
    mean_gap_ms = max(2.0, 1000.0 * profile.clients / rate)
    interval = (max(1, round(mean_gap_ms * 0.5)), max(2, round(mean_gap_ms * 1.5)))
    messages = max(5, round(rate * profile.step_s / profile.clients))
    return interval, messages
