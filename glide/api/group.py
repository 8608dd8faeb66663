"""Group routes: ``group/*`` (GlideIM §4.3 names first) and ``msg/group/*`` (history, gap pull, read state).

Every route needs a token and is also a socket action (``api.group.create`` …). Who may do what is decided by
the store inside the transaction of the change (:mod:`glide.group.rules`); the routes parse, call the shared
:class:`~glide.group.service.GroupService` (which pushes ``message.group.notify`` to the members) and shape
the answer. ``group/info`` is readable by any signed-in user (it is how one finds a group to join); members,
messages and read state only by members.
"""

from __future__ import annotations

from typing import Any

from glide.api.envelope import MAX_LIST, ApiContext, Body
from glide.api.registry import Registry
from glide.api.schema import BOOL, EMPTY, ID_OUT, STR, UID, UIDS, Schema, array, integer, obj, out, text
from glide.errors import BadRequest
from glide.group import rules
from glide.group.service import GroupService
from glide.group.wire import WORLD_CHANNEL, group_info, history_item, member_info, parse_gid, state_info
from glide.store.groups import (
    JOIN_INVITE,
    JOIN_POLICIES,
    MAX_GROUP_AVATAR,
    MAX_GROUP_NAME,
    MAX_GROUP_PAGE,
    MAX_UIDS_PER_CALL,
    ROLE_ADMIN,
    ROLE_MEMBER,
    GroupNotFound,
)

DEFAULT_PAGE = 20
ROLE_NAMES = {"admin": ROLE_ADMIN, "member": ROLE_MEMBER}

GID: Schema = {
    "description": f"a group id: a positive integer, or the same as a decimal string, or {WORLD_CHANNEL!r}",
    "oneOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": r"^\s*[0-9]{1,19}\s*$"},
        {"const": WORLD_CHANNEL},
    ],
}
GIDS: Schema = {
    "description": f"group ids (a single id counts as a list of one), at most {MAX_LIST}",
    "oneOf": [{"type": "array", "items": GID, "maxItems": MAX_LIST}, GID],
}
GROUP_OUT = out(
    Gid=ID_OUT,
    Name=STR,
    Avatar=STR,
    Mute=BOOL,
    Flag=ID_OUT,
    CreateAt=ID_OUT,
    Owner=ID_OUT,
    Dissolved=BOOL,
    LastSeq=ID_OUT,
    JoinPolicy=STR,
    HistoryFromJoin=BOOL,
)
MEMBER_OUT = out(Uid=ID_OUT, RemarkName=STR, Type=ID_OUT, Online=BOOL, Mute=BOOL, JoinAt=ID_OUT)
MESSAGE_OUT = out(
    Mid=ID_OUT,
    Sender=ID_OUT,
    Gid=ID_OUT,
    Seq=ID_OUT,
    Kind=ID_OUT,
    CliMid=STR,
    Type=ID_OUT,
    SendAt=ID_OUT,
    CreateAt=ID_OUT,
    Content=STR,
    Status=ID_OUT,
    RecallBy=ID_OUT,
)
STATE_OUT = out(Gid=ID_OUT, LastMID=ID_OUT, LastSeq=ID_OUT, LastMsgAt=ID_OUT, ReadSeq=ID_OUT, Unread=ID_OUT)
CHANGE_OUT = out(Gid=ID_OUT, Seq=ID_OUT)
MUTE_IN: Schema = {
    "description": "true / false (or 1 / 0)",
    "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 1}],
}
JOIN_POLICY_IN: Schema = {
    "description": 'who may join: "invite" (0, the default: invitations only), "approval" (1) or "open" (2)',
    "oneOf": [{"type": "string", "enum": list(JOIN_POLICIES)}, {"type": "integer", "enum": [0, 1, 2]}],
}
ROLE_IN: Schema = {
    "description": f'{ROLE_ADMIN} or "admin" (make admin), {ROLE_MEMBER} or "member" (plain member)',
    "oneOf": [{"type": "integer", "enum": [ROLE_ADMIN, ROLE_MEMBER]}, {"type": "string", "enum": ["admin", "member"]}],
}


def service(ctx: ApiContext) -> GroupService:
    return GroupService(ctx.store.groups, ctx.hub, ctx.ids, ctx.config.recall_window_s)


def gid_of(body: Body, name: str = "gid") -> int:
    value = body.raw(name)
    if value is None:
        raise BadRequest(f"{name}: required")
    return parse_gid(value, name)


def gids_of(body: Body, name: str = "gid") -> list[int]:
    value = body.raw(name)
    if value is None:
        raise BadRequest(f"{name}: required")
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_LIST:
        raise BadRequest(f"{name}: at most {MAX_LIST} ids per request")
    return [parse_gid(v, f"{name}[{i}]") for i, v in enumerate(items)]


def uids_of(body: Body, *names: str) -> list[int]:
    for name in names:
        if body.raw(name) is not None:
            uids = body.uids(name)
            if not uids:
                raise BadRequest(f"{name}: must not be empty")
            if len(uids) > MAX_UIDS_PER_CALL:
                raise BadRequest(f"{name}: at most {MAX_UIDS_PER_CALL} user ids per request")
            return uids
    raise BadRequest(f"{names[0]}: required")


def flag_of(body: Body, name: str) -> bool:
    value = body.raw(name)
    if value is None:
        raise BadRequest(f"{name}: required")
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadRequest(f"{name}: expected true or false, got {value!r:.40}")


def role_of(body: Body) -> int:
    value = body.raw("role")
    if value is None:
        raise BadRequest("role: required")
    if isinstance(value, str) and value.strip().lower() in ROLE_NAMES:
        return ROLE_NAMES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in (ROLE_ADMIN, ROLE_MEMBER):
        return value
    raise BadRequest(f'role: expected {ROLE_ADMIN} / "admin" or {ROLE_MEMBER} / "member", got {value!r:.40}')


def page_size(body: Body) -> int:
    return body.integer("pagesize", default=0, high=MAX_GROUP_PAGE) or DEFAULT_PAGE


async def _members(ctx: ApiContext, uid: int, gid: int) -> list[dict[str, Any]]:
    groups = ctx.store.groups
    group = await groups.group(gid)
    # The same check the store's reads make, with the same messages.
    if group is None:
        raise GroupNotFound(f"group {gid} does not exist")
    rules.check_member(group, await groups.member(gid, uid))
    members = await groups.members(gid)
    online = await ctx.hub.online(m.uid for m in members)
    return [member_info(m, m.uid in online) for m in members]


# group/*


async def info(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid: [..]}`` -> the existing groups among them."""
    return [group_info(g) for g in await ctx.store.groups.groups(gids_of(body))]


async def members(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    return await _members(ctx, uid, gid_of(body))


def join_policy_of(body: Body) -> int | None:
    value = body.raw("JoinPolicy")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in JOIN_POLICIES:
        return JOIN_POLICIES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in JOIN_POLICIES.values():
        return value
    raise BadRequest(f'JoinPolicy: expected "invite", "approval" or "open" (or 0, 1, 2), got {value!r:.40}')


def optional_flag(body: Body, name: str) -> bool | None:
    return None if body.raw(name) is None else flag_of(body, name)


async def create(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Name, Avatar?, Members?, JoinPolicy?, HistoryFromJoin?}`` -> ``{Gid, Seq}``; the caller owns it,
    Members join as members (unless one of them refuses the caller: then nothing is created)."""
    name = body.text("name", required=True, max_len=MAX_GROUP_NAME)
    assert name is not None
    avatar = body.text("avatar", max_len=MAX_GROUP_AVATAR) or ""
    initial = uids_of(body, "members", "uid") if body.raw("members", "uid") is not None else []
    policy = join_policy_of(body)
    from_join = optional_flag(body, "HistoryFromJoin")
    change = await service(ctx).create(
        uid,
        name,
        avatar,
        initial,
        join_policy=JOIN_INVITE if policy is None else policy,
        history_from_join=True if from_join is None else from_join,
    )
    return {"Gid": change.group.gid, "Seq": change.group.last_seq}


async def join(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """Open group: joined (""). Approval: ``{Pending: true}`` until an owner or admin decides."""
    change = await service(ctx).join(gid_of(body), uid)
    return {"Pending": True} if change.pending else ""


async def join_requests(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    return [{"Uid": r.uid, "CreateAt": r.created_at} for r in await ctx.store.groups.join_requests(gid_of(body), uid)]


async def decide_join(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).decide_join(gid_of(body), uid, body.uid("uid"), flag_of(body, "accept"))
    return ""


async def unban(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    return {"Unbanned": await ctx.store.groups.unban(gid_of(body), uid, uids_of(body, "uid"))}


async def settings(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, JoinPolicy?, HistoryFromJoin?}`` (owner) -> the group."""
    policy, from_join = join_policy_of(body), optional_flag(body, "HistoryFromJoin")
    if policy is None and from_join is None:
        raise BadRequest("JoinPolicy or HistoryFromJoin: give at least one")
    change = await service(ctx).set_settings(gid_of(body), uid, join_policy=policy, history_from_join=from_join)
    return group_info(change.group)


async def invite(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).invite(gid_of(body), uid, uids_of(body, "uid"))
    return ""


async def remove(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).remove(gid_of(body), uid, uids_of(body, "uid"))
    return ""


async def leave(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).leave(gid_of(body), uid)
    return ""


async def dissolve(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).dissolve(gid_of(body), uid)
    return ""


async def set_role(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).set_role(gid_of(body), uid, body.uid("uid"), role_of(body))
    return ""


async def mute(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, Mute, Uid?}``: with Uid, (un)mute those members; without, the whole group."""
    gid, muted = gid_of(body), flag_of(body, "mute")
    svc = service(ctx)
    if body.raw("uid") is not None:
        await svc.mute_members(gid, uid, uids_of(body, "uid"), muted)
    else:
        await svc.mute_group(gid, uid, muted)
    return ""


async def transfer(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    await service(ctx).transfer(gid_of(body), uid, body.uid("uid"))
    return ""


# msg/group/*


async def history(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, BeforeSeq, PageSize?}`` -> entries with a smaller seq, newest first (BeforeSeq 0 = newest)."""
    gid = gid_of(body)
    before = body.integer("beforeseq", "before", default=0)
    page = await ctx.store.groups.history(gid, uid, before_seq=before, limit=page_size(body))
    return [history_item(m) for m in page]


async def recent(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    page = await ctx.store.groups.history(gid_of(body), uid, before_seq=0, limit=page_size(body))
    return [history_item(m) for m in page]


async def seq_range(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, FromSeq, ToSeq}`` -> the entries of that seq range, ascending, at most 100 (continue from the
    last seq + 1)."""
    gid = gid_of(body)
    if body.raw("fromseq") is None:
        raise BadRequest("FromSeq: required")
    if body.raw("toseq") is None:
        raise BadRequest("ToSeq: required")
    low = body.integer("fromseq", default=1, low=1)
    high = body.integer("toseq", default=1, low=1)
    if high < low:
        raise BadRequest(f"ToSeq: must not be below FromSeq ({high} < {low})")
    page = await ctx.store.groups.seq_range(gid, uid, from_seq=low, to_seq=high, limit=MAX_GROUP_PAGE)
    return [history_item(m) for m in page]


async def state(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    (s,) = await ctx.store.groups.read_states(uid, [gid_of(body)])
    return state_info(s)


async def state_all(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    return [state_info(s) for s in await ctx.store.groups.read_states(uid)]


async def read(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, Seq}``: read up to Seq (never goes back) -> the new state."""
    gid = gid_of(body)
    if body.raw("seq") is None:
        raise BadRequest("Seq: required")
    return state_info(await ctx.store.groups.mark_read(gid, uid, body.integer("seq", default=0)))


async def recall(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{Gid, Mid}``: the author (within the recall window) or an admin/owner recalls a message."""
    gid = gid_of(body)
    if body.raw("mid") is None:
        raise BadRequest("Mid: required")
    change = await service(ctx).recall(gid, body.integer("mid", default=0, low=1), uid)
    return {"Gid": gid, "Seq": change.notice.seq if change.notice is not None else 0}


def register(reg: Registry) -> None:
    gid_only = obj(("Gid",), Gid=GID)
    gid_uids = obj(("Gid", "Uid"), Gid=GID, Uid=UIDS)
    denied = (403, 404)
    reg.route(
        "group/info",
        summary="Groups by id (any signed-in user)",
        request=obj(("Gid",), Gid=GIDS),
        response=array(GROUP_OUT),
    )(info)
    reg.route(
        "group/members",
        summary="A group's members (members only)",
        request=gid_only,
        response=array(MEMBER_OUT),
        errors=denied,
    )(members)
    reg.route(
        "group/create",
        summary="Create a group owned by the caller",
        request=obj(
            ("Name",),
            Name=text(MAX_GROUP_NAME, 1),
            Avatar=text(MAX_GROUP_AVATAR),
            Members=UIDS,
            Uid=UIDS,
            JoinPolicy=JOIN_POLICY_IN,
            HistoryFromJoin=BOOL,
        ),
        response=CHANGE_OUT,
        errors=(403, 404),
    )(create)
    reg.route(
        "group/join",
        summary="Join an open group, or ask to join one that needs approval ({Pending: true})",
        request=gid_only,
        response={"oneOf": [EMPTY, out(Pending=BOOL)]},
        errors=(403, 404, 409),
    )(join)
    reg.route(
        "group/join/requests",
        summary="Pending requests to join (owner / admin)",
        request=gid_only,
        response=array(out(Uid=ID_OUT, CreateAt=ID_OUT)),
        errors=denied,
    )(join_requests)
    reg.route(
        "group/join/decide",
        summary="Accept or reject a request to join (owner / admin)",
        request=obj(("Gid", "Uid", "Accept"), Gid=GID, Uid=UID, Accept=MUTE_IN),
        response=EMPTY,
        errors=denied,
    )(decide_join)
    reg.route(
        "group/members/unban",
        summary="Let removed users join or be invited again (owner / admin)",
        request=gid_uids,
        response=out(Unbanned=array(ID_OUT)),
        errors=denied,
    )(unban)
    reg.route(
        "group/settings",
        summary="Change who may join and whether members read history from their join only (owner)",
        request=obj(("Gid",), Gid=GID, JoinPolicy=JOIN_POLICY_IN, HistoryFromJoin=BOOL),
        response=GROUP_OUT,
        errors=denied,
    )(settings)
    reg.route(
        "group/members/invite",
        summary="Add members (owner / admin)",
        request=gid_uids,
        response=EMPTY,
        errors=(403, 404, 409),
    )(invite)
    reg.route(
        "group/members/remove",
        summary="Remove members (owner: anyone; admin: plain members)",
        request=gid_uids,
        response=EMPTY,
        errors=denied,
    )(remove)
    reg.route("group/leave", summary="Leave a group (not the owner)", request=gid_only, response=EMPTY, errors=denied)(
        leave
    )
    reg.route("group/dissolve", summary="Dissolve a group (owner)", request=gid_only, response=EMPTY, errors=denied)(
        dissolve
    )
    reg.route(
        "group/members/role",
        summary="Make a member admin or plain member (owner)",
        request=obj(("Gid", "Uid", "Role"), Gid=GID, Uid=UID, Role=ROLE_IN),
        response=EMPTY,
        errors=denied,
    )(set_role)
    reg.route(
        "group/mute",
        summary="Mute / unmute members (with Uid) or the whole group (owner / admin)",
        request=obj(("Gid", "Mute"), Gid=GID, Mute=MUTE_IN, Uid=UIDS),
        response=EMPTY,
        errors=denied,
    )(mute)
    reg.route(
        "group/transfer",
        summary="Hand ownership to a member (owner)",
        request=obj(("Gid", "Uid"), Gid=GID, Uid=UID),
        response=EMPTY,
        errors=denied,
    )(transfer)
    page = integer(0, MAX_GROUP_PAGE, f"page size, default {DEFAULT_PAGE}, at most {MAX_GROUP_PAGE}")
    reg.route(
        "msg/group/history",
        summary="Group entries with seq < BeforeSeq, newest first (members only)",
        request=obj(
            ("Gid",),
            Gid=GID,
            BeforeSeq=integer(description="0 = from the newest"),
            Before=integer(description="alias of BeforeSeq"),
            PageSize=page,
        ),
        response=array(MESSAGE_OUT),
        errors=denied,
    )(history)
    reg.route(
        "msg/group/recent",
        summary="The newest group entries (members only)",
        request=obj(("Gid",), Gid=GID, PageSize=page),
        response=array(MESSAGE_OUT),
        errors=denied,
    )(recent)
    reg.route(
        "msg/group/range",
        summary="Gap pull: entries FromSeq..ToSeq ascending, at most 100 (members only)",
        request=obj(("Gid", "FromSeq", "ToSeq"), Gid=GID, FromSeq=integer(1), ToSeq=integer(1)),
        response=array(MESSAGE_OUT),
        errors=denied,
    )(seq_range)
    reg.route(
        "msg/group/state",
        summary="Last seq / mid / time of a group and the caller's read seq and unread",
        request=gid_only,
        response=STATE_OUT,
        errors=denied,
    )(state)
    reg.route("msg/group/state/all", summary="The caller's state in every group it is in", response=array(STATE_OUT))(
        state_all
    )
    reg.route(
        "msg/group/read",
        summary="Mark a group read up to Seq",
        request=obj(("Gid", "Seq"), Gid=GID, Seq=integer()),
        response=STATE_OUT,
        errors=denied,
    )(read)
    reg.route(
        "msg/group/recall",
        summary="Recall a group message (author within the window, or owner / admin)",
        request=obj(("Gid", "Mid"), Gid=GID, Mid=integer(1)),
        response=CHANGE_OUT,
        errors=(403, 404, 410),
    )(recall)
