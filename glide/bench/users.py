"""Who the simulated clients are: accounts created over the HTTP API, tokens minted from a JWT secret,
or GlideIM socket credentials minted from a secret key (glideim.md §4.2)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from glide.auth.credential import CredentialService
from glide.bench.loadgen import LoadUser

PASSWORD = "bench-password-1"
DEVICE = "1"
# Long enough for any run; tokens and credentials are minted per run.
TOKEN_TTL_S = 24 * 3600
CREDENTIAL_TTL_MS = 1_500_000
RETRIES = 3


@dataclass
class Account:
    """A simulated user and how it logs in on the socket."""

    uid: str
    token: str | None = None
    credential: str | None = None
    ticket_secret: str | None = None

    def load_user(self) -> LoadUser:
        user: LoadUser = {"uid": self.uid}
        if self.token is not None:
            user["token"] = self.token
        if self.credential is not None:
            user["credential"] = self.credential
        if self.ticket_secret is not None:
            user["ticket_secret"] = self.ticket_secret
        return user


class ProvisionError(RuntimeError):
    """Users could not be created or signed in."""


def mint_jwt(secret: str, uid: int, device: str = DEVICE) -> str:
    """A token in GlideIM's claim layout (what glide's TokenService issues), signed HS256 with ``secret``."""
    now = int(time.time())
    claims = {
        "uid": uid,
        "device": int(device) if device.isdigit() else device,
        "ver": 1,
        "app_id": 1,
        "iat": now,
        "exp": now + TOKEN_TTL_S,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_credentials(secret_key: str, uids: list[int], device: str = DEVICE) -> list[Account]:
    """GlideIM ``authenticate`` credentials (AES-256-CBC, key ``(secret_key ‖ SHA512(""))[:32]``), each with its
    own ``message_deliver_secret`` so chats can carry GlideIM's send ticket.

    glide's issuer also adds a MAC field; GlideIM's gateway ignores unknown keys, so these open on both.
    """
    issuer = CredentialService(secret_key, CREDENTIAL_TTL_MS)
    accounts = []
    for uid in uids:
        deliver = secrets.token_hex(16)
        cred = issuer.issue(uid, device, "glide-bench", deliver)["credential"]
        accounts.append(Account(uid=str(uid), credential=str(cred), ticket_secret=deliver))
    return accounts


def tokens_for(secret: str, uids: list[int]) -> list[Account]:
    """Accounts for existing uids, logging in with tokens minted from ``secret``."""
    return [Account(uid=str(u), token=mint_jwt(secret, u)) for u in uids]


def jwt_secret_of(data_dir: Path) -> str:
    """The JWT secret glide generated in its data directory (``secret.json``, key ``jwt_secret``)."""
    try:
        value = json.loads((data_dir / "secret.json").read_text())["jwt_secret"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProvisionError(f"no jwt_secret in {data_dir / 'secret.json'}: {e}") from None
    if not isinstance(value, str) or not value:
        raise ProvisionError(f"empty jwt_secret in {data_dir / 'secret.json'}")
    return value


def api_data(reply: httpx.Response, what: str) -> Any:
    """``Data`` of a ``{Code, Msg, Data}`` reply; ProvisionError unless HTTP 200 and Code 100."""
    try:
        body = reply.json()
    except ValueError:
        raise ProvisionError(f"{what}: HTTP {reply.status_code}, not JSON: {reply.text[:200]!r}") from None
    if reply.status_code != 200 or not isinstance(body, dict) or body.get("Code") != 100:
        raise ProvisionError(f"{what}: HTTP {reply.status_code}: {json.dumps(body)[:300]}")
    return body.get("Data")


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[httpx.Response, bool]:
    """POST, retried on transport errors (a keep-alive connection the server closed just as it was reused);
    also says whether it was retried."""
    for attempt in range(RETRIES):
        try:
            return await client.post(url, json=body), attempt > 0
        except httpx.TransportError:
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def _one(client: httpx.AsyncClient, api: str, name: str, mode: str, jwt_secret: str | None) -> Account:
    if mode == "guest":
        reply, _ = await _post(client, f"{api}/auth/guest", {"nickname": name[-32:]})
        data = api_data(reply, "guest")
        return Account(uid=str(data["uid"]), token=str(data["token"]))
    reply, retried = await _post(client, f"{api}/auth/register", {"account": name, "password": PASSWORD})
    # A retried register that fails found the account its lost first attempt created: sign in instead.
    if not (retried and reply.status_code != 200):
        uid = int(api_data(reply, f"register {name}")["uid"])
        if jwt_secret:
            return Account(uid=str(uid), token=mint_jwt(jwt_secret, uid))
    reply, _ = await _post(client, f"{api}/auth/signin", {"account": name, "password": PASSWORD, "device": int(DEVICE)})
    signed = api_data(reply, f"signin {name}")
    return Account(uid=str(signed["uid"]), token=str(signed["token"]))


async def _provision(
    api: str,
    count: int,
    mode: str,
    jwt_secret: str | None,
    concurrency: int,
    progress: Callable[[int], None] | None,
) -> list[Account]:
    prefix = f"bench{secrets.token_hex(4)}_"
    sem = asyncio.Semaphore(concurrency)
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:

        async def task(i: int) -> Account:
            nonlocal done
            async with sem:
                account = await _one(client, api, f"{prefix}{i}", mode, jwt_secret)
            done += 1
            if progress is not None:
                progress(done)
            return account

        return list(await asyncio.gather(*(task(i) for i in range(count))))


def provision_via_api(
    api: str,
    count: int,
    *,
    mode: str = "register",
    jwt_secret: str | None = None,
    concurrency: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[Account]:
    """Creates ``count`` users over the HTTP API at ``api`` (``http://host:port/api``), concurrently.

    ``mode``: ``register`` (``/auth/register``, then a token: minted from ``jwt_secret`` if given, else
    ``/auth/signin``) or ``guest`` (``/auth/guest``: one request, no password hashing).
    """
    if mode not in ("register", "guest"):
        raise ValueError(f"mode: register or guest, got {mode!r}")
    try:
        return asyncio.run(_provision(api.rstrip("/"), count, mode, jwt_secret, concurrency, progress))
    except httpx.HTTPError as e:
        raise ProvisionError(f"HTTP API at {api}: {e!r}") from None
