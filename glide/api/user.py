"""``/api/user/*``: own profile, other users' public info, profile update."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from glide.api.auth import NICKNAME_MAX, avatar_field
from glide.api.envelope import ApiContext, authenticate, endpoint, read_body
from glide.errors import BadRequest
from glide.store.base import User


def public_info(user: User) -> dict[str, Any]:
    return {"uid": user.uid, "nick_name": user.nickname, "account": user.account, "avatar": user.avatar}


class UserRoutes:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/user/profile", endpoint(self.profile), methods=["POST"]),
            Route("/user/info", endpoint(self.info), methods=["POST"]),
            Route("/user/profile/update", endpoint(self.update), methods=["POST"]),
            # The web SDK posts to this path (glide_ts_sdk bug, §8.3); GlideIM's api had no such route.
            Route("/profile/update", endpoint(self.update), methods=["POST"]),
        ]

    async def profile(self, request: Request) -> Any:
        _, user = await authenticate(self.ctx, request)
        return {**public_info(user), "email": user.email or "", "guest": user.guest}

    async def info(self, request: Request) -> Any:
        """``{uid: [ids]}`` -> the known users among them (unknown ids are left out)."""
        await authenticate(self.ctx, request)
        body = await read_body(request)
        users = await self.ctx.store.users.users(body.uids("uid"))
        return [public_info(u) for u in users]

    async def update(self, request: Request) -> Any:
        """``{nick_name?, avatar?}``; at least one."""
        _, user = await authenticate(self.ctx, request)
        body = await read_body(request)
        nickname = body.text("nick_name", "nickname", max_len=NICKNAME_MAX)
        avatar = avatar_field(body)
        if nickname is None and avatar is None:
            raise BadRequest("nick_name or avatar: give at least one to update")
        await self.ctx.store.users.update_profile(user.uid, nickname=nickname, avatar=avatar)
        return ""
