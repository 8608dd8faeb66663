"""What group entries look like on the socket and in the API, and parsing of group ids.

Socket pushes (one ``Outgoing`` per entry, shared by every recipient):

- ``message.group`` (a chat entry), GlideIM's ChatMessage shape with the group seq:
  ``{"cliMid", "mid", "seq", "from", "to": "<gid>", "type", "content", "sendAt"}``; envelope ``from`` = the
  sender's uid, ``to`` = the gid, both as strings.
- a notice goes out twice, as ``group.notify`` (what GlideIM's web client listens to) and as
  ``message.group.notify`` (what GlideIM's gateway sends): ``{"gid", "mid", "seq", "type", "uids", "by",
  "from", "timestamp", "body", "data"}`` where ``body`` (and ``data``, Gen-1's name) is the notice's stored
  JSON (``gid``, ``type``, ``uids``, ``by`` plus the type's extra fields: ``role``, ``from``, ``mid``/``seq``
  of a recalled message).

The world channel (glide.group.world) is group WORLD_GID, named ``the_world_channel`` on the socket: its
pushes say so in ``to``, and a client may write ``to: "the_world_channel"``.
"""

from __future__ import annotations

import json
from typing import Any

from glide._native import Outgoing
from glide.errors import BadRequest
from glide.store.groups import (
    JOIN_POLICIES,
    KIND_NOTICE,
    WORLD_GID,
    Group,
    GroupMember,
    GroupMessage,
    GroupReadState,
)

MAX_ID = (1 << 63) - 1
JOIN_POLICY_NAMES = {v: k for k, v in JOIN_POLICIES.items()}
JOIN_REQUEST = "notify.group.join"  # to the owner and admins: {gid, uid}; to the requester if rejected
STATUS_RECALLED = 1


WORLD_CHANNEL = "the_world_channel"
NOTICE_ACTIONS = ("group.notify", "message.group.notify")


def parse_gid(value: Any, name: str = "gid") -> int:
    """A group id given as a number or a decimal string (or the world channel's name)."""
    if value == WORLD_CHANNEL:
        return WORLD_GID
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name}: expected a group id (a positive integer), got {value!r:.40}")
    if not 0 < value <= MAX_ID:
        raise BadRequest(f"{name}: group id out of range: {value}")
    return value


def group_ref(gid: int) -> str:
    """How the socket names a group: its id, or the world channel's name."""
    return WORLD_CHANNEL if gid == WORLD_GID else str(gid)


def notice_body(m: GroupMessage) -> dict[str, Any]:
    try:
        body = json.loads(m.content)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def chat_data(m: GroupMessage) -> dict[str, Any]:
    """The ``message.group`` payload."""
    return {
        "cliMid": m.cli_mid,
        "mid": m.mid,
        "seq": m.seq,
        "from": str(m.sender),
        "to": group_ref(m.gid),
        "type": m.type,
        "content": m.content,
        "sendAt": m.send_at,
    }


def notify_data(m: GroupMessage) -> dict[str, Any]:
    """The ``message.group.notify`` payload."""
    body = notice_body(m)
    uids = body.get("uids")
    return {
        "gid": m.gid,
        "mid": m.mid,
        "seq": m.seq,
        "type": m.type,
        "uids": uids if isinstance(uids, list) else [],
        "by": m.sender,
        "from": str(m.sender),
        "timestamp": m.created_at,
        "body": body,
        "data": body,
    }


def pushes_for(m: GroupMessage) -> tuple[Outgoing, ...]:
    """The frames every recipient of ``m`` gets (each encoded once for all of them)."""
    to = group_ref(m.gid)
    if m.kind == KIND_NOTICE:
        data = notify_data(m)
        return tuple(Outgoing(action, data, sender=str(m.sender), to=to) for action in NOTICE_ACTIONS)
    return (Outgoing("message.group", chat_data(m), sender=str(m.sender), to=to),)


def history_item(m: GroupMessage) -> dict[str, Any]:
    """GlideIM's group history row plus Kind (0 chat, 1 notice), CliMid and CreateAt; a recalled message's
    content is withheld."""
    return {
        "Mid": m.mid,
        "Sender": m.sender,
        "Gid": m.gid,
        "Seq": m.seq,
        "Kind": m.kind,
        "CliMid": m.cli_mid,
        "Type": m.type,
        "SendAt": m.send_at,
        "CreateAt": m.created_at,
        "Content": "" if m.status == STATUS_RECALLED else m.content,
        "Status": m.status,
        "RecallBy": m.recalled_by or 0,
    }


def group_info(g: Group) -> dict[str, Any]:
    """GlideIM's ``{Gid, Name, Avatar, Mute, Flag, CreateAt}`` plus Owner, Dissolved, LastSeq, JoinPolicy
    ("invite", "approval" or "open") and HistoryFromJoin."""
    return {
        "Gid": g.gid,
        "Name": g.name,
        "Avatar": g.avatar,
        "Mute": g.muted,
        "Flag": 0,
        "CreateAt": g.created_at,
        "Owner": g.owner,
        "Dissolved": g.dissolved,
        "LastSeq": g.last_seq,
        "JoinPolicy": JOIN_POLICY_NAMES.get(g.join_policy, "invite"),
        "HistoryFromJoin": g.history_from_join,
    }


def member_info(m: GroupMember, online: bool) -> dict[str, Any]:
    """GlideIM's ``{Uid, RemarkName, Type, Online, Mute}`` (Type = role: 1 owner, 2 admin, 3 member)."""
    return {"Uid": m.uid, "RemarkName": "", "Type": m.role, "Online": online, "Mute": m.muted, "JoinAt": m.joined_at}


def state_info(s: GroupReadState) -> dict[str, Any]:
    """GlideIM's ``{Gid, LastMID, LastSeq, LastMsgAt}`` plus the member's ReadSeq and Unread."""
    return {
        "Gid": s.gid,
        "LastMID": s.last_mid,
        "LastSeq": s.last_seq,
        "LastMsgAt": s.last_msg_at,
        "ReadSeq": s.read_seq,
        "Unread": s.unread,
    }
