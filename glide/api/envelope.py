"""Request parsing and the ``{"Code","Msg","Data"}`` response envelope shared by every API route.

Input follows Go's ``encoding/json`` as GlideIM clients expect it: object keys match case-insensitively,
unknown keys are ignored, uids may be numbers or numeric strings. Every failure is a JSON envelope with
a message naming the field; nothing reaches the client as a bare 500.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glide.auth.credential import CredentialService
from glide.auth.tokens import Claims, TokenService, check_not_revoked
from glide.auth.verification import VerificationCodes
from glide.config import Config
from glide.errors import AuthError, BadRequest, GlideError, TooManyRequests
from glide.gateway.hub import LocalHub
from glide.ids import MidGenerator
from glide.limits import AccountLimits
from glide.logs import event
from glide.store.base import Store, User

log = logging.getLogger("glide.api")
access_log = logging.getLogger("glide.http")

CODE_OK = 100
MAX_BODY = 1 << 20
MAX_UID = (1 << 63) - 1
MAX_LIST = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, GET, OPTIONS, PUT, DELETE, UPDATE"),
    (b"access-control-allow-headers", b"Origin, X-Requested-With, Content-Type, Accept, Authorization"),
    (b"access-control-allow-credentials", b"true"),
]


class ApiHooks(Protocol):
    """What the API tells the rest of the server."""

    async def on_logout(self, uid: int, device: str) -> None:
        """The token of (uid, device) was revoked: close that session's sockets."""
        ...


@dataclass(frozen=True)
class ApiContext:
    """The services the route handlers use."""

    store: Store
    config: Config
    tokens: TokenService
    credentials: CredentialService
    ids: MidGenerator
    hooks: ApiHooks | None
    # Where API routes push socket notifications (the gateway's hub; an empty one when served alone).
    hub: LocalHub = field(default_factory=LocalHub)
    # Live server statistics for GET app/info (the gateway's); None when the API is served without one.
    stats: Callable[[], dict[str, Any]] | None = None
    # Sign-in and sign-up limits; the ones of ``config`` unless given.
    limits: AccountLimits | None = None
    # E-mail verification codes (auth/verifyCode, auth/register).
    verification: VerificationCodes | None = None

    def __post_init__(self) -> None:
        if self.verification is None:
            object.__setattr__(self, "verification", VerificationCodes(self.config))
        if self.limits is None:
            c = self.config
            limits = AccountLimits(
                signin_per_minute=c.signin_per_minute,
                signin_failures_per_hour=c.signin_failures_per_hour,
                guests_per_minute=c.guests_per_minute,
            )
            object.__setattr__(self, "limits", limits)

    @property
    def codes(self) -> VerificationCodes:
        assert self.verification is not None
        return self.verification

    @property
    def account_limits(self) -> AccountLimits:
        assert self.limits is not None
        return self.limits


# responses


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"Code": CODE_OK, "Msg": "success", "Data": data})


def failure(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"Code": code, "Msg": message, "Data": None}, status_code=status, headers=headers)


def error_response(e: GlideError) -> JSONResponse:
    """The envelope of a business error; a rate limit also says when to come back (Retry-After)."""
    headers = None
    if isinstance(e, TooManyRequests):
        headers = {"Retry-After": str(max(1, math.ceil(e.retry_after_s)))}
    return failure(e.http_status, e.code, e.message, headers)


def client_address(request: Request) -> str:
    """The peer address of the HTTP connection (what the per-address limits count)."""
    return request.client.host if request.client is not None else "unknown"


Handler = Callable[[Request], Awaitable[Any]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler returning ``Data`` into the envelope; every error becomes a JSON failure."""

    async def run(request: Request) -> Response:
        try:
            return ok(await handler(request))
        except GlideError as e:
            return error_response(e)
        except ClientDisconnect:
            return failure(400, 300, "client disconnected")
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return failure(500, 500, "internal error")

    return run


async def http_error(request: Request, exc: Exception) -> Response:
    """404 / 405 and other routing errors as envelopes."""
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return failure(404, 404, f"no such API route: {request.url.path}")
        if exc.status_code == 405:
            return failure(405, 405, f"method {request.method} not allowed: use POST", dict(exc.headers or {}))
        return failure(exc.status_code, exc.status_code, str(exc.detail))
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return failure(500, 500, "internal error")


class RequestLog:
    """One debug line per HTTP request: method, path, status, duration (never a body or a header)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            event(
                access_log,
                logging.DEBUG,
                "http request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
                peer=client[0] if client else "",
            )


class Cors:
    """GlideIM's CORS policy (§4.1) on every response; any OPTIONS request is answered 204."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": CORS_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *CORS_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


# request bodies


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: Request) -> Body:
    """The JSON object of the request (an empty body is an empty object). Capped at 1 MiB."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(f"request body too large (limit {MAX_BODY} bytes)", http_status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(f"request body too large (limit {MAX_BODY} bytes)", http_status=413)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return Body({})
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None
    except RecursionError:
        raise BadRequest("request body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(f"request body: expected a JSON object, got {type(data).__name__}")
    return Body(data)


def _valid_unicode(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_uid(value: object, field: str) -> int:
    """A user id from a JSON number or a numeric string."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{field}: expected a user id (a positive integer), got {value!r:.40}")
    if not 0 < value <= MAX_UID:
        raise BadRequest(f"{field}: user id out of range: {value}")
    return value


class Body:
    """A request object with case-insensitive keys and typed, validating getters."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = {str(k).lower(): v for k, v in data.items()}

    def raw(self, *names: str) -> Any:
        """The value of the first of ``names`` present and not null."""
        for name in names:
            value = self._data.get(name.lower())
            if value is not None:
                return value
        return None

    def text(
        self,
        *names: str,
        required: bool = False,
        max_len: int = 256,
        min_len: int = 0,
        strip: bool = True,
        single_line: bool = True,
    ) -> str | None:
        """A string field (the first non-empty of ``names``); None when absent and not required."""
        field = names[0]
        for name in names:
            value = self.raw(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise BadRequest(f"{name}: expected a string, got {type(value).__name__}")
            if strip:
                value = value.strip()
            if value == "":
                continue
            if not _valid_unicode(value):
                raise BadRequest(f"{name}: not valid unicode")
            if single_line and _CONTROL.search(value):
                raise BadRequest(f"{name}: must not contain control characters")
            if not min_len <= len(value) <= max_len:
                raise BadRequest(f"{name}: must be {min_len} to {max_len} characters long")
            return value
        if required:
            raise BadRequest(f"{' or '.join(names)}: required" if len(names) > 1 else f"{field}: required")
        return None

    def uid(self, name: str) -> int:
        """A required user id."""
        value = self.raw(name)
        if value is None:
            raise BadRequest(f"{name}: required")
        return as_uid(value, name)

    def uids(self, name: str) -> list[int]:
        """A required list of user ids (a single id is taken as a list of one)."""
        value = self.raw(name)
        if value is None:
            raise BadRequest(f"{name}: required")
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_LIST:
            raise BadRequest(f"{name}: at most {MAX_LIST} ids per request")
        return [as_uid(v, f"{name}[{i}]") for i, v in enumerate(items)]

    def integer(self, *names: str, default: int, low: int = 0, high: int = MAX_UID) -> int:
        """An optional integer (number or numeric string) within low..high."""
        for name in names:
            value = self.raw(name)
            if value is None:
                continue
            if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
                value = int(value.strip())
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequest(f"{name}: expected an integer, got {value!r:.40}")
            if not low <= value <= high:
                raise BadRequest(f"{name}: must be between {low} and {high}, got {value}")
            return value
        return default

    def flag(self, name: str) -> bool:
        """An optional boolean (false when absent): true/false, or 1/0 as older clients send it."""
        value = self.raw(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise BadRequest(f"{name}: expected true or false, got {value!r:.40}")

    def device(self, name: str = "device") -> str:
        """A device id: GlideIM sends an integer; short strings are accepted. Absent = "0" (Go's zero)."""
        value = self.raw(name)
        if value is None:
            return "0"
        if isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_UID <= value <= MAX_UID:
                raise BadRequest(f"{name}: out of range")
            return str(value)
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", value.strip()):
            return value.strip()
        raise BadRequest(f"{name}: expected a device id (an integer or up to 32 letters/digits), got {value!r:.40}")


# authentication


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:].strip()
    if not header:
        raise AuthError("missing token: send the header Authorization: Bearer <token>")
    return header


def is_admin(ctx: ApiContext, request: Request) -> bool:
    """Whether the bearer token is the node's ``admin_token`` (the operator's, never a user's)."""
    header = request.headers.get("authorization", "").strip()
    presented = header[7:].strip() if header[:7].lower() == "bearer " else header
    expected = ctx.config.admin_token
    return bool(expected) and hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode())


async def check_token(ctx: ApiContext, token: str) -> tuple[Claims, User]:
    """Verify a token, refuse revoked ones and tokens of users that no longer exist."""
    claims = ctx.tokens.verify(token)
    await check_not_revoked(ctx.store.users, claims)
    user = await ctx.store.users.user(claims.uid)
    if user is None:
        raise AuthError("the user of this token does not exist")
    return claims, user


async def authenticate(ctx: ApiContext, request: Request) -> tuple[Claims, User]:
    """The caller of an authenticated route, from its ``Authorization`` header."""
    return await check_token(ctx, bearer_token(request))
