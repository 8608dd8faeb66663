"""1:1 chat over the socket: send with two-phase acks, dedup, resend, recall, typing relay, inbox sync."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

from glide._native import Envelope, Outgoing, OutgoingShape
from glide.chat.payload import envelope_data, parse_chat, parse_mid_ref, parse_uid
from glide.config import recall_not_before_ms
from glide.context import Context
from glide.dispatch import Dispatcher, answer_each, error_frame
from glide.errors import GlideError, NotAllowed, NotFound
from glide.gateway.conn import Conn
from glide.ids import wall_ms
from glide.store.base import ChatMessage, NewChat
from glide.store.checks import INT64_MAX

INBOX_PAGE = 200
RECALL_TYPE = 200
REFUSED = "message refused: the receiver does not accept messages from you"


# The frames every message brings, built from tuples of values (no dict per frame): the push in GlideIM's
# field order, the sender's acknowledgement, the receipt.
CHAT_FRAME = OutgoingShape("message.chat", ("cliMid", "mid", "from", "to", "type", "content", "sendAt"))
ACK_MESSAGE = OutgoingShape("ack.message", ("cliMid", "mid"))
ACK_NOTIFY = OutgoingShape("ack.notify", ("mid", "from"))


def chat_values(m: ChatMessage) -> tuple[str, int, str, str, int, str, int]:
    """The ``message.chat`` payload's values, in :data:`CHAT_FRAME`'s order."""
    return m.cli_mid, m.mid, str(m.sender), str(m.receiver), m.type, m.content, m.send_at


def recall_data(m: ChatMessage) -> dict[str, Any]:
    """A recall notice: GlideIM's Gen-1 shape (recall info as JSON in ``content``) plus plain fields."""
    by = m.recalled_by if m.recalled_by is not None else m.sender
    return {
        "mid": m.mid,
        "from": str(m.sender),
        "to": str(m.receiver),
        "type": RECALL_TYPE,
        "content": json.dumps({"mid": m.mid, "recallBy": by}),
        "sendAt": m.send_at,
        "recallBy": str(by),
    }


def delivery_for(m: ChatMessage) -> Outgoing:
    if m.status == 1:
        return Outgoing("message.chat.recall", recall_data(m))
    return CHAT_FRAME(chat_values(m))


def _offline(sender: Conn, mid: int) -> None:
    """No device of the receiver is online: the sender's receipt at once (the message waits in the inbox)."""
    sender.send(Outgoing("ack.notify", {"mid": mid}))


class ChatActions:
    """Handlers of the ``message.chat*``, ``message.cli`` and ``ack.*`` actions."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.messages = ctx.store.messages
        self.hub = ctx.hub
        self._known_users: set[int] = set()
        self.in_flight: set[int] = set()  # mids being stored or pushed (see push_inbox)

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.register_batch("message.chat", self.on_chat, many=self.on_chat_many)
        dispatcher.register_batch("message.chat.retry", self.on_chat, many=self.on_chat_many)
        dispatcher.register_batch("ack.request", self.on_ack_request, many=self.on_ack_many)
        dispatcher.register("message.chat.resend", self.on_resend)
        dispatcher.register("message.chat.recall", self.on_recall)
        dispatcher.register("message.cli", self.on_client_custom)
        dispatcher.register("ack.offline", self.on_ack_offline)

    # sending

    async def on_chat(self, conn: Conn, envs: Sequence[Envelope]) -> None:
        await self.on_chat_many([(conn, list(envs))])

    async def on_chat_many(self, items: list[tuple[Conn, list[Envelope]]]) -> None:
        """The message.chat envelopes of every connection ready this tick: one store call for all of them."""
        now = wall_ms()
        parsed: list[tuple[Conn, Envelope, NewChat]] = []
        # One id per envelope, all in one call (the id of a request refused as malformed is never used).
        new_mids = iter(self.ctx.ids.next_many(sum([len(envs) for _, envs in items])))
        for conn, envs in items:
            for env in envs:
                try:
                    parsed.append((conn, env, parse_chat(env, conn.uid, next(new_mids), now)))
                except GlideError as e:
                    conn.send(error_frame(env.seq, e.message))
        if not parsed:
            return
        known = self._known_users
        unknown = {new.receiver for _, _, new in parsed if new.receiver not in known}
        if unknown:
            try:
                known.update(u.uid for u in await self.ctx.store.users.users(sorted(unknown)))
            except GlideError as e:
                answer_each(parsed, e.message)
                return
        accepted: list[tuple[Conn, Envelope, NewChat]] = []
        for conn, env, new in parsed:
            if new.receiver in known:
                accepted.append((conn, env, new))
            else:
                conn.send(error_frame(env.seq, f"user {new.receiver} does not exist"))
        if not accepted:
            return
        mids = [new.mid for _, _, new in accepted]
        # From here until each message is pushed, an inbox replay must leave it to live delivery.
        self.in_flight.update(mids)
        try:
            try:
                stored = await self.messages.store_chats([new for _, _, new in accepted])
            except GlideError as e:  # nothing of the batch was stored: every request gets its own answer
                answer_each(accepted, e.message)
                return
            hooks = self.ctx.hooks
            live = self.hub.live
            for (conn, env, _), result in zip(accepted, stored, strict=True):
                m = result.message
                if result.refused:  # blacklist / whitelist-only (glide.store.contacts): nothing was stored
                    conn.send(error_frame(env.seq, REFUSED))
                    continue
                conn.send(ACK_MESSAGE((m.cli_mid, m.mid), seq=env.seq))
                if result.duplicate:
                    continue  # already delivered (or waiting in the inbox): never twice
                # A new message (never recalled yet): its push, straight to the receiver's one live session
                # when that is all there is to it (the usual case), else through the hub.
                out = CHAT_FRAME(chat_values(m))
                receiver = live(m.receiver)
                if receiver is not None:
                    receiver.send(out)
                else:
                    self._deliver(conn, m, out)
                hooks.messages_stored += 1
                if hooks.message:
                    hooks.message_stored(conn, m)
        finally:
            self.in_flight.difference_update(mids)

    def _deliver(self, sender: Conn, m: ChatMessage, out: Outgoing | None = None) -> None:
        """Push ``out`` (else the message's push) to every online device of the receiver; tell the sender at
        once when none is online."""
        if out is None:
            out = delivery_for(m)
        self.hub.deliver(m.receiver, out, mid=m.mid, if_nobody=partial(_offline, sender, m.mid))

    async def on_resend(self, conn: Conn, env: Envelope) -> None:
        """The sender had no ``ack.notify``: push the stored message again (the receiver dedups by mid)."""
        mid, cli_mid = parse_mid_ref(env)
        m = await self._own_message(conn.uid, mid, cli_mid)
        if m is None:
            await self.on_chat(conn, [env])
            return
        conn.send(ACK_MESSAGE((m.cli_mid, m.mid), seq=env.seq))
        self._deliver(conn, m)

    async def on_recall(self, conn: Conn, env: Envelope) -> None:
        mid, cli_mid = parse_mid_ref(env)
        target = await self._own_message(conn.uid, mid, cli_mid)
        if target is None:
            raise NotFound("message not found")
        not_before = recall_not_before_ms(self.ctx.config.recall_window_s, wall_ms())
        m = await self.messages.recall(target.mid, conn.uid, not_before_ms=not_before)
        conn.send(ACK_MESSAGE((_cli_mid_of(env), m.mid), seq=env.seq))
        notice = Outgoing("message.chat.recall", recall_data(m))
        self.hub.deliver(m.receiver, notice, mid=m.mid)
        self.hub.deliver(conn.uid, notice, mid=m.mid, exclude=conn)

    async def _own_message(self, uid: int, mid: int, cli_mid: str) -> ChatMessage | None:
        m = await self.messages.chat(mid) if mid else await self.messages.chat_by_cli_mid(uid, cli_mid)
        return m if m is not None and m.sender == uid else None

    async def on_client_custom(self, conn: Conn, env: Envelope) -> None:
        """Typing indicators and signalling: relayed verbatim to every device of ``to``, never stored.
        A user who blocked the sender (or only admits its whitelist) gets none of it."""
        to = parse_uid(env.to, "to")
        if await self.ctx.store.contacts.refused([(conn.uid, to)]):
            raise NotAllowed(REFUSED)
        out = Outgoing("message.cli", raw_data=env.data_raw, seq=env.seq, sender=str(conn.uid), to=env.to)
        self.hub.deliver(to, out)

    # receiving

    async def on_ack_request(self, conn: Conn, envs: Sequence[Envelope]) -> None:
        await self.on_ack_many([(conn, list(envs))])

    async def on_ack_many(self, items: list[tuple[Conn, list[Envelope]]]) -> None:
        """Receipts of every connection ready this tick: one store call, then ack.notify to each sender."""
        requests: list[tuple[Conn, list[Envelope], list[int]]] = []
        for conn, envs in items:
            mids: list[int] = []
            parsed: list[Envelope] = []
            for env in envs:
                try:
                    mids.append(parse_mid_ref(env)[0])
                except GlideError as e:
                    conn.send(error_frame(env.seq, e.message))
                    continue
                parsed.append(env)
            if mids:
                requests.append((conn, parsed, mids))
        if not requests:
            return
        try:
            acked = await self.messages.ack_inboxes([(conn.uid, mids) for conn, _, mids in requests])
        except GlideError as e:  # the client resends ack.request for a message it gets again
            for conn, parsed, _ in requests:
                for env in parsed:
                    conn.send(error_frame(env.seq, e.message))
            return
        for messages in acked:
            for m in messages:
                self.hub.deliver(m.sender, ACK_NOTIFY((m.mid, str(m.sender))))

    def on_ack_offline(self, conn: Conn, env: Envelope) -> None:
        data = envelope_data(env)
        up_to = data.get("mid") if isinstance(data, dict) else None
        if not isinstance(up_to, int) or isinstance(up_to, bool) or not 0 < up_to <= INT64_MAX:
            up_to = conn.inbox_replayed  # (a mid past int64 names nothing: the store would refuse it, in the log)
        if up_to:
            self.ctx.spawn(self.messages.clear_inbox(conn.uid, up_to))

    async def push_inbox(self, conn: Conn) -> None:
        """Replay the unacknowledged inbox in log (commit) order, then hand over to live delivery.

        Race-free by construction: the login set ``conn.syncing`` before the session became reachable, so
        every live push since then is held in ``conn.held`` (by mid). A stored message reaches this device
        exactly once: the replay skips a mid that is held or still in flight (stored, not yet pushed: its
        push will be held or sent live), and the held frames are sent when the replay ends, with no await
        between the flip and the flush.

        On a cluster (``conn.seen`` set) pushes from other nodes come at any time after the commit, so the
        replay sends what it reads in log order whether held or not (a later message of the same sender may
        not be held yet), and the flush drops what the replay sent."""
        conn.syncing = True
        after = 0
        in_flight = self.in_flight
        single_node = conn.seen is None
        try:
            while not conn.closed:
                page = await self.messages.inbox(conn.uid, after_seq=after, limit=INBOX_PAGE)
                if not page:
                    break
                for m in page:
                    if m.mid in in_flight or (single_node and conn.held is not None and m.mid in conn.held):
                        continue
                    out = delivery_for(m)
                    conn.send(out)
                    if conn.seen is not None:
                        conn.seen.add(m.mid, out)
                    conn.inbox_replayed = max(conn.inbox_replayed, m.mid)
                    await conn.drained()  # a long inbox must not overrun the send buffer limit
                after = page[-1].receiver_seq
        finally:
            held, conn.held = conn.held or {}, None
            conn.syncing = False
            seen = conn.seen
            for mid, out in held.items():
                if seen is not None:
                    if seen.got(mid, out):
                        continue  # a cross-node push of what the replay sent meanwhile
                    seen.add(mid, out)
                conn.send(out)

    async def catch_up(self, conn: Conn) -> None:
        """On a cluster whose Redis was away: push what the session's inbox holds that neither its replay nor a
        live push brought (pushes lost with the bus). ``conn.seen`` says what the session got; what it cannot
        vouch for (older) is left to the next login."""
        seen = conn.seen
        if seen is None or conn.closed or conn.syncing:
            return
        after = 0
        while not conn.closed:
            page = await self.messages.inbox(conn.uid, after_seq=after, limit=INBOX_PAGE)
            if not page:
                return
            for m in page:
                out = delivery_for(m)
                if seen.got(m.mid, out) or not seen.covers(m.mid) or m.mid in self.in_flight or conn.closed:
                    continue
                seen.add(m.mid, out)
                conn.send(out)
                await conn.drained()
            after = page[-1].receiver_seq


def _cli_mid_of(env: Envelope) -> str:
    data = env.data()
    value = data.get("cliMid") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""
