"""The operator's routes, behind the node's ``admin_token`` (``Authorization: Bearer <admin_token>``, never a
user's token): the sessions online on this node, closing a user's sessions, and a notice to every online
session. In a cluster, a kick and a broadcast reach every node; the session list is the answering node's.

HTTP only (no ``api.admin.*`` socket action): a socket belongs to a user, the operator is not one."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from glide._native import Outgoing
from glide.api.envelope import ApiContext, is_admin, read_body
from glide.api.registry import ApiRoute, Registry
from glide.api.schema import ID_OUT, STR, UID, array, integer, obj, out, text
from glide.errors import AuthError, BadRequest

KICKED = 4002  # close code of a session the operator closed (4001 is a newer login's kick-out)
BROADCAST_ACTION = "notify.admin"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text exposition format
MAX_LISTED = 1000
# A broadcast's action: a dotted lower-case name, never one of the frames a client trusts from the server's
# own flows (a forged ack or message would confuse every client).
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){0,4}$")
_RESERVED = ("ack.", "message.", "api.", "group.", "hello", "heartbeat")

SESSION = out(Uid=ID_OUT, Device=STR)
SESSIONS = out(Online=ID_OUT, Sessions=array(SESSION))


def require_admin(ctx: ApiContext, request: Request) -> None:
    if not is_admin(ctx, request):
        raise AuthError("this route is for the operator: send the node's admin_token as the bearer token")


async def sessions(ctx: ApiContext, request: Request) -> Any:
    """``{Uid?}``: the sessions on this node (of one user, with ``Uid``), at most 1,000."""
    require_admin(ctx, request)
    body = await read_body(request)
    hub = ctx.hub
    conns = list(hub.devices(body.uid("uid"))) if body.raw("uid") is not None else hub.all()
    listed = [{"Uid": c.uid, "Device": c.device} for c in conns[:MAX_LISTED] if not c.closed]
    return {"Online": hub.online_count(), "Sessions": listed}


async def kick(ctx: ApiContext, request: Request) -> Any:
    """``{Uid, Device?}``: close that session (every session of the user without ``Device``), wherever it is,
    with close code 4002. Its tokens stay valid: the client may log in again (``auth/logout`` ends a session)."""
    require_admin(ctx, request)
    body = await read_body(request)
    uid = body.uid("uid")
    device = body.device() if body.raw("device") is not None else None
    return {"Here": ctx.hub.close_session(uid, device, KICKED, "closed by the operator")}


async def broadcast(ctx: ApiContext, request: Request) -> Any:
    """``{Data, Action?}``: send ``{"action": Action, "data": Data}`` (``notify.admin`` by default) to every
    online session of every node; answers how many sessions of this node got it."""
    require_admin(ctx, request)
    body = await read_body(request)
    action = body.text("action", max_len=64) or BROADCAST_ACTION
    if not _ACTION.match(action) or action.startswith(_RESERVED):
        raise BadRequest(f"action: {action!r} is not a name a broadcast may use (e.g. notify.admin)")
    data = body.raw("data")
    if data is None:
        raise BadRequest("data: missing")
    return {"Here": ctx.hub.broadcast(Outgoing(action, data))}


def metrics_endpoint(ctx: ApiContext, exposition: Callable[[], bytes]) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: the Prometheus exposition of this node, for the admin token only."""

    async def serve(request: Request) -> Response:
        if not is_admin(ctx, request):
            return PlainTextResponse(
                "metrics are for the operator: send the node's admin_token as the bearer token\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(exposition(), media_type=METRICS_TYPE)

    return serve


def register(reg: Registry) -> None:
    operator = "the operator only (bearer token: the node's admin_token)"
    reg.add(
        ApiRoute(
            "admin/sessions",
            f"The sessions online on this node; {operator}",
            http_handler=sessions,
            methods=("GET", "POST"),
            socket=False,
            request=obj((), Uid=UID),
            response=SESSIONS,
        )
    )
    reg.add(
        ApiRoute(
            "admin/kick",
            f"Close a user's session (every session without Device) on whichever node it is; {operator}",
            http_handler=kick,
            socket=False,
            request=obj(("Uid",), Uid=UID, Device=text(32)),
            response=out(Here={"type": "boolean"}),
        )
    )
    reg.add(
        ApiRoute(
            "admin/broadcast",
            f"A notice to every online session of every node (action notify.admin unless given); {operator}",
            http_handler=broadcast,
            socket=False,
            request=obj(("Data",), Data={}, Action=text(64)),
            response=out(Here=integer()),
        )
    )
