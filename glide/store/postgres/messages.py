"""1:1 messages and inboxes on PostgreSQL (the semantics of glide.store.base.MessageStore).

``store_chats`` costs a fixed number of statements whatever the batch size: the whole batch is inserted by
one ``INSERT … SELECT FROM unnest(…)`` that also fills the inbox, and the conversation / timeline bookkeeping
is set-based too (glide.store.postgres.conversations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import asyncpg

from glide.errors import NotAllowed, NotFound, StorageError, TooLate
from glide.store.base import MAX_HISTORY_PAGE, MAX_INBOX_PAGE, STATUS_RECALLED, ChatMessage, NewChat, StoredChat
from glide.store.checks import INT64_MAX, check_int, check_text
from glide.store.message_checks import ack_requests
from glide.store.postgres.codec import dec, enc
from glide.store.postgres.conversations import append_timelines, record_new_chats, refused_pairs
from glide.store.postgres.engine import PgEngine, WriteConn
from glide.store.postgres.rows import CHAT_COLUMNS, M_COLUMNS, affected, chat_from

# Every query of the message path, named so tests can check each one is served by an index.
SQL_CHAT_INSERT = (
    "WITH ins AS ("
    f" INSERT INTO chat_messages ({CHAT_COLUMNS}, peer_lo, peer_hi)"
    " SELECT mid, cli_mid, sender, receiver, type, content, send_at, $8, 0, NULL,"
    " least(sender, receiver), greatest(sender, receiver)"
    " FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[])"
    " WITH ORDINALITY AS t(mid, cli_mid, sender, receiver, type, content, send_at, i) ORDER BY i"
    " ON CONFLICT (sender, cli_mid) WHERE cli_mid <> '' DO NOTHING"
    " RETURNING mid, sender, cli_mid, receiver"
    "), box AS (INSERT INTO inbox (uid, mid) SELECT receiver, mid FROM ins) "
    "SELECT mid, sender, cli_mid FROM ins"
)
SQL_CHATS_BY_CLI_MID = (
    f"SELECT {M_COLUMNS} FROM unnest($1::bigint[], $2::text[]) AS k(sender, cli_mid) "
    "JOIN chat_messages m ON m.sender = k.sender AND m.cli_mid = k.cli_mid WHERE m.cli_mid <> ''"
)
SQL_CHAT_BY_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE mid = $1"
SQL_CHAT_BY_MID_LOCK = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE mid = $1 FOR UPDATE"
SQL_CHAT_BY_CLI_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE sender = $1 AND cli_mid = $2 AND cli_mid <> ''"
SQL_INBOX_PAGE = (
    f"SELECT {M_COLUMNS} FROM inbox i JOIN chat_messages m ON m.mid = i.mid "
    "WHERE i.uid = $1 AND i.mid > $2 ORDER BY i.mid LIMIT $3"
)
SQL_INBOX_ACK = (
    "WITH d AS (DELETE FROM inbox WHERE uid = $1 AND mid = ANY($2::bigint[]) RETURNING mid) "
    f"SELECT {M_COLUMNS} FROM d JOIN chat_messages m ON m.mid = d.mid ORDER BY m.mid"
)
SQL_INBOX_CLEAR = "DELETE FROM inbox WHERE uid = $1"
SQL_INBOX_CLEAR_UP_TO = "DELETE FROM inbox WHERE uid = $1 AND mid <= $2"
SQL_RECALL = "UPDATE chat_messages SET status = $1, recalled_by = $2 WHERE mid = $3"
SQL_HISTORY = (
    f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE peer_lo = $1 AND peer_hi = $2 AND mid < $3 "
    "ORDER BY mid DESC LIMIT $4"
)
SQL_LAST_MID = "SELECT max(mid) FROM chat_messages"


def _new_chat(c: NewChat, created_at: int) -> ChatMessage:
    return ChatMessage(c.mid, c.cli_mid, c.sender, c.receiver, c.type, c.content, c.send_at, created_at, 0, None)


def _used_mid(e: asyncpg.UniqueViolationError) -> StorageError:
    detail = getattr(e, "detail", "") or ""
    mid = detail.split("=(", 1)[1].split(")", 1)[0] if "=(" in detail else "?"
    return StorageError(f"message id {mid} is already used (do two nodes share a node_id?)")


class PgMessageStore:
    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

    async def store_chats(self, chats: Sequence[NewChat]) -> list[StoredChat]:
        for i, c in enumerate(chats):
            check_int(c.mid, f"chats[{i}].mid", 1)
            check_int(c.sender, f"chats[{i}].sender", 1)
            check_int(c.receiver, f"chats[{i}].receiver", 1)
            check_int(c.type, f"chats[{i}].type")
            check_int(c.send_at, f"chats[{i}].send_at")
            check_text(c.cli_mid, f"chats[{i}].cli_mid")
            check_text(c.content, f"chats[{i}].content")
        if not chats:
            return []
        batch = list(chats)
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> list[StoredChat]:
            now = clock_ms()
            refused = await refused_pairs(conn, [(c.sender, c.receiver) for c in batch])
            todo = [c for c in batch if (c.sender, c.receiver) not in refused]
            returned: set[tuple[int, int, str]] = set()
            if todo:
                try:
                    rows = await conn.fetch(
                        SQL_CHAT_INSERT,
                        [c.mid for c in todo],
                        [enc(c.cli_mid) for c in todo],
                        [c.sender for c in todo],
                        [c.receiver for c in todo],
                        [c.type for c in todo],
                        [enc(c.content) for c in todo],
                        [c.send_at for c in todo],
                        now,
                    )
                except asyncpg.UniqueViolationError as e:
                    raise _used_mid(e) from None
                returned = {(r[0], r[1], dec(r[2])) for r in rows}
            # Which inputs are new: each returned row is claimed by the first input it matches.
            new: list[ChatMessage] = []
            is_new: list[bool] = []
            for c in batch:
                key = (c.mid, c.sender, c.cli_mid)
                fresh = (c.sender, c.receiver) not in refused and key in returned
                if fresh:
                    returned.discard(key)
                    new.append(_new_chat(c, now))
                is_new.append(fresh)
            lookups = sorted({(c.sender, c.cli_mid) for c, fresh in zip(batch, is_new, strict=True) if not fresh})
            earlier: dict[tuple[int, str], ChatMessage] = {}
            if any(cli for _, cli in lookups):
                rows = await conn.fetch(SQL_CHATS_BY_CLI_MID, [s for s, _ in lookups], [enc(k) for _, k in lookups])
                earlier = {(m.sender, m.cli_mid): m for m in map(chat_from, rows)}
            await record_new_chats(conn, new)
            position = {m.mid: i for i, (m, fresh) in enumerate(zip(batch, is_new, strict=True)) if fresh}
            out: list[StoredChat] = []
            for i, (c, fresh) in enumerate(zip(batch, is_new, strict=True)):
                if fresh:
                    out.append(StoredChat(_new_chat(c, now), False))
                    continue
                row = earlier.get((c.sender, c.cli_mid)) if c.cli_mid else None
                if row is not None and position.get(row.mid, -1) > i:
                    row = None  # stored later in this batch: as if the batch ran in order (SQLite does)
                if row is not None:
                    out.append(StoredChat(row, True))
                elif (c.sender, c.receiver) in refused:
                    out.append(StoredChat(_new_chat(c, now), False, True))
                else:  # cannot happen: the insert skipped it for a row the lookup must see
                    raise StorageError(f"message {c.mid}: neither stored nor found as a duplicate")
            return out

        return await self._engine.write(op)

    async def chat(self, mid: int) -> ChatMessage | None:
        if not (isinstance(mid, int) and 0 < mid <= INT64_MAX):
            return None
        row = await self._engine.fetchrow(SQL_CHAT_BY_MID, mid)
        return chat_from(row) if row else None

    async def chat_by_cli_mid(self, sender: int, cli_mid: str) -> ChatMessage | None:
        if not cli_mid or not (isinstance(sender, int) and 0 < sender <= INT64_MAX):
            return None
        check_text(cli_mid, "cli_mid")
        row = await self._engine.fetchrow(SQL_CHAT_BY_CLI_MID, sender, enc(cli_mid))
        return chat_from(row) if row else None

    async def inbox(self, uid: int, *, after_mid: int = 0, limit: int = 200) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(after_mid, "after_mid")
        limit = max(1, min(limit, MAX_INBOX_PAGE))
        return [chat_from(r) for r in await self._engine.fetch(SQL_INBOX_PAGE, uid, after_mid, limit)]

    async def ack_inbox(self, uid: int, mids: Sequence[int]) -> list[ChatMessage]:
        (acked,) = await self.ack_inboxes([(uid, mids)])
        return acked

    async def ack_inboxes(self, requests: Sequence[tuple[int, Sequence[int]]]) -> list[list[ChatMessage]]:
        wanted = ack_requests(requests)
        if not any(mids for _, mids in wanted):
            return [[] for _ in wanted]

        async def op(conn: WriteConn) -> list[list[ChatMessage]]:
            return [
                [chat_from(r) for r in await conn.fetch(SQL_INBOX_ACK, uid, mids)] if mids else []
                for uid, mids in wanted
            ]

        return await self._engine.write(op)

    async def clear_inbox(self, uid: int, up_to_mid: int | None = None) -> int:
        check_int(uid, "uid")
        if up_to_mid is not None:
            check_int(up_to_mid, "up_to_mid")

        async def op(conn: WriteConn) -> int:
            if up_to_mid is None:
                return affected(await conn.execute(SQL_INBOX_CLEAR, uid))
            return affected(await conn.execute(SQL_INBOX_CLEAR_UP_TO, uid, up_to_mid))

        return await self._engine.write(op)

    async def recall(self, mid: int, by_uid: int, *, not_before_ms: int) -> ChatMessage:
        check_int(by_uid, "by_uid")
        check_int(not_before_ms, "not_before_ms")
        if not (isinstance(mid, int) and 0 < mid <= INT64_MAX):
            raise NotFound(f"message {mid} not found")

        async def op(conn: WriteConn) -> ChatMessage:
            row = await conn.fetchrow(SQL_CHAT_BY_MID_LOCK, mid)
            if row is None:
                raise NotFound(f"message {mid} not found")
            m = chat_from(row)
            if m.sender != by_uid:
                raise NotAllowed("only the sender can recall a message")
            if m.status == STATUS_RECALLED:
                return m
            if m.created_at < not_before_ms:
                raise TooLate("too late to recall this message")
            await conn.execute(SQL_RECALL, STATUS_RECALLED, by_uid, mid)
            recalled = replace(m, status=STATUS_RECALLED, recalled_by=by_uid)
            await append_timelines(conn, [recalled])
            return recalled

        return await self._engine.write(op)

    async def history(self, uid: int, peer: int, *, before_mid: int = 0, limit: int = 20) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(peer, "peer")
        check_int(before_mid, "before_mid")
        lo, hi = min(uid, peer), max(uid, peer)
        before = before_mid if before_mid > 0 else INT64_MAX
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        return [chat_from(r) for r in await self._engine.fetch(SQL_HISTORY, lo, hi, before, limit)]

    async def last_mid(self) -> int:
        return int(await self._engine.fetchval(SQL_LAST_MID) or 0)
