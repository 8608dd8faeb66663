"""Users, logins and sessions on SQLite (the semantics of glide.store.base.UserStore)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from glide.errors import AlreadyExists, UserNotFound
from glide.store.accounts import REVOKED_PURGE, login_key, new_account_keys, new_deliver_secret
from glide.store.base import User
from glide.store.checks import check_int, check_text, is_id, valid_ids
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.messages import chunks

USER_COLUMNS = "uid, account, email, nickname, avatar, password_hash, message_deliver_secret, guest, created_at"


def _user(row: tuple[object, ...]) -> User:
    uid, account, email, nickname, avatar, password_hash, secret, guest, created_at = row
    return User(uid, account, email, nickname, avatar, password_hash, secret, bool(guest), created_at)  # type: ignore[arg-type]


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
        if not is_id(uid):
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
            for chunk in chunks(wanted):
                sql = f"SELECT {USER_COLUMNS} FROM users WHERE uid IN ({', '.join('?' * len(chunk))})"
                for row in conn.execute(sql, tuple(chunk)):
                    user = _user(row)
                    found[user.uid] = user
            return [found[uid] for uid in wanted if uid in found]

        return await self._engine.read(op) if wanted else []

    async def update_profile(self, uid: int, *, nickname: str | None = None, avatar: str | None = None) -> None:
        for field, value in (("nickname", nickname), ("avatar", avatar)):
            if value is not None:
                check_text(value, field)
        if not is_id(uid):
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
