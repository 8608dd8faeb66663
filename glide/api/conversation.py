"""Conversations and 1:1 message routes: ``session/recent``, ``session/get``, ``message/read``,
``message/list``, ``message/recall``, ``msg/chat/{user,recent,offline,offline/ack}``.

A conversation is ``Type`` 1 (1:1, ``To`` = the peer's uid) or 2 (a group, ``To`` = the gid). 1:1 rows are
kept by the message flow itself (glide.store.conversations); group rows come from the caller's group read
state (glide.store.groups). Reading is explicit: ``message/read``; an ``ack.request`` is only a delivery
receipt. Every route reads the caller's own conversations only: a 1:1 query is always (caller, peer), and
a group needs membership.
"""

from __future__ import annotations

from typing import Any

from glide._native import Outgoing
from glide.api.envelope import ApiContext, Body, as_uid
from glide.api.msg import HISTORY_ITEM, history_item
from glide.api.registry import Registry
from glide.api.schema import BOOL, EMPTY, ID_OUT, NULL, UID, UIDS, array, integer, obj, out
from glide.chat.actions import ACK_NOTIFY, recall_data
from glide.config import recall_not_before_ms
from glide.errors import BadRequest, NotAllowed, NotFound, UserNotFound
from glide.group import wire as group_wire
from glide.group.service import GroupService
from glide.ids import wall_ms
from glide.store.base import MAX_HISTORY_PAGE, MAX_INBOX_PAGE, ChatMessage
from glide.store.conversations import MAX_RECENT, Conversation
from glide.store.groups import GroupReadState

TYPE_CHAT = 1
TYPE_GROUP = 2
MAX_SEQ = (1 << 63) - 1
RECENT_WINDOW_MS = 3 * 86400 * 1000  # msg/chat/recent: the last three days (GlideIM's intent, §9.3)
RECENT_SCAN = 500  # msg/chat/recent looks at most this many newest timeline entries
MAX_USERS_PER_CALL = 50  # msg/chat/user
PER_USER = 20  # msg/chat/user: messages per user
MAX_LIST_PAGE = 20  # message/list: deepest page reachable by number (deeper: use end_mid)

GROUP_ITEM = {"type": "object", "description": "a group history row (see msg/group/history)"}
CONVERSATION_VIEW = out(
    Uid1=ID_OUT,
    Uid2=ID_OUT,
    To=ID_OUT,
    Type=ID_OUT,
    Unread=ID_OUT,
    LastMid=ID_OUT,
    ReadMid=ID_OUT,
    LastSeq=ID_OUT,
    ReadSeq=ID_OUT,
    UpdateAt=ID_OUT,
    CreateAt=ID_OUT,
    CategoryIds=NULL,
    LastMessage={"anyOf": [HISTORY_ITEM, GROUP_ITEM, NULL]},
)
TO = {**UID, "description": "the peer's uid (Type 1) or the gid (Type 2)"}
CONVERSATION_TYPE = {"enum": [TYPE_CHAT, TYPE_GROUP], "description": "1 = 1:1 (To is a uid), 2 = group (To is a gid)"}


def chat_view(c: Conversation) -> dict[str, Any]:
    """GlideIM's session shape ``{Uid1, Uid2, To, Unread, LastMid, UpdateAt, CreateAt, CategoryIds}`` plus
    Type, ReadMid and the last message."""
    return {
        "Uid1": c.owner,
        "Uid2": c.peer,
        "To": c.peer,
        "Type": TYPE_CHAT,
        "Unread": c.unread,
        "LastMid": c.last_mid,
        "ReadMid": c.read_mid,
        "LastSeq": 0,
        "ReadSeq": 0,
        "UpdateAt": c.updated_at,
        "CreateAt": c.created_at,
        "CategoryIds": None,
        "LastMessage": history_item(c.last) if c.last is not None else None,
    }


def group_view(uid: int, s: GroupReadState, last: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "Uid1": uid,
        "Uid2": 0,
        "To": s.gid,
        "Type": TYPE_GROUP,
        "Unread": s.unread,
        "LastMid": s.last_mid,
        "ReadMid": 0,
        "LastSeq": s.last_seq,
        "ReadSeq": s.read_seq,
        "UpdateAt": s.last_msg_at,
        "CreateAt": 0,
        "CategoryIds": None,
        "LastMessage": last,
    }


async def _group_views(ctx: ApiContext, uid: int, states: list[GroupReadState]) -> list[dict[str, Any]]:
    views = []
    for s in states:
        last = await ctx.store.groups.group_message(s.gid, s.last_mid) if s.last_mid else None
        views.append(group_view(uid, s, group_wire.history_item(last) if last is not None else None))
    return views


def conversation_type(body: Body) -> int:
    return body.integer("type", default=TYPE_CHAT, low=TYPE_CHAT, high=TYPE_GROUP)


async def recent(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """The caller's 1:1 conversations, most recently active first (at most 100) — GlideIM's route, whose
    clients make every row a 1:1 chat; ``{Groups: true}`` adds the group conversations (Type 2)."""
    chats = await ctx.store.conversations.recent(uid, limit=MAX_RECENT)
    views = [chat_view(c) for c in chats]
    if body.flag("groups"):
        states = await ctx.store.groups.read_states(uid)
        newest = sorted(states, key=lambda s: (s.last_msg_at, s.last_mid), reverse=True)[:MAX_RECENT]
        views += await _group_views(ctx, uid, newest)
    # Ties in time (same millisecond) go by the newest mid: mids are time-ordered across chats and groups.
    views.sort(key=lambda v: (v["UpdateAt"], v["LastMid"], v["Type"], v["To"]), reverse=True)
    return views[:MAX_RECENT]


def _peer(body: Body, uid: int) -> int:
    """The other side of a 1:1 conversation: ``To`` (or ``uid``), or GlideIM's ``session_id`` "<a>_<b>"."""
    session_id = body.raw("session_id")
    if session_id is not None:
        if not isinstance(session_id, str) or session_id.count("_") != 1:
            raise BadRequest('session_id: expected "<uid>_<uid>"')
        a, b = (as_uid(part, "session_id") for part in session_id.split("_"))
        if uid not in (a, b):
            raise NotAllowed("session_id: not a conversation of yours")
        return b if a == uid else a
    to = body.raw("to", "uid")
    if to is None:
        raise BadRequest("To: required")
    return as_uid(to, "To")


async def get(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{To, Type?}``: one conversation; a 1:1 one is created (empty) if missing."""
    if conversation_type(body) == TYPE_GROUP:
        gid = group_wire.parse_gid(body.raw("to"), "To")
        [state] = await ctx.store.groups.read_states(uid, [gid])
        return (await _group_views(ctx, uid, [state]))[0]
    return chat_view(await ctx.store.conversations.open_conversation(uid, _peer(body, uid)))


async def read(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{To | session_id, Type?, Mid? | Seq?}``: mark a conversation read (up to Mid/Seq; all by default)."""
    if conversation_type(body) == TYPE_GROUP:
        gid = group_wire.parse_gid(body.raw("to"), "To")
        seq = body.integer("seq", default=0) or MAX_SEQ
        state = await ctx.store.groups.mark_read(gid, uid, seq)
        return (await _group_views(ctx, uid, [state]))[0]
    peer = _peer(body, uid)
    mid = body.integer("mid", default=0)
    return chat_view(await ctx.store.conversations.mark_read(uid, peer, up_to_mid=mid))


async def message_list(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{to, pageSize?, page?, end_mid?, start_mid?}``: a page of the 1:1 conversation with ``to``, newest
    first, mids in (start_mid, end_mid) (0 = unbounded); ``page`` n skips n-1 pages."""
    peer = body.uid("to")
    size = body.integer("pagesize", "page_size", default=0, low=0, high=MAX_HISTORY_PAGE) or 20
    page = body.integer("page", default=1, low=0, high=MAX_LIST_PAGE) or 1
    before = body.integer("end_mid", default=0)
    after = body.integer("start_mid", default=0)
    if await ctx.store.users.user(peer) is None:
        raise UserNotFound(f"user {peer} does not exist")
    rows: list[ChatMessage] = []
    for n in range(page):
        rows = [m for m in await ctx.store.messages.history(uid, peer, before_mid=before, limit=size) if m.mid > after]
        if n + 1 < page:
            if len(rows) < size:
                return []  # the page asked for is past the end
            before = rows[-1].mid
    return [history_item(m) for m in rows]


async def recall(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{mid, type?, to?}``: recall a message, with the socket's rules (the sender, within the recall
    window; in a group also an admin or the owner). Both sides' devices get the recall notice."""
    if body.raw("mid") is None:
        raise BadRequest("mid: required")
    mid = body.integer("mid", default=0, low=1)
    if conversation_type(body) == TYPE_GROUP:
        gid = group_wire.parse_gid(body.raw("to"), "to")
        service = GroupService(ctx.store.groups, ctx.hub, ctx.ids, ctx.config.recall_window_s)
        await service.recall(gid, mid, uid)
        return None
    m = await ctx.store.messages.chat(mid)
    if m is None or uid not in (m.sender, m.receiver):
        raise NotFound(f"message {mid} not found")
    if m.sender != uid:
        raise NotAllowed("only the sender can recall a message")
    not_before = recall_not_before_ms(ctx.config.recall_window_s, wall_ms())
    recalled = await ctx.store.messages.recall(mid, uid, not_before_ms=not_before)
    ctx.hub.deliver_many({recalled.sender, recalled.receiver}, Outgoing("message.chat.recall", recall_data(recalled)))
    return None


async def by_user(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Uid: [...]}``: the newest 20 messages with each user."""
    peers = list(dict.fromkeys(body.uids("uid")))
    if len(peers) > MAX_USERS_PER_CALL:
        raise BadRequest(f"uid: at most {MAX_USERS_PER_CALL} users per request")
    result = []
    for peer in peers:
        page = await ctx.store.messages.history(uid, peer, limit=PER_USER)
        result.append({"Uid": peer, "Messages": [history_item(m) for m in page]})
    return result


async def chat_recent(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """The caller's 1:1 messages of the last three days, newest first (at most the newest 500 entries;
    GlideIM's filter compared nanoseconds with seconds, §9.3)."""
    head = await ctx.store.conversations.timeline_head(uid)
    page = await ctx.store.conversations.timeline(uid, after_seq=max(0, head - RECENT_SCAN), limit=RECENT_SCAN)
    since = wall_ms() - RECENT_WINDOW_MS
    latest = [e.message for e in page.entries if e.message.created_at >= since]
    return [history_item(m) for m in sorted(latest, key=lambda m: m.mid, reverse=True)]


async def offline(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """Messages waiting in the caller's inbox (not yet acknowledged), oldest first, at most 1000."""
    return [history_item(m) for m in await ctx.store.messages.inbox(uid, limit=MAX_INBOX_PAGE)]


async def offline_ack(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Mid: [...]}``: take messages out of the inbox; their senders get ``ack.notify`` as over the socket."""
    value = body.raw("mid")
    if value is None:
        raise BadRequest("mid: required")
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_INBOX_PAGE:
        raise BadRequest(f"mid: at most {MAX_INBOX_PAGE} ids per request")
    mids = [Body({"m": v}).integer("m", default=0, low=1) if v is not None else 0 for v in items]
    if 0 in mids:
        raise BadRequest("mid: expected message ids (positive integers)")
    for m in await ctx.store.messages.ack_inbox(uid, mids):
        ctx.hub.deliver(m.sender, ACK_NOTIFY((m.mid, str(m.sender))))
    return ""


def register(reg: Registry) -> None:
    target = obj(
        To=TO,
        session_id={"type": "string", "pattern": r"^[0-9]{1,19}_[0-9]{1,19}$"},
        Type=CONVERSATION_TYPE,
    )
    reg.route(
        "session/recent",
        summary="The caller's 1:1 conversations (with Groups: the group ones too), most recently active first, "
        "with unread counts",
        request=obj(Groups=BOOL),
        response=array(CONVERSATION_VIEW),
    )(recent)
    reg.route(
        "session/get",
        summary="One conversation (a 1:1 conversation is created empty if missing)",
        request=target,
        response=CONVERSATION_VIEW,
        errors=(403, 404),
    )(get)
    read_body = {**target, "properties": {**target["properties"], "Mid": integer(), "Seq": integer()}}
    reg.route(
        "message/read",
        summary="Mark a conversation read, up to Mid (1:1) or Seq (group); everything by default",
        request=read_body,
        response=CONVERSATION_VIEW,
        errors=(403, 404),
    )(read)
    reg.route(
        "message/list",
        summary="A page of the 1:1 conversation with `to`, newest first",
        request=obj(
            ("to",),
            to=UID,
            pageSize=integer(0, MAX_HISTORY_PAGE),
            page=integer(0, MAX_LIST_PAGE),
            end_mid=integer(),
            start_mid=integer(),
        ),
        response=array(HISTORY_ITEM),
        errors=(404,),
    )(message_list)
    reg.route(
        "message/recall",
        summary="Recall a message (1:1: the sender within the window; group: also admins and the owner)",
        request=obj(("mid",), mid=integer(1), to=TO, type=CONVERSATION_TYPE),
        response=NULL,
        errors=(403, 404, 410),
    )(recall)
    reg.route(
        "msg/chat/user",
        summary="The newest 20 messages with each of the given users",
        request=obj(("Uid",), Uid=UIDS),
        response=array(out(Uid=ID_OUT, Messages=array(HISTORY_ITEM))),
    )(by_user)
    reg.route(
        "msg/chat/recent",
        summary="The caller's 1:1 messages of the last three days, newest first",
        response=array(HISTORY_ITEM),
    )(chat_recent)
    reg.route(
        "msg/chat/offline",
        summary="Messages waiting in the caller's inbox, oldest first",
        response=array(HISTORY_ITEM),
    )(offline)
    reg.route(
        "msg/chat/offline/ack",
        summary="Acknowledge inbox messages (their senders get ack.notify)",
        request=obj(("Mid",), Mid={"oneOf": [array(integer(1)), integer(1)]}),
        response=EMPTY,
    )(offline_ack)
