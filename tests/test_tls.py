"""TLS on every listener (``--tls-cert``/``--tls-key``): wss://, https:// and TLS over the TCP transport, with a
self-signed certificate the test clients trust; what a client that does not speak TLS (or does not trust the
certificate) gets; and one clear error for every wrong pair of files."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import Client, make_config, make_user
from serve_process import ServeProcess

from glide.client import Chat, GlideClient
from glide.config import Config
from glide.errors import ConfigError
from glide.gateway.hub import KICKED_OUT
from glide.server import Server


def self_signed(directory: Path, name: str = "glide-test") -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its private key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path / "tls")


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


async def wss_client(server: Server, cert: Path) -> Client:
    ws = await websockets.connect(f"wss://127.0.0.1:{server.ws_port}/ws", ssl=trusting(cert), max_size=None)
    client = Client(ws)
    client.hello = await client.expect("hello")
    return client


async def test_chat_over_wss_with_https_sign_in(servers, tls_files: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_files
    server: Server = await servers(tls_cert=str(cert), tls_key=str(key))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{server.http_port}", verify=trusting(cert)) as http:
        guest = (await http.post("/api/auth/guest", json={"nickname": "g", "avatar": ""})).json()
    assert guest["Code"] == 100, guest
    assert guest["Data"]["servers"] == [f"wss://127.0.0.1:{server.ws_port}/ws"]  # clients are sent to wss
    _, alice_token = await make_user(server, "alice")
    bob_uid, bob_token = await make_user(server, "bob")
    alice, bob = await wss_client(server, cert), await wss_client(server, cert)
    try:
        await alice.login(alice_token)
        await bob.login(bob_token)
        # Messages near the size limit cross TLS record boundaries (16 KiB records), and a burst goes out as
        # many records per write: every one arrives whole and in order.
        big = "x" * 60_000
        await alice.chat(bob_uid, big, "big")
        assert (await bob.expect("message.chat"))["data"]["content"] == big
        count = 150  # within the default send burst (message_burst = 200)
        for i in range(count):
            chat = {"cliMid": f"m{i}", "content": f"{i}:" + "y" * 2000, "to": str(bob_uid), "type": 1}
            await alice.send("message.chat", chat, to=str(bob_uid))
        received = []
        while len(received) < count:
            frame = await bob.expect("message.chat")
            received.append(int(frame["data"]["content"].split(":")[0]))
        assert received == list(range(count))
        # A server-initiated close goes out through TLS too: bob's device signs in again elsewhere.
        bob_again = await wss_client(server, cert)
        await bob_again.login(bob_token)
        await bob.expect("notify.kickout")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await bob.nothing(5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == KICKED_OUT
        await bob_again.close()
    finally:
        await alice.close()
        await bob.close()


async def test_tcp_transport_over_tls(servers, tls_files: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_files
    server: Server = await servers(tls_cert=str(cert), tls_key=str(key), tcp_port=0)
    uid, token = await make_user(server, "carol")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port, ssl=trusting(cert))

    async def send(action: str, data: Any, seq: int) -> None:
        payload = json.dumps({"action": action, "data": data, "seq": seq}).encode()
        writer.write(struct.pack(">I", len(payload)) + payload)
        await writer.drain()

    async def recv() -> dict[str, Any]:
        while True:
            (n,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readexactly(n), 5))
            if frame["action"] != "heartbeat":
                return frame

    try:
        assert (await recv())["action"] == "hello"
        await send("api.auth", {"Token": token}, 1)
        assert (await recv())["action"] == "api.success"
        chat = {"cliMid": "t1", "content": "to myself", "to": str(uid), "type": 1}
        await send("message.chat", chat, 2)
        frames = [await recv(), await recv()]
        assert {f["action"] for f in frames} == {"ack.message", "message.chat"}, frames
    finally:
        writer.close()


async def test_clients_that_do_not_speak_tls_are_refused(servers, tls_files: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_files
    server: Server = await servers(tls_cert=str(cert), tls_key=str(key))
    # Plain WebSocket on the TLS port: its HTTP upgrade is not a ClientHello.
    with pytest.raises((websockets.exceptions.InvalidHandshake, websockets.exceptions.ConnectionClosed, OSError)):
        await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws", open_timeout=5)
    # A client that does not trust the certificate stops at the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        await websockets.connect(f"wss://127.0.0.1:{server.ws_port}/ws", ssl=ssl.create_default_context())
    # Garbage, and half a ClientHello followed by a hang-up: the server closes or forgets the connection.
    for junk in (b"\x16\x03\x01\x02\x00" + b"\xff" * 40, b"\x00" * 4096):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
        writer.write(junk)
        await writer.drain()
        if junk[0] == 0:
            assert await asyncio.wait_for(reader.read(), 5) is not None  # answered with an alert or EOF, then closed
        writer.close()
    # The server still serves a client that does it right.
    uid, token = await make_user(server, "dave")
    client = await wss_client(server, cert)
    try:
        await client.login(token)
        await client.chat(uid, "still here", "ok")
    finally:
        await client.close()


def test_tls_settings_are_checked_at_load(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    _, other_key = self_signed(tmp_path / "other", "other")
    with pytest.raises(ConfigError, match="give both"):
        Config.load(overrides={"tls_cert": str(cert)})
    with pytest.raises(ConfigError, match=r"missing\.pem: No such file"):
        Config.load(overrides={"tls_cert": str(tmp_path / "missing.pem"), "tls_key": str(key)})
    with pytest.raises(ConfigError, match="not a certificate chain and its private key"):
        Config.load(overrides={"tls_cert": str(cert), "tls_key": str(other_key)})
    with pytest.raises(ConfigError, match="not a certificate chain"):
        Config.load(overrides={"tls_cert": str(key), "tls_key": str(key)})
    config = Config.load(overrides={"tls_cert": str(cert), "tls_key": str(key), "ws_port": 9000})
    assert config.ws_url == "wss://127.0.0.1:9000/ws"
    assert make_config(tmp_path).ws_url.startswith("ws://")


def test_glide_serve_with_tls_flags(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    node = ServeProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert any(f"wss://127.0.0.1:{node.ws_port}/ws  https://" in line for line in node.output), node.output
        r = httpx.post(f"https://127.0.0.1:{node.http_port}/api/auth/guest", json={"nickname": "g", "avatar": ""},
                       verify=trusting(cert), timeout=10)  # fmt: skip
        assert r.json()["Code"] == 100, r.text
    finally:
        node.terminate()


async def test_glide_client_over_wss(servers, tls_files: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls_files
    server: Server = await servers(tls_cert=str(cert), tls_key=str(key))
    a, token_a = await make_user(server, "erin")
    b, token_b = await make_user(server, "finn")
    url, ctx = server.config.ws_url, trusting(cert)
    async with GlideClient(url, token_a, ssl=ctx) as erin, GlideClient(url, token_b, ssl=ctx) as finn:
        mid = await erin.send_chat(b, "over wss")
        got = await finn.next_event(5)
        assert isinstance(got, Chat) and (got.mid, got.sender, got.content) == (mid, a, "over wss")
