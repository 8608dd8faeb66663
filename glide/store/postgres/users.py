"""Users, logins and revoked tokens on PostgreSQL (the semantics of glide.store.base.UserStore)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from glide.errors import AlreadyExists, UserNotFound
from glide.store.accounts import REVOKED_PURGE, login_key, new_account_keys, new_deliver_secret
from glide.store.base import User
from glide.store.checks import INT64_MAX, check_int, check_text, valid_ids
from glide.store.postgres.codec import dec, dec_opt, enc, enc_opt
from glide.store.postgres.connection import WriteConn
from glide.store.postgres.engine import PgEngine

USER_COLUMNS = "uid, account, email, nickname, avatar, password_hash, message_deliver_secret, guest, created_at"
_U = ", ".join("u." + c.strip() for c in USER_COLUMNS.split(","))

SQL_USER = f"SELECT {USER_COLUMNS} FROM users WHERE uid = $1"
SQL_USER_BY_LOGIN = f"SELECT {_U} FROM logins l JOIN users u ON u.uid = l.uid WHERE l.login = $1"
SQL_USERS = f"SELECT {USER_COLUMNS} FROM users WHERE uid = ANY($1::bigint[])"
SQL_LOGINS_TAKEN = "SELECT login FROM logins WHERE login = ANY($1::text[])"
SQL_TOKEN_REVOKED = "SELECT 1 FROM revoked_tokens WHERE jti = $1"


def user_from(row: asyncpg.Record) -> User:
    return User(
        row[0],
        dec(row[1]),
        dec_opt(row[2]),
        dec(row[3]),
        dec(row[4]),
        dec(row[5]),
        row[6],
        row[7],
        row[8],
    )


class PgUserStore:
    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
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
        stored_keys = [enc(k) for k in keys]

        async def op(conn: WriteConn) -> User:
            # Checked first so that a refused registration consumes no uid (as on SQLite); the unique key
            # still settles a race with another node.
            taken = {r[0] for r in await conn.fetch(SQL_LOGINS_TAKEN, stored_keys)}
            for key, field in keys.items():
                if enc(key) in taken:
                    raise AlreadyExists(f"{field} already registered: {key}")
            uid = await conn.fetchval(
                f"INSERT INTO users ({USER_COLUMNS.removeprefix('uid, ')}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING uid",
                enc(account),
                enc_opt(email or None),
                enc(nickname),
                enc(avatar),
                enc(password_hash),
                secret,
                guest,
                created_at,
            )
            try:
                await conn.execute(
                    "INSERT INTO logins (login, uid) SELECT unnest($1::text[]), $2::bigint", stored_keys, uid
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(f"account or email already registered: {', '.join(keys)}") from None
            return User(uid, account, email or None, nickname, avatar, password_hash, secret, guest, created_at)

        return await self._engine.write(op)

    async def user(self, uid: int) -> User | None:
        if not (isinstance(uid, int) and 0 < uid <= INT64_MAX):
            return None
        row = await self._engine.fetchrow(SQL_USER, uid)
        return user_from(row) if row else None

    async def user_by_login(self, login: str) -> User | None:
        if not isinstance(login, str) or not login.strip():
            return None
        key = login_key(login)
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return None
        row = await self._engine.fetchrow(SQL_USER_BY_LOGIN, enc(key))
        return user_from(row) if row else None

    async def users(self, uids: Sequence[int]) -> list[User]:
        wanted = valid_ids(uids)
        if not wanted:
            return []
        found = {u.uid: u for u in map(user_from, await self._engine.fetch(SQL_USERS, wanted))}
        return [found[uid] for uid in wanted if uid in found]

    async def update_profile(self, uid: int, *, nickname: str | None = None, avatar: str | None = None) -> None:
        for field, value in (("nickname", nickname), ("avatar", avatar)):
            if value is not None:
                check_text(value, field)
        if not (isinstance(uid, int) and 0 < uid <= INT64_MAX):
            raise UserNotFound(f"user {uid} does not exist")

        async def op(conn: WriteConn) -> None:
            status = await conn.execute(
                "UPDATE users SET nickname = coalesce($1, nickname), avatar = coalesce($2, avatar) WHERE uid = $3",
                enc_opt(nickname),
                enc_opt(avatar),
                uid,
            )
            if status == "UPDATE 0":
                raise UserNotFound(f"user {uid} does not exist")

        await self._engine.write(op)

    async def revoke_token(self, jti: str, expires_at_ms: int) -> None:
        check_text(jti, "jti")
        check_int(expires_at_ms, "expires_at_ms")
        now = self._clock_ms()

        async def op(conn: WriteConn) -> None:
            await conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) "
                "DO UPDATE SET expires_at = greatest(revoked_tokens.expires_at, excluded.expires_at)",
                enc(jti),
                expires_at_ms,
            )
            # Expired entries can go: an expired token fails verification anyway. A bounded purge per call.
            await conn.execute(
                "DELETE FROM revoked_tokens WHERE jti IN "
                "(SELECT jti FROM revoked_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
                now,
                REVOKED_PURGE,
            )

        await self._engine.write(op)

    async def is_token_revoked(self, jti: str) -> bool:
        check_text(jti, "jti")
        return await self._engine.fetchval(SQL_TOKEN_REVOKED, enc(jti)) is not None

    async def end_session(self, uid: int, device: str, at_ms: int) -> None:
        check_int(uid, "uid")
        check_text(device, "device")
        check_int(at_ms, "at_ms")

        async def op(conn: WriteConn) -> None:
            await conn.execute(
                "INSERT INTO session_ends (uid, device, ended_at) VALUES ($1, $2, $3) ON CONFLICT (uid, device) "
                "DO UPDATE SET ended_at = greatest(session_ends.ended_at, excluded.ended_at)",
                uid,
                enc(device),
                at_ms,
            )

        await self._engine.write(op)

    async def session_ended_at(self, uid: int, device: str) -> int:
        check_int(uid, "uid")
        check_text(device, "device")
        ended = await self._engine.fetchval(
            "SELECT ended_at FROM session_ends WHERE uid = $1 AND device = $2", uid, enc(device)
        )
        return int(ended or 0)
