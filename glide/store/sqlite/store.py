"""The SQLite backend of the store interfaces (the embedded default)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from glide.errors import AlreadyExists, NotAllowed, NotFound, StorageError, TooLate, UserNotFound
from glide.ids import wall_ms
from glide.store.accounts import REVOKED_PURGE, login_key, new_account_keys, new_deliver_secret
from glide.store.base import (
    MAX_HISTORY_PAGE,
    MAX_INBOX_PAGE,
    STATUS_RECALLED,
    ChatMessage,
    NewChat,
    StoredChat,
    User,
)
from glide.store.checks import INT64_MAX, check_int, check_text, valid_ids
from glide.store.message_checks import ack_requests
from glide.store.sqlite.contacts import SqliteContactStore
from glide.store.sqlite.conversations import ChatBookkeeping, SqliteConversationStore
from glide.store.sqlite.engine import Migration, SqliteEngine
from glide.store.sqlite.groups import SqliteGroupStore
from glide.store.sqlite.schema import MIGRATIONS

CHUNK = 500  # bound parameters per IN (...) list, well below SQLite's limit

USER_COLUMNS = "uid, account, email, nickname, avatar, password_hash, message_deliver_secret, guest, created_at"
CHAT_COLUMNS = "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by"

# Every query of the message path, named so tests can check each one is served by an index.
SQL_CHAT_INSERT = (
    f"INSERT INTO chat_messages ({CHAT_COLUMNS}, peer_lo, peer_hi) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?) "
    "ON CONFLICT (sender, cli_mid) WHERE cli_mid <> '' DO NOTHING"
)
SQL_CHAT_BY_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE mid = ?"
SQL_CHAT_BY_CLI_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE sender = ? AND cli_mid = ? AND cli_mid <> ''"
SQL_INBOX_INSERT = "INSERT INTO inbox (uid, mid) VALUES (?, ?)"
SQL_INBOX_PAGE = (
    f"SELECT {', '.join('m.' + c.strip() for c in CHAT_COLUMNS.split(','))} "
    "FROM inbox i JOIN chat_messages m ON m.mid = i.mid WHERE i.uid = ? AND i.mid > ? ORDER BY i.mid LIMIT ?"
)
SQL_INBOX_CLEAR = "DELETE FROM inbox WHERE uid = ?"
SQL_INBOX_CLEAR_UP_TO = "DELETE FROM inbox WHERE uid = ? AND mid <= ?"
SQL_RECALL = "UPDATE chat_messages SET status = ?, recalled_by = ? WHERE mid = ?"
SQL_HISTORY = (
    f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE peer_lo = ? AND peer_hi = ? AND mid < ? ORDER BY mid DESC LIMIT ?"
)
SQL_LAST_MID = "SELECT max(mid) FROM chat_messages"


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _user(row: tuple[object, ...]) -> User:
    uid, account, email, nickname, avatar, password_hash, secret, guest, created_at = row
    return User(uid, account, email, nickname, avatar, password_hash, secret, bool(guest), created_at)  # type: ignore[arg-type]


def _chat(row: tuple[object, ...]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]


def _new_chat(c: NewChat, created_at: int) -> ChatMessage:
    return ChatMessage(c.mid, c.cli_mid, c.sender, c.receiver, c.type, c.content, c.send_at, created_at, 0, None)


class SqliteUserStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

    async def create_user(
        self,
        *,
        account: str,
        email: str | None,
        nickname: str,
        avatar: str,
        password_hash: str,
        guest: bool = False,
    ) -> User:
        keys = new_account_keys(account, email, nickname, avatar, password_hash)
        secret = new_deliver_secret()
        created_at = self._clock_ms()

        def op(conn: sqlite3.Connection) -> User:
            for key, field in keys.items():
                if conn.execute("SELECT 1 FROM logins WHERE login = ?", (key,)).fetchone():
                    raise AlreadyExists(f"{field} already registered: {key}")
            cur = conn.execute(
                f"INSERT INTO users ({USER_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account, email or None, nickname, avatar, password_hash, secret, int(guest), created_at),
            )
            uid = cur.lastrowid
            assert uid is not None
            conn.executemany("INSERT INTO logins (login, uid) VALUES (?, ?)", [(k, uid) for k in keys])
            return User(uid, account, email or None, nickname, avatar, password_hash, secret, guest, created_at)

        return await self._engine.write(op)

    async def user(self, uid: int) -> User | None:
        if not (isinstance(uid, int) and 0 < uid <= INT64_MAX):
            return None

        def op(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE uid = ?", (uid,)).fetchone()
            return _user(row) if row else None

        return await self._engine.read(op)

    async def user_by_login(self, login: str) -> User | None:
        if not isinstance(login, str) or not login.strip():
            return None
        key = login_key(login)
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return None

        def op(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(
                f"SELECT {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))} "
                "FROM logins l JOIN users u ON u.uid = l.uid WHERE l.login = ?",
                (key,),
            ).fetchone()
            return _user(row) if row else None

        return await self._engine.read(op)

    async def users(self, uids: Sequence[int]) -> list[User]:
        wanted = valid_ids(uids)

        def op(conn: sqlite3.Connection) -> list[User]:
            found: dict[int, User] = {}
            for chunk in _chunks(wanted):
                sql = f"SELECT {USER_COLUMNS} FROM users WHERE uid IN ({_marks(len(chunk))})"
                for row in conn.execute(sql, tuple(chunk)):
                    user = _user(row)
                    found[user.uid] = user
            return [found[uid] for uid in wanted if uid in found]

        return await self._engine.read(op) if wanted else []

    async def update_profile(self, uid: int, *, nickname: str | None = None, avatar: str | None = None) -> None:
        for field, value in (("nickname", nickname), ("avatar", avatar)):
            if value is not None:
                check_text(value, field)
        if not (isinstance(uid, int) and 0 < uid <= INT64_MAX):
            raise UserNotFound(f"user {uid} does not exist")

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE users SET nickname = coalesce(?, nickname), avatar = coalesce(?, avatar) WHERE uid = ?",
                (nickname, avatar, uid),
            )
            if cur.rowcount == 0:
                raise UserNotFound(f"user {uid} does not exist")

        await self._engine.write(op)

    async def revoke_token(self, jti: str, expires_at_ms: int) -> None:
        check_text(jti, "jti")
        check_int(expires_at_ms, "expires_at_ms")
        now = self._clock_ms()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) "
                "ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                (jti, expires_at_ms),
            )
            # Expired entries can go: an expired token fails verification anyway. A bounded purge per call.
            conn.execute(
                "DELETE FROM revoked_tokens WHERE jti IN "
                "(SELECT jti FROM revoked_tokens WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
                (now, REVOKED_PURGE),
            )

        await self._engine.write(op)

    async def is_token_revoked(self, jti: str) -> bool:
        check_text(jti, "jti")
        return await self._engine.read(
            lambda conn: conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone() is not None
        )

    async def end_session(self, uid: int, device: str, at_ms: int) -> None:
        check_int(uid, "uid")
        check_text(device, "device")
        check_int(at_ms, "at_ms")
        await self._engine.write(
            lambda conn: conn.execute(
                "INSERT INTO session_ends (uid, device, ended_at) VALUES (?, ?, ?) "
                "ON CONFLICT (uid, device) DO UPDATE SET ended_at = max(ended_at, excluded.ended_at)",
                (uid, device, at_ms),
            )
        )

    async def session_ended_at(self, uid: int, device: str) -> int:
        check_int(uid, "uid")
        check_text(device, "device")

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT ended_at FROM session_ends WHERE uid = ? AND device = ?", (uid, device)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._engine.read(op)


class SqliteMessageStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int]) -> None:
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

        def op(conn: sqlite3.Connection) -> list[StoredChat]:
            now = clock_ms()
            out: list[StoredChat] = []
            books = ChatBookkeeping(conn)
            for c in batch:
                lo, hi = (c.sender, c.receiver) if c.sender <= c.receiver else (c.receiver, c.sender)
                if books.refused(c.sender, c.receiver):
                    # A message stored before the refusal stays a duplicate; anything else is not stored.
                    row = conn.execute(SQL_CHAT_BY_CLI_MID, (c.sender, c.cli_mid)).fetchone() if c.cli_mid else None
                    m = _chat(row) if row else _new_chat(c, now)
                    out.append(StoredChat(m, row is not None, row is None))
                    continue
                try:
                    cur = conn.execute(
                        SQL_CHAT_INSERT,
                        (c.mid, c.cli_mid, c.sender, c.receiver, c.type, c.content, c.send_at, now, lo, hi),
                    )
                except sqlite3.IntegrityError as e:
                    raise StorageError(f"message id {c.mid} is already used (do two nodes share a node_id?)") from e
                if cur.rowcount == 0:
                    row = conn.execute(SQL_CHAT_BY_CLI_MID, (c.sender, c.cli_mid)).fetchone()
                    out.append(StoredChat(_chat(row), True))
                    continue
                conn.execute(SQL_INBOX_INSERT, (c.receiver, c.mid))
                m = _new_chat(c, now)
                books.stored(m)
                out.append(StoredChat(m, False))
            return out

        return await self._engine.write(op)

    async def chat(self, mid: int) -> ChatMessage | None:
        if not (isinstance(mid, int) and 0 < mid <= INT64_MAX):
            return None

        def op(conn: sqlite3.Connection) -> ChatMessage | None:
            row = conn.execute(SQL_CHAT_BY_MID, (mid,)).fetchone()
            return _chat(row) if row else None

        return await self._engine.read(op)

    async def chat_by_cli_mid(self, sender: int, cli_mid: str) -> ChatMessage | None:
        if not cli_mid or not (isinstance(sender, int) and 0 < sender <= INT64_MAX):
            return None
        check_text(cli_mid, "cli_mid")

        def op(conn: sqlite3.Connection) -> ChatMessage | None:
            row = conn.execute(SQL_CHAT_BY_CLI_MID, (sender, cli_mid)).fetchone()
            return _chat(row) if row else None

        return await self._engine.read(op)

    async def inbox(self, uid: int, *, after_mid: int = 0, limit: int = 200) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(after_mid, "after_mid")
        limit = max(1, min(limit, MAX_INBOX_PAGE))
        return await self._engine.read(
            lambda conn: [_chat(r) for r in conn.execute(SQL_INBOX_PAGE, (uid, after_mid, limit))]
        )

    async def ack_inbox(self, uid: int, mids: Sequence[int]) -> list[ChatMessage]:
        (acked,) = await self.ack_inboxes([(uid, mids)])
        return acked

    async def ack_inboxes(self, requests: Sequence[tuple[int, Sequence[int]]]) -> list[list[ChatMessage]]:
        wanted = ack_requests(requests)
        if not any(mids for _, mids in wanted):
            return [[] for _ in wanted]

        def op(conn: sqlite3.Connection) -> list[list[ChatMessage]]:
            answers: list[list[ChatMessage]] = []
            for uid, mids in wanted:
                acked: list[ChatMessage] = []
                for chunk in _chunks(mids):
                    marks = _marks(len(chunk))
                    rows = conn.execute(
                        f"SELECT {', '.join('m.' + c.strip() for c in CHAT_COLUMNS.split(','))} "
                        f"FROM inbox i JOIN chat_messages m ON m.mid = i.mid WHERE i.uid = ? AND i.mid IN ({marks}) "
                        "ORDER BY i.mid",
                        (uid, *chunk),
                    ).fetchall()
                    if rows:
                        conn.execute(f"DELETE FROM inbox WHERE uid = ? AND mid IN ({marks})", (uid, *chunk))
                    acked.extend(_chat(r) for r in rows)
                answers.append(acked)
            return answers

        return await self._engine.write(op)

    async def clear_inbox(self, uid: int, up_to_mid: int | None = None) -> int:
        check_int(uid, "uid")
        if up_to_mid is not None:
            check_int(up_to_mid, "up_to_mid")

        def op(conn: sqlite3.Connection) -> int:
            if up_to_mid is None:
                return conn.execute(SQL_INBOX_CLEAR, (uid,)).rowcount
            return conn.execute(SQL_INBOX_CLEAR_UP_TO, (uid, up_to_mid)).rowcount

        return await self._engine.write(op)

    async def recall(self, mid: int, by_uid: int, *, not_before_ms: int) -> ChatMessage:
        check_int(by_uid, "by_uid")
        check_int(not_before_ms, "not_before_ms")
        if not (isinstance(mid, int) and 0 < mid <= INT64_MAX):
            raise NotFound(f"message {mid} not found")

        def op(conn: sqlite3.Connection) -> ChatMessage:
            row = conn.execute(SQL_CHAT_BY_MID, (mid,)).fetchone()
            if row is None:
                raise NotFound(f"message {mid} not found")
            m = _chat(row)
            if m.sender != by_uid:
                raise NotAllowed("only the sender can recall a message")
            if m.status == STATUS_RECALLED:
                return m
            if m.created_at < not_before_ms:
                raise TooLate("too late to recall this message")
            conn.execute(SQL_RECALL, (STATUS_RECALLED, by_uid, mid))
            recalled = ChatMessage(
                m.mid,
                m.cli_mid,
                m.sender,
                m.receiver,
                m.type,
                m.content,
                m.send_at,
                m.created_at,
                STATUS_RECALLED,
                by_uid,
            )
            ChatBookkeeping(conn).append(recalled)
            return recalled

        return await self._engine.write(op)

    async def history(self, uid: int, peer: int, *, before_mid: int = 0, limit: int = 20) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(peer, "peer")
        check_int(before_mid, "before_mid")
        lo, hi = min(uid, peer), max(uid, peer)
        before = before_mid if before_mid > 0 else INT64_MAX
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        return await self._engine.read(
            lambda conn: [_chat(r) for r in conn.execute(SQL_HISTORY, (lo, hi, before, limit))]
        )

    async def last_mid(self) -> int:
        return await self._engine.read(lambda conn: int(conn.execute(SQL_LAST_MID).fetchone()[0] or 0))


class SqliteStore:
    """The embedded store: users and messages in one SQLite file. Build with :meth:`open`."""

    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.engine = engine
        self.users = SqliteUserStore(engine, clock_ms)
        self.messages = SqliteMessageStore(engine, clock_ms)
        self.groups = SqliteGroupStore(engine, clock_ms)
        self.contacts = SqliteContactStore(engine, clock_ms)
        self.conversations = SqliteConversationStore(engine, clock_ms)
        self.discard_on_close = False  # the in-memory store deletes its RAM-backed file when it closes

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        clock_ms: Callable[[], int] = wall_ms,
        sync: str = "normal",
    ) -> SqliteStore:
        """Open (create, migrate) the database at ``path``; ``sync="full"`` also survives power loss."""
        return cls(await SqliteEngine.open(Path(path), migrations, sync), clock_ms)

    @property
    def batches_committed(self) -> int:
        """How many group transactions the writer committed (for tests and metrics)."""
        return self.engine.batches_committed

    async def claim_node(self, node_id: int) -> None:
        """Nothing to do: the database file is locked to this server while it is open (DatabaseLock)."""

    async def close(self) -> None:
        await self.engine.close()
        if self.discard_on_close:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{self.engine.path}{suffix}").unlink(missing_ok=True)
