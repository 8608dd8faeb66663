"""The message log's tail (glide.store.sqlite.message_log): the messages above the indexed position, in memory,
with the views reads need (by key, by user, by pair), and the recalled messages whose index entries are yet to
be rewritten. Nothing here touches SQLite; every method runs on the loop's thread."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

from glide.store.base import ChatMessage

RELEASE_SLICE = 4096  # entries of an indexed generation freed per loop iteration (~1 ms)
Moved = tuple[ChatMessage, ChatMessage]  # a recalled message as it was (its old positions) and as it is
RECEIVER_SEQ = attrgetter("receiver_seq")  # the sort keys of the views, and the sides of a user's log
SENDER_SEQ = attrgetter("sender_seq")
MID = attrgetter("mid")
RECEIVER = attrgetter("receiver")
SENDER = attrgetter("sender")


class Generation:
    """Messages of the tail with the views reads need: by key, by receiver and by sender (ascending log
    position), by pair (ascending mid)."""

    __slots__ = ("by_key", "by_pair", "by_receiver", "by_sender", "rows")

    def __init__(self, rows: Iterable[tuple[int, ChatMessage]] = ()) -> None:
        """From rows in position order (the views are then sorted: a recall may have moved some)."""
        self.rows: dict[int, ChatMessage] = {}  # position -> message
        self.by_key: dict[tuple[int, str], ChatMessage] = {}
        self.by_receiver: dict[int, list[ChatMessage]] = {}
        self.by_sender: dict[int, list[ChatMessage]] = {}
        self.by_pair: dict[tuple[int, int], list[ChatMessage]] = {}
        self.add(rows)
        if self.rows:
            for received in self.by_receiver.values():
                received.sort(key=RECEIVER_SEQ)
            for sent in self.by_sender.values():
                sent.sort(key=SENDER_SEQ)
            for messages in self.by_pair.values():
                messages.sort(key=MID)

    def add(self, rows: Iterable[tuple[int, ChatMessage]]) -> list[tuple[int, str]]:
        """Messages by position, each then last in its views (a batch in one call: the message path's); their
        (sender, cli_mid) keys (for the log's key filter, built once)."""
        by_position, by_key = self.rows, self.by_key
        by_receiver, by_sender, by_pair = self.by_receiver, self.by_sender, self.by_pair
        keys: list[tuple[int, str]] = []
        for pos, m in rows:
            by_position[pos] = m
            sender, receiver = m.sender, m.receiver
            if m.cli_mid:
                key = (sender, m.cli_mid)
                by_key[key] = m
                keys.append(key)
            by_receiver.setdefault(receiver, []).append(m)
            by_sender.setdefault(sender, []).append(m)
            by_pair.setdefault((sender, receiver) if sender <= receiver else (receiver, sender), []).append(m)
        return keys

    def move(self, pos: int, now: ChatMessage, *, listed: bool) -> None:
        """The message at ``pos`` was recalled: its new version in its pair's and its key's views, out of its
        users' logs here, or (``listed``) at their ends: its new positions are the newest of both."""
        was = self.rows[pos]
        self.rows[pos] = now
        if was.cli_mid:
            self.by_key[(was.sender, was.cli_mid)] = now
        pair = self.by_pair[(was.sender, was.receiver) if was.sender <= was.receiver else (was.receiver, was.sender)]
        pair[pair.index(was)] = now  # the same mid: the same place
        for view, uid in ((self.by_receiver, was.receiver), (self.by_sender, was.sender)):
            messages = view[uid]
            messages.remove(was)
            if listed:
                messages.append(now)
            elif not messages:
                del view[uid]

    def dismantle(self, entries: int) -> bool:
        """Drop up to ``entries`` of its entries (the views first, the messages last); True while some remain."""
        for view in (self.by_key, self.by_pair, self.by_sender, self.by_receiver, self.rows):
            n = min(entries, len(view))
            popitem = view.popitem
            for _ in range(n):
                popitem()
            if view:
                return True
            entries -= n
        return False

    def head(self, uid: int) -> int:
        """``uid``'s newest position here (0: none)."""
        received = self.by_receiver.get(uid)
        sent = self.by_sender.get(uid)
        return max(received[-1].receiver_seq if received else 0, sent[-1].sender_seq if sent else 0)


class Tail:
    """The messages above the indexed position: those of the epoch being indexed (``frozen``) and those
    appended since (``live``); and the recalled messages whose index entries are yet to be rewritten
    (``moved``, by position, and by user). An epoch freezes the live generation and, once indexed, drops it:
    neither walks the messages. A recalled message of the live generation is simply replaced there (its epoch
    reads its row as it is now); one of the frozen generation or of the index tables is answered from
    ``moved`` in its users' logs, its old and new positions masked in what the index tables answer (the
    worker may write either)."""

    __slots__ = ("frozen", "live", "moved", "moved_by_user")

    def __init__(self, rows: Iterable[tuple[int, ChatMessage]] = ()) -> None:
        self.live = Generation(rows)
        self.frozen = EMPTY
        self.moved: dict[int, Moved] = {}
        self.moved_by_user: dict[int, dict[int, Moved]] = {}

    def positions(self) -> list[int]:
        """Every position of the frozen and live generations, ascending."""
        return sorted([*self.frozen.rows, *self.live.rows])

    def keyed(self, key: tuple[int, str]) -> ChatMessage | None:
        return self.keyed_many((key,)).get(key)

    def keyed_many(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], ChatMessage]:
        """The messages here with these (sender, cli_mid) keys: one call for a batch's keys."""
        live, frozen = self.live.by_key, self.frozen.by_key
        return {key: m for key in keys if (m := live.get(key) or frozen.get(key)) is not None}

    def received(self, uid: int) -> Sequence[ChatMessage]:
        """``uid``'s incoming messages here, ascending."""
        return self._listed(uid, self.frozen.by_receiver, self.live.by_receiver, RECEIVER, RECEIVER_SEQ)

    def sent(self, uid: int) -> Sequence[ChatMessage]:
        return self._listed(uid, self.frozen.by_sender, self.live.by_sender, SENDER, SENDER_SEQ)

    def _listed(
        self,
        uid: int,
        frozen: dict[int, list[ChatMessage]],
        live: dict[int, list[ChatMessage]],
        party: Callable[[ChatMessage], int],
        seq: Callable[[ChatMessage], int],
    ) -> Sequence[ChatMessage]:
        """One side of ``uid``'s log here: the frozen then the live generation's, and its moved messages."""
        listed = _joined(frozen.get(uid), live.get(uid))
        moved = self.moved_by_user.get(uid)
        if not moved:
            return listed
        return sorted([*listed, *(m for _, m in moved.values() if party(m) == uid)], key=seq)

    def masked(self, uid: int) -> set[int]:
        """Positions of ``uid``'s log that the index tables must not answer: the old and new ones of its moved
        messages (the tail answers the new)."""
        moved = self.moved_by_user.get(uid)
        if not moved:
            return _NONE
        return {seq for was, now in moved.values() for m in (was, now) for seq in _seqs_of(m, uid)}

    def paired(self, pair: tuple[int, int]) -> Sequence[ChatMessage]:
        """The pair's messages here, by ascending mid (a moved message's mid is older than the frozen ones)."""
        frozen, live = self.frozen.by_pair.get(pair), self.live.by_pair.get(pair)
        return sorted([*frozen, *live], key=MID) if frozen and live else frozen or live or ()

    def head(self, uid: int) -> int:
        """``uid``'s newest position in the tail (0: none)."""
        head = max(self.live.head(uid), self.frozen.head(uid))
        moved = self.moved_by_user.get(uid)
        if moved:
            head = max(head, *(seq for _, m in moved.values() for seq in _seqs_of(m, uid)))
        return head

    def freeze(self) -> dict[int, Moved]:
        """An epoch starts: what is here now is what it indexes; the moved messages whose entries it rewrites."""
        self.frozen, self.live = self.live, Generation()
        return dict(self.moved)

    def indexed(self, moved: dict[int, Moved]) -> list[int]:
        """The frozen messages and the ``moved`` ones are in the index tables now; the positions of those moved
        that are not in ``moved`` any more (unless moved again meanwhile)."""
        _release(self.frozen)
        self.frozen = EMPTY
        done = [pos for pos, entry in moved.items() if self.moved.get(pos) is entry]
        for pos in done:
            _, now = self.moved.pop(pos)
            for uid in {now.sender, now.receiver}:
                users = self.moved_by_user[uid]
                del users[pos]
                if not users:
                    del self.moved_by_user[uid]
        return done

    def move(self, pos: int, was: ChatMessage, now: ChatMessage) -> bool:
        """A recall gave the message at ``pos`` new positions; whether its old ones may be in the index tables
        (it is not in the live generation)."""
        if pos in self.live.rows:
            self.live.move(pos, now, listed=True)
            return False
        if pos in self.frozen.rows:
            self.frozen.move(pos, now, listed=False)
        self.add_moved(pos, self.moved[pos][0] if pos in self.moved else was, now)
        return True

    def add_moved(self, pos: int, was: ChatMessage, now: ChatMessage) -> None:
        entry = (was, now)
        self.moved[pos] = entry
        for uid in {now.sender, now.receiver}:
            self.moved_by_user.setdefault(uid, {})[pos] = entry


EMPTY = Generation()  # never added to: a Tail's frozen generation while no epoch runs
_NONE: set[int] = set()  # never added to


def _seqs_of(m: ChatMessage, uid: int) -> tuple[int, ...]:
    """``m``'s positions in ``uid``'s log."""
    if m.sender == m.receiver:
        return (m.sender_seq,)
    return (m.sender_seq,) if m.sender == uid else (m.receiver_seq,)


def _release(generation: Generation) -> None:
    """Free a generation a slice per loop iteration: an epoch's holds ~5 objects per message, and freeing
    them at once held the loop ~9 ms at the end of every epoch."""
    if generation is EMPTY or not generation.dismantle(RELEASE_SLICE):
        return
    try:
        asyncio.get_running_loop().call_soon(_release, generation)
    except RuntimeError:  # no loop (a script): all at once
        generation.dismantle(sys.maxsize)


def _joined(a: list[ChatMessage] | None, b: list[ChatMessage] | None) -> Sequence[ChatMessage]:
    if a and b:
        return a + b
    return a or b or ()
