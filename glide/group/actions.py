"""Group actions on the socket: ``message.group``, ``message.group.recall`` and ``ack.group.msg``.

The management routes (``api.group.*``, ``api.msg.group.*``) reach the socket through the API registry.

``message.group`` (envelope ``to`` = the gid; data ``{cliMid, content, type, sendAt}``): stored with the
group's next seq, then ``ack.message {cliMid, mid, seq}`` with the request's seq, then the one shared
``message.group`` frame to every online device of every member — the sending connection included, so each
connection sees every seq of its groups and a gap always means "pull". A duplicate ``cliMid`` is acked with
the first copy's mid and seq and is not pushed again. Any refusal is ``notify.error`` with the request's seq.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from glide._native import Envelope, Outgoing
from glide.chat.payload import data_object, field
from glide.context import Context
from glide.dispatch import Dispatcher, error_frame
from glide.errors import BadRequest, GlideError
from glide.gateway.conn import Conn
from glide.group.service import GroupService
from glide.group.wire import WORLD_CHANNEL, parse_gid
from glide.ids import wall_ms
from glide.store.checks import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from glide.store.groups import MAX_GROUP_CONTENT, WORLD_GID, GroupNotFound, NewGroupMessage, StoredGroupMessage

MAX_CLI_MID = 64


def _int(data: dict[str, Any], name: str, default: int, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    value = field(data, name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"data.{name}: expected an integer in {low}..{high}")
    return value


def _gid(env: Envelope, data: dict[str, Any]) -> int:
    if env.to:
        return parse_gid(env.to, "to")
    value = field(data, "gid")
    if value is None:
        value = field(data, "to")
    if value is None:
        raise BadRequest("to: the group id is missing (envelope to, or data.gid)")
    return parse_gid(value, "data.gid")


def parse_group_message(env: Envelope, sender: int, mid: int, now_ms: int) -> NewGroupMessage:
    """A ``message.group`` request as a message to store; the group is the envelope's ``to``."""
    data = data_object(env)
    gid = _gid(env, data)
    content = field(data, "content")
    if not isinstance(content, str):
        raise BadRequest("data.content: expected a string")
    if len(content) > MAX_GROUP_CONTENT:
        raise BadRequest(f"data.content: at most {MAX_GROUP_CONTENT} characters")
    cli_mid = field(data, "cliMid")
    if cli_mid is None:
        cli_mid = ""
    if not isinstance(cli_mid, str) or len(cli_mid) > MAX_CLI_MID:
        raise BadRequest(f"data.cliMid: expected a string of at most {MAX_CLI_MID} characters")
    return NewGroupMessage(
        mid=mid,
        cli_mid=cli_mid,
        gid=gid,
        sender=sender,
        type=_int(data, "type", 1, INT32_MIN, INT32_MAX),
        content=content,
        send_at=_int(data, "sendAt", now_ms) or now_ms,
    )


class GroupActions:
    """Handlers of the group socket actions."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = GroupService(ctx.store.groups, ctx.hub, ctx.ids, ctx.config.recall_window_s)

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register_batch("message.group", self.on_group_message, many=self.on_group_many)
        dispatcher.register("message.group.recall", self.on_recall)
        dispatcher.register("ack.group.msg", self.on_ack)

    async def on_group_message(self, conn: Conn, envs: Sequence[Envelope]) -> None:
        await self.on_group_many([(conn, list(envs))])

    async def on_group_many(self, items: list[tuple[Conn, list[Envelope]]]) -> None:
        """The message.group envelopes of every connection ready this tick: one store call for all of them
        (each group's seqs in arrival order), then acked and pushed in that order."""
        now = wall_ms()
        accepted: list[tuple[Conn, Envelope, NewGroupMessage]] = []
        for conn, envs in items:
            for env in envs:
                try:
                    new = parse_group_message(env, conn.uid, self.ctx.ids.next(), now)
                    if new.gid == WORLD_GID and not self.ctx.config.world_channel:
                        raise GroupNotFound(f"to: {WORLD_CHANNEL} is turned off on this server")
                    accepted.append((conn, env, new))
                except GlideError as e:
                    conn.send(error_frame(env.seq, e.message))
        if not accepted:
            return
        results: list[StoredGroupMessage | GlideError]
        try:
            results = await self.service.send_many([new for _, _, new in accepted])
        except GlideError as e:  # nothing of the batch was stored: each request is answered with the error
            results = [e] * len(accepted)
        for (conn, env, _), result in zip(accepted, results, strict=True):
            if isinstance(result, GlideError):
                conn.send(error_frame(env.seq, result.message))
                continue
            m = result.message
            conn.send(Outgoing("ack.message", {"cliMid": m.cli_mid, "mid": m.mid, "seq": m.seq}, seq=env.seq))
            self.service.fan_out(result)

    async def on_recall(self, conn: Conn, env: Envelope) -> None:
        """``{gid, mid}`` (gid may also be the envelope's ``to``): the author or an admin/owner recalls.
        Replied ``ack.message {gid, mid, seq}`` where seq is the recall notice's (0 if already recalled)."""
        data = data_object(env)
        gid = _gid(env, data)
        mid = _int(data, "mid", 0, 1)
        if not mid:
            raise BadRequest("data.mid: missing")
        change = await self.service.recall(gid, mid, conn.uid)
        seq = change.notice.seq if change.notice is not None else 0
        conn.send(Outgoing("ack.message", {"gid": gid, "mid": mid, "seq": seq}, seq=env.seq))

    async def on_ack(self, conn: Conn, env: Envelope) -> None:
        """``{gid, seq}``: the member has read the group up to seq (GlideIM's AckGroupMessage; mid ignored).
        No reply on success, as in GlideIM; ``notify.error`` with the request's seq otherwise."""
        data = data_object(env)
        gid = _gid(env, data)
        seq = _int(data, "seq", -1, 0)
        if seq < 0:
            raise BadRequest("data.seq: missing")
        await self.service.groups.mark_read(gid, conn.uid, seq)
