"""Operational logs: one line per connection, login, refused login, kick-out, logout, timeout and HTTP
request, with its fields, as plain text or JSON, and never a message's content."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from helpers import Client, make_user
from im_support import http_client

from glide.logs import JsonFormatter, PlainFormatter, event
from glide.server import Server


def events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [(r.getMessage(), getattr(r, "glide_fields", {})) for r in caplog.records if r.name.startswith("glide")]


async def test_sessions_and_requests_are_logged_without_content(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="glide")
    a, token_a = await make_user(server, "alice")
    b, _ = await make_user(server, "bob")
    first = await Client.connect(server)
    await first.login(token_a)
    await first.chat(b, "SECRET-CONTENT", "c1")
    second = await Client.connect(server)
    await second.login(token_a)  # the same device: the first is kicked out
    while (await first.recv())["action"] != "notify.kickout":  # ack.notify for the offline bob comes first
        pass
    bad = await Client.connect(server)
    await bad.send("api.auth", {"Token": "not-a-token"})
    await bad.expect("api.failed")
    async with http_client(server) as http:
        r = await http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token_a}"})
        assert r.json()["Code"] == 100
    await second.ws.wait_closed()
    for c in (first, bad):
        await c.close()

    seen = events(caplog)
    names = [name for name, _ in seen]
    for expected in ("connection opened", "login", "kicked out", "login refused", "logout", "http request"):
        assert expected in names, names
    login = next(f for n, f in seen if n == "login")
    assert login["uid"] == a and login["device"] == "1" and login["conn"] > 0
    assert login["peer"].startswith("127.0.0.1:")
    refused = next(f for n, f in seen if n == "login refused")
    assert refused["why"] and refused["peer"].startswith("127.0.0.1:")
    request = next(f for n, f in seen if n == "http request")
    assert (request["method"], request["path"], request["status"]) == ("POST", "/api/auth/logout", 200)
    assert "SECRET-CONTENT" not in caplog.text


def test_formats() -> None:
    logger = logging.getLogger("glide.test")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        event(logger, logging.INFO, "login", uid=7, device="web")
        event(logger, logging.DEBUG, "not logged")  # below the level: nothing is built
    finally:
        logger.removeHandler(keep)
    (record,) = records
    assert PlainFormatter().format(record).endswith("glide.test: login uid=7 device=web")
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "login" and line["uid"] == 7 and line["device"] == "web" and line["level"] == "info"


async def test_serve_writes_json_lines(tmp_path: Any) -> None:
    from serve_process import ServeProcess

    node = ServeProcess(tmp_path / "data", "--log-format", "json", "--log-level", "debug")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http_port}") as http:
            await http.get("/api/app/release")
    finally:
        out = node.terminate()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(line["event"] == "http request" and line["path"] == "/api/app/release" for line in lines), out
