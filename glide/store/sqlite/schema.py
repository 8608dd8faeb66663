"""The SQLite schema as an ordered list of migrations; ``schema_version`` records how many have run.

Append new steps at the end; never edit a released one (databases in the field have already run it).
"""

from __future__ import annotations

import sqlite3

from glide.store.groups import GROUP_ID_BASE, renumbered_notices
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
    """Messages become an append-only log (glide.store.sqlite.message_log): rows in write order, their index
    entries in tables of their own; a message's positions in its sender's and receiver's logs are columns of
    its row (they were rows of ``timeline``); a receiver's inbox is a cursor over its log (it was a row per
    pending message); a conversation's last message and unread count are derived when read."""
    conn.execute(
        """CREATE TABLE chat_log (
            pos INTEGER PRIMARY KEY,
            mid INTEGER NOT NULL UNIQUE,
            cli_mid TEXT NOT NULL,
            sender INTEGER NOT NULL,
            receiver INTEGER NOT NULL,
            type INTEGER NOT NULL,
            content TEXT NOT NULL,
            send_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            status INTEGER NOT NULL DEFAULT 0,
            recalled_by INTEGER,
            sender_seq INTEGER NOT NULL,
            receiver_seq INTEGER NOT NULL
        )"""
    )
    # Every message has its timeline entries (v4 backfilled them, every write since added them in its own
    # transaction); a recall appended a message again: its position is the newest entry.
    conn.execute("CREATE INDEX v7_timeline_mid ON timeline (uid, mid, seq)")
    conn.execute(
        "INSERT INTO chat_log (pos, mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, "
        "recalled_by, sender_seq, receiver_seq) SELECT row_number() OVER (ORDER BY mid), mid, cli_mid, sender, "
        "receiver, type, content, send_at, created_at, status, recalled_by, "
        "coalesce((SELECT max(seq) FROM timeline WHERE uid = sender AND mid = m.mid), 0), "
        "coalesce((SELECT max(seq) FROM timeline WHERE uid = receiver AND mid = m.mid), 0) "
        "FROM chat_messages m ORDER BY mid"
    )
    for ddl in (
        "CREATE TABLE chat_by_cli_mid (sender INTEGER NOT NULL, cli_mid TEXT NOT NULL, pos INTEGER NOT NULL, "
        "PRIMARY KEY (sender, cli_mid)) WITHOUT ROWID",
        "CREATE TABLE chat_by_receiver (receiver INTEGER NOT NULL, seq INTEGER NOT NULL, pos INTEGER NOT NULL, "
        "PRIMARY KEY (receiver, seq)) WITHOUT ROWID",
        "CREATE TABLE chat_by_sender (sender INTEGER NOT NULL, seq INTEGER NOT NULL, pos INTEGER NOT NULL, "
        "PRIMARY KEY (sender, seq)) WITHOUT ROWID",
        "CREATE TABLE chat_by_pair (peer_lo INTEGER NOT NULL, peer_hi INTEGER NOT NULL, mid INTEGER NOT NULL, "
        "sender INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (peer_lo, peer_hi, mid)) WITHOUT ROWID",
        "CREATE TABLE chat_indexed (id INTEGER PRIMARY KEY CHECK (id = 1), pos INTEGER NOT NULL)",
        "INSERT INTO chat_by_cli_mid SELECT sender, cli_mid, pos FROM chat_log WHERE cli_mid <> '' ORDER BY 1, 2",
        "INSERT INTO chat_by_receiver SELECT receiver, receiver_seq, pos FROM chat_log ORDER BY 1, 2",
        "INSERT INTO chat_by_sender SELECT sender, sender_seq, pos FROM chat_log ORDER BY 1, 2",
        "INSERT INTO chat_by_pair SELECT min(sender, receiver), max(sender, receiver), mid, sender, pos "
        "FROM chat_log ORDER BY 1, 2, 3",
        "INSERT INTO chat_indexed (id, pos) SELECT 1, coalesce(max(pos), 0) FROM chat_log",
    ):
        conn.execute(ddl)
    # Inbox cursors: everything a receiver has is acknowledged except what waits in the old inbox.
    conn.execute("CREATE TABLE inbox_cursors (uid INTEGER PRIMARY KEY, cursor INTEGER NOT NULL, acked TEXT NOT NULL)")
    conn.execute(
        "INSERT INTO inbox_cursors (uid, cursor, acked) SELECT receiver, max(receiver_seq), '' FROM chat_log "
        "GROUP BY receiver"
    )
    pending: dict[int, set[int]] = {}
    for uid, seq in conn.execute(
        "SELECT i.uid, m.receiver_seq FROM inbox i JOIN chat_log m ON m.mid = i.mid AND m.receiver = i.uid"
    ):
        pending.setdefault(uid, set()).add(seq)
    for uid, seqs in pending.items():
        cursor = min(seqs) - 1
        acked = [
            seq
            for (seq,) in conn.execute(
                "SELECT receiver_seq FROM chat_log WHERE receiver = ? AND receiver_seq > ?", (uid, cursor)
            )
            if seq not in seqs
        ]
        conn.execute(
            "UPDATE inbox_cursors SET cursor = ?, acked = ? WHERE uid = ?",
            (cursor, " ".join(map(str, sorted(acked))), uid),
        )
    for ddl in (
        "DROP TABLE inbox",
        "DROP TABLE timeline",
        "DROP TABLE chat_messages",
        "ALTER TABLE chat_log RENAME TO chat_messages",
        "DROP INDEX conversations_recent",
        "ALTER TABLE conversations DROP COLUMN last_mid",
        "ALTER TABLE conversations DROP COLUMN unread",
        "ALTER TABLE conversations DROP COLUMN updated_at",
    ):
        conn.execute(ddl)


def _v8_group_ids(conn: sqlite3.Connection) -> None:
    """Group ids never equal user ids (GlideIM's clients key conversations by id alone): every group moves to
    GROUP_ID_BASE + its old id once, new groups follow it, and GROUP_ID_BASE itself is the world channel's."""
    conn.execute("PRAGMA defer_foreign_keys = ON")  # parents and children move in one transaction
    for table in ("groups", "group_members", "group_messages", "group_departed", "group_join_requests"):
        conn.execute(f"UPDATE {table} SET gid = gid + ?1 WHERE gid < ?1", (GROUP_ID_BASE,))
    conn.executemany(
        "UPDATE group_messages SET content = ? WHERE mid = ?",
        renumbered_notices(conn.execute("SELECT mid, content FROM group_messages WHERE kind = 1").fetchall()),
    )
    # AUTOINCREMENT continues above both the moved groups and the world channel's id.
    if (
        conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'groups'", (GROUP_ID_BASE,)).rowcount
        == 0
    ):
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('groups', ?)", (GROUP_ID_BASE,))


def _v9_index_database(conn: sqlite3.Connection) -> None:
    """The message log's index tables move to the index database (glide.store.sqlite.background, which the
    message store builds from the rows when it opens one that is new); recalls whose new index entries are not
    written yet are remembered in ``chat_moved`` (the positions they had: their entries are removed then)."""
    for table in ("chat_by_cli_mid", "chat_by_receiver", "chat_by_sender", "chat_by_pair", "chat_indexed"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute(
        "CREATE TABLE chat_moved (pos INTEGER PRIMARY KEY, sender_seq INTEGER NOT NULL, receiver_seq INTEGER NOT NULL)"
    )


MIGRATIONS: list[Migration] = [
    _v1_users,
    _v2_chat,
    _v3_groups,
    v4_contacts,
    _v5_session_ends,
    _v6_group_policies,
    _v7_append_only_log,
    _v8_group_ids,
    _v9_index_database,
]
