"""``/api/msg/*``: chat history and message ids."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from glide.api.envelope import ApiContext, authenticate, endpoint, read_body
from glide.errors import UserNotFound
from glide.store.base import MAX_HISTORY_PAGE, STATUS_RECALLED, ChatMessage

DEFAULT_PAGE = 20


def history_item(m: ChatMessage) -> dict[str, Any]:
    """GlideIM's history row, with From/To filled (GlideIM zeroed them) and recalled content withheld."""
    recalled = m.status == STATUS_RECALLED
    return {
        "Mid": m.mid,
        "CliMid": m.cli_mid,
        "CliSeq": 0,
        "From": m.sender,
        "To": m.receiver,
        "Type": m.type,
        "SendAt": m.send_at,
        "CreateAt": m.created_at,
        "Content": "" if recalled else m.content,
        "Status": m.status,
        "RecallBy": m.recalled_by or 0,
    }


class MsgRoutes:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/msg/chat/history", endpoint(self.history), methods=["POST"]),
            Route("/msg/id", endpoint(self.mid), methods=["POST"]),
        ]

    async def history(self, request: Request) -> Any:
        """``{Uid, BeforeMid (or Before), PageSize}`` -> messages with Uid, newest first."""
        claims, _ = await authenticate(self.ctx, request)
        body = await read_body(request)
        peer = body.uid("uid")
        before = body.integer("beforemid", "before", default=0)
        size = body.integer("pagesize", default=0) or DEFAULT_PAGE
        if await self.ctx.store.users.user(peer) is None:
            raise UserNotFound(f"user {peer} does not exist")
        page = await self.ctx.store.messages.history(
            claims.uid, peer, before_mid=before, limit=min(size, MAX_HISTORY_PAGE)
        )
        return [history_item(m) for m in page]

    async def mid(self, request: Request) -> Any:
        """A fresh message id from this node's generator (GlideIM used MAX(m_id)+1, which races)."""
        await authenticate(self.ctx, request)
        return {"mid": self.ctx.ids.next()}
