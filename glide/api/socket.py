"""The API over the long connection: every socket-enabled route of the registry as an action.

``{"action": "api.user.info", "seq": 7, "data": {"uid": [2, 3]}}`` runs the same handler as
``POST /api/user/info`` for the connection's (uid, device) and answers ``api.success`` with ``Data`` or
``api.failed`` with the error message, both carrying the request's seq. ``data`` may be absent or null (an
empty request object); anything but an object is refused with a message naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from glide._native import Envelope, Outgoing
from glide.api.envelope import ApiContext, Body
from glide.api.registry import ApiRoute, Registry, call
from glide.chat.payload import envelope_data
from glide.dispatch import Dispatcher
from glide.errors import BadRequest, GlideError
from glide.gateway.conn import Conn

log = logging.getLogger("glide.api")

SocketHandler = Callable[[Conn, Envelope], Awaitable[None]]


def request_body(env: Envelope) -> Body:
    """The envelope's ``data`` as a request object (absent/null = empty)."""
    data: Any = envelope_data(env)
    if data is None:
        return Body({})
    if not isinstance(data, dict):
        raise BadRequest(f"data: expected a JSON object, got {type(data).__name__}")
    return Body(data)


def socket_handler(ctx: ApiContext, route: ApiRoute) -> SocketHandler:
    async def run(conn: Conn, env: Envelope) -> None:
        try:
            result = await call(ctx, route, conn.uid, conn.device, request_body(env))
        except GlideError as e:
            conn.send(Outgoing("api.failed", e.message, seq=env.seq))
            return
        except Exception:
            log.exception("socket action %s failed", route.action)
            conn.send(Outgoing("api.failed", "internal error", seq=env.seq))
            return
        conn.send(Outgoing("api.success", result, seq=env.seq))

    return run


def register_socket_actions(dispatcher: Dispatcher, ctx: ApiContext, registry: Registry) -> list[str]:
    """Register ``api.<route>`` for every socket-enabled route; returns the action names.

    Public routes (no token needed over HTTP) are callable before login too; the others need a logged-in
    connection (the dispatcher answers ``notify.unauthenticated`` otherwise). An action the application
    registered itself under the same name keeps precedence.
    """
    names: list[str] = []
    for route in registry:
        if not route.over_socket or dispatcher.has(route.action):
            continue
        dispatcher.register(route.action, socket_handler(ctx, route), login_required=route.auth)
        names.append(route.action)
    return names


def register_api_actions(dispatcher: Dispatcher, api: Any) -> list[str]:
    """Register the socket actions of an application made by :func:`glide.api.build_api`."""
    return register_socket_actions(dispatcher, api.state.api_context, api.state.api_registry)
