"""The HTTP API (GlideIM routes and envelope) as a Starlette ASGI application, mountable anywhere.

Every route is declared once in a :class:`~glide.api.registry.Registry`; the same handlers serve HTTP,
the socket actions ``api.*`` (:func:`glide.api.socket.register_api_actions`) and the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

import glide
from glide.api import admin, app, auth, contacts, conversation, msg, privacy, session, sync, user
from glide.api import group as group_routes
from glide.api.admin import metrics_endpoint
from glide.api.envelope import ApiContext, ApiHooks, Cors, RequestLog, http_error
from glide.api.openapi import openapi_endpoint
from glide.api.registry import ApiRoute, Registry
from glide.auth.credential import CredentialService
from glide.auth.tokens import TokenService
from glide.config import Config
from glide.gateway.hub import LocalHub
from glide.ids import MidGenerator
from glide.store.base import Store

__all__ = ["ApiHooks", "ApiRoute", "Registry", "build_api", "build_registry"]


def build_registry() -> Registry:
    """Every route of the API."""
    reg = Registry()
    auth.register(reg)
    user.register(reg)
    session.register(reg)
    msg.register(reg)
    app.register(reg)
    admin.register(reg)
    contacts.register(reg)
    privacy.register(reg)
    conversation.register(reg)
    sync.register(reg)
    group_routes.register(reg)
    return reg


def build_api(
    *,
    store: Store,
    config: Config,
    tokens: TokenService,
    credentials: CredentialService,
    ids: MidGenerator,
    hooks: ApiHooks | None = None,
    hub: LocalHub | None = None,
    stats: Callable[[], dict[str, Any]] | None = None,
    metrics: Callable[[], bytes] | None = None,
) -> Starlette:
    """The API with every route under ``/api/``. ``ids`` must be the node's one MidGenerator (the one the
    chat flow uses), so ids from ``msg/id`` never collide with stored ones. ``hub``: where routes push socket
    notifications (the gateway's); ``stats``: live server statistics for ``GET app/info``; ``metrics``: the
    Prometheus exposition served at ``GET /metrics`` to the admin token.

    The application's ``state.api_registry`` and ``state.api_context`` serve the socket actions."""
    ctx = ApiContext(
        store=store,
        config=config,
        tokens=tokens,
        credentials=credentials,
        ids=ids,
        hooks=hooks,
        hub=hub if hub is not None else LocalHub(),
        stats=stats,
    )
    registry = build_registry()
    extra = [Route("/metrics", metrics_endpoint(ctx, metrics), methods=["GET"])] if metrics is not None else []
    app = Starlette(
        routes=[
            *extra,
            Mount(
                "/api",
                routes=[
                    *registry.starlette_routes(ctx),
                    Route("/openapi.json", openapi_endpoint(registry, glide.__version__), methods=["GET"]),
                ],
            ),
        ],
        middleware=[Middleware(RequestLog), Middleware(Cors)],
        exception_handlers={HTTPException: http_error, Exception: http_error},
    )
    app.state.api_registry = registry
    app.state.api_context = ctx
    return app
