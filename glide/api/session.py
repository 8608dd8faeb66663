"""``/api/session/ticket``: send tickets (§2.6)."""

from __future__ import annotations

import re
from typing import Any

from glide.api.envelope import ApiContext, Body, as_uid
from glide.api.registry import Registry
from glide.api.schema import STR, UID, obj, out
from glide.api.user import caller
from glide.auth.ticket import ticket as make_ticket
from glide.errors import BadRequest, NotAllowed, UserNotFound
from glide.store.groups import GroupNotFound, is_group_id

# Non-numeric targets are channel ids (the web app asks a ticket for "the_world_channel").
_CHANNEL_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.:@-]{0,63}")
CHANNEL_ID_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_.:@-]{0,63}\s*$"


async def ticket(ctx: ApiContext, uid: int, device: str, body: Body) -> Any:
    """``{To}`` -> ``{Ticket}``: lets the caller send to that user, group or channel over the socket (whether
    the send is allowed is checked when it is made)."""
    user = await caller(ctx, uid)
    to = body.raw("to")
    if to is None or to == "":
        raise BadRequest("To: required")
    if isinstance(to, str) and _CHANNEL_ID.fullmatch(to.strip()):
        target = to.strip()
    else:
        peer = as_uid(to, "To")
        if is_group_id(peer):
            if await ctx.store.groups.group(peer) is None:
                raise GroupNotFound(f"group {peer} does not exist")
            return {"Ticket": make_ticket(user.message_deliver_secret, uid, str(peer))}
        if await ctx.store.users.user(peer) is None:
            raise UserNotFound(f"user {peer} does not exist")
        if await ctx.store.contacts.refused([(uid, peer)]):
            raise NotAllowed(f"user {peer} does not accept messages from you")
        target = str(peer)
    return {"Ticket": make_ticket(user.message_deliver_secret, uid, target)}


def register(reg: Registry) -> None:
    reg.route(
        "session/ticket",
        summary="A send ticket for a user or a channel",
        request=obj(("To",), To={"oneOf": [UID, {"type": "string", "pattern": CHANNEL_ID_PATTERN}]}),
        response=out(Ticket=STR),
        errors=(403, 404),
    )(ticket)
