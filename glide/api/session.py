"""``/api/session/*``: send tickets (§2.6)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from glide.api.envelope import ApiContext, as_uid, authenticate, endpoint, read_body
from glide.auth.ticket import ticket
from glide.errors import BadRequest, UserNotFound

# Non-numeric targets are channel ids (the web app asks a ticket for "the_world_channel").
_CHANNEL_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.:@-]{0,63}")


class SessionRoutes:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return [Route("/session/ticket", endpoint(self.ticket), methods=["POST"])]

    async def ticket(self, request: Request) -> Any:
        """``{To}`` -> ``{Ticket}``: lets the caller send to that user or channel over the socket."""
        claims, user = await authenticate(self.ctx, request)
        body = await read_body(request)
        to = body.raw("to")
        if to is None or to == "":
            raise BadRequest("To: required")
        if isinstance(to, str) and _CHANNEL_ID.fullmatch(to.strip()):
            target = to.strip()
        else:
            uid = as_uid(to, "To")
            if await self.ctx.store.users.user(uid) is None:
                raise UserNotFound(f"user {uid} does not exist")
            target = str(uid)
        return {"Ticket": ticket(user.message_deliver_secret, claims.uid, target)}
