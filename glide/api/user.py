"""``/api/user/*``: own profile, other users' public info, profile update."""

from __future__ import annotations

from typing import Any

from glide.api.auth import AVATAR_MAX, EMAIL_LIKE, NICKNAME_MAX, avatar_field
from glide.api.envelope import ApiContext, Body
from glide.api.registry import Registry
from glide.api.schema import BOOL, EMPTY, ID_OUT, STR, UIDS, array, obj, out, text
from glide.auth.tokens import device_claim
from glide.errors import BadRequest, UserNotFound
from glide.store.base import User

PUBLIC_INFO = out(uid=ID_OUT, nick_name=STR, account=STR, avatar=STR)
PROFILE = out(uid=ID_OUT, nick_name=STR, account=STR, avatar=STR, email=STR, guest=BOOL)


def public_account(user: User, viewer: int) -> str:
    """The account name as ``viewer`` may see it: a user who signed up with an e-mail has it as its
    account, and an e-mail is shown to its owner only (uids are sequential: anything else lets anyone
    collect every address)."""
    if viewer == user.uid:
        return user.account
    if user.email and user.account.casefold() == user.email.casefold():
        return ""
    return "" if EMAIL_LIKE.fullmatch(user.account) else user.account


def public_info(user: User, viewer: int) -> dict[str, Any]:
    return {
        "uid": user.uid,
        "nick_name": user.nickname,
        "account": public_account(user, viewer),
        "avatar": user.avatar,
    }


async def caller(ctx: ApiContext, uid: int) -> User:
    """The calling user (a socket session may outlive its user only in theory: refuse it clearly)."""
    user = await ctx.store.users.user(uid)
    if user is None:
        raise UserNotFound(f"user {uid} does not exist")
    return user


async def profile(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    user = await caller(ctx, uid)
    return {**public_info(user, uid), "email": user.email or "", "guest": user.guest}


async def profile_auth(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """GlideIM's ``{app_id, uid, account, email, phone, nickname, avatar, device}`` of the caller's session."""
    user = await caller(ctx, uid)
    return {
        "app_id": 1,
        "uid": user.uid,
        "account": user.account,
        "email": user.email or "",
        "phone": "",
        "nickname": user.nickname,
        "avatar": user.avatar,
        "device": device_claim(device),
    }


async def info(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid: [ids]}`` -> the known users among them (unknown ids are left out)."""
    users = await ctx.store.users.users(body.uids("uid"))
    return [public_info(u, uid) for u in users]


async def update(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{nick_name?, avatar?}``; at least one."""
    nickname = body.text("nick_name", "nickname", max_len=NICKNAME_MAX)
    avatar = avatar_field(body)
    if nickname is None and avatar is None:
        raise BadRequest("nick_name or avatar: give at least one to update")
    await ctx.store.users.update_profile(uid, nickname=nickname, avatar=avatar)
    return ""


def register(reg: Registry) -> None:
    update_body = obj(nick_name=text(NICKNAME_MAX), nickname=text(NICKNAME_MAX), avatar=text(AVATAR_MAX))
    reg.route("user/profile", summary="The caller's own profile", response=PROFILE, errors=(404,))(profile)
    reg.route(
        "user/profile/auth",
        summary="The caller's session: uid, device and profile",
        response=out(
            app_id=ID_OUT,
            uid=ID_OUT,
            account=STR,
            email=STR,
            phone=STR,
            nickname=STR,
            avatar=STR,
            device={"type": ["integer", "string"]},
        ),
        errors=(404,),
    )(profile_auth)
    reg.route(
        "user/info",
        summary="Public info of the given users (unknown ids are left out)",
        request=obj(("uid",), uid=UIDS),
        response=array(PUBLIC_INFO),
    )(info)
    reg.route(
        "user/profile/update",
        summary="Change the caller's nickname and/or avatar",
        request=update_body,
        response=EMPTY,
        errors=(404,),
    )(update)
    # The web SDK posts to this path (glide_ts_sdk bug, §8.3); GlideIM's api had no such route.
    reg.route(
        "profile/update",
        summary="Alias of user/profile/update (the path the web SDK uses)",
        request=update_body,
        response=EMPTY,
        errors=(404,),
    )(update)
