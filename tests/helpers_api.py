"""Serve the HTTP API for real (uvicorn on 127.0.0.1, ephemeral port) and talk to it with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from glide.api import build_api
from glide.auth.credential import CredentialService
from glide.auth.passwords import hash_password
from glide.auth.tokens import TokenService
from glide.config import Config
from glide.ids import MidGenerator
from glide.store import Store, open_store

PASSWORD = "pa55word"
# The store serve_api opens unless told otherwise: set by the store_url fixture (conftest.py) per backend.
STORE_URL = ""


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once per test run: users made straight in the store skip argon2's cost."""
    return hash_password(PASSWORD)


class RecordingHooks:
    def __init__(self) -> None:
        self.logouts: list[tuple[int, str]] = []

    async def on_logout(self, uid: int, device: str) -> None:
        self.logouts.append((uid, device))


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers: pytest owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class ApiEnv:
    client: httpx.AsyncClient
    store: Store
    config: Config
    tokens: TokenService
    credentials: CredentialService
    ids: MidGenerator
    hooks: RecordingHooks
    users: dict[str, int] = field(default_factory=dict)

    async def post(self, path: str, body: Any = None, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is None:
            return await self.client.post(path, headers=headers, **kw)
        return await self.client.post(path, json=body, headers=headers, **kw)

    async def register(self, account: str, email: str | None = None, password: str = PASSWORD) -> int:
        body = {"account": account, "password": password, "nickname": account.title()}
        if email:
            body["email"] = email
        r = await self.post("/api/auth/register", body)
        assert r.status_code == 200, r.text
        uid: int = r.json()["Data"]["uid"]
        self.users[account] = uid
        return uid

    async def login(self, account: str, password: str = PASSWORD, device: object = 1) -> dict[str, Any]:
        r = await self.post("/api/auth/signin_v2", {"Email": account, "Password": password, "Device": device})
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["Data"]
        return data

    async def add_user(self, account: str) -> int:
        """A user with PASSWORD, created straight in the store (fast); ``register`` goes through HTTP."""
        user = await self.store.users.create_user(
            account=account, email=None, nickname=account.title(), avatar="", password_hash=password_hash()
        )
        self.users[account] = user.uid
        return user.uid

    async def user_token(self, account: str) -> str:
        """Create the user if needed and sign in over HTTP; returns the token."""
        if account not in self.users:
            await self.add_user(account)
        token: str = (await self.login(account))["token"]
        return token


@contextlib.asynccontextmanager
async def serve_api(tmp_path: Path, **overrides: object) -> AsyncIterator[ApiEnv]:
    config = Config.load(None, {}, {"data_dir": str(tmp_path / "data"), "store": STORE_URL, **overrides})
    config.ensure_secrets()
    store = await open_store(config)
    tokens = TokenService(config.jwt_secret, config.token_ttl_s, config.guest_token_ttl_s, revocations=store.users)
    credentials = CredentialService(config.secret_key, config.credential_ttl_ms)
    ids = MidGenerator(await store.claim_node(config.node_id))
    hooks = RecordingHooks()
    app = build_api(store=store, config=config, tokens=tokens, credentials=credentials, ids=ids, hooks=hooks)
    server = _QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield ApiEnv(client, store, config, tokens, credentials, ids, hooks)
    finally:
        server.should_exit = True
        await task
        await store.close()


def envelope(r: httpx.Response) -> dict[str, Any]:
    """The JSON envelope, checked for shape."""
    assert r.headers["content-type"].startswith("application/json"), (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert set(body) == {"Code", "Msg", "Data"}, body
    return body


def ok(r: httpx.Response) -> Any:
    body = envelope(r)
    assert r.status_code == 200 and body["Code"] == 100 and body["Msg"] == "success", (r.status_code, body)
    return body["Data"]


def denied(r: httpx.Response, status: int, code: int, mentions: str = "") -> str:
    body = envelope(r)
    assert (r.status_code, body["Code"]) == (status, code), (r.status_code, body)
    assert body["Data"] is None
    msg: str = body["Msg"]
    assert mentions.lower() in msg.lower(), msg
    return msg
