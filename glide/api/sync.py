"""``/api/msg/sync``: everything a client missed, from one cursor it keeps.

The cursor is a position in the caller's log (glide.store.conversations): every 1:1 message the caller
sent or received, in commit order. ``{cursor, limit}`` answers the entries after ``cursor``, ascending, and
the cursor to pass next time; a client repeats while ``More``. Pages never overlap and never skip, however
the messages' mids interleave. A recall moves the message to the end of the log (with ``Status`` 1), so a
client learns of recalls it missed; a message appears once, in its newest state.

Group messages have their own contiguous per-group seq: the answer lists, for every group of the caller,
``LastSeq`` and the caller's ``ReadSeq``, and the client pulls the ranges it lacks from the group routes.
"""

from __future__ import annotations

from typing import Any

from glide.api.envelope import ApiContext, Body
from glide.api.msg import HISTORY_ITEM, history_item
from glide.api.registry import Registry
from glide.api.schema import BOOL, ID_OUT, array, integer, obj, out
from glide.group.wire import state_info
from glide.store.conversations import MAX_SYNC_PAGE

DEFAULT_LIMIT = 100

SYNC_ITEM = {
    **HISTORY_ITEM,
    "properties": {**HISTORY_ITEM["properties"], "Seq": ID_OUT},
    "required": [*HISTORY_ITEM["required"], "Seq"],
}
GROUP_STATE = out(Gid=ID_OUT, LastMID=ID_OUT, LastSeq=ID_OUT, LastMsgAt=ID_OUT, ReadSeq=ID_OUT, Unread=ID_OUT)


async def sync(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{cursor?, limit?}`` -> ``{Messages, Cursor, Head, More, Groups}``."""
    cursor = body.integer("cursor", default=0)
    limit = body.integer("limit", default=DEFAULT_LIMIT, low=1, high=MAX_SYNC_PAGE)
    page = await ctx.store.conversations.timeline(uid, after_seq=cursor, limit=limit)
    groups = await ctx.store.groups.read_states(uid)
    return {
        "Messages": [{**history_item(e.message), "Seq": e.seq} for e in page.entries],
        "Cursor": page.cursor,
        "Head": page.head,
        "More": page.more,
        "Groups": [state_info(s) for s in groups],
    }


def register(reg: Registry) -> None:
    reg.route(
        "msg/sync",
        summary="1:1 messages after the cursor (ascending, gap-free) and every group's seq watermarks",
        request=obj(
            cursor=integer(description="the Cursor of the previous answer; 0 = from the beginning"),
            limit=integer(1, MAX_SYNC_PAGE, description=f"entries per page, default {DEFAULT_LIMIT}"),
        ),
        response=out(Messages=array(SYNC_ITEM), Cursor=ID_OUT, Head=ID_OUT, More=BOOL, Groups=array(GROUP_STATE)),
    )(sync)
