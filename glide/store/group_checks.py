"""Input checks and small builders every group store backend shares, so both refuse the same input with the
same messages (the backends validate before touching the database)."""

from __future__ import annotations

from collections.abc import Sequence

from glide.errors import BadRequest
from glide.store.checks import check_id, is_id
from glide.store.groups import JOIN_POLICIES, MAX_UIDS_PER_CALL, GroupNotFound, GroupReadState

MAX_CLI_MID = 64
STATUS_RECALLED = 1


def check_gid(gid: object) -> int:
    """A gid that can name a group; any other value names none (GroupNotFound, as a missing group)."""
    if not is_id(gid):
        raise GroupNotFound(f"group {gid!r:.30} does not exist")
    return gid  # type: ignore[return-value]


def check_uids(uids: Sequence[int], field: str = "uids") -> list[int]:
    if isinstance(uids, (str, bytes)) or not isinstance(uids, Sequence):
        raise BadRequest(f"{field}: expected a list of user ids")
    if not uids:
        raise BadRequest(f"{field}: must not be empty")
    if len(uids) > MAX_UIDS_PER_CALL:
        raise BadRequest(f"{field}: at most {MAX_UIDS_PER_CALL} user ids per call")
    return list(dict.fromkeys(check_id(u, f"{field}[{i}]") for i, u in enumerate(uids)))


def read_state(gid: int, last_seq: int, last_mid: int, last_msg_at: int, read_seq: int) -> GroupReadState:
    return GroupReadState(gid, last_seq, last_mid, last_msg_at, read_seq, max(0, last_seq - read_seq))


def check_settings(join_policy: object, history_from_join: object) -> None:
    """A group's settings: a JOIN_* policy and a boolean (None: a setting a change leaves as it is)."""
    if join_policy is not None and (isinstance(join_policy, bool) or join_policy not in JOIN_POLICIES.values()):
        names = ", ".join(f"{v} ({k})" for k, v in JOIN_POLICIES.items())
        raise BadRequest(f"join_policy: expected one of {names}, got {join_policy!r:.20}")
    if history_from_join is not None and not isinstance(history_from_join, bool):
        raise BadRequest("history_from_join: expected true or false")
