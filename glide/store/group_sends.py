"""A batch of group chat messages, decided the same way on every store backend.

A backend loads what the batch needs once (the groups, each sender's membership, the messages stored before
under the batch's (gid, sender, cli_mid) keys), :func:`plan_sends` decides every message in order from it
(a duplicate, refused by the rules, or appended with its group's next seq), and the backend writes the plan
in a few statements: the rows, each group's new head, each sender's read position. A group's seqs are
contiguous and follow the batch's order; a refused message takes none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from glide.errors import GlideError
from glide.group import rules
from glide.store.checks import INT32_MAX, INT32_MIN, check_id, check_int, check_text
from glide.store.group_checks import MAX_CLI_MID, check_gid
from glide.store.groups import (
    KIND_MESSAGE,
    MAX_GROUP_CONTENT,
    WORLD_GID,
    Group,
    GroupMember,
    GroupMessage,
    GroupNotFound,
    NewGroupMessage,
    StoredGroupMessage,
)

# What storing one message of a batch gave: stored (or found stored before), or why not.
SendResult = StoredGroupMessage | GlideError
SendKey = tuple[int, int, str]  # (gid, sender, cli_mid)


def check_group_message(m: NewGroupMessage) -> None:
    """The message's fields (BadRequest), and a gid that can name a group (GroupNotFound)."""
    check_id(m.mid, "mid")
    check_gid(m.gid)
    check_id(m.sender, "sender")
    check_int(m.type, "type", INT32_MIN, INT32_MAX)
    check_int(m.send_at, "send_at")
    check_text(m.cli_mid, "cli_mid", MAX_CLI_MID)
    check_text(m.content, "content", MAX_GROUP_CONTENT)


def checked(messages: Sequence[NewGroupMessage]) -> tuple[list[SendResult | None], list[NewGroupMessage]]:
    """One slot per message (its error when its fields are refused, else None to fill) and the valid ones."""
    results: list[SendResult | None] = []
    valid: list[NewGroupMessage] = []
    for m in messages:
        try:
            check_group_message(m)
        except GlideError as e:
            results.append(e)
            continue
        results.append(None)
        valid.append(m)
    return results, valid


def filled(results: list[SendResult | None], decided: Sequence[SendResult]) -> list[SendResult]:
    """``results`` with its empty slots filled in order from ``decided``."""
    it = iter(decided)
    return [r if r is not None else next(it) for r in results]


def send_keys(batch: Sequence[NewGroupMessage]) -> list[SendKey]:
    """The distinct dedup keys of the batch (an empty cli_mid never dedups)."""
    return list(dict.fromkeys((m.gid, m.sender, m.cli_mid) for m in batch if m.cli_mid))


class SendsBatches(Protocol):
    async def store_group_messages(self, messages: Sequence[NewGroupMessage]) -> list[SendResult]: ...


class GroupSends:
    """What every group store derives from its batch send (``store_group_messages``): storing one message."""

    async def store_group_message(self: SendsBatches, message: NewGroupMessage) -> StoredGroupMessage:
        (result,) = await self.store_group_messages([message])
        if isinstance(result, GlideError):
            raise result
        return result


@dataclass
class SendPlan:
    """What a batch does: ``results`` in the batch's order (their recipients still to fill, see
    :meth:`with_recipients`), the ``rows`` to insert, each group's newest row (``heads``) and each sender's
    read position (``read_up``: acting in a group means having seen it up to there)."""

    results: list[SendResult] = field(default_factory=list)
    rows: list[GroupMessage] = field(default_factory=list)
    heads: dict[int, GroupMessage] = field(default_factory=dict)
    read_up: dict[tuple[int, int], int] = field(default_factory=dict)

    def gids(self) -> list[int]:
        """The groups the batch appended to, but the world channel (whose fan-out is every session)."""
        return sorted(gid for gid in self.heads if gid != WORLD_GID)

    def with_recipients(self, members: dict[int, tuple[int, ...]]) -> list[SendResult]:
        """The results, each new message with its group's members (``members`` by gid, ascending uids)."""
        return [
            StoredGroupMessage(r.message, False, members.get(r.message.gid, ()))
            if isinstance(r, StoredGroupMessage) and not r.duplicate
            else r
            for r in self.results
        ]


def plan_sends(
    batch: Sequence[NewGroupMessage],
    groups: dict[int, Group],
    members: dict[tuple[int, int], GroupMember],
    earlier: dict[SendKey, GroupMessage],
    now: int,
) -> SendPlan:
    """Decide each message of ``batch`` in order from what was loaded: ``groups`` by gid (a missing one does
    not exist), ``members`` by (gid, uid), ``earlier`` by key (the messages stored before). A key stored
    before, or earlier in the batch, is a duplicate of that message, whatever the rules say now."""
    plan = SendPlan()
    seen = dict(earlier)
    last_seq = {gid: g.last_seq for gid, g in groups.items()}
    for m in batch:
        key = (m.gid, m.sender, m.cli_mid)
        first = seen.get(key) if m.cli_mid else None
        if first is not None:
            plan.results.append(StoredGroupMessage(first, True, ()))
            continue
        group = groups.get(m.gid)
        try:
            if group is None:
                raise GroupNotFound(f"group {m.gid} does not exist")
            rules.check_send(group, members.get((m.gid, m.sender)))
        except GlideError as e:
            plan.results.append(e)
            continue
        seq = last_seq[m.gid] = last_seq[m.gid] + 1
        row = GroupMessage(
            m.mid, m.gid, seq, KIND_MESSAGE, m.cli_mid, m.sender, m.type, m.content, m.send_at, now, 0, None
        )
        plan.rows.append(row)
        plan.heads[m.gid] = row
        plan.read_up[(m.gid, m.sender)] = seq
        if m.cli_mid:
            seen[key] = row
        plan.results.append(StoredGroupMessage(row, False, ()))
    return plan
