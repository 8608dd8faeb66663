"""``/api/msg/chat/history`` and ``/api/msg/id``: chat history and message ids."""

from __future__ import annotations

from typing import Any

from glide.api.envelope import ApiContext, Body
from glide.api.registry import Registry
from glide.api.schema import ID_OUT, STR, UID, array, integer, obj, out
from glide.errors import UserNotFound
from glide.store.base import MAX_HISTORY_PAGE, STATUS_RECALLED, ChatMessage

DEFAULT_PAGE = 20

HISTORY_ITEM = out(
    Mid=ID_OUT,
    CliMid=STR,
    CliSeq=ID_OUT,
    From=ID_OUT,
    To=ID_OUT,
    Type=ID_OUT,
    SendAt=ID_OUT,
    CreateAt=ID_OUT,
    Content=STR,
    Status=ID_OUT,
    RecallBy=ID_OUT,
)


def history_item(m: ChatMessage) -> dict[str, Any]:
    """GlideIM's history row, with From/To filled (GlideIM zeroed them) and recalled content withheld."""
    recalled = m.status == STATUS_RECALLED
    return {
        "Mid": m.mid,
        "CliMid": m.cli_mid,
        "CliSeq": 0,
        "From": m.sender,
        "To": m.receiver,
        "Type": m.type,
        "SendAt": m.send_at,
        "CreateAt": m.created_at,
        "Content": "" if recalled else m.content,
        "Status": m.status,
        "RecallBy": m.recalled_by or 0,
    }


async def history(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Uid, BeforeMid (or Before), PageSize}`` -> messages with Uid, newest first."""
    peer = body.uid("uid")
    before = body.integer("beforemid", "before", default=0)
    size = body.integer("pagesize", default=0) or DEFAULT_PAGE
    if await ctx.store.users.user(peer) is None:
        raise UserNotFound(f"user {peer} does not exist")
    page = await ctx.store.messages.history(uid, peer, before_mid=before, limit=min(size, MAX_HISTORY_PAGE))
    return [history_item(m) for m in page]


async def mid(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """A fresh message id from this node's generator (GlideIM used MAX(m_id)+1, which races)."""
    return {"mid": ctx.ids.next()}


def register(reg: Registry) -> None:
    reg.route(
        "msg/chat/history",
        summary="1:1 history with a user, newest first, paged by mid (BeforeMid 0 = newest)",
        request=obj(
            ("Uid",),
            Uid=UID,
            BeforeMid=integer(description="only messages with a smaller mid; 0 = from the newest"),
            Before=integer(description="alias of BeforeMid (the web SDK's name)"),
            PageSize=integer(description=f"page size, default {DEFAULT_PAGE}, at most {MAX_HISTORY_PAGE}"),
        ),
        response=array(HISTORY_ITEM),
        errors=(404,),
    )(history)
    reg.route("msg/id", summary="A fresh message id", response=out(mid=ID_OUT))(mid)
