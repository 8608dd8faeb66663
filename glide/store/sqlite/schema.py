"""The SQLite schema as an ordered list of migrations; ``schema_version`` records how many have run.

Append new steps at the end; never edit a released one (databases in the field have already run it).
"""

from __future__ import annotations

import sqlite3

from glide.store.sqlite.contacts import v4_contacts
from glide.store.sqlite.engine import Migration


def _v1_users(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE users (
            uid INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL,
            email TEXT,
            nickname TEXT NOT NULL,
            avatar TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            message_deliver_secret TEXT NOT NULL,
            guest INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        )"""
    )
    # One case-folded namespace for accounts and e-mails, so a login names at most one user.
    conn.execute(
        """CREATE TABLE logins (
            login TEXT PRIMARY KEY,
            uid INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX logins_uid ON logins (uid)")
    conn.execute(
        """CREATE TABLE revoked_tokens (
            jti TEXT PRIMARY KEY,
            expires_at INTEGER NOT NULL
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at)")


def _v2_chat(conn: sqlite3.Connection) -> None:
    # peer_lo/peer_hi = the two participants in order: one index serves history in both directions.
    conn.execute(
        """CREATE TABLE chat_messages (
            mid INTEGER PRIMARY KEY,
            cli_mid TEXT NOT NULL,
            sender INTEGER NOT NULL,
            receiver INTEGER NOT NULL,
            type INTEGER NOT NULL,
            content TEXT NOT NULL,
            send_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            recalled_by INTEGER,
            peer_lo INTEGER NOT NULL,
            peer_hi INTEGER NOT NULL
        )"""
    )
    conn.execute("CREATE UNIQUE INDEX chat_messages_cli_mid ON chat_messages (sender, cli_mid) WHERE cli_mid <> ''")
    conn.execute("CREATE INDEX chat_messages_conversation ON chat_messages (peer_lo, peer_hi, mid)")
    conn.execute(
        """CREATE TABLE inbox (
            uid INTEGER NOT NULL,
            mid INTEGER NOT NULL REFERENCES chat_messages (mid),
            PRIMARY KEY (uid, mid)
        ) WITHOUT ROWID"""
    )


def _v3_groups(conn: sqlite3.Connection) -> None:
    # last_seq is the group's seq counter: bumped in the transaction that inserts the entry taking it.
    conn.execute(
        """CREATE TABLE groups (
            gid INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            avatar TEXT NOT NULL,
            owner INTEGER NOT NULL,
            muted INTEGER NOT NULL DEFAULT 0,
            dissolved INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            last_mid INTEGER NOT NULL DEFAULT 0,
            last_msg_at INTEGER NOT NULL DEFAULT 0
        )"""
    )
    conn.execute(
        """CREATE TABLE group_members (
            gid INTEGER NOT NULL REFERENCES groups (gid),
            uid INTEGER NOT NULL,
            role INTEGER NOT NULL,
            muted INTEGER NOT NULL DEFAULT 0,
            joined_at INTEGER NOT NULL,
            read_seq INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (gid, uid)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX group_members_uid ON group_members (uid, gid)")
    conn.execute(
        """CREATE TABLE group_messages (
            mid INTEGER PRIMARY KEY,
            gid INTEGER NOT NULL REFERENCES groups (gid),
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            cli_mid TEXT NOT NULL,
            sender INTEGER NOT NULL,
            type INTEGER NOT NULL,
            content TEXT NOT NULL,
            send_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            recalled_by INTEGER
        )"""
    )
    conn.execute("CREATE UNIQUE INDEX group_messages_seq ON group_messages (gid, seq)")
    conn.execute(
        "CREATE UNIQUE INDEX group_messages_cli_mid ON group_messages (gid, sender, cli_mid) WHERE cli_mid <> ''"
    )


def _v5_session_ends(conn: sqlite3.Connection) -> None:
    # A logout ends its (uid, device) session: every token and credential issued for it until then is dead.
    conn.execute(
        """CREATE TABLE session_ends (
            uid INTEGER NOT NULL,
            device TEXT NOT NULL,
            ended_at INTEGER NOT NULL,
            PRIMARY KEY (uid, device)
        ) WITHOUT ROWID"""
    )


def _v6_group_policies(conn: sqlite3.Connection) -> None:
    # Who may join (0 invite-only, 1 approval, 2 open); existing groups become invite-only, as new ones are.
    conn.execute("ALTER TABLE groups ADD COLUMN join_policy INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE groups ADD COLUMN history_from_join INTEGER NOT NULL DEFAULT 1")
    # Where each member's readable history starts; 0 for existing members (they keep seeing everything).
    conn.execute("ALTER TABLE group_members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0")
    # Former members: banned (removed, until lifted) and muted (carried over to a rejoin).
    conn.execute(
        """CREATE TABLE group_departed (
            gid INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            banned INTEGER NOT NULL,
            muted INTEGER NOT NULL,
            PRIMARY KEY (gid, uid)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        """CREATE TABLE group_join_requests (
            gid INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (gid, uid)
        ) WITHOUT ROWID"""
    )


def _v7_append_only_log(conn: sqlite3.Connection) -> None:
    """Messages become an append-only log: a message's positions in its sender's and receiver's logs are
    columns of its row (they were rows of ``timeline``), a receiver's inbox is a cursor over its log (it was a
    row per pending message), and a conversation's last message and unread count are derived when read."""
    conn.execute("ALTER TABLE chat_messages ADD COLUMN sender_seq INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE chat_messages ADD COLUMN receiver_seq INTEGER NOT NULL DEFAULT 0")
    # Every message has its timeline entries (v4 backfilled them, every write since added them in its own
    # transaction); a recall appended a message again: its position is the newest entry.
    conn.execute("CREATE INDEX v7_timeline_mid ON timeline (uid, mid, seq)")
    conn.execute(
        "UPDATE chat_messages SET "
        "sender_seq = coalesce((SELECT max(seq) FROM timeline WHERE uid = sender AND mid = chat_messages.mid), 0), "
        "receiver_seq = coalesce((SELECT max(seq) FROM timeline WHERE uid = receiver AND mid = chat_messages.mid), 0)"
    )
    conn.execute("CREATE UNIQUE INDEX chat_messages_sender_log ON chat_messages (sender, sender_seq)")
    conn.execute("CREATE UNIQUE INDEX chat_messages_receiver_log ON chat_messages (receiver, receiver_seq)")
    # Inbox cursors: everything a receiver has is acknowledged except what waits in the old inbox.
    conn.execute("CREATE TABLE inbox_cursors (uid INTEGER PRIMARY KEY, cursor INTEGER NOT NULL, acked TEXT NOT NULL)")
    conn.execute(
        "INSERT INTO inbox_cursors (uid, cursor, acked) "
        "SELECT receiver, max(receiver_seq), '' FROM chat_messages GROUP BY receiver"
    )
    pending: dict[int, set[int]] = {}
    for uid, seq in conn.execute(
        "SELECT i.uid, m.receiver_seq FROM inbox i JOIN chat_messages m ON m.mid = i.mid AND m.receiver = i.uid"
    ):
        pending.setdefault(uid, set()).add(seq)
    for uid, seqs in pending.items():
        cursor = min(seqs) - 1
        acked = [
            seq
            for (seq,) in conn.execute(
                "SELECT receiver_seq FROM chat_messages WHERE receiver = ? AND receiver_seq > ?", (uid, cursor)
            )
            if seq not in seqs
        ]
        conn.execute(
            "UPDATE inbox_cursors SET cursor = ?, acked = ? WHERE uid = ?",
            (cursor, " ".join(map(str, sorted(acked))), uid),
        )
    conn.execute("DROP TABLE inbox")
    conn.execute("DROP TABLE timeline")
    conn.execute("DROP INDEX conversations_recent")
    for column in ("last_mid", "unread", "updated_at"):
        conn.execute(f"ALTER TABLE conversations DROP COLUMN {column}")


MIGRATIONS: list[Migration] = [
    _v1_users,
    _v2_chat,
    _v3_groups,
    v4_contacts,
    _v5_session_ends,
    _v6_group_policies,
    _v7_append_only_log,
]
