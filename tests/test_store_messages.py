"""Message store semantics: dedup, inbox and acks, recall rules, history paging, faithful content."""

from __future__ import annotations

import enum
import itertools
import time

import pytest

from glide.errors import BadRequest, NotAllowed, NotFound, TooLate
from glide.store import NewChat, Store
from glide.store.base import STATUS_RECALLED
from glide.store.sqlite.messages import RECENT_CONTENT

pytestmark = pytest.mark.usefixtures("log_epochs")

ALICE, BOB, CAROL = 1, 2, 3


_mids = itertools.count(1000)


def chat(sender: int, receiver: int, cli_mid: str = "", content: str = "hi", mid: int | None = None) -> NewChat:
    return NewChat(mid or next(_mids), cli_mid, sender, receiver, 1, content, 1_690_000_000_123)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# dedup


async def test_store_returns_full_messages(store: Store) -> None:
    new = chat(ALICE, BOB, "cli-1", "hello")
    [r] = await store.messages.store_chats([new])
    m = r.message
    assert not r.duplicate
    assert (m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at) == (
        new.mid,
        "cli-1",
        ALICE,
        BOB,
        1,
        "hello",
        1_690_000_000_123,
    )
    assert m.status == 0 and m.recalled_by is None and abs(m.created_at - now_ms()) < 60_000
    assert await store.messages.chat(new.mid) == m
    assert await store.messages.chat_by_cli_mid(ALICE, "cli-1") == m
    assert await store.messages.store_chats([]) == []


async def test_dedup_within_one_batch(store: Store) -> None:
    a, b, c = chat(ALICE, BOB, "same"), chat(ALICE, BOB, "same", "other text"), chat(ALICE, BOB, "different")
    ra, rb, rc = await store.messages.store_chats([a, b, c])
    assert not ra.duplicate and rb.duplicate and not rc.duplicate
    assert rb.message == ra.message  # the earlier row, not the resent text
    assert [m.mid for m in await store.messages.inbox(BOB)] == [a.mid, c.mid]  # delivered once


async def test_dedup_across_batches_and_per_sender(store: Store) -> None:
    [first] = await store.messages.store_chats([chat(ALICE, BOB, "x")])
    [again] = await store.messages.store_chats([chat(ALICE, BOB, "x")])
    assert again.duplicate and again.message.mid == first.message.mid
    [other_sender] = await store.messages.store_chats([chat(CAROL, BOB, "x")])
    assert not other_sender.duplicate  # cli_mid is scoped to the sender
    assert len(await store.messages.inbox(BOB)) == 2


async def test_empty_cli_mid_never_dedups(store: Store) -> None:
    results = await store.messages.store_chats([chat(ALICE, BOB), chat(ALICE, BOB)])
    results += await store.messages.store_chats([chat(ALICE, BOB)])
    assert not any(r.duplicate for r in results)
    assert len({r.message.mid for r in results}) == 3
    assert await store.messages.chat_by_cli_mid(ALICE, "") is None


# faithful content


@pytest.mark.parametrize(
    "content",
    [
        "",
        "plain",
        "emoji 😀👩‍👩‍👧 and ünïcödé, 中文, עברית",
        "nul\x00inside\x00",
        "\n\t\r",
        "x" * 5_000_000,
        '{"json": "as text"}',
        "'; DROP TABLE chat_messages; --",
    ],
)
async def test_content_is_stored_faithfully(store: Store, content: str) -> None:
    [r] = await store.messages.store_chats([chat(ALICE, BOB, "c", content)])
    stored = await store.messages.chat(r.message.mid)
    assert stored is not None and stored.content == content
    [h] = await store.messages.history(ALICE, BOB, limit=1)
    assert h.content == content


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (NewChat(1, "c", ALICE, BOB, 1, "lone \ud800 surrogate", 0), "content"),
        (NewChat(1, "\udc00", ALICE, BOB, 1, "x", 0), "cli_mid"),
        (NewChat(2**63, "c", ALICE, BOB, 1, "x", 0), "mid"),
        (NewChat(0, "c", ALICE, BOB, 1, "x", 0), "mid"),
        (NewChat(1, "c", 0, BOB, 1, "x", 0), "sender"),
        (NewChat(1, "c", ALICE, -2, 1, "x", 0), "receiver"),
        (NewChat(1, "c", ALICE, BOB, 2**64, "x", 0), "type"),
        (NewChat(1, "c", ALICE, BOB, 1, "x", 2**63), "send_at"),
        (NewChat(1, "c", ALICE, BOB, 1, None, 0), "content"),  # type: ignore[arg-type]
        (NewChat(True, "c", ALICE, BOB, 1, "x", 0), "mid"),
        (NewChat(1, "c", ALICE, 2**63, 1, "x", 0), "receiver"),
        (NewChat(1, "c", ALICE, BOB, -(2**63) - 1, "x", 0), "type"),
        (NewChat(1, "c", ALICE, BOB, 1, "x", False), "send_at"),
        (NewChat(1, "c", ALICE, BOB, 1.0, "x", 0), "type"),  # type: ignore[arg-type]
        (NewChat(1, b"c", ALICE, BOB, 1, "x", 0), "cli_mid"),  # type: ignore[arg-type]
    ],
)
async def test_bad_input_is_rejected_and_nothing_is_stored(store: Store, bad: NewChat, field: str) -> None:
    good = chat(ALICE, BOB, "good")
    with pytest.raises(BadRequest, match=field):
        await store.messages.store_chats([good, bad])
    assert await store.messages.chat(good.mid) is None  # the whole call is refused, not half-stored
    assert await store.messages.inbox(BOB) == []


class _Kind(enum.IntEnum):
    TEXT = 1


async def test_fields_checked_the_long_way_are_stored_like_plain_ones(store: Store) -> None:
    """The checks pass plain fields (ints, ASCII text) in one expression; non-ASCII text and int subclasses
    (not bool) take the field-by-field way and are stored the same, in the same batch."""
    batch = [
        chat(ALICE, BOB, "plain", "lunch?"),
        chat(ALICE, BOB, "中文", "午饭吗 🍜"),
        NewChat(next(_mids), "kind", ALICE, BOB, _Kind.TEXT, "typed", 1_690_000_000_123),
    ]
    stored = await store.messages.store_chats(batch)
    assert [(s.duplicate, s.refused) for s in stored] == [(False, False)] * 3
    for new, s in zip(batch, stored, strict=True):
        got = await store.messages.chat(s.message.mid)
        assert got is not None and (got.cli_mid, got.content, got.type) == (new.cli_mid, new.content, int(new.type))


# inbox


async def test_inbox_pages_in_log_order(store: Store) -> None:
    stored = await store.messages.store_chats([chat(ALICE, BOB, f"c{i}") for i in range(10)])
    await store.messages.store_chats([chat(ALICE, CAROL, "for carol")])
    mids = [r.message.mid for r in stored]
    assert [m.mid for m in await store.messages.inbox(BOB)] == mids
    page1 = await store.messages.inbox(BOB, limit=4)
    page2 = await store.messages.inbox(BOB, after_seq=page1[-1].receiver_seq, limit=4)
    page3 = await store.messages.inbox(BOB, after_seq=page2[-1].receiver_seq, limit=4)
    assert [m.mid for m in page1 + page2 + page3] == mids
    assert len(await store.messages.inbox(BOB, limit=0)) == 1  # limits are clamped to 1..1000
    assert len(await store.messages.inbox(BOB, limit=10**9)) == 10
    assert await store.messages.inbox(ALICE) == []


async def test_inbox_is_in_commit_order_not_mid_order(store: Store) -> None:
    early_mid = next(_mids)  # proposed first, committed last (another node's slow batch)
    [first] = await store.messages.store_chats([chat(ALICE, BOB, content="first")])
    [late] = await store.messages.store_chats([chat(CAROL, BOB, content="late", mid=early_mid)])
    assert late.message.mid < first.message.mid and late.message.receiver_seq > first.message.receiver_seq
    assert [m.content for m in await store.messages.inbox(BOB)] == ["first", "late"]
    # acknowledging the newer one first does not acknowledge the older one committed after it
    assert [m.content for m in await store.messages.ack_inbox(BOB, [first.message.mid])] == ["first"]
    assert [m.content for m in await store.messages.inbox(BOB)] == ["late"]


async def test_log_positions(store: Store) -> None:
    a, b = await store.messages.store_chats([chat(ALICE, BOB), chat(BOB, ALICE)])
    [note] = await store.messages.store_chats([chat(ALICE, ALICE)])
    assert (a.message.sender_seq, a.message.receiver_seq) == (1, 1)
    assert (b.message.sender_seq, b.message.receiver_seq) == (2, 2)
    assert (note.message.sender_seq, note.message.receiver_seq) == (3, 3)  # one entry of ALICE's log
    assert await store.messages.chat(b.message.mid) == b.message
    new, dup = await store.messages.store_chats([chat(ALICE, BOB, "k"), chat(ALICE, BOB, "k")])
    assert new.message.sender_seq == 4 and dup.duplicate and dup.message == new.message


async def test_out_of_order_acks_keep_the_rest_pending(store: Store) -> None:
    stored = [r.message for r in await store.messages.store_chats([chat(ALICE, BOB, f"c{i}") for i in range(6)])]
    await store.messages.store_chats([chat(BOB, ALICE, "reply")])  # a position of BOB's log that is not incoming
    more = [r.message for r in await store.messages.store_chats([chat(CAROL, BOB, f"d{i}") for i in range(3)])]
    order = [stored[5], stored[1], more[2], stored[0], more[0]]
    for m in order:
        assert await store.messages.ack_inbox(BOB, [m.mid]) == [m]
        assert await store.messages.ack_inbox(BOB, [m.mid]) == []  # once
    left = [stored[2], stored[3], stored[4], more[1]]
    assert [m.mid for m in await store.messages.inbox(BOB)] == [m.mid for m in left]
    assert [m.mid for m in await store.messages.inbox(BOB, limit=2)] == [m.mid for m in left[:2]]
    assert await store.messages.ack_inbox(BOB, [m.mid for m in left]) == left
    assert await store.messages.inbox(BOB) == []


async def test_ack_returns_pending_messages_once(store: Store) -> None:
    stored = [r.message for r in await store.messages.store_chats([chat(ALICE, BOB, f"c{i}") for i in range(5)])]
    [for_carol] = [r.message for r in await store.messages.store_chats([chat(ALICE, CAROL, "c")])]
    acked = await store.messages.ack_inbox(BOB, [stored[3].mid, stored[1].mid, stored[1].mid, 999_999, -1])
    assert acked == [stored[1], stored[3]]  # ascending, each once, unknown ids ignored
    assert await store.messages.ack_inbox(BOB, [stored[1].mid]) == []  # already acknowledged
    assert await store.messages.ack_inbox(BOB, [for_carol.mid]) == []  # not BOB's
    assert [m.mid for m in await store.messages.inbox(CAROL)] == [for_carol.mid]
    assert [m.mid for m in await store.messages.inbox(BOB)] == [stored[0].mid, stored[2].mid, stored[4].mid]
    assert await store.messages.ack_inbox(BOB, []) == []


async def test_ack_many(store: Store) -> None:
    stored = await store.messages.store_chats([chat(ALICE, BOB) for _ in range(1200)])
    acked = await store.messages.ack_inbox(BOB, [r.message.mid for r in stored])  # more than one IN chunk
    assert len(acked) == 1200 and await store.messages.inbox(BOB) == []


async def test_clear_inbox(store: Store) -> None:
    stored = [r.message for r in await store.messages.store_chats([chat(ALICE, BOB) for _ in range(6)])]
    await store.messages.store_chats([chat(ALICE, CAROL)])
    assert await store.messages.clear_inbox(BOB, up_to_mid=stored[2].mid) == 3
    assert [m.mid for m in await store.messages.inbox(BOB)] == [m.mid for m in stored[3:]]
    assert await store.messages.clear_inbox(BOB) == 3
    assert await store.messages.clear_inbox(BOB) == 0
    assert len(await store.messages.inbox(CAROL)) == 1


async def test_self_message(store: Store) -> None:
    [r] = await store.messages.store_chats([chat(ALICE, ALICE, "note")])
    assert [m.mid for m in await store.messages.inbox(ALICE)] == [r.message.mid]
    assert [m.mid for m in await store.messages.history(ALICE, ALICE)] == [r.message.mid]


# recall


async def test_recall_rules(store: Store) -> None:
    [r] = await store.messages.store_chats([chat(ALICE, BOB, "r", "oops")])
    m = r.message
    with pytest.raises(NotFound):
        await store.messages.recall(123_456_789, ALICE, not_before_ms=0)
    with pytest.raises(NotFound):
        await store.messages.recall(-1, ALICE, not_before_ms=0)
    with pytest.raises(NotAllowed):
        await store.messages.recall(m.mid, BOB, not_before_ms=0)  # only the author
    with pytest.raises(TooLate):
        await store.messages.recall(m.mid, ALICE, not_before_ms=m.created_at + 1)
    recalled = await store.messages.recall(m.mid, ALICE, not_before_ms=m.created_at)
    assert recalled.status == STATUS_RECALLED and recalled.recalled_by == ALICE and recalled.content == "oops"
    assert await store.messages.chat(m.mid) == recalled
    # idempotent, even once the window has passed
    assert await store.messages.recall(m.mid, ALICE, not_before_ms=now_ms() + 10**9) == recalled
    with pytest.raises(NotAllowed):
        await store.messages.recall(m.mid, CAROL, not_before_ms=0)
    # the receiver still has it pending, now marked recalled, so it learns of the recall
    [pending] = await store.messages.inbox(BOB)
    assert pending.mid == m.mid and pending.status == STATUS_RECALLED


# history


async def test_history_pages_newest_first_in_both_directions(store: Store) -> None:
    sent = []
    for i in range(25):
        sender, receiver = (ALICE, BOB) if i % 2 == 0 else (BOB, ALICE)
        [r] = await store.messages.store_chats([chat(sender, receiver, f"h{i}", f"msg {i}")])
        sent.append(r.message)
    await store.messages.store_chats([chat(ALICE, CAROL, "elsewhere"), chat(CAROL, BOB, "elsewhere")])
    newest_first = [m.mid for m in reversed(sent)]
    page1 = await store.messages.history(ALICE, BOB, limit=10)
    page2 = await store.messages.history(ALICE, BOB, before_mid=page1[-1].mid, limit=10)
    page3 = await store.messages.history(ALICE, BOB, before_mid=page2[-1].mid, limit=10)
    assert [m.mid for m in page1 + page2 + page3] == newest_first
    assert len(page3) == 5
    assert await store.messages.history(ALICE, BOB, before_mid=sent[0].mid) == []
    assert [m.mid for m in await store.messages.history(BOB, ALICE, limit=25)] == newest_first  # symmetric
    assert len(await store.messages.history(ALICE, BOB)) == 20  # default page


async def test_history_limit_is_bounded(store: Store) -> None:
    await store.messages.store_chats([chat(ALICE, BOB) for _ in range(150)])
    assert len(await store.messages.history(ALICE, BOB, limit=1000)) == 100
    assert len(await store.messages.history(ALICE, BOB, limit=-5)) == 1


async def test_last_mid(store: Store) -> None:
    assert await store.messages.last_mid() == 0
    await store.messages.store_chats([chat(ALICE, BOB, mid=50), chat(ALICE, BOB, mid=7)])
    assert await store.messages.last_mid() == 50


async def test_a_long_message_is_acknowledged_like_any(store: Store) -> None:
    """A message too long to be remembered after storing (RECENT_CONTENT) is read when its receipt comes."""
    [long, short] = await store.messages.store_chats(
        [chat(ALICE, BOB, content="é" * (RECENT_CONTENT + 1)), chat(ALICE, BOB)]
    )
    acked = await store.messages.ack_inbox(BOB, [long.message.mid, short.message.mid])
    assert [m.mid for m in acked] == [long.message.mid, short.message.mid]
    assert acked[0].content == "é" * (RECENT_CONTENT + 1)
    assert await store.messages.inbox(BOB) == []
