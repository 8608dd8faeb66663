"""A cluster node's lean Redis connections (glide.cluster.resp): the flusher's pipelined commands and the
subscription it listens on, against a real Redis (with and without a password, over TLS) and against servers
that misbehave. Replies reach their callers in order even when a caller gave up; every message arrives once
and in order; a refused password, a server that stops answering, one that sends garbage and one that goes
away all end in a RedisError, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cluster_support import PERSIST_NOTHING, RedisServer
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError
from test_tls import self_signed

from glide.cluster.resp import Commands
from glide.cluster.subscription import Subscription

CHANNELS = ("glide:n:1", "glide:all")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def published(url: str, *pairs: tuple[str, bytes]) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for channel, payload in pairs:
            await client.publish(channel, payload)
    finally:
        await client.aclose()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "secured", password="s3cret-pass")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def test_every_message_of_both_channels_arrives_once_in_order(redis_server: RedisServer) -> None:
    got: list[bytes] = []
    sub = await Subscription.open(redis_server.url, CHANNELS, got.append, timeout=5)
    try:
        sent = [(CHANNELS[i % 2], b"m%d" % i + b"x" * (i * 97 % 3000)) for i in range(500)]
        await published(redis_server.url, *sent, ("glide:n:2", b"not ours"))
        await until(lambda: len(got) >= len(sent))
        await asyncio.sleep(0.05)
        assert got == [payload for _, payload in sent]  # binary-safe, nothing of another channel
    finally:
        sub.close()


async def test_a_password_is_sent_and_a_wrong_one_refused(secured: RedisServer) -> None:
    got: list[bytes] = []
    sub = await Subscription.open(secured.url, CHANNELS, got.append, timeout=5)
    try:
        await published(secured.url, ("glide:all", b"hello"))
        await until(lambda: got == [b"hello"])
    finally:
        sub.close()
    wrong = secured.url.replace("s3cret-pass", "wrong")
    with pytest.raises(AuthenticationError):
        await Subscription.open(wrong, CHANNELS, got.append, timeout=5)
    with pytest.raises(AuthenticationError):  # no password at all: NOAUTH
        await Subscription.open(f"unix://{secured.socket}", CHANNELS, got.append, timeout=5)
    commands = await Commands.open(secured.url, timeout=5)
    try:
        assert await commands.call([("PING",)]) == [b"PONG"]
    finally:
        commands.close()
    with pytest.raises(AuthenticationError):
        await Commands.open(wrong, timeout=5)
    unauthenticated = await Commands.open(f"unix://{secured.socket}", timeout=5)  # nothing asked yet
    try:
        (refused,) = await unauthenticated.call([("GET", "k")])
        assert isinstance(refused, AuthenticationError)
    finally:
        unauthenticated.close()


async def test_losing_redis_ends_the_wait(redis_server: RedisServer) -> None:
    sub = await Subscription.open(redis_server.url, CHANNELS, lambda _: None, timeout=5)
    waiting = asyncio.create_task(sub.wait_lost())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await asyncio.to_thread(redis_server.stop)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises((RedisError, OSError)):  # nobody listening now
        await Subscription.open(redis_server.url, CHANNELS, lambda _: None, timeout=5)


async def test_a_quiet_connection_is_pinged_and_kept_while_redis_answers(redis_server: RedisServer) -> None:
    sub = await Subscription.open(redis_server.url, CHANNELS, lambda _: None, timeout=5, health_s=0.1)
    try:
        waiting = asyncio.create_task(sub.wait_lost())
        await asyncio.sleep(0.6)  # several pings answered
        assert not waiting.done()
    finally:
        sub.close()
    with pytest.raises(ConnectionError):
        await waiting


_sockets = itertools.count()


@contextlib.asynccontextmanager
async def fake_redis(handler: Handler, *, confirm: bool = True, subscribe: bool = True) -> AsyncIterator[str]:
    """A Unix-socket server that answers SUBSCRIBE as Redis does (unless not ``confirm``), then does what
    ``handler`` says (at once, without ``subscribe``); yields its URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not subscribe:
            await handler(reader, writer)
            return
        await reader.readuntil(b"glide:all\r\n")
        if confirm:
            writer.write(b"*3\r\n$9\r\nsubscribe\r\n$9\r\nglide:n:1\r\n:1\r\n")
            writer.write(b"*3\r\n$9\r\nsubscribe\r\n$9\r\nglide:all\r\n:2\r\n")
        await handler(reader, writer)

    path = f"/tmp/glide-fake-redis-{os.getpid()}-{next(_sockets)}.sock"
    server = await asyncio.start_unix_server(serve, path)
    try:
        yield f"unix://{path}"
    finally:
        server.close()
        Path(path).unlink(missing_ok=True)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # takes everything (pings too), answers nothing


async def test_a_server_that_stops_answering_is_dropped() -> None:
    async with fake_redis(silent) as url:
        sub = await Subscription.open(url, CHANNELS, lambda _: None, timeout=5, health_s=0.1)
        with pytest.raises(ConnectionError, match="ping"):
            await asyncio.wait_for(sub.wait_lost(), 5)


async def test_garbage_from_the_server_ends_the_subscription() -> None:
    got: list[bytes] = []

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"*3\r\n$7\r\nmessage\r\n$9\r\nglide:all\r\n$2\r\nok\r\n")
        writer.write(b"?this is not RESP\r\n")
        await reader.read()

    async with fake_redis(garbage) as url:
        sub = await Subscription.open(url, CHANNELS, got.append, timeout=5)
        with pytest.raises(ConnectionError, match="not RESP"):
            await asyncio.wait_for(sub.wait_lost(), 5)
        assert got == [b"ok"]  # what came before the garbage was delivered


async def test_a_server_that_never_confirms_times_out() -> None:
    async with fake_redis(silent, confirm=False) as url:
        with pytest.raises(TimeoutError):
            await Subscription.open(url, CHANNELS, lambda _: None, timeout=0.2)


async def test_over_tls_with_the_urls_ca_and_refused_without_it(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tls = ("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    tls += ("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", *tls, *PERSIST_NOTHING, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    try:
        client = aioredis.Redis.from_url(url)
        async with asyncio.timeout(10):
            while True:
                try:
                    await client.ping()
                    break
                except (RedisError, OSError):
                    await asyncio.sleep(0.02)
        await client.aclose()
        got: list[bytes] = []
        sub = await Subscription.open(url, CHANNELS, got.append, timeout=5)
        try:
            await published(url, ("glide:n:1", b"over tls"))
            await until(lambda: got == [b"over tls"])
        finally:
            sub.close()
        with pytest.raises(ssl.SSLCertVerificationError):  # the default trust store does not know this CA
            await Subscription.open(f"rediss://127.0.0.1:{port}/0", CHANNELS, got.append, timeout=5)
    finally:
        proc.kill()
        proc.wait(10)


async def test_pipelined_calls_get_their_own_replies_in_the_urls_database(redis_server: RedisServer) -> None:
    url = redis_server.url + "?db=3"
    commands = await Commands.open(url, timeout=5)
    try:

        async def one(i: int) -> list[object]:
            return await commands.call([("SET", f"k{i}", b"v%d" % i), ("GET", f"k{i}"), ("INCR", "n")])

        replies = await asyncio.gather(*(one(i) for i in range(200)))
        assert [r[:2] for r in replies] == [[b"OK", b"v%d" % i] for i in range(200)]
        assert sorted(r[2] for r in replies) == list(range(1, 201))  # type: ignore[type-var]
        (refused, fine) = await commands.call([("INCR", "k1"), ("GET", "k1")])
        assert isinstance(refused, ResponseError) and fine == b"v1"  # a refusal answers its command alone
    finally:
        commands.close()
    check = aioredis.Redis.from_url(url)
    try:
        assert await check.get("k7") == b"v7" and await check.dbsize() == 201
    finally:
        await check.aclose()


async def test_a_caller_that_gave_up_does_not_shift_the_replies(redis_server: RedisServer) -> None:
    commands = await Commands.open(redis_server.url, timeout=5)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await commands.call([("BLPOP", "empty", "0.3")])  # answered (nil) after 0.3 s
        assert await commands.call([("ECHO", "mine")]) == [b"mine"]
    finally:
        commands.close()


async def test_losing_redis_fails_the_waiting_calls(redis_server: RedisServer) -> None:
    commands = await Commands.open(redis_server.url, timeout=5)
    waiting = asyncio.create_task(commands.call([("BLPOP", "empty", "0")]))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(redis_server.stop)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(waiting, 5)
    assert commands.closed
    with pytest.raises(ConnectionError):
        await commands.call([("PING",)])


async def test_a_reply_nobody_asked_for_closes_the_connection() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"PING\r\n")
        writer.write(b"+PONG\r\n+EXTRA\r\n")
        await reader.read()

    async with fake_redis(chatty, subscribe=False) as url:
        commands = await Commands.open(url, timeout=5)
        assert await commands.call([("PING",)]) == [b"PONG"]
        await until(lambda: commands.closed)


def test_the_benchmark_of_both_paths_runs(redis_server: RedisServer) -> None:
    script = Path(__file__).resolve().parent.parent / "bench" / "cluster_redis.py"
    out = subprocess.run(
        [sys.executable, str(script), "--redis", redis_server.url, "--runs", "1", "--rounds", "50", "--messages", "20"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = [line.split("  ")[0].strip() for line in out.splitlines()]
    assert names == ["round, redis-py", "round, lean", "message received, redis-py", "message received, lean"], out
    assert all(float(re.findall(r"([\d.]+) µs CPU", line)[0]) > 0 for line in out.splitlines()), out
