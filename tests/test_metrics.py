"""GET /metrics: Prometheus' text format, parsed by prometheus-client's own parser, for the admin token only;
the figures follow what clients did (sessions, logins, envelopes per action, hostile ones under two fixed
labels, messages stored, store transactions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from helpers import make_user, online
from prometheus_client.parser import text_string_to_metric_families

from glide.server import Server


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        yield client


async def scrape(http: httpx.AsyncClient, server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await http.get("/metrics", headers={"Authorization": f"Bearer {server.config.admin_token}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_are_for_the_operator_only(server: Server, http: httpx.AsyncClient) -> None:
    _, token = await make_user(server, "eve")
    for headers in ({}, {"Authorization": f"Bearer {token}"}, {"Authorization": "Bearer nope"}):
        r = await http.get("/metrics", headers=headers)
        assert r.status_code == 401 and "glide_" not in r.text


async def test_metrics_follow_what_clients_do(server: Server, http: httpx.AsyncClient) -> None:
    before = await scrape(http, server)
    assert before[("glide_sessions", ())] == 0 and before[("glide_logins_total", ())] == 0
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    for i in range(3):
        await alice.chat(bob_uid, f"m{i}", f"c{i}")
    await alice.send("no.such.action")
    await alice.expect("notify.unknown.action")
    await alice.ws.send("{not json")
    await alice.expect("notify.error")
    for _ in range(3):
        await bob.expect("message.chat")
    m = await scrape(http, server)
    assert m[("glide_sessions", ())] == 2 and m[("glide_connections", ())] == 2
    assert m[("glide_logins_total", ())] == 2
    received = {dict(ls)["action"]: v for (name, ls), v in m.items() if name == "glide_envelopes_received_total"}
    assert received == {"api.auth": 2, "message.chat": 3, "unknown": 1, "undecodable": 1}
    assert m[("glide_chat_messages_stored_total", ())] == 3
    assert m[("glide_store_transactions_total", ())] > before[("glide_store_transactions_total", ())]
    if not server.config.store.startswith("postgresql"):  # SQLite (PostgreSQL has no WAL file of the node's)
        assert m[("glide_sqlite_wal_bytes", ())] > 0 and m[("glide_sqlite_wal_restarts_total", ())] == 0
    else:
        assert ("glide_sqlite_wal_bytes", ()) not in m
    assert m[("glide_slow_consumers_dropped_total", ())] == 0
    assert not [name for name, _ in m if name.startswith("glide_cluster_")]  # a single node has no cluster counts
    # hello and api.success each, 3 ack.message, 3 pushes, the two error frames
    assert m[("glide_frames_sent_total", ())] - before[("glide_frames_sent_total", ())] >= 2 + 2 + 3 + 3 + 2
