"""``/api/auth/*``: register, sign in (token, and the socket credential for v2), token refresh, guest, logout."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from glide.api.envelope import ApiContext, Body, authenticate, bearer_token, check_token, endpoint, read_body
from glide.auth.passwords import NO_PASSWORD, burn_verify, hash_password, verify_password
from glide.auth.tokens import device_claim
from glide.errors import AuthError, BadRequest, NotAllowed
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
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ACCOUNT = re.compile(r"[^\s]+")


def avatar_field(body: Body) -> str | None:
    """An avatar URL (http/https), or None when absent."""
    avatar = body.text("avatar", max_len=AVATAR_MAX)
    if avatar is not None and not avatar.lower().startswith(("http://", "https://")):
        raise BadRequest("avatar: expected an http:// or https:// URL")
    return avatar


class AuthRoutes:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/register", endpoint(self.register), methods=["POST"]),
            Route("/auth/signin", endpoint(self.signin), methods=["POST"]),
            Route("/auth/signin_v2", endpoint(self.signin_v2), methods=["POST"]),
            Route("/auth/token", endpoint(self.token), methods=["POST"]),
            Route("/auth/guest", endpoint(self.guest), methods=["POST"]),
            Route("/auth/logout", endpoint(self.logout), methods=["POST"]),
        ]

    async def register(self, request: Request) -> Any:
        """``{email?, account?, password, nickname?, captcha?}``; at least one of account and e-mail."""
        if self.ctx.config.require_email_verification:
            raise NotAllowed(
                "registration requires e-mail verification, which this server does not offer "
                "(require_email_verification is on): ask the operator",
                code=CODE_VERIFICATION_REQUIRED,
            )
        body = await read_body(request)
        email = body.text("email", max_len=EMAIL_MAX)
        if email is not None and not _EMAIL.fullmatch(email):
            raise BadRequest("email: not an e-mail address")
        account = body.text("account", max_len=ACCOUNT_MAX)
        if account is not None and not _ACCOUNT.fullmatch(account):
            raise BadRequest("account: must not contain spaces")
        password = body.text("password", required=True, min_len=PASSWORD_MIN, max_len=PASSWORD_MAX, strip=False)
        assert password is not None
        nickname = body.text("nickname", max_len=NICKNAME_MAX)
        login = account or email
        if login is None:
            raise BadRequest("account or email: at least one is required")
        password_hash = await asyncio.to_thread(hash_password, password)
        user = await self.ctx.store.users.create_user(
            account=login,
            email=email,
            nickname=nickname or login.split("@")[0][:NICKNAME_MAX],
            avatar="",
            password_hash=password_hash,
        )
        return {"uid": user.uid}

    async def signin(self, request: Request) -> Any:
        """``{email | account, password, device}`` -> token."""
        return await self._signin(request, credential=False)

    async def signin_v2(self, request: Request) -> Any:
        """Same as signin, plus the socket ``credential`` (what the web client uses)."""
        return await self._signin(request, credential=True)

    async def _signin(self, request: Request, *, credential: bool) -> Any:
        body = await read_body(request)
        login = body.text("email", "account", required=True, max_len=EMAIL_MAX)
        password = body.text("password", required=True, max_len=1024, strip=False)
        assert login is not None and password is not None
        device = body.device()
        user = await self.ctx.store.users.user_by_login(login)
        if user is None or user.guest:
            # Same cost and answer as a wrong password: do not reveal which accounts exist.
            await asyncio.to_thread(burn_verify, password)
            raise AuthError("wrong account or password", code=CODE_WRONG_PASSWORD)
        if not await asyncio.to_thread(verify_password, user.password_hash, password):
            raise AuthError("wrong account or password", code=CODE_WRONG_PASSWORD)
        return self.auth_response(user, device, credential=credential)

    async def token(self, request: Request) -> Any:
        """``{token}`` (or the Authorization header) -> a fresh token and credential for the same device."""
        body = await read_body(request)
        presented = body.text("token", max_len=8192)
        try:
            claims, user = await check_token(self.ctx, presented or bearer_token(request))
        except AuthError as e:
            raise AuthError(e.message, code=CODE_INVALID_TOKEN) from None
        return self.auth_response(user, claims.device, credential=True)

    async def guest(self, request: Request) -> Any:
        """``{avatar, nickname}`` -> a new guest user (no password), its token and credential."""
        body = await read_body(request)
        nickname = body.text("nickname", max_len=NICKNAME_MAX)
        avatar = avatar_field(body) or ""
        suffix = secrets.token_hex(16)
        user = await self.ctx.store.users.create_user(
            account=f"guest_{suffix}",
            email=None,
            nickname=nickname or f"guest-{suffix[:6]}",
            avatar=avatar,
            password_hash=NO_PASSWORD,
            guest=True,
        )
        return self.auth_response(user, GUEST_DEVICE, credential=True)

    async def logout(self, request: Request) -> Any:
        """Revoke the presented token and close the sockets of that (uid, device)."""
        claims, _ = await authenticate(self.ctx, request)
        await self.ctx.store.users.revoke_token(claims.jti, claims.exp * 1000)
        if self.ctx.hooks is not None:
            try:
                await self.ctx.hooks.on_logout(claims.uid, claims.device)
            except Exception:
                log.exception("logout hook failed for uid %d device %s", claims.uid, claims.device)
        return ""

    def auth_response(self, user: User, device: str, *, credential: bool) -> dict[str, Any]:
        """GlideIM's ``AuthResponse``."""
        data: dict[str, Any] = {
            "token": self.ctx.tokens.issue(user.uid, device, guest=user.guest),
            "uid": user.uid,
            "servers": [self.ctx.config.ws_url],
            "nick_name": user.nickname,
            "email": user.email or "",
            "phone": "",
            "device": device_claim(device),
            "app_id": 1,
        }
        if credential:
            data["credential"] = self.ctx.credentials.issue(user.uid, device, "", user.message_deliver_secret)
        return data
