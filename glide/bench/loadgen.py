"""Typed access to the Rust load generator, ``glide._native.LoadGen``."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, NotRequired, Protocol, TypedDict, cast


class LoadUser(TypedDict):
    """One simulated client: its uid and exactly one of ``token`` (api.auth) or ``credential`` (authenticate)."""

    uid: str
    token: NotRequired[str]
    credential: NotRequired[str]
    ticket_secret: NotRequired[str]


class LoadConfig(TypedDict, total=False):
    """A run of the load generator (``users`` and one of ``url`` / ``urls`` are needed, the rest has a default)."""

    url: str
    urls: list[str]
    cross_node: bool
    users: list[LoadUser]
    connect_interval_ms: float
    max_connecting: int
    messages: int
    interval_ms: list[int]
    content_len: int
    connect_timeout_ms: int
    login_timeout_ms: int
    grace_ms: int
    hold_ms: int
    max_duration_ms: int
    source_ips: list[str]
    seed: int
    ack_requests: bool
    group: str
    senders: int
    heartbeat_ms: int
    max_message_bytes: int


class _LoadGen(Protocol):
    def start(self, config: LoadConfig) -> None: ...
    def poll(self) -> dict[str, Any] | None: ...
    def stop(self) -> None: ...
    @property
    def finished(self) -> bool: ...
    def join(self, timeout: float | None = None) -> dict[str, Any]: ...


def new_loadgen() -> _LoadGen:
    """A fresh native load generator; a clear error when the extension predates it."""
    native = importlib.import_module("glide._native")
    cls = getattr(native, "LoadGen", None)
    if cls is None:
        raise RuntimeError("glide._native has no LoadGen: rebuild the extension (maturin develop --release)")
    return cast(_LoadGen, cls())


def run_load(
    config: LoadConfig,
    on_snapshot: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Runs one load to completion (the run bounds itself); ``on_snapshot`` sees each new snapshot.

    Ctrl-C stops the run early and still returns its (partial) result.
    """
    gen = new_loadgen()
    gen.start(config)
    last_t = -1.0
    try:
        while True:
            try:
                return gen.join(timeout=poll_s)
            except TimeoutError:
                pass
            snap = gen.poll()
            if snap is not None and on_snapshot is not None and snap["elapsed_s"] != last_t:
                last_t = snap["elapsed_s"]
                on_snapshot(snap)
    except KeyboardInterrupt:
        gen.stop()
        time.sleep(0)
        result = gen.join()
        result["error"] = result.get("error") or "interrupted"
        return result
