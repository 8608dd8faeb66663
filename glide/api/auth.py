"""``/api/auth/*``: register, sign in (token, and the socket credential for v2), token refresh, guest, logout."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from typing import Any

from starlette.requests import Request

from glide.api.envelope import ApiContext, Body, authenticate, bearer_token, check_token, client_address, read_body
from glide.api.registry import ApiRoute, Registry
from glide.api.schema import EMPTY, ID_OUT, STR, array, integer, obj, out, text
from glide.auth.passwords import NO_PASSWORD, burn_verify, hash_password, verify_password
from glide.auth.tokens import device_claim
from glide.errors import AuthError, BadRequest, TooManyRequests
from glide.ids import wall_ms
from glide.limits import KeyedLimiter
from glide.store.base import User

log = logging.getLogger("glide.api")

GUEST_DEVICE = "-1"  # what GlideIM's api gives guests (§4.3)
PASSWORD_MIN, PASSWORD_MAX = 6, 64
NICKNAME_MAX = 32
ACCOUNT_MAX = 64
EMAIL_MAX = 254
AVATAR_MAX = 2048
CODE_WRONG_PASSWORD = 1002
CODE_VERIFICATION_REQUIRED = 1005
CODE_INVALID_TOKEN = 401
CAPTCHA_MAX = 16
MAX_DEVICE = (1 << 63) - 1
EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ACCOUNT = re.compile(r"[^\s]+")


def avatar_field(body: Body) -> str | None:
    """An avatar URL (http/https), or None when absent."""
    avatar = body.text("avatar", max_len=AVATAR_MAX)
    if avatar is not None and not avatar.lower().startswith(("http://", "https://")):
        raise BadRequest("avatar: expected an http:// or https:// URL")
    return avatar


async def register_user(ctx: ApiContext, request: Request) -> Any:
    """``{email?, account?, password, nickname?, captcha?}``; at least one of account and e-mail.

    With ``require_email_verification`` the e-mail and the code auth/verifyCode sent to it are required."""
    limit(ctx.account_limits.signin_by_address, client_address(request), "registrations and sign-ins from your address")
    body = await read_body(request)
    email = email_field(body)
    account = body.text("account", max_len=ACCOUNT_MAX)
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise BadRequest("account: must not contain spaces")
    password = body.text("password", required=True, min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, strip=False)
    assert password is not None
    nickname = body.text("nickname", max_len=NICKNAME_MAX)
    login = account or email
    if login is None:
        raise BadRequest("account or email: at least one is required")
    if ctx.config.require_email_verification:
        captcha = body.text("captcha", max_len=CAPTCHA_MAX)
        if email is None or captcha is None:
            raise BadRequest(
                "email and captcha: this server registers verified e-mail addresses only; "
                "ask auth/verifyCode for a code",
                code=CODE_VERIFICATION_REQUIRED,
            )
        if not ctx.codes.consume(email, captcha):
            raise BadRequest("captcha: wrong or expired verification code", code=CODE_VERIFICATION_REQUIRED)
    password_hash = await asyncio.to_thread(hash_password, password)
    user = await ctx.store.users.create_user(
        account=login,
        email=email,
        nickname=nickname or login.split("@")[0][:NICKNAME_MAX],
        avatar="",
        password_hash=password_hash,
    )
    return {"uid": user.uid}


def email_field(body: Body, *, required: bool = False) -> str | None:
    email = body.text("email", required=required, max_len=EMAIL_MAX)
    if email is not None and not EMAIL_LIKE.fullmatch(email):
        raise BadRequest("email: not an e-mail address")
    return email


async def verify_code(ctx: ApiContext, request: Request) -> Any:
    """``{email, mode: "register"}``: mail a registration code to ``email`` (or log it without SMTP)."""
    limit(ctx.account_limits.signin_by_address, client_address(request), "code requests from your address")
    body = await read_body(request)
    email = email_field(body, required=True)
    assert email is not None
    mode = body.text("mode", max_len=16) or "register"
    if mode != "register":
        raise BadRequest(f"mode: only register is offered, not {mode!r}")
    await ctx.codes.send(email)
    return ""


async def signin(ctx: ApiContext, request: Request) -> Any:
    """``{email | account, password, device}`` -> token."""
    return await _signin(ctx, request, credential=False)


async def signin_v2(ctx: ApiContext, request: Request) -> Any:
    """Same as signin, plus the socket ``credential`` (what the web client uses)."""
    return await _signin(ctx, request, credential=True)


async def _signin(ctx: ApiContext, request: Request, *, credential: bool) -> Any:
    limits = ctx.account_limits
    # Every attempt costs an argon2 verification: refuse floods before paying for them.
    limit(limits.signin_by_address, client_address(request), "sign-in attempts from your address")
    body = await read_body(request)
    login = body.text("email", "account", required=True, max_len=EMAIL_MAX)
    password = body.text("password", required=True, max_len=1024, strip=False)
    assert login is not None and password is not None
    device = body.device()
    account = login.strip().casefold()
    wait = limits.failures_by_account.check(account)
    if wait:
        raise TooManyRequests(
            f"too many wrong passwords for this account: try again in {math.ceil(wait)} s", retry_after_s=wait
        )
    user = await ctx.store.users.user_by_login(login)
    if user is None or user.guest:
        # Same cost and answer as a wrong password: do not reveal which accounts exist.
        await asyncio.to_thread(burn_verify, password)
        limits.failures_by_account.take(account)
        raise AuthError("wrong account or password", code=CODE_WRONG_PASSWORD)
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        limits.failures_by_account.take(account)
        raise AuthError("wrong account or password", code=CODE_WRONG_PASSWORD)
    limits.failures_by_account.forget(account)  # the owner got in: its count starts again
    return auth_response(ctx, user, device, credential=credential)


def limit(limiter: KeyedLimiter, key: str, what: str) -> None:
    """Take one from ``limiter`` for ``key``, or refuse with 429 saying when to come back."""
    wait = limiter.take(key)
    if wait:
        raise TooManyRequests(f"too many {what}: try again in {math.ceil(wait)} s", retry_after_s=wait)


async def token(ctx: ApiContext, request: Request) -> Any:
    """``{token}`` (or the Authorization header) -> a fresh token and credential for the same device."""
    body = await read_body(request)
    presented = body.text("token", max_len=8192)
    try:
        claims, user = await check_token(ctx, presented or bearer_token(request))
    except AuthError as e:
        raise AuthError(e.message, code=CODE_INVALID_TOKEN) from None
    return auth_response(ctx, user, claims.device, credential=True)


async def guest(ctx: ApiContext, request: Request) -> Any:
    """``{avatar, nickname}`` -> a new guest user (no password), its token and credential."""
    limit(ctx.account_limits.guests_by_address, client_address(request), "guest accounts from your address")
    body = await read_body(request)
    nickname = body.text("nickname", max_len=NICKNAME_MAX)
    avatar = avatar_field(body) or ""
    suffix = secrets.token_hex(16)
    user = await ctx.store.users.create_user(
        account=f"guest_{suffix}",
        email=None,
        nickname=nickname or f"guest-{suffix[:6]}",
        avatar=avatar,
        password_hash=NO_PASSWORD,
        guest=True,
    )
    return auth_response(ctx, user, GUEST_DEVICE, credential=True)


async def logout(ctx: ApiContext, request: Request) -> Any:
    """Revoke the presented token and close the sockets of that (uid, device)."""
    claims, _ = await authenticate(ctx, request)
    await ctx.store.users.revoke_token(claims.jti, claims.exp * 1000)
    # Everything issued for this session so far (refreshed tokens, socket credentials) dies with it.
    await ctx.store.users.end_session(claims.uid, claims.device, wall_ms())
    if ctx.hooks is not None:
        try:
            await ctx.hooks.on_logout(claims.uid, claims.device)
        except Exception:
            log.exception("logout hook failed for uid %d device %s", claims.uid, claims.device)
    return ""


def auth_response(ctx: ApiContext, user: User, device: str, *, credential: bool) -> dict[str, Any]:
    """GlideIM's ``AuthResponse``."""
    data: dict[str, Any] = {
        "token": ctx.tokens.issue(user.uid, device, guest=user.guest),
        "uid": user.uid,
        "servers": [ctx.config.ws_url],
        "nick_name": user.nickname,
        "email": user.email or "",
        "phone": "",
        "device": device_claim(device),
        "app_id": 1,
    }
    if credential:
        data["credential"] = ctx.credentials.issue(user.uid, device, "", user.message_deliver_secret)
    return data


DEVICE = {
    "description": "device id: an integer or up to 32 letters/digits (default 0)",
    "oneOf": [integer(-MAX_DEVICE, MAX_DEVICE), {"type": "string", "pattern": r"^\s*[A-Za-z0-9_.-]{1,32}\s*$"}],
}
AUTH_RESPONSE = out(
    token=STR,
    uid=ID_OUT,
    servers=array(STR),
    nick_name=STR,
    email=STR,
    phone=STR,
    device={"type": ["integer", "string"]},
    app_id=ID_OUT,
)
AUTH_RESPONSE_V2 = {
    **AUTH_RESPONSE,
    "properties": {**AUTH_RESPONSE["properties"], "credential": out(version=ID_OUT, credential=STR)},
    "required": [*AUTH_RESPONSE["required"], "credential"],
}
SIGNIN = obj(
    ("password",),
    email=text(EMAIL_MAX),
    account=text(EMAIL_MAX),
    password=text(1024),
    device=DEVICE,
)


def register(reg: Registry) -> None:
    """The login routes: HTTP-only (they read headers, or exist to obtain what a socket login needs)."""
    for path, summary, handler, request, response, errors in (
        (
            "auth/register",
            "Register with an account and/or e-mail and a password",
            register_user,
            obj(
                ("password",),
                email=text(EMAIL_MAX),
                account=text(ACCOUNT_MAX),
                password=text(PASSWORD_MAX, PASSWORD_MIN),
                nickname=text(NICKNAME_MAX),
                captcha=text(CAPTCHA_MAX),
            ),
            out(uid=ID_OUT),
            (409, 429),
        ),
        (
            "auth/verifyCode",
            "E-mail a registration code (logged by the server when it has no SMTP server)",
            verify_code,
            obj(("email",), email=text(EMAIL_MAX), mode={"type": "string", "enum": ["register"]}),
            EMPTY,
            (429, 503),
        ),
        ("auth/signin", "Sign in: a token", signin, SIGNIN, AUTH_RESPONSE, (429,)),
        (
            "auth/signin_v2",
            "Sign in: a token and the socket credential",
            signin_v2,
            SIGNIN,
            AUTH_RESPONSE_V2,
            (429,),
        ),
        (
            "auth/token",
            "A fresh token and credential for the token in the body or the Authorization header",
            token,
            obj(token=text(8192)),
            AUTH_RESPONSE_V2,
            (),
        ),
        (
            "auth/guest",
            "A new guest user with its token and credential",
            guest,
            obj(nickname=text(NICKNAME_MAX), avatar=text(AVATAR_MAX)),
            AUTH_RESPONSE_V2,
            (429,),
        ),
        ("auth/logout", "Revoke the presented token and close that session's sockets", logout, None, EMPTY, ()),
    ):
        reg.add(
            ApiRoute(
                path,
                summary,
                http_handler=handler,
                auth=path == "auth/logout",
                socket=False,
                request=request,
                response=response,
                errors=errors,
            )
        )
