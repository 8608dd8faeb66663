"""``/api/session/blacklist*`` and ``/api/session/whitelist*``: who may message the caller.

A user on the caller's blacklist cannot message the caller (the 1:1 send path refuses it with an error
frame, nothing is stored; ``session/ticket`` refuses a ticket; contact requests are refused). In
whitelist-only mode (``session/whitelist/mode``) only users on the whitelist can. One list per user and
other: adding someone to one list takes them off the other. GlideIM rotated the blocked users' ticket
secrets; here the check sits on the store path every message takes, so no secret needs to change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from glide.api.envelope import ApiContext, Body
from glide.api.registry import Registry
from glide.api.schema import BOOL, ID_OUT, NULL, STR, UIDS, array, obj, out
from glide.api.user import public_account
from glide.errors import BadRequest
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE, Relation

LISTS = {"blacklist": RELATION_BLACK, "whitelist": RELATION_WHITE}

USER_INFO = out(Uid=ID_OUT, Account=STR, email=STR, phone=STR, Nickname=STR, Avatar=STR)
RELATION_VIEW = out(
    ID=ID_OUT,
    CreatedAt=STR,
    UpdatedAt=STR,
    DeletedAt=NULL,
    id=ID_OUT,
    primary_uid=ID_OUT,
    relative_uid=ID_OUT,
    type=ID_OUT,
    user_info=USER_INFO,
)


def iso(ms: int) -> str:
    """GlideIM's gorm timestamps are RFC 3339 strings."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def _views(ctx: ApiContext, relations: list[Relation]) -> list[dict[str, Any]]:
    users = {u.uid: u for u in await ctx.store.users.users([r.other for r in relations])}
    views = []
    for r in relations:
        u = users.get(r.other)
        at = iso(r.created_at)
        views.append(
            {
                "ID": r.other,
                "CreatedAt": at,
                "UpdatedAt": at,
                "DeletedAt": None,
                "id": r.other,
                "primary_uid": r.owner,
                "relative_uid": r.other,
                "type": r.type,
                "user_info": {
                    "Uid": r.other,
                    "Account": public_account(u, r.owner) if u else "",
                    "email": "",  # never another user's e-mail
                    "phone": "",
                    "Nickname": u.nickname if u else "",
                    "Avatar": u.avatar if u else "",
                },
            }
        )
    return views


def _lister(kind: int) -> Any:
    async def listing(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
        return await _views(ctx, await ctx.store.contacts.relations(uid, kind))

    return listing


def _adder(kind: int) -> Any:
    async def adding(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
        await ctx.store.contacts.add_relations(uid, kind, body.uids("relative_ids"))
        return None

    return adding


def _remover(kind: int) -> Any:
    async def removing(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
        await ctx.store.contacts.remove_relations(uid, kind, body.uids("relative_ids"))
        return None

    return removing


async def whitelist_mode(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{enabled?}``: turn whitelist-only mode on or off; without ``enabled``, only report it."""
    value = body.raw("enabled")
    if value is not None:
        if not isinstance(value, bool):
            raise BadRequest(f"enabled: expected true or false, got {value!r:.40}")
        await ctx.store.contacts.set_whitelist_only(uid, value)
    return {"enabled": await ctx.store.contacts.whitelist_only(uid)}


def register(reg: Registry) -> None:
    ids_body = obj(("relative_ids",), relative_ids=UIDS)
    for name, kind in LISTS.items():
        reg.route(
            f"session/{name}",
            summary=f"The caller's {name}, oldest first",
            methods=("GET", "POST"),
            response=array(RELATION_VIEW),
        )(_lister(kind))
        reg.route(
            f"session/{name}/add",
            summary=f"Put users on the caller's {name} (taking them off the other list)",
            request=ids_body,
            response=NULL,
            errors=(404,),
        )(_adder(kind))
        reg.route(
            f"session/{name}/remove",
            summary=f"Take users off the caller's {name}",
            request=ids_body,
            response=NULL,
        )(_remover(kind))
    reg.route(
        "session/whitelist/mode",
        summary="Whitelist-only mode: when on, only users on the whitelist can message the caller",
        request=obj(enabled=BOOL),
        response=out(enabled=BOOL),
    )(whitelist_mode)
