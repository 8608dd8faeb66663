"""``/api/contacts/*``: adding contacts, requests with approval, the contact list, delete, remark, last seen mid.

``contacts/add`` makes the contact at once, both directions, as GlideIM's does. With the ``contact_approval``
setting it is a request instead, which the other side approves or rejects (``contacts/approval``; GlideIM
left that route a stub). Both sides get a ``notify.contact`` event at every step (glide.contacts.events).
Two users who ask each other become contacts without an approval.
"""

from __future__ import annotations

from typing import Any

from glide.api.envelope import ApiContext, Body
from glide.api.registry import Registry
from glide.api.schema import BOOL, EMPTY, ID_OUT, STR, UID, UIDS, array, integer, obj, out, text
from glide.api.user import public_account
from glide.contacts.events import TYPE_ACCEPTED, TYPE_DELETED, TYPE_REJECTED, TYPE_REQUEST, contact_event
from glide.errors import BadRequest, NotFound
from glide.store.contacts import (
    CONTACT_USER,
    MAX_COMMENT,
    MAX_REMARK,
    REQUEST_ACCEPTED,
    Contact,
    ContactRequest,
    RequestOutcome,
)

MAX_DELETE = 100  # contacts per contacts/del call

CONTACT_VIEW = out(
    Id=ID_OUT,
    Type=ID_OUT,
    Remark=STR,
    id=ID_OUT,
    type=ID_OUT,
    remark=STR,
    uid=ID_OUT,
    nick_name=STR,
    account=STR,
    avatar=STR,
    last_mid=ID_OUT,
    created_at=ID_OUT,
)
REQUEST_VIEW = out(requester=ID_OUT, target=ID_OUT, comment=STR, status=ID_OUT, created_at=ID_OUT, updated_at=ID_OUT)
OUTCOME = out(uid=ID_OUT, status=ID_OUT)


def flag(body: Body, name: str) -> bool:
    """A required boolean: true/false, or 1/0 as older clients send it."""
    value = body.raw(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if value is None:
        raise BadRequest(f"{name}: required")
    raise BadRequest(f"{name}: expected true or false, got {value!r:.40}")


def request_view(r: ContactRequest) -> dict[str, Any]:
    return {
        "requester": r.requester,
        "target": r.target,
        "comment": r.comment,
        "status": r.status,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _outcome(ctx: ApiContext, outcome: RequestOutcome, actor: int, other: int, comment: str) -> dict[str, Any]:
    """Tell both sides, answer the caller."""
    r = outcome.request
    kind = TYPE_ACCEPTED if r.status == REQUEST_ACCEPTED else TYPE_REQUEST if actor == r.requester else TYPE_REJECTED
    contact_event(ctx.hub, kind, actor, other, comment)
    return {"uid": other, "status": r.status}


async def add(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid, remark?, comment?}``: make ``uid`` a contact (with ``contact_approval``: ask it to become one)."""
    target = body.uid("uid")
    remark = body.text("remark", max_len=MAX_REMARK) or ""
    comment = body.text("comment", max_len=MAX_COMMENT, single_line=False) or ""
    immediate = not ctx.config.contact_approval
    outcome = await ctx.store.contacts.request_contact(uid, target, remark=remark, comment=comment, immediate=immediate)
    return _outcome(ctx, outcome, uid, target, comment)


async def approval(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid, agree, comment?, remark?}``: answer the pending request from ``uid``."""
    requester = body.uid("uid")
    agree = flag(body, "agree")
    comment = body.text("comment", max_len=MAX_COMMENT, single_line=False) or ""
    remark = body.text("remark", max_len=MAX_REMARK) or ""
    outcome = await ctx.store.contacts.answer_request(requester, uid, accept=agree, remark=remark)
    return _outcome(ctx, outcome, uid, requester, comment)


async def requests(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """Pending requests: ``received`` (waiting for the caller's answer) and ``sent`` (waiting for others)."""
    received = await ctx.store.contacts.pending_requests(uid)
    sent = await ctx.store.contacts.sent_requests(uid)
    return {"received": [request_view(r) for r in received], "sent": [request_view(r) for r in sent]}


def contact_view(c: Contact, nickname: str, account: str, avatar: str) -> dict[str, Any]:
    """Both key spellings: the web SDK reads ``Id/Type/Remark``, GlideIM's api wrote ``id/type/remark``."""
    return {
        "Id": c.peer,
        "Type": CONTACT_USER,
        "Remark": c.remark,
        "id": c.peer,
        "type": CONTACT_USER,
        "remark": c.remark,
        "uid": c.peer,
        "nick_name": nickname,
        "account": account,
        "avatar": avatar,
        "last_mid": c.last_mid,
        "created_at": c.created_at,
    }


async def contact_list(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    contacts = await ctx.store.contacts.contacts(uid)
    users = {u.uid: u for u in await ctx.store.users.users([c.peer for c in contacts])}
    out_: list[dict[str, Any]] = []
    for c in contacts:
        u = users.get(c.peer)
        out_.append(
            contact_view(c, u.nickname if u else "", public_account(u, uid) if u else "", u.avatar if u else "")
        )
    return out_


async def delete(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid}`` (or Gen-1's ``{Uid: [...]}``): end the contact, both directions."""
    peers = list(dict.fromkeys(body.uids("uid")))
    if len(peers) > MAX_DELETE:
        raise BadRequest(f"uid: at most {MAX_DELETE} contacts per request")
    deleted = [peer for peer in peers if await ctx.store.contacts.delete_contact(uid, peer)]
    if not deleted:
        raise NotFound(f"not a contact: {', '.join(map(str, peers))}" if peers else "uid: no contact given")
    for peer in deleted:
        contact_event(ctx.hub, TYPE_DELETED, uid, peer)
    return ""


async def remark(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid, remark}``: the caller's name for a contact ("" clears it)."""
    peer = body.uid("uid")
    if body.raw("remark") is None:
        raise BadRequest("remark: required")
    await ctx.store.contacts.set_remark(uid, peer, body.text("remark", max_len=MAX_REMARK) or "")
    return ""


async def last_mid(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{uid, mid}``: the last message the caller has seen with a contact (never goes down)."""
    peer = body.uid("uid")
    if body.raw("mid") is None:
        raise BadRequest("mid: required")
    mid = body.integer("mid", default=0)
    await ctx.store.contacts.set_last_mid(uid, peer, mid)
    return ""


def register(reg: Registry) -> None:
    remark_text = text(MAX_REMARK)
    comment_text = text(MAX_COMMENT)
    reg.route(
        "contacts/add",
        summary="Make a user a contact at once, both directions (with contact_approval: ask them, they approve "
        "or reject, mutual requests connect at once)",
        request=obj(("uid",), uid=UID, remark=remark_text, comment=comment_text),
        response=OUTCOME,
        errors=(403, 404, 409),
    )(add)
    reg.route(
        "contacts/approval",
        summary="Accept or reject the pending contact request from a user",
        request=obj(
            ("uid", "agree"),
            uid=UID,
            agree={"oneOf": [BOOL, {"enum": [0, 1]}]},
            comment=comment_text,
            remark=remark_text,
        ),
        response=OUTCOME,
        errors=(403, 404),
    )(approval)
    reg.route(
        "contacts/requests",
        summary="Pending contact requests, received and sent, newest first",
        response=out(received=array(REQUEST_VIEW), sent=array(REQUEST_VIEW)),
    )(requests)
    reg.route(
        "contacts/list",
        summary="The caller's contacts (keys in both spellings: Id/Type/Remark and id/type/remark)",
        response=array(CONTACT_VIEW),
    )(contact_list)
    reg.route(
        "contacts/del",
        summary="End contacts (both directions)",
        request=obj(("uid",), uid=UIDS),
        response=EMPTY,
        errors=(404,),
    )(delete)
    for path, summary in (
        ("contacts/update/remark", "Set the caller's remark for a contact"),
        ("contacts/update", "Alias of contacts/update/remark (GlideIM Gen-1)"),
    ):
        reg.route(
            path,
            summary=summary,
            request=obj(("uid", "remark"), uid=UID, remark=remark_text),
            response=EMPTY,
            errors=(404,),
        )(remark)
    reg.route(
        "contacts/update/mid",
        summary="Record the last message seen with a contact",
        request=obj(("uid", "mid"), uid=UID, mid=integer()),
        response=EMPTY,
        errors=(404,),
    )(last_mid)
